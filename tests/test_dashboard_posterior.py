"""The "Posterior and evidence" page (dashboard/views/teach_posterior.py) and the estimators of log p(x)
on "VAE and IWAE" and "Bound anatomy", in AppTest on the fixture store of test_dashboard: the live tiles
are zoo.demos.posterior's numbers for the run and image picked, the charts draw the runner's
`estimators` report, and nothing is live (no TensorFlow) until the toggle is on."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from test_dashboard import APP, NO_TF, ROOT, app, chart_specs, texts

from zoo.results import open_store

PAGE = "teach_posterior"


@pytest.fixture(scope="module")
def recorded(db):
    """({label: run_id}, test metrics by (run_id, name), {label: artifact paths by name})."""
    store = open_store(str(db))
    runs = store.runs()
    ids = dict(zip(runs["label"], runs["run_id"]))
    m = store.metrics(split="test").set_index(["run_id", "name"])["value"]
    arts = store.artifacts()
    store.dispose()
    paths = {label: arts[arts["run_id"] == rid].set_index("name")["path"].to_dict()
             for label, rid in ids.items()}
    return ids, m, paths


def _charts(at) -> list[tuple[dict, list]]:
    """(Vega-Lite spec, the rows of each of its data sets) per chart: Streamlit sends Altair's data sets
    as Arrow tables beside the spec."""
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    out = []
    for c in at.get("vega_lite_chart"):
        frames = [convert_arrow_bytes_to_pandas_df(d.data.data) for d in c.proto.datasets]
        if c.proto.HasField("data"):
            frames.append(convert_arrow_bytes_to_pandas_df(c.proto.data.data))
        out.append((json.loads(c.proto.spec), [f.to_dict("records") for f in frames]))
    return out


def _rows(chart) -> list[dict]:
    return [row for rows in chart[1] for row in rows]


def _marks(spec) -> set:
    found, stack = set(), [spec]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            mark = item.get("mark")
            if mark is not None:
                found.add(mark if isinstance(mark, str) else mark.get("type"))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def test_the_runner_recorded_prior_mc_and_the_estimators_of_every_decoder_model(recorded):
    ids, m, paths = recorded
    with_report = {label for label, p in paths.items() if "report_estimators" in p}
    assert with_report == {"vae", "iwae_k3", "gan_ais", "ae_2d"}  # has_decoder: not pixelcnn, flow, ...
    for label in with_report:
        assert math.isfinite(m[(ids[label], "prior_mc_nll")]) and m[(ids[label], "prior_mc_k")] > 0
        table = pd.read_csv(paths[label]["report_estimators"])
        assert "quadrature" in set(table["method"])  # latents of 1 and 2 dimensions
        assert ("IS with q" in set(table["method"])) == (label != "gan_ais")


def test_off_the_page_draws_nothing_live_and_needs_no_tensorflow(db):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-c", NO_TF, str(db), str(APP), PAGE], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    errors, drawn, tf_loaded = json.loads(proc.stdout.strip().splitlines()[-1])[PAGE]
    assert errors == 0 and drawn == 1 and not tf_loaded  # the test image picked; nothing live


@pytest.mark.parametrize("label, index", [("iwae_k3", 3), ("vae", 5)])
def test_live_tiles_are_the_quadrature_of_the_picked_run_and_image(label, index, db, recorded, monkeypatch):
    from dashboard import artifacts
    from zoo import data as zdata
    from zoo.demos.posterior import posterior

    ids, _, paths = recorded
    at = app(db, PAGE, monkeypatch)
    assert at.title[0].value == "Posterior and evidence" and len(at.latex) == 3
    assert not at.metric and not chart_specs(at)  # off: nothing live
    at.selectbox(key="teach_VAE").set_value(f"#{ids[label]} {label} s0").run()
    at.toggle(key="posterior_live").set_value(True).run()
    at.number_input(key="posterior_image").set_value(index).run()
    assert not at.exception, [e.value for e in at.exception]
    tiles = {t.label: float(t.value) for t in at.metric}

    x = zdata.load("bars", n_train=200, n_valid=50, n_test=50).test
    want = posterior(artifacts.load_model(paths[label]["model"]), x[index:index + 1])
    assert tiles["log p(x), quadrature (exact)"] == pytest.approx(want.log_px[0], abs=1e-4)
    assert tiles["ELBO"] == pytest.approx(want.elbo[0], abs=1e-4)
    assert tiles["KL(q || p(z|x)) = the gap"] == pytest.approx(want.kl[0], abs=1e-4)
    specs = _charts(at)
    cell = math.exp(want.grid.log_dv)
    z = want.grid.z  # the drawn points are grid points: match them by their coordinates
    at_z = {tuple(p): i for i, p in enumerate(np.round(z, 9))}
    if label == "iwae_k3":  # 1-D: the area under p(x|z)p(z), then p(z|x), q(z|x) and p(z) as lines
        assert len(specs) == 2 and "area" in _marks(specs[0][0]) and "line" in _marks(specs[1][0])
        area = pd.DataFrame(_rows(specs[0]))
        idx = [at_z[(round(v, 9),)] for v in area["z"]]
        assert 100 < len(area) <= len(z) and idx == sorted(idx)  # a window of the grid, in order
        np.testing.assert_allclose(area["p(x|z)p(z)"], np.exp(want.log_joint[idx, 0]), rtol=1e-9)
        assert area["p(x|z)p(z)"].sum() * cell == pytest.approx(math.exp(want.log_px[0]), rel=1e-2)
        dens = pd.DataFrame(_rows(specs[1]))
        assert set(dens["density"]) == {"p(z|x)", "q(z|x)", "p(z)"}
        post = dens[dens["density"] == "p(z|x)"].sort_values("z")
        np.testing.assert_allclose(post["value"], np.exp(want.log_post[idx, 0]), rtol=1e-9)
    else:  # 2-D: three heat maps on a window of the grid, at most 52 points per axis
        assert len(specs) == 3 and all("rect" in _marks(s[0]) for s in specs)
        heat = pd.DataFrame(_rows(specs[1]))
        assert 100 < len(heat) <= 52 ** 2
        idx = [at_z[(round(a, 9), round(b, 9))] for a, b in zip(heat["z1"], heat["z2"])]
        np.testing.assert_allclose(heat["p(z|x)"], np.exp(want.log_post[idx, 0]), rtol=1e-9)
        np.testing.assert_allclose(heat["q(z|x)"], np.exp(want.log_q[idx, 0]), rtol=1e-9)
    assert any("log p(x) - ELBO - KL" in t for t in texts(at, "caption"))


def _estimator_lines(chart) -> pd.DataFrame:
    """The rows a chart drew of an estimators summary but the quadrature rule (lines and bands)."""
    return pd.DataFrame([r for r in _rows(chart) if r.get("method") != "quadrature"])


def _check_drawn(drawn: pd.DataFrame, report: pd.DataFrame):
    from zoo.demos.estimators import summarise

    want = summarise(report)
    want = want[want["method"] != "quadrature"].set_index(["line", "cost"])
    got = drawn.drop_duplicates(["line", "cost"]).set_index(["line", "cost"])
    assert set(got.index) == set(want.index)
    for col in ("nll", "nll_min", "nll_max"):
        np.testing.assert_allclose(got.loc[want.index, col], want[col], rtol=1e-9)


def test_the_vae_page_draws_the_estimators_report_and_the_prior_mc_tile(db, recorded, monkeypatch):
    ids, m, paths = recorded
    at = app(db, "teach_vae", monkeypatch)
    at.selectbox(key="teach_VAE").set_value(f"#{ids['iwae_k3']} iwae_k3 s0").run()
    assert not at.exception
    tile = next(t for t in at.metric if t.label == "prior MC NLL")
    assert float(tile.value) == pytest.approx(m[(ids["iwae_k3"], "prior_mc_nll")], rel=1e-3)
    report = pd.read_csv(paths["iwae_k3"]["report_estimators"])
    chart = next(c for c in _charts(at) if any("nll_min" in r for r in _rows(c)))
    _check_drawn(_estimator_lines(chart), report)
    exact = [r for r in _rows(chart) if r.get("method") == "quadrature"]
    quadrature = report.loc[report["method"] == "quadrature", "nll"].iloc[0]
    assert len(exact) == 1 and exact[0]["nll"] == pytest.approx(quadrature)
    assert '"log"' in json.dumps(chart[0])
    assert any("by quadrature" in t for t in texts(at, "caption"))


def test_bound_anatomy_draws_the_estimators_of_the_best_runs(db, recorded, monkeypatch):
    ids, _, paths = recorded
    at = app(db, "anatomy", monkeypatch)
    specs = [c for c in _charts(at) if any("nll_min" in r for r in _rows(c))]
    with_report = [label for label, p in paths.items() if "report_estimators" in p]
    assert len(specs) == min(4, len(with_report)) == 4  # the best 4 of the runs with a decoder
    titles = " ".join(json.dumps(s[0].get("title")) for s in specs)
    drawn = [label for label in with_report if f"#{ids[label]} {label} s0" in titles]
    assert len(drawn) == 4 and {"vae", "iwae_k3"} <= set(drawn)
    for label in drawn:
        (spec,) = [s for s in specs if f"#{ids[label]} {label} s0" in json.dumps(s[0].get("title"))]
        _check_drawn(_estimator_lines(spec), pd.read_csv(paths[label]["report_estimators"]))
