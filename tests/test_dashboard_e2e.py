"""End to end: `streamlit run dashboard/app.py -- --db <fixture store>` opened in headless Chromium
through Playwright (the system /usr/bin/chromium; never `playwright install`). Select with -m e2e.
Screenshots go to $ZOO_TEST_ARTIFACTS if set, else to a pytest tmp folder; their paths are printed."""
import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from zoo.results import open_store
from zoo.vocabulary import FAMILIES, family

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None,
                       reason="Python Playwright is not installed (pip install -r requirements.txt)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc, seconds: float = 120) -> None:
    end = time.time() + seconds
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"streamlit did not answer at {url} within {seconds} s")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from test_dashboard import build_store

    db = build_store(tmp_path_factory)
    port = _free_port()
    log = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py"),
           "--server.headless", "true", "--server.port", str(port), "--server.fileWatcherType", "none",
           "--browser.gatherUsageStats", "false", "--", "--db", str(db)]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        yield url, db
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        print(f"streamlit log: {log}")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def _shot(page, tmp_path, name) -> Path:
    folder = Path(os.environ.get("ZOO_TEST_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def test_leaderboard_in_a_browser_shows_the_runs_families(server, browser, tmp_path):
    url, db = server
    store = open_store(str(db))
    finished = store.runs(status="FINISHED")
    store.dispose()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url, timeout=120_000)
    page.get_by_role("heading", name="Leaderboard").wait_for(timeout=120_000)
    cells = page.locator('[data-testid="stDataFrame"] [role="gridcell"]')
    cells.first.wait_for(state="attached", timeout=120_000)  # glide's accessible (hidden) copy of the grid
    # the FAILED / DIVERGED runs sit in a table rendered after the ranked one: wait for it, then read
    cells.filter(has_text="DIVERGED").first.wait_for(state="attached", timeout=120_000)
    shown = set(cells.all_text_contents())
    expected = set(finished["model"].map(family))
    assert set(FAMILIES) <= expected <= shown  # every family
    badges = {"ELBO", "IWAE-3", "exact", "VLB", "AIS", "n/a"}
    assert badges | {"FAILED", "DIVERGED"} <= shown  # the kinds of number; runs kept apart
    assert page.locator('[data-testid="stException"]').count() == 0
    assert _shot(page, tmp_path, "dashboard_leaderboard.png").stat().st_size > 10_000
    page.close()


def test_leaderboard_in_a_browser_shows_where_runs_ran(server, browser, tmp_path):
    """The "where" toggle, clicked in the page: the ranked table gains the runs' host, devices, dtype
    policy and library versions."""
    import socket

    url, _ = server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url, timeout=120_000)
    page.get_by_role("heading", name="Leaderboard").wait_for(timeout=120_000)
    cells = page.locator('[data-testid="stDataFrame"] [role="gridcell"]')
    cells.first.wait_for(state="attached", timeout=120_000)
    assert "float32" not in set(cells.all_text_contents())
    page.get_by_text("Where each run ran").click()
    cells.filter(has_text="float32").first.wait_for(state="attached", timeout=120_000)
    shown = set(cells.all_text_contents())
    assert {"float32", "CPU:0", socket.gethostname()} <= shown
    assert any(text.startswith("tensorflow ") for text in shown)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert _shot(page, tmp_path, "dashboard_leaderboard_where.png").stat().st_size > 10_000
    page.close()


def test_samples_page_in_a_browser_shows_pictures(server, browser, tmp_path):
    url, _ = server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{url}/samples", timeout=120_000)
    page.get_by_role("heading", name="Samples").wait_for(timeout=120_000)
    images = page.locator('[data-testid="stImage"] img')
    images.nth(3).wait_for(timeout=120_000)  # real images + at least three runs' grids
    page.wait_for_function("() => { const i = document.querySelector('[data-testid=\"stImage\"] img');"
                           " return i && i.complete && i.naturalWidth > 0; }", timeout=120_000)  # decoded
    assert images.count() >= 4 and images.first.evaluate("img => img.naturalWidth") > 0
    assert page.locator('[data-testid="stException"]').count() == 0
    _shot(page, tmp_path, "dashboard_samples.png")
    page.close()


TEACHING = [("teach_vae", "VAE and IWAE", 4), ("teach_flow", "Normalizing flow (RealNVP)", 5),
            ("teach_pixelcnn", "PixelCNN", 4), ("teach_diffusion", "Diffusion", 4), ("teach_gan", "GAN", 4)]


@pytest.mark.parametrize("path, heading, tiles", TEACHING)
def test_teaching_pages_in_a_browser_show_their_tiles(server, browser, tmp_path, path, heading, tiles):
    url, _ = server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{url}/{path}", timeout=120_000)
    page.get_by_role("heading", name=heading, exact=True).wait_for(timeout=120_000)
    page.locator('[data-testid="stMetric"]').nth(tiles - 1).wait_for(timeout=120_000)
    page.locator('[data-testid="stImage"] img').first.wait_for(timeout=120_000)  # the run's pictures
    assert page.locator('[data-testid="stMetric"]').count() >= tiles
    assert page.locator('[data-testid="stException"]').count() == 0
    _shot(page, tmp_path, f"dashboard_{path}.png")
    page.close()


def test_the_overview_opens_from_a_link_in_the_presentation_view(server, browser, tmp_path):
    """A slide's link (/overview?present=1) opens the families side by side in large type, with no
    developer chrome (the committed dashboard/.streamlit/config.toml: no Deploy button)."""
    url, _ = server
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.goto(f"{url}/overview?present=1", timeout=120_000)
    page.get_by_role("heading", name="Families side by side").wait_for(timeout=120_000)
    heads = page.locator('[data-testid="stTable"] th')
    heads.filter(has_text="Diffusion").first.wait_for(timeout=120_000)
    assert set(FAMILIES) <= {t.strip() for t in heads.all_text_contents()}
    page.locator('[data-testid="stImage"] img').nth(len(FAMILIES)).wait_for(timeout=120_000)
    assert page.evaluate("getComputedStyle(document.documentElement).fontSize") == "22px"
    assert page.get_by_role("button", name="Deploy").count() == 0
    assert page.get_by_text("Link to this view").count() == 1
    assert page.locator('[data-testid="stException"]').count() == 0
    _shot(page, tmp_path, "dashboard_overview_present.png")
    page.goto(f"{url}/overview", timeout=120_000)  # a plain link: normal type
    page.get_by_role("heading", name="Families side by side").wait_for(timeout=120_000)
    assert page.evaluate("getComputedStyle(document.documentElement).fontSize") != "22px"
    page.close()
