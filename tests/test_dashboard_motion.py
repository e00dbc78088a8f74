"""Diffusion in motion and how the PixelCNN writes (issue 12 items 6, 7): AppTest on the fixture store
of test_dashboard. Off, the teaching pages import no TensorFlow; on, the strips, the heat map and the
class rows are drawn, and the numbers shown are the zoo functions' on the run's saved model."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from test_dashboard import APP, NO_TF, ROOT, app, chart_specs, texts

from zoo.results import open_store


@pytest.fixture(scope="module")
def runs(db):
    """label -> (run_id, the run's saved model)."""
    from dashboard import artifacts

    store = open_store(str(db))
    ids = dict(zip(store.runs()["label"], store.runs()["run_id"]))
    paths = store.artifacts(names=["model"]).set_index("run_id")["path"]
    store.dispose()
    return {label: (rid, artifacts.load_model(paths[rid])) for label, rid in ids.items() if rid in paths}


def _bars_test(n=16):
    from zoo import data

    return data.load("bars", n_train=200, n_valid=50, n_test=50).test[:n]  # the fixture's data options


def test_off_the_pages_need_no_tensorflow(db, monkeypatch):
    pages = ["teach_diffusion", "teach_pixelcnn"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-c", NO_TF, str(db), str(APP), *pages], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert all(exceptions == 0 and not tf_loaded for exceptions, _, tf_loaded in out.values()), out
    for page, key in zip(pages, ["diffusion_live", "pixelcnn_live"]):
        at = app(db, page, monkeypatch)
        assert at.toggle(key=key).value is False and len(at.image) == 2  # only the run's saved pictures


def test_diffusion_in_motion(db, runs, monkeypatch):
    from zoo.demos import diffusion as demo

    _, model = runs["diffusion"]
    at = app(db, "teach_diffusion", monkeypatch)
    at.toggle(key="diffusion_live").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    captions = [c for im in at.image for c in im.captions]
    assert len(at.image) == 2 + 4  # the saved pictures; forward strip, states, predictions, inpainting
    assert any(c.startswith("z_t ~ q(z_t|x) in data units, 3 draws") for c in captions)
    ts = demo.reverse_chain(model, 4, seed=0, method="ddim").t  # the page's default sampler
    when = ", ".join(f"{v:.2f}" for v in ts)
    assert any(f"states z_t at t = {when}, then" in c and "model.sample(4, seed=0)" in c for c in captions)
    assert any(c.startswith("test images; the mask") for c in captions)
    assert any("q(z_t \\mid x)" in t for t in texts(at, "latex"))
    for t in (0.5, 0.25):  # the tiles beside q(z_t|x) are the schedule's numbers at the chosen t
        at.slider(key="diffusion_t").set_value(t).run()
        want = demo.schedule_table(model, [t]).iloc[0]
        shown = {m.label: m.value for m in at.metric}
        assert shown["alpha_t"] == f"{want['alpha']:.4g}" and shown["sigma_t"] == f"{want['sigma']:.4g}"
        assert shown["log SNR(t)"] == f"{want['log_snr']:.4g}"
    table = at.dataframe[-1].value
    np.testing.assert_allclose(table["snr"], demo.schedule_table(model, [i / 8 for i in range(9)])["snr"])
    at.selectbox(key="diffusion_mask").set_value("left").run()
    at.radio(key="diffusion_method").set_value("ancestral").run()
    assert not at.exception and len(at.image) == 6


def test_pixelcnn_writes(db, runs, monkeypatch):
    from zoo.demos import pixelcnn as demo

    rid, model = runs["pixelcnn"]
    at = app(db, "teach_pixelcnn", monkeypatch)
    at.selectbox(key="teach_PixelCNN").set_value(f"#{rid} pixelcnn s0").run()
    at.toggle(key="pixelcnn_live").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.image) == 2 + 1 and any("unconditional" in t for t in texts(at, "info"))
    # the nats spent: each sample's own -log p(x), as the zoo computes it for the same seed
    nats = demo.partial_canvases(model, 4, seed=0).nats
    ends = nats[nats["written"] == 16]["nats"]
    assert any(", ".join(f"{v:.3f}" for v in ends) in c for c in texts(at, "caption"))
    x = _bars_test()
    for row, col in [(2, 2), (3, 3), (0, 0)]:
        at.number_input(key="pixelcnn_row").set_value(row).run()
        at.number_input(key="pixelcnn_col").set_value(col).run()
        shown = {m.label: m.value for m in at.metric}
        field = demo.receptive_field(model, x, row, col, 0)
        assert shown["before it"] == str(row * 4 + col)
        assert shown["in reach"] == str(demo.reach(model, row, col).sum())
        assert shown["non-zero"] == str((field > 0).sum())
    specs = json.dumps(chart_specs(at))
    assert '"field": "gradient"' in specs and '"rect"' in specs


def test_a_conditional_pixelcnn_writes_one_class_per_row(db, runs, monkeypatch):
    from zoo.demos import pixelcnn as demo

    if "pixelcnn_cond" not in runs:
        pytest.skip("the fixture store has no class-conditional PixelCNN yet")
    rid, model = runs["pixelcnn_cond"]
    at = app(db, "teach_pixelcnn", monkeypatch)
    at.selectbox(key="teach_PixelCNN").set_value(f"#{rid} pixelcnn_cond s0").run()
    at.toggle(key="pixelcnn_live").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.image) == 2 + 2 and not texts(at, "info")
    assert at.image[-1].captions[0] == "row y: 8 samples of p(x | y), y = 0 .. 3"
    drawn = demo.partial_canvases(model, 4, seed=0, counts=[0]).labels  # the classes the sampler draws
    assert f"(rows: classes y = {', '.join(map(str, drawn))}, drawn uniformly)" in at.image[-2].captions[0]
    assert any("given y = 0" in t for t in texts(at, "caption"))
