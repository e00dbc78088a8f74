"""Shared test set-up: repo root on sys.path, quiet TensorFlow, the `slow` marker, and the data
fixtures every model test shares (loaded once per session, read-only)."""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running (minutes); deselect with -m 'not slow'")
    config.addinivalue_line("markers",
                            "e2e: the dashboard in headless Chromium (skipped without /usr/bin/chromium)")
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning")


# Parametrized cases too slow for the default suite whose behaviour a cheaper case of the same test
# covers (measured on 2 cores): node id -> why.
SLOW_CASES = {
    "test_contract.py::test_fit_then_save_load_round_trip[digits-diffusion]":
        "52 s; the bars case checks the same round trip of the same family",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.split("/")[-1] in SLOW_CASES:
            item.add_marker(pytest.mark.slow)


def _read_only(dataset):
    """Freeze the image and label arrays: a session fixture is shared, so no test may edit it."""
    for x in [dataset.train, dataset.valid, dataset.test, *dataset.labels.values()]:
        x.flags.writeable = False
    return dataset


@pytest.fixture(scope="session")
def bars():
    """Bars 4000 / 500 / 2000: the largest any model test needs (tests that count steps or pay per
    image take `support.subset` of it)."""
    from zoo import data

    return _read_only(data.load("bars", n_train=4000, n_valid=500, n_test=2000))


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's 8x8 digits, 1000 / 350 / 447 at 17 levels."""
    from zoo import data

    return _read_only(data.load("digits"))


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """The dashboard tests' store: a tiny real run of every family on bars (test_dashboard.TINY), built
    once per session and shared by the page tests."""
    from test_dashboard import build_store

    return build_store(tmp_path_factory)


@pytest.fixture(scope="module")
def store(db):
    """An open `zoo.results` store on the module's `db` (the dashboard fixture store, or the module's own)."""
    from zoo.results import open_store

    s = open_store(str(db))
    yield s
    s.dispose()


def _postgres_bin() -> Path | None:
    """The folder of Debian's PostgreSQL server programs (initdb, pg_ctl), the newest version."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server for this test process: initdb in a temporary folder, started on a
    free local port (socket in that folder too), stopped and removed at the end. Yields the URL of its
    `postgres` database. As root, the server runs as the `postgres` user (it refuses root). Skips with a
    message when PostgreSQL is not installed (`apt-get install postgresql`; .ci/run does it)."""
    import shutil
    import socket
    import subprocess
    import tempfile

    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql; .ci/run installs it)")
    root = Path(tempfile.mkdtemp(prefix="zoo-pg-"))  # not tmp_path: the postgres user must reach it
    as_user = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data, log = root / "data", root / "server.log"
    run = dict(check=True, capture_output=True, text=True, timeout=120)
    try:
        subprocess.run(as_user + [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "zoo",
                                  "--no-sync", "-E", "UTF8"], **run)
        subprocess.run(as_user + [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-o",
                                  f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
                                  f"-c max_connections=50", "start"], **run)
    except subprocess.CalledProcessError as err:
        tail = log.read_text()[-2000:] if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {err.stderr or err.stdout}\n{tail}")
    try:
        yield f"postgresql+psycopg://zoo@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(as_user + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_db(postgres_server):
    """A fresh, empty database on the session's PostgreSQL server; its URL."""
    import uuid

    import sqlalchemy as sa

    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return postgres_server.rsplit("/", 1)[0] + f"/{name}"
