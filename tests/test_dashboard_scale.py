"""The dashboard on a store of many runs (experiments/dashboard_scale.py's builder, 300 runs x 20 epochs x
10 curves here; the benchmark times 5,000 x 100 x 10): every page draws, and each reads only what it
shows, filtered in SQL -- never the whole history, metrics or artifacts table. Not timed: the reads are
counted (rows each `Store` reader returns) and their queries checked for a WHERE clause. Also: the
store's filtered readers give what filtering the whole tables in pandas would, and `log_epochs` what
`log_epoch` epoch by epoch would."""
import sys

import pandas as pd
import pytest

from experiments import dashboard_scale as scale
from zoo.results import open_store

RUNS, EPOCHS, CURVES = 300, 20, 10


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("scale") / "store.sqlite"
    scale.build(path, RUNS, EPOCHS, CURVES, log=lambda *_: None)
    return path


@pytest.fixture(scope="module")
def tables(store):
    return scale.counts(store)


def test_the_builder_makes_the_mix_the_pages_need(store, tables, db):
    runs = store.runs()
    assert tables["runs"] == RUNS
    assert tables["history"] == sum(p.epochs for p in scale.plan(RUNS, EPOCHS)) * CURVES
    assert {"FINISHED", "FAILED", "DIVERGED", "RUNNING"} == set(runs["status"])
    assert set(runs["model"]) == {"vae", "iwae", "pixelcnn", "flow", "diffusion", "gan"}
    kinds = runs.groupby("model")["likelihood"].agg(set).to_dict()
    assert kinds == {"vae": {"elbo"}, "iwae": {"iwae"}, "pixelcnn": {"exact"}, "flow": {"elbo"},
                     "diffusion": {"vlb"}, "gan": {"ais", "none"}}
    assert runs["experiment"].nunique() > 1 and runs["dataset"].nunique() > 1
    assert scale.build(db, RUNS, EPOCHS, CURVES, log=lambda *_: None)["built"] is False  # reused


@pytest.fixture(scope="module")
def renders(db):
    """page -> (AppTest, the reads of its first render with the data cache cleared, the queries)."""
    from zoo.results.store import Store

    tf_before = "tensorflow" in sys.modules
    out, frame = {}, Store._frame
    for page in scale.PAGES:
        queries = []

        def spy(self, query, _queries=queries):
            _queries.append(query)
            return frame(self, query)

        Store._frame = spy
        try:
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("ZOO_DB", str(db))
                at, _, reads, _, _ = scale.render(db, page, timeout=120)
        finally:
            Store._frame = frame
        out[page] = at, reads, queries
    assert tf_before or "tensorflow" not in sys.modules  # no page imported TensorFlow to draw
    return out


@pytest.mark.parametrize("page", scale.PAGES)
def test_every_page_draws_and_reads_a_small_part_of_the_store(renders, tables, page):
    at, reads, queries = renders[page]
    assert not at.exception, [e.value for e in at.exception]
    assert at.title or at.markdown
    by = scale.rows_by_table(reads)
    assert by.get("history", 0) <= 0.05 * tables["history"], by  # the picked runs' curves only
    assert by.get("artifacts", 0) <= 0.10 * tables["artifacts"], by  # the shown runs' rows only
    share = 0.25 if page == "leaderboard" else 0.08  # the leaderboard: the dataset's runs' metrics
    assert by.get("metrics", 0) <= share * tables["metrics"], by
    assert by.get("runs", 0) <= 0.5 * tables["runs"] + 50, by  # one dataset's runs (+ the sidebar's counts)
    for query in queries:  # filtered in SQL: a WHERE on every read of metrics, history and artifacts
        froms = {f.name for f in query.get_final_froms()}
        if froms & {"metrics", "history", "artifacts"}:
            assert query.whereclause is not None, (page, str(query))


def test_the_sidebar_narrows_every_page_to_an_experiment(db, store, monkeypatch):
    monkeypatch.setenv("ZOO_DB", str(db))
    at, _, reads, _, _ = scale.render(db, "leaderboard", timeout=120)
    everything = scale.rows_by_table(reads)
    experiments = at.selectbox(key="experiment")
    assert experiments.value == "All experiments"
    dataset = at.selectbox(key="dataset").value
    runs = store.runs(dataset=dataset)
    assert set(experiments.options[1:]) == set(runs["experiment"]) and len(experiments.options) > 2
    one = experiments.options[1]
    with scale.count_reads() as reads:
        experiments.set_value(one).run()
    assert not at.exception, [e.value for e in at.exception]
    ranked = at.dataframe[0].value
    assert set(ranked["experiment"]) == {one}
    mine = runs[runs["experiment"] == one]
    assert set(ranked["run"]) == set(mine.loc[(mine["status"] == "FINISHED") & (mine["likelihood"] != "none"),
                                              "run_id"])
    assert 0 < scale.rows_by_table(reads)["metrics"] < everything["metrics"]  # read for that experiment only
    n = (mine["status"] == "FINISHED").sum()
    assert any(f"{n:,} finished" in str(c.value) for c in at.sidebar.caption)  # the sidebar's counts too


def test_long_lists_are_capped_with_a_note(db, monkeypatch):
    """A picker lists at most PICK_MAX runs (the latest), and says so; anatomy draws the best SHOWN runs
    of each family and says how many there are."""
    from dashboard import ui

    monkeypatch.setenv("ZOO_DB", str(db))
    monkeypatch.setattr(ui, "PICK_MAX", 12)
    at, *_ = scale.render(db, "samples", timeout=120)
    picker = at.multiselect(key="samples_runs")
    assert len(picker.options) == 12 and len(picker.value) == 6
    assert any("Showing the latest 12 of" in str(c.value) for c in at.caption)
    ids = [int(o.split()[0][1:]) for o in picker.options]
    assert ids == sorted(ids)  # the latest twelve, in run order
    at, *_ = scale.render(db, "anatomy", timeout=120)
    notes = [str(c.value) for c in at.caption if "Showing the best" in str(c.value)]
    assert any("VAE runs" in n for n in notes), notes


# --- the store's filtered readers ---------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request, store, tmp_path):
    """The module's SQLite store, or a PostgreSQL one written by the same builder (fewer runs)."""
    if request.param == "sqlite":
        yield store
        return
    s = open_store(request.getfixturevalue("postgres_db"))
    scale.write(s, scale.plan(40, 3), 3, 4, tmp_path / "runs", log=lambda *_: None)
    yield s
    s.dispose()


def test_filtered_reads_equal_filtering_the_whole_tables(any_store):
    store = any_store
    runs = store.runs()
    dataset, experiment = runs["dataset"].iloc[0], runs["experiment"].iloc[0]
    ids = runs.loc[(runs["dataset"] == dataset) & (runs["experiment"] == experiment), "run_id"]
    counted = store.count_runs(("dataset", "experiment", "status"))
    expected = runs.groupby(["dataset", "experiment", "status"]).size().rename("runs").reset_index()
    pd.testing.assert_frame_equal(counted, expected, check_dtype=False)
    assert store.runs(dataset=dataset, columns=["label"]).columns.tolist() == ["run_id", "label"]
    with pytest.raises(ValueError, match="unknown run column"):
        store.runs(columns=["nope"])

    def same(got, whole, keep):
        pd.testing.assert_frame_equal(got.reset_index(drop=True), whole[keep].reset_index(drop=True))

    m = store.metrics()
    same(store.metrics(split="test", names=["nll", "rate"], dataset=dataset, experiment=experiment), m,
         m["run_id"].isin(ids) & (m["split"] == "test") & m["name"].isin(["nll", "rate"]))
    h, picked = store.history(), list(ids[:3])
    same(store.history(picked, names=["loss", "val_loss"]), h,
         h["run_id"].isin(picked) & h["name"].isin(["loss", "val_loss"]))
    a = store.artifacts()
    fin = runs.loc[runs["run_id"].isin(ids) & (runs["status"] == "FINISHED"), "run_id"]
    same(store.artifacts(names=["model"], dataset=dataset, experiment=experiment, status="FINISHED"), a,
         a["run_id"].isin(fin) & (a["name"] == "model"))
    wide = store.wide_metrics(names=["nll"], dataset=dataset, experiment=experiment)
    assert wide["run_id"].tolist() == ids.tolist() and "rate" not in wide
    full = store.wide_metrics().set_index("run_id").loc[ids, "nll"]
    assert wide.set_index("run_id")["nll"].equals(full)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_log_epochs_is_log_epoch_epoch_by_epoch(tmp_path, backend, request):
    url = str(tmp_path / "s.sqlite") if backend == "sqlite" else request.getfixturevalue("postgres_db")
    s = open_store(url)
    epochs = {e: {"loss": 3.0 - e, "val_loss": float("nan") if e == 2 else 3.5 - e} for e in range(4)}
    again = {1: {"loss": 9.0}, 5: {"loss": 0.5}}  # re-recorded epoch 1 (only loss), and a later one
    one, many = (s.start_run(experiment="e", model="vae", label="vae", dataset="bars", seed=0, config={},
                             run_key=key) for key in ("one", "many"))
    for batch in (epochs, again):
        for e, values in batch.items():
            s.log_epoch(one, e, values)
        s.log_epochs(many, batch)
    h1, h2 = (s.history([rid]).drop(columns="run_id") for rid in (one, many))
    pd.testing.assert_frame_equal(h1, h2)
    assert h2.set_index(["epoch", "name"]).loc[(1, "loss"), "value"] == 9.0 and len(h2) == 9
    assert s.run(one)["epochs_done"] == s.run(many)["epochs_done"] == 6
    assert s.run(many)["lease_expires"] is not None
    s.dispose()
