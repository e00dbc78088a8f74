"""Tests for the results store (zoo/results/): SQLite files in tmp_path, no TensorFlow."""
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from zoo import results
from zoo.results import open_store

RUN_COLUMNS = ["run_id", "experiment", "model", "label", "dataset", "seed", "status", "likelihood", "config",
               "started_at", "ended_at", "wall_time", "param_count", "code_version", "out_dir", "error",
               "attempts", "epochs_done"]


@pytest.fixture
def store(tmp_path):
    s = open_store(f"sqlite:///{tmp_path / 'sub' / 'results.sqlite'}")  # parent dir is created
    yield s
    s.dispose()


def start(store, key="k", **kw):
    args = dict(experiment="exp", model="vae", label="iwae_k5", dataset="mnist", seed=0,
                config={"lr": 1e-3, "k": 5}, run_key=key)
    return store.start_run(**(args | kw))


def test_round_trip(store):
    rid = start(store, likelihood="iwae", code_version="abc123", out_dir="/tmp/run", param_count=np.int64(42))
    store.log_epoch(rid, 0, {"loss": 2.0, "val_loss": np.float32(2.5)})
    store.log_epoch(rid, 1, {"loss": 1.5, "val_loss": 2.25})
    store.log_metrics(rid, "test", {"log_prob": -80.5, "bits_per_dim": 0.148}, kind="iwae")
    store.log_metrics(rid, "valid", [("log_prob", -81.0, "elbo"), ("fid", 12.5, None)])
    store.log_artifact(rid, "samples_png", Path("/tmp/run/samples.png"))
    store.finish_run(rid, wall_time=12.5)

    runs = store.runs()
    assert set(RUN_COLUMNS) <= set(runs.columns)
    r = runs.iloc[0]
    assert (r.run_id, r.model, r.label, r.dataset, r.seed) == (rid, "vae", "iwae_k5", "mnist", 0)
    assert r.status == "FINISHED" and r.experiment == "exp"
    assert json.loads(r.config) == {"lr": 1e-3, "k": 5}
    assert (r.likelihood, r.code_version, r.out_dir, r.param_count) == ("iwae", "abc123", "/tmp/run", 42)
    assert (r.wall_time, r.attempts, r.epochs_done) == (12.5, 1, 2)
    assert str(runs.started_at.dt.tz) == "UTC" and r.ended_at >= r.started_at
    assert abs(r.started_at - pd.Timestamp.now(tz="UTC")) < pd.Timedelta(minutes=1)
    assert runs.run_id.dtype == np.int64 and runs.wall_time.dtype == np.float64

    m = store.metrics(split="test")
    assert m.to_dict("records") == [
        dict(run_id=rid, split="test", name="bits_per_dim", value=0.148, kind="iwae", units="bits/dim"),
        dict(run_id=rid, split="test", name="log_prob", value=-80.5, kind="iwae", units="nats")]
    v = store.metrics(run_ids=[rid], split="valid").set_index("name")
    assert v.loc["log_prob", "kind"] == "elbo" and v.loc["fid", "value"] == 12.5
    assert pd.isna(v.loc["fid", "kind"])
    assert len(store.metrics()) == 4 and store.metrics().value.dtype == np.float64

    h = store.history(run_ids=rid)
    assert list(h.columns) == ["run_id", "epoch", "name", "value"]
    assert list(zip(h.epoch, h.name, h.value)) == [(0, "loss", 2.0), (0, "val_loss", 2.5), (1, "loss", 1.5),
                                                   (1, "val_loss", 2.25)]
    assert h.epoch.dtype == np.int64
    arts = store.artifacts().to_dict("records")
    assert arts == [dict(run_id=rid, name="samples_png", path="/tmp/run/samples.png")]
    one = store.run(rid)
    assert one["status"] == "FINISHED" and one["started_at"].tzinfo is not None and one["error"] is None


def test_upserts_replace(store):
    rid = start(store)
    store.log_metrics(rid, "test", {"nll": 90.0}, kind="elbo")
    store.log_metrics(rid, "test", {"nll": 85.0}, kind="iwae")
    store.log_metrics(rid, "valid", {"nll": 70.0})  # other split: a separate row
    store.log_epoch(rid, 3, {"loss": 5.0, "rate": 1.0})
    store.log_epoch(rid, 3, {"loss": 4.0})  # a resumed run re-runs epoch 3
    store.log_epoch(rid, 1, {"loss": 9.0})  # an earlier epoch never lowers epochs_done
    store.log_artifact(rid, "weights", "a.keras")
    store.log_artifact(rid, "weights", "b.keras")
    m = store.metrics(split="test")
    assert list(zip(m.value, m.kind)) == [(85.0, "iwae")] and len(store.metrics()) == 2
    h = store.history().set_index(["epoch", "name"]).value
    assert h.to_dict() == {(1, "loss"): 9.0, (3, "loss"): 4.0, (3, "rate"): 1.0}
    assert store.artifacts().path.tolist() == ["b.keras"]
    assert store.run(rid)["epochs_done"] == 4


def test_resume_semantics(store):
    assert store.find_resumable("k") is None
    old = start(store)
    store.log_epoch(old, 0, {"loss": 1.0})
    store.finish_run(old, "FAILED", error="boom")
    newer = start(store)  # the latest failed/running run with the key wins
    store.finish_run(newer, "FAILED", error="x" * 50_000)
    assert len(store.run(newer)["error"]) < 21_000 and store.run(newer)["error"].endswith("x")
    assert store.find_resumable("k") == newer
    store.resume_run(old)
    row = store.run(old)
    assert (row["status"], row["attempts"], row["error"], row["epochs_done"]) == ("RUNNING", 2, None, 1)
    assert store.history(run_ids=[old]).value.tolist() == [1.0]  # history kept
    store.resume_run(old)
    assert store.run(old)["attempts"] == 3
    assert store.find_resumable("k") == newer
    for status in ("FINISHED", "DIVERGED"):
        rid = start(store, key=status)
        store.finish_run(rid, status)
        assert store.find_resumable(status) is None
    running = start(store, key="running")
    assert store.find_resumable("running") == running
    assert store.find_resumable("other") is None
    with pytest.raises(KeyError, match="999"):
        store.resume_run(999)


def test_finish_run_validation_and_wall_time(store):
    rid = start(store)
    for bad in ("RUNNING", "finished", "DONE"):
        with pytest.raises(ValueError, match="FINISHED"):
            store.finish_run(rid, bad)
    assert store.run(rid)["status"] == "RUNNING" and store.run(rid)["ended_at"] is None
    store.finish_run(rid, "DIVERGED")
    row = store.run(rid)
    assert row["status"] == "DIVERGED" and 0 <= row["wall_time"] < 60
    assert row["ended_at"] >= row["started_at"]


def test_nan_round_trip(store):
    rid = start(store)
    store.log_metrics(rid, "test", {"nll": float("nan"), "fid": np.float32(np.nan), "ok": 1.0}, kind="elbo")
    store.log_epoch(rid, 0, {"loss": np.nan})
    m = store.metrics().set_index("name")
    assert math.isnan(m.loc["nll", "value"]) and math.isnan(m.loc["fid", "value"])
    assert m.loc["ok", "value"] == 1.0
    assert m.loc["nll", "kind"] == "elbo"
    assert math.isnan(store.history().value.iloc[0])
    assert results._num(np.float32("nan")) is None  # NULL on every backend (PostgreSQL would keep NaN)


def test_update_run(store):
    rid = start(store)
    store.update_run(rid, param_count=np.int64(1234), likelihood="elbo", out_dir="/x", epochs_done=7)
    row = store.run(rid)
    assert (row["param_count"], row["likelihood"]) == (1234, "elbo")
    assert (row["out_dir"], row["epochs_done"]) == ("/x", 7)
    with pytest.raises(ValueError, match=r"nonsense.*param_count"):
        store.update_run(rid, nonsense=1)
    with pytest.raises(ValueError, match="status"):
        store.update_run(rid, status="WEIRD")
    with pytest.raises(KeyError, match="no run with run_id=12345"):
        store.run(12345)
    with pytest.raises(KeyError):
        store.update_run(12345, param_count=1)


def test_persistence_across_stores(tmp_path):
    path = tmp_path / "r.sqlite"
    a = open_store(f"sqlite:///{path}")
    rid = start(a)
    store_b = open_store(str(path))  # a second handle on the same file, while the first is open
    store_b.log_metrics(rid, "test", {"nll": 80.0})
    assert a.metrics().value.tolist() == [80.0]
    a.dispose(), store_b.dispose()
    c = open_store(f"sqlite:///{path}")
    assert c.runs().run_id.tolist() == [rid] and c.metrics().name.tolist() == ["nll"]
    c.dispose()


def test_url_resolution(tmp_path, monkeypatch):
    env_db = tmp_path / "env" / "from_env.sqlite"
    monkeypatch.setenv("ZOO_DB", f"sqlite:///{env_db}")
    s = open_store()
    assert s.url == f"sqlite:///{env_db}" and env_db.exists()
    s.dispose()
    monkeypatch.setenv("ZOO_DB", str(tmp_path / "bare_env.sqlite"))  # a bare path in the env var
    s = open_store()
    assert s.url.startswith("sqlite:///") and (tmp_path / "bare_env.sqlite").exists()
    s.dispose()
    monkeypatch.chdir(tmp_path)
    s = open_store("rel/dir/bare.sqlite")  # relative bare path, parent created
    assert s.url == f"sqlite:///{tmp_path.resolve() / 'rel/dir/bare.sqlite'}"
    assert (tmp_path / "rel/dir/bare.sqlite").exists()
    s.dispose()
    monkeypatch.delenv("ZOO_DB")
    repo = Path(results.__file__).resolve().parents[2]
    assert results.DEFAULT_DB == repo / "experiments" / "results.sqlite"  # not opened: keep the repo clean


def test_empty_store_frames(store):
    assert list(store.runs().columns)[:1] == ["run_id"] and set(RUN_COLUMNS) <= set(store.runs().columns)
    for frame, cols in [(store.metrics(), ["run_id", "split", "name", "value", "kind", "units"]),
                        (store.history(), ["run_id", "epoch", "name", "value"]),
                        (store.artifacts(), ["run_id", "name", "path"])]:
        assert frame.empty and list(frame.columns) == cols
        assert frame.run_id.dtype == np.int64
    assert store.metrics().value.dtype == np.float64
    wide = store.wide_metrics()
    assert wide.empty and set(RUN_COLUMNS) <= set(wide.columns)
    assert store.runs(status="FINISHED").empty


def test_wide_metrics_and_filters(store):
    a = start(store, dataset="mnist")
    b = start(store, dataset="cifar10", label="vae")
    c = start(store, dataset="mnist", label="nometrics")
    store.log_metrics(a, "test", {"nll": 80.0, "bpd": 0.15}, kind="elbo")
    store.log_metrics(b, "test", {"nll": 2000.0})
    store.log_metrics(b, "valid", {"nll": 1.0, "valonly": 3.0})
    store.finish_run(a)
    wide = store.wide_metrics().set_index("run_id")
    assert len(wide) == 3 and {"nll", "bpd", "label", "status"} <= set(wide.columns)
    assert "valonly" not in wide.columns
    assert wide.loc[a, "nll"] == 80.0 and wide.loc[b, "nll"] == 2000.0 and math.isnan(wide.loc[b, "bpd"])
    assert math.isnan(wide.loc[c, "nll"]) and wide.loc[c, "label"] == "nometrics"
    assert store.wide_metrics("valid").set_index("run_id").loc[b, "valonly"] == 3.0
    assert store.runs(dataset="mnist").run_id.tolist() == [a, c]
    assert store.runs(status=["FINISHED"]).run_id.tolist() == [a]
    assert store.runs(experiment="nope").empty
    assert store.metrics(run_ids=np.array([b]), split="test").value.tolist() == [2000.0]


def test_no_tensorflow_import():
    code = "import sys, zoo.results; sys.exit(int(any(m in sys.modules for m in ('tensorflow', 'keras'))))"
    root = Path(results.__file__).resolve().parents[2]
    assert subprocess.run([sys.executable, "-c", code], cwd=root).returncode == 0


# --- stores from earlier releases -------------------------------------------------------------------
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _old_store(tmp_path) -> Path:
    """A copy of tests/fixtures/store_0003.sqlite: written by the zoo at revision 0003 (a real run of
    tests/fixtures/make_store.py), never regenerated."""
    import shutil

    return Path(shutil.copy(FIXTURES / "store_0003.sqlite", tmp_path / "old.sqlite"))


def _assert_nothing_lost(store):
    expected = json.loads((FIXTURES / "store_0003.json").read_text())
    assert store.runs()[["run_id", "label", "status"]].values.tolist() == expected["runs"]
    assert len(store.history()) == expected["history_rows"] > 30
    assert len(store.artifacts()) == expected["artifact_rows"] > 10
    got = store.metrics()[["run_id", "split", "name", "value"]].values.tolist()
    assert len(got) == len(expected["metrics"]) > 20
    for row, want in zip(got, expected["metrics"]):
        assert row[:3] == want[:3] and (row[3] == pytest.approx(want[3]) or math.isnan(row[3]))


def test_a_store_from_an_earlier_release_opens_upgraded_with_nothing_lost(tmp_path):
    """The release-0003 store opens with today's code: upgraded in place to the head revision, every
    run, epoch, metric and artifact kept, and the dashboard ranks its runs."""
    import sqlalchemy as sa
    from alembic.script import ScriptDirectory

    from dashboard import data

    db = _old_store(tmp_path)
    store = open_store(db)
    head = ScriptDirectory.from_config(results.alembic_config()).get_current_head()
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == head
    _assert_nothing_lost(store)
    ranked, apart = data.leaderboard(data.wide(str(db)))
    assert ranked["model"].tolist() == ["pixelcnn", "vae"] and apart["status"].tolist() == ["FAILED"]


def test_units_are_recorded_with_each_metric_and_filled_in_for_an_old_store(tmp_path):
    """Revision 0004 adds metrics.units: an old store's rows get theirs from their names, new rows
    theirs as they are logged (zoo.vocabulary.metric_units)."""
    from zoo.vocabulary import metric_units

    store = open_store(_old_store(tmp_path))
    m = store.metrics()
    units = dict(zip(m["name"], m["units"]))
    assert units["nll"] == "nats" and units["bits_per_dim"] == "bits/dim"
    assert all(u == metric_units(n) for n, u in units.items())
    rid = int(m["run_id"].iloc[0])
    store.log_metrics(rid, "test", [("m1_error_n100", 0.25, "classifier"), ("is_nll", 90.0, "iwae"),
                                    ("samples_per_sec_ddim", 5.0, None), ("something_new", 1.0, None)])
    new = store.metrics([rid], split="test").set_index("name")["units"]
    assert new["m1_error_n100"] == "fraction" and new["is_nll"] == "nats"
    assert new["samples_per_sec_ddim"] == "per second" and pd.isna(new["something_new"])


LATER = '''"""A later schema change, for the test: runs.note and an index on metrics.name.

Revision ID: 9001
Revises: {head}
"""
import sqlalchemy as sa
from alembic import op

revision = "9001"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("note", sa.String, server_default="kept"))
    op.create_index("ix_metrics_name", "metrics", ["name"])


def downgrade() -> None:
    op.drop_index("ix_metrics_name", "metrics")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("note")
'''


def test_a_later_schema_change_upgrades_the_old_store_in_place(tmp_path, monkeypatch):
    """A revision added after today (a column with a default, an index), in a copy of the migrations:
    the release-0003 store opens at it, with the new column filled in and nothing lost."""
    import shutil

    import sqlalchemy as sa
    from alembic.script import ScriptDirectory

    from zoo.results import engine

    migrations = Path(shutil.copytree(engine.MIGRATIONS, tmp_path / "migrations"))
    head = ScriptDirectory.from_config(results.alembic_config()).get_current_head()
    (migrations / "versions" / "9001_later.py").write_text(LATER.format(head=head))
    monkeypatch.setattr(engine, "MIGRATIONS", migrations)
    store = open_store(_old_store(tmp_path))
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "9001"
        notes = conn.execute(sa.text("SELECT note FROM runs")).scalars().all()
        indexes = {ix["name"] for ix in sa.inspect(conn).get_indexes("metrics")}
    assert notes == ["kept"] * 3 and "ix_metrics_name" in indexes
    _assert_nothing_lost(store)
