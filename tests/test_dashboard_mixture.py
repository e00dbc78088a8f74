"""The "Mixture and EM" page in AppTest on the fixture store (tests/test_dashboard.py, its mixture run:
K = 4 on the tiny bars, 4 EM iterations): the log-likelihood per EM iteration it shows is the run's
history and never decreases, one mean image per component with its pi from the saved report, the E-
and M-step equations; TensorFlow-free."""
import numpy as np
import pandas as pd
import pytest

from tests.test_dashboard import app, texts

PAGE = "teach_mixture"


def test_the_page_shows_em_iterations_components_and_equations(db, store, monkeypatch):
    at = app(db, PAGE, monkeypatch)
    assert at.title[0].value == "Mixture and EM"
    assert len(at.latex) == 4  # the model, the bound and Q, the E-step, the M-step
    rid = dict(zip(store.runs()["label"], store.runs()["run_id"]))["mixture"]
    assert at.selectbox(key="teach_Mixture").value == f"#{rid} mixture s0"
    # the table: the run's -loss and -map_loss (pseudocount 0.1: MAP-EM) per epoch, EM iterations 1..4;
    # the MAP objective never decreases, and here the log-likelihood does not either
    table = at.dataframe[0].value
    history = store.history([rid], ["loss", "map_loss"]).pivot(index="epoch", columns="name", values="value")
    np.testing.assert_allclose(table["log_likelihood"], -history["loss"].to_numpy())
    np.testing.assert_allclose(table["map_objective"], -history["map_loss"].to_numpy())
    assert list(table["iteration"]) == [1, 2, 3, 4]
    for column in ("map_objective", "log_likelihood"):
        assert (np.diff(table[column]) >= 0).all() and table[column].iloc[-1] > table[column].iloc[0] + 0.5
    assert any("MAP objective (log-likelihood + log p(θ) / N) **never decreased**" in t
               for t in texts(at, "markdown"))
    # the components: K = 4 mean images, heaviest first, their pi from the report (summing to 1)
    path = store.artifacts(rid).set_index("name")["path"]["report_components"]
    report = pd.read_csv(path).groupby("component")["pi"].first()
    (means,) = [im for im in at.image if len(im.captions) == 4]
    shown_pi = [float(c.split("π=")[1]) for c in means.captions]
    assert shown_pi == sorted(shown_pi, reverse=True)
    assert shown_pi == pytest.approx(sorted(report, reverse=True), abs=1e-3)
    assert sum(shown_pi) == pytest.approx(1.0, abs=4e-3)
    shown_ids = [int(c.split(":")[0][2:]) for c in means.captions]
    assert sorted(shown_ids) == [0, 1, 2, 3]
    m = store.metrics([rid], split="test").set_index("name")["value"]
    assert {t.label: t.value for t in at.metric}["-log p(x), exact"] == f"{m['nll']:.4g}"


def test_a_falling_history_is_flagged_and_a_missing_report_named(tmp_path, monkeypatch):
    """A hand-made mixture run whose loss rose once (not full-batch EM) and that saved no report: the
    page warns with the size of the fall and names the missing artifact instead of the images."""
    from zoo.results import open_store

    db = tmp_path / "s.sqlite"
    s = open_store(str(db))
    rid = s.start_run(experiment="e", model="mixture", label="mixture", dataset="bars", seed=0,
                      config={"dataset": {"name": "bars"}}, run_key="hand-made-mixture", likelihood="exact")
    for epoch, loss in enumerate([9.0, 7.0, 7.5]):
        s.log_epoch(rid, epoch, {"loss": loss})
    s.log_metrics(rid, "test", [("nll", 7.4, "exact")])
    s.finish_run(rid, "FINISHED", wall_time=1.0)
    s.dispose()
    at = app(db, PAGE, monkeypatch)
    assert list(at.dataframe[0].value["log_likelihood"]) == [-9.0, -7.0, -7.5]
    assert any("log-likelihood fell by 0.5 nats" in t for t in texts(at, "warning"))
    assert not any("never decreased" in t for t in texts(at, "markdown"))
    assert "map_objective" not in at.dataframe[0].value  # pseudocount 0 (no map_loss): the log-likelihood
    assert any("component means" in t and "missing artifact" in t for t in texts(at, "markdown"))
