"""The Sweeps page (dashboard/views/sweeps.py) in AppTest on a store of hand-made runs: a declared
latent-dimension sweep (3 values x 2 seeds, test nll = 100 - d + seed, and one FAILED run), a two-key IWAE
sweep (k x latent_dim), and two plain entries that differ in one hyper-parameter only (width). The chart's
data (the points and means it draws) and the table are checked against those numbers."""
import json

import pandas as pd
import pytest
from test_dashboard import app, texts

from zoo.results import open_store

DIMS, SEEDS, KS = (2, 5, 10), (0, 1), (1, 5, 50)


def _run(store, label, model, seed, hparams, sweep=None, nll=None, status="FINISHED", likelihood="elbo",
         extra=None):
    config = {"experiment": "sw", "dataset": {"name": "bars"}, "model": model, "label": label, "seed": seed,
              "hparams": hparams, "train": {"epochs": 3}, "eval": {"is_k": 10}}
    if sweep:
        config["sweep"] = sweep
    rid = store.start_run(experiment="sw", model=model, label=label, dataset="bars", seed=seed, config=config,
                          run_key=f"{label}-{seed}", likelihood=likelihood)
    if nll is not None:
        rows = [("nll", nll, likelihood), *((k, v, "classifier") for k, v in (extra or {}).items())]
        store.log_metrics(rid, "test", rows)
    store.finish_run(rid, status, wall_time=1.0)
    return rid


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("sweeps") / "store.sqlite"
    store = open_store(str(path))
    for d in DIMS:
        for seed in SEEDS:
            _run(store, f"vae-latent_dim{d}", "vae", seed, {"latent_dim": d, "width": 8}, {"latent_dim": d},
                 nll=100.0 - d + seed, extra={"fcd": float(d * 10 + seed)})
    _run(store, "vae-latent_dim20", "vae", 0, {"latent_dim": 20, "width": 8}, {"latent_dim": 20},
         status="FAILED")  # not drawn
    for k in KS:
        for d in (2, 4):
            _run(store, f"iwae-k{k}-latent_dim{d}", "iwae", 0, {"k": k, "latent_dim": d, "width": 8},
                 {"k": k, "latent_dim": d}, nll=90.0 - k / 10 - d, likelihood="iwae")
    _run(store, "narrow", "vae", 0, {"latent_dim": 3, "width": 4}, nll=95.0)
    _run(store, "broad", "vae", 0, {"latent_dim": 3, "width": 16}, nll=93.0)
    store.dispose()
    return path


def _charts(at) -> list[tuple[dict, list[pd.DataFrame]]]:
    """(Vega-Lite spec, its data sets as frames) per chart (Streamlit sends Altair's data as Arrow)."""
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    return [(json.loads(c.proto.spec), [convert_arrow_bytes_to_pandas_df(d.data.data)
                                        for d in c.proto.datasets]) for c in at.get("vega_lite_chart")]


def _frames(at):
    """(the per-seed points, the means) the page's one chart draws."""
    (spec, frames), = _charts(at)
    points = next(f for f in frames if "seed" in f)
    means = next(f for f in frames if "mean" in f)
    return spec, points, means


def _log_x(at) -> bool:
    return next(t for t in at.toggle if t.label == "Log x").value


def test_the_sweeps_are_found_declared_first_and_failed_runs_left_out(db):
    from dashboard import data

    s = data.sweeps(str(db), "bars", "sw")
    names = list(dict.fromkeys(s["sweep"]))
    assert names == ["vae over latent_dim", "iwae over k × latent_dim", "width: broad, narrow"]
    assert list(s.drop_duplicates("sweep")["declared"]) == [True, True, False]
    vae = s[s["sweep"] == names[0]]
    assert sorted(vae["value"]) == sorted(d for d in DIMS for _ in SEEDS)  # not the FAILED d=20
    assert set(s.loc[s["sweep"] == names[2], "value"]) == {4, 16}


def test_the_page_draws_each_seed_the_mean_and_the_range_against_the_swept_value(db, monkeypatch):
    at = app(db, "sweeps", monkeypatch)
    assert at.selectbox(key="sweeps_sweep").value == "vae over latent_dim"
    assert at.selectbox(key="sweeps_metric").value == "nll"
    spec, points, means = _frames(at)
    assert sorted(zip(points["latent_dim"], points["seed"], points["value"])) == \
        [(d, s, 100.0 - d + s) for d in DIMS for s in SEEDS]
    means = means.set_index("latent_dim")
    assert list(means.index) == list(DIMS)
    assert means["mean"].tolist() == pytest.approx([100.5 - d for d in DIMS])
    assert means["min"].tolist() == pytest.approx([100.0 - d for d in DIMS])
    assert means["max"].tolist() == pytest.approx([101.0 - d for d in DIMS])
    titles = json.dumps(spec)
    assert "test nll (nats per example; ELBO)" in titles  # the kind and the units on the axis
    assert not _log_x(at)  # 2..10: linear by default
    table = at.dataframe[0].value
    assert list(table["latent_dim"]) == list(DIMS) and list(table["seeds"]) == [2, 2, 2]
    assert table["mean"].tolist() == pytest.approx([100.5 - d for d in DIMS])
    assert list(table["runs"]) == [f"vae-latent_dim{d}" for d in DIMS]


def test_another_metric_and_a_two_key_sweep_with_log_x_and_colour(db, monkeypatch):
    at = app(db, "sweeps", monkeypatch)
    at.selectbox(key="sweeps_metric").set_value("fcd").run()
    table = at.dataframe[0].value
    assert table["mean"].tolist() == pytest.approx([10 * d + 0.5 for d in DIMS])
    at.selectbox(key="sweeps_sweep").set_value("iwae over k × latent_dim").run()
    assert at.selectbox(key="sweeps_metric").value == "nll"  # fcd: not recorded by these runs
    assert at.radio(key="sweeps_x").value == "k"
    assert _log_x(at)  # k = 1, 5, 50: a log axis by default
    spec, points, means = _frames(at)
    assert '"type": "log"' in json.dumps(spec)
    assert sorted(zip(points["k"], points["latent_dim"], points["value"])) == \
        sorted((k, f"latent_dim={d}", 90.0 - k / 10 - d) for k in KS for d in (2, 4))
    assert len(means) == 6 and "IWAE" in json.dumps(spec)
    at.radio(key="sweeps_x").set_value("latent_dim").run()  # the other key on x, k as colour
    _, points, _ = _frames(at)
    assert sorted(set(points["k"])) == ["k=1", "k=5", "k=50"]
    assert sorted(set(points["latent_dim"])) == [2, 4]


def test_entries_differing_in_one_hyper_parameter_are_offered_too(db, monkeypatch):
    at = app(db, "sweeps", monkeypatch)
    at.selectbox(key="sweeps_sweep").set_value("width: broad, narrow").run()
    _, points, _ = _frames(at)
    assert sorted(zip(points["width"], points["value"])) == [(4, 95.0), (16, 93.0)]
    assert "entries differing in one hyper-parameter" in at.selectbox(key="sweeps_sweep").format_func(
        "width: broad, narrow")


def test_no_sweep_says_how_to_declare_one(tmp_path, monkeypatch):
    path = tmp_path / "plain.sqlite"
    store = open_store(str(path))
    _run(store, "vae", "vae", 0, {"latent_dim": 2}, nll=90.0)
    store.dispose()
    at = app(path, "sweeps", monkeypatch)
    assert any("No sweep" in t for t in texts(at, "info"))
    assert any("sweep: {latent_dim: [2, 5, 10, 20]}" in t for t in texts(at, "code"))
    assert not at.get("vega_lite_chart")
