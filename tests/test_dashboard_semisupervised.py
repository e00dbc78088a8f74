"""The "Semi-supervised" page (dashboard/views/semisupervised.py) in AppTest on a small hand-made store:
the table shows each model's test error (%) against N (M1 per run, M2's own classifier at its
`labelled` N), mean over seeds; the paper's MNIST Table 1 beside it."""
import json

import numpy as np
import pytest
from test_dashboard import app, chart_specs, texts

from zoo.results import open_store

PAGE = "semisupervised"


def _run(store, label, seed, metrics, model="vae", dataset="digits", status="FINISHED", **hparams):
    cfg = {"dataset": {"name": dataset}, "eval": {"ssl_labels": [100, 600]}, "hparams": hparams}
    rid = store.start_run(experiment="ssl", model=model, label=label, dataset=dataset, seed=seed, config=cfg,
                          run_key=f"{label}-{seed}-{dataset}-{status}", likelihood="elbo")
    store.log_metrics(rid, "test", [(name, value, "classifier") for name, value in metrics.items()])
    store.finish_run(rid, status, wall_time=1.0)


@pytest.fixture(scope="module")
def ssl_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("ssl") / "store.sqlite"
    store = open_store(str(db))
    _run(store, "vae", 0, {"m1_error_n100": 0.20, "m1_error_n600": 0.10, "nll": 30.0})
    _run(store, "vae", 1, {"m1_error_n100": 0.30, "m1_error_n600": 0.12})
    _run(store, "m2", 0, {"m1_error_n100": 0.50, "ssl_error": 0.08}, model="m2", labelled=100)
    _run(store, "vae", 2, {"m1_error_n100": 0.99}, status="FAILED")  # not finished: not shown
    _run(store, "m2_none", 0, {"ssl_error": 0.7}, model="m2", labelled=0)  # no labels: no N, not shown
    store.dispose()
    return db


def test_the_table_shows_error_percent_against_n_per_model(ssl_db, monkeypatch):
    at = app(ssl_db, PAGE, monkeypatch)
    assert at.title[0].value == "Semi-supervised"
    table = at.dataframe[0].value.set_index(["model", "method"])
    assert list(table.columns) == ["N = 100", "N = 600", "seeds"]
    assert table.loc[("vae", "M1"), "N = 100"] == pytest.approx(25.0)  # mean of 20 % and 30 %
    assert table.loc[("vae", "M1"), "N = 600"] == pytest.approx(11.0)
    assert table.loc[("vae", "M1"), "seeds"] == 2
    assert table.loc[("m2", "M1"), "N = 100"] == pytest.approx(50.0)
    assert np.isnan(table.loc[("m2", "M1"), "N = 600"])
    assert table.loc[("m2", "own classifier"), "N = 100"] == pytest.approx(8.0)  # at its labelled N
    assert len(table) == 3
    paper = at.dataframe[1].value.set_index("N")
    assert paper.loc[100, "M1+M2"] == "3.33 (± 0.14)" and paper.loc[3000, "M2"] == "3.92 (± 0.63)"
    specs = chart_specs(at)
    assert len(specs) == 2 and all('"type": "log"' in json.dumps(s) for s in specs)  # error vs log N
    assert any("MNIST" in t for t in texts(at, "subheader"))
    assert any("not on digits" in t for t in texts(at, "caption"))


def test_without_ssl_numbers_the_page_says_how_to_get_them(tmp_path, monkeypatch):
    db = tmp_path / "plain.sqlite"
    store = open_store(str(db))
    _run(store, "vae", 0, {"nll": 30.0})
    store.dispose()
    at = app(db, PAGE, monkeypatch)
    assert any("ssl_labels" in t for t in texts(at, "info"))
    assert len(at.dataframe) == 1  # the paper's table only
    assert len(chart_specs(at)) == 1
