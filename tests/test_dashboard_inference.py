"""The "Gradients and gaps" teaching page (dashboard/views/teach_inference.py) in AppTest on the fixture
store of test_dashboard: the gap decomposition shows the runs' recorded metrics and reports (VAE and
IWAE side by side), the live gradient variances are zoo.demos.gradients' numbers, and nothing is live
(no TensorFlow) until the toggle is on."""
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from test_dashboard import APP, NO_TF, ROOT, app, chart_specs, texts

from zoo.results import open_store

PAGE = "teach_inference"
GAPS = ["approximation_gap", "amortisation_gap"]


@pytest.fixture(scope="module")
def recorded(db):
    """(test metrics by (run_id, name), {label: run_id}, {label: the inference_gaps report}, the labels
    of the finished VAE / IWAE runs)."""
    store = open_store(str(db))
    runs = store.runs()
    ids = dict(zip(runs["label"], runs["run_id"]))
    latent = set(runs.query("status == 'FINISHED' and model in ['vae', 'iwae']")["label"])
    m = store.metrics(split="test").set_index(["run_id", "name"])["value"]
    arts = store.artifacts().query("name == 'report_inference_gaps'").set_index("run_id")["path"]
    store.dispose()
    reports = {label: pd.read_csv(arts[rid]) for label, rid in ids.items() if rid in arts.index}
    return m, ids, reports, latent


def _chart_rows(at) -> list[dict]:
    """The rows of every chart's data (Streamlit sends Altair's datasets as Arrow tables)."""
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    frames = [convert_arrow_bytes_to_pandas_df(d.data.data) for c in at.get("vega_lite_chart")
              for d in c.proto.datasets]
    if any(c.proto.HasField("data") for c in at.get("vega_lite_chart")):
        frames += [convert_arrow_bytes_to_pandas_df(c.proto.data.data) for c in at.get("vega_lite_chart")
                   if c.proto.HasField("data")]
    return [row for f in frames for row in f.to_dict("records")]


def test_the_runner_recorded_the_gaps_of_the_vae_and_the_iwae_only(recorded):
    m, ids, reports, latent = recorded
    assert set(reports) == latent >= {"vae", "iwae_k3"}  # not the GAN (no encoder), nor other families
    for label, table in reports.items():
        assert len(table) == 50  # the fixture's 50 test images (the runner takes at most 50)
        for gap in GAPS:
            assert m[(ids[label], gap)] == pytest.approx(table[gap].mean())
        assert m[(ids[label], "encoder_elbo_nll")] == pytest.approx(-table["elbo_q_phi"].mean())
        assert (table["amortisation_gap"] > -0.2).all()  # q* starts at q_phi: only MC noise below 0


def test_gap_decomposition_shows_the_recorded_numbers_vae_and_iwae_side_by_side(db, recorded, monkeypatch):
    m, ids, reports, _ = recorded
    at = app(db, PAGE, monkeypatch)
    assert at.title[0].value == "Gradients and gaps"
    assert len(at.latex) == 4  # the two estimators, the Cremer et al. inequality and decomposition
    table = next(d.value for d in at.dataframe if "approximation_gap" in d.value.columns)
    shown = table.set_index("name")
    assert {f"#{ids['vae']} vae s0", f"#{ids['iwae_k3']} iwae_k3 s0"} <= set(shown.index)
    for label in ("vae", "iwae_k3"):
        row, rid = shown.loc[f"#{ids[label]} {label} s0"], ids[label]
        for gap in GAPS:
            assert row[gap] == pytest.approx(m[(rid, gap)])
        assert row["-ELBO(q*)"] == pytest.approx(m[(rid, "optimised_elbo_nll")])
        assert row["-ELBO(q_φ)"] == pytest.approx(m[(rid, "encoder_elbo_nll")])
        assert row["-log p(x) (IS, q*)"] == pytest.approx(m[(rid, "optimised_is_nll")])
    rows = _chart_rows(at)
    bars = [r for r in rows if r.get("term") in GAPS]  # the stacked gaps
    for r in bars:
        rid = int(r["name"].split()[0][1:])
        assert r["nats"] == pytest.approx(m[(rid, r["term"])])
    assert {r["term"] for r in bars} == set(GAPS) and len(bars) == 2 * len(shown)
    points = [r for r in rows if "elbo_q_star" in r]  # per-image scatter
    assert len(points) == sum(len(t) for t in reports.values())
    expected = {(f"#{ids[lab]} {lab} s0", int(e)): g for lab, t in reports.items()
                for e, g in zip(t["example"], t["amortisation_gap"])}
    for p in points:
        assert p["amortisation_gap"] == pytest.approx(expected[(p["run"], int(p["example"]))])


def test_toggle_off_nothing_live_and_no_tensorflow(db):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-c", NO_TF, str(db), str(APP), PAGE], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    errors, drawn, tf_loaded = json.loads(proc.stdout.strip().splitlines()[-1])[PAGE]
    assert errors == 0 and drawn >= 2 and not tf_loaded


def test_live_gradient_variances_are_the_zoo_functions(db, recorded, monkeypatch):
    from dashboard import artifacts
    from zoo import data as zdata
    from zoo.demos.gradients import encoder_gradients

    m, ids, _, _ = recorded
    at = app(db, PAGE, monkeypatch)
    assert not [d for d in at.dataframe if "total_variance" in d.value.columns]  # off: nothing live
    at.selectbox(key="teach_VAE").set_value(f"#{ids['iwae_k3']} iwae_k3 s0").run()
    at.toggle(key="gaps_live").set_value(True).run()
    at.selectbox(key="gaps_samples").set_value(1000).run()
    at.number_input(key="gaps_image").set_value(3).run()
    assert not at.exception, [e.value for e in at.exception]
    shown = next(d.value for d in at.dataframe if "total_variance" in d.value.columns).set_index("estimator")

    store = open_store(str(db))
    path = store.artifacts(ids["iwae_k3"]).set_index("name")["path"]["model"]
    store.dispose()
    x = zdata.load("bars", n_train=200, n_valid=50, n_test=50).test
    want = encoder_gradients(artifacts.load_model(path), x[3:4], samples=1000, form="mc").table
    want = want.set_index("estimator")
    for col in ("total_variance", "variance_per_weight", "snr", "mean_norm"):
        np.testing.assert_allclose(shown[col], want.loc[shown.index, col], rtol=1e-6)
    assert set(shown["S"]) == {1000}
    assert shown.loc["score function", "total_variance"] > 10 * shown.loc["reparameterised", "total_variance"]
    ratio = want.loc["score function", "total_variance"] / want.loc["reparameterised", "total_variance"]
    assert any(f"{ratio:.3g} times" in t for t in texts(at, "caption"))
    (bar,) = [s for s in chart_specs(at) if "total_variance" in json.dumps(s.get("encoding", {}))]
    assert '"log"' in json.dumps(bar)


def test_an_empty_store_says_how_to_fill_it(tmp_path, monkeypatch):
    empty = tmp_path / "empty.sqlite"
    open_store(str(empty)).dispose()
    at = app(empty, PAGE, monkeypatch)
    assert any("No runs in this store yet" in t for t in texts(at, "info"))
    assert not at.dataframe and not at.get("vega_lite_chart")
