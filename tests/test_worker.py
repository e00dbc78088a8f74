"""Many workers, one store: claims, leases, Alembic upgrades and `python -m experiments worker`, each on
SQLite and on a real PostgreSQL server (the `postgres_server` fixture; skipped when not installed)."""
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from experiments.__main__ import main
from zoo import results
from zoo.results import open_store

ROOT = Path(__file__).resolve().parent.parent
MODEL = {"latent_dim": 2, "width": 16, "depth": 1, "jit_compile": False}
GRID = {"name": "grid_bars", "dataset": {"name": "bars", "n_train": 400, "n_valid": 100, "n_test": 100},
        "seeds": [0, 1, 2], "train": {"epochs": 2, "batch_size": 100, "verbose": 0},
        "eval": {"is_k": 0, "n_samples": 4, "metric_samples": 0},
        "models": [{"model": "vae", "hparams": MODEL},
                   {"model": "iwae", "label": "iwae_k3", "hparams": {**MODEL, "k": 3}}]}


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """An empty store URL: a SQLite file in tmp_path, or a fresh database on the test PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'r.sqlite'}"
    return request.getfixturevalue("postgres_db")


def _pending(key, **kw):
    return dict(experiment="exp", model="vae", label="vae", dataset="bars", seed=0, config={"k": key},
                run_key=key, out_dir="/shared/out/seed0-run{run_id}") | kw


def test_grid_is_entered_once_and_failed_runs_go_back_to_pending(db_url):
    a, b = open_store(db_url), open_store(db_url)
    ids = a.add_pending([_pending("k1"), _pending("k2", seed=1)])
    assert b.add_pending([_pending("k1"), _pending("k2", seed=1), _pending("k3")])[:2] == ids
    runs = a.runs().set_index("run_id")
    assert len(runs) == 3 and set(runs["status"]) == {"PENDING"} and (runs["attempts"] == 0).all()
    assert runs.loc[ids[0], "out_dir"] == f"/shared/out/seed0-run{ids[0]}"
    assert a.claim_run(["k1"]) == ids[0] and a.find_resumable("k1") == ids[0]
    a.resume_run(ids[0])  # what run_one does with the claimed run
    a.finish_run(ids[0], "FAILED", error="boom")
    b.finish_run(b.claim_run(["k2"]), "FINISHED")
    assert b.add_pending([_pending("k1"), _pending("k2", seed=1)]) == ids  # no new rows
    runs = a.runs().set_index("run_id")
    assert runs.loc[ids, "status"].tolist() == ["PENDING", "FINISHED"] and len(runs) == 3
    assert runs.loc[ids[0], "attempts"] == 1 and pd.isna(runs.loc[ids[0], "owner"])


def test_concurrent_claims_take_each_run_exactly_once(db_url):
    keys = [f"k{i}" for i in range(12)]
    open_store(db_url).add_pending([_pending(k) for k in keys])
    stores = [open_store(db_url) for _ in range(4)]
    claimed = {s.owner: [] for s in stores}
    start = threading.Barrier(len(stores))

    def claim_all(store):
        start.wait()
        while (rid := store.claim_run(keys)) is not None:
            claimed[store.owner].append(rid)

    threads = [threading.Thread(target=claim_all, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    every = sorted(rid for ids in claimed.values() for rid in ids)
    runs = stores[0].runs().set_index("run_id")
    assert every == sorted(runs.index) and len(every) == 12  # none twice, none left
    assert set(runs["status"]) == {"RUNNING"}
    for owner, ids in claimed.items():
        assert (runs.loc[ids, "owner"] == owner).all()


def test_a_lapsed_lease_is_claimed_by_another_and_only_the_owner_renews(db_url):
    a, b = open_store(db_url, lease=1.0), open_store(db_url, lease=60.0)
    [rid] = a.add_pending([_pending("k")])
    assert a.claim_run(["k"]) == rid and b.claim_run(["k"]) is None  # a's claim is live
    a.log_epoch(rid, 0, {"loss": 1.0})  # the heartbeat
    renewed = a.run(rid)["lease_expires"]
    time.sleep(1.2)
    assert b.claim_run(["k"]) == rid and a.run(rid)["owner"] == b.owner
    taken = a.run(rid)["lease_expires"]
    assert taken > renewed + pd.Timedelta(seconds=30)
    a.log_epoch(rid, 1, {"loss": 0.5})  # the old owner's late heartbeat does not take it back
    assert a.run(rid)["owner"] == b.owner and a.run(rid)["lease_expires"] == taken
    assert sorted(a.history(rid)["epoch"]) == [0, 1] and a.run(rid)["epochs_done"] == 2


ADDED_LATER = ("owner", "lease_expires", "host", "devices", "replicas", "dtype_policy", "versions")  # 0002-3
LEGACY = sa.MetaData()  # the schema stores had before Alembic, built as metadata.create_all built it
sa.Table("runs", LEGACY, *(sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable,
                                     index=c.index, autoincrement=c.autoincrement)
                           for c in results.runs_table.columns if c.name not in ADDED_LATER))
sa.Table("metrics", LEGACY, *(c.copy() for c in results.metrics_table.columns if c.name != "units"),  # 0004
         sa.UniqueConstraint("run_id", "split", "name"))
for _table in (results.history_table, results.artifacts_table):
    _table.to_metadata(LEGACY)


def test_a_store_made_before_alembic_is_upgraded_in_place(db_url):
    engine = sa.create_engine(db_url)
    LEGACY.create_all(engine)
    row = dict(experiment="e", model="vae", label="vae", dataset="bars", seed=0, status="FINISHED",
               run_key="old", config="{}", started_at=results._now(), attempts=1, epochs_done=2)
    with engine.begin() as conn:
        rid = conn.execute(LEGACY.tables["runs"].insert().values(**row)).inserted_primary_key[0]
        conn.execute(LEGACY.tables["history"].insert().values(run_id=rid, epoch=0, name="loss", value=1.5))
        conn.execute(LEGACY.tables["metrics"].insert().values(run_id=rid, split="test", name="nll",
                                                              value=9.0))
    engine.dispose()
    store = open_store(db_url)
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0004"
        columns = {c["name"] for c in sa.inspect(conn).get_columns("runs")}
        assert "units" in {c["name"] for c in sa.inspect(conn).get_columns("metrics")}
    assert set(ADDED_LATER) <= columns
    old = store.run(rid)
    assert (old["status"], old["run_key"], old["owner"]) == ("FINISHED", "old", None)
    assert store.history(rid)["value"].tolist() == [1.5] and store.metrics(rid)["value"].tolist() == [9.0]
    assert store.metrics(rid)["units"].tolist() == ["nats"]  # filled in from the name by 0004
    assert store.claim_run(["old"]) is None  # a finished run is never claimed
    open_store(db_url).dispose()  # at head: opening again changes nothing
    assert len(store.runs()) == 1


def test_the_dashboard_reads_either_store(db_url):
    from dashboard import data

    store = open_store(db_url)
    pending, done = store.add_pending([_pending("a"), _pending("b", seed=1)])
    assert store.claim_run(["b"]) == done
    store.log_metrics(done, "test", {"nll": 7.5}, kind="elbo")
    store.finish_run(done)
    ranked, apart = data.leaderboard(data.wide(db_url))
    assert ranked["run"].tolist() == [done] and ranked["nats"].tolist() == [7.5]
    assert apart["status"].tolist() == ["PENDING"]


def test_sqlite_store_is_in_wal_mode(tmp_path):
    store = open_store(tmp_path / "r.sqlite")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000


def _cli_error(capsys, *argv):
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    return err[0]


def test_bad_store_urls_are_one_clear_error(tmp_path, capsys, monkeypatch):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(GRID))
    line = _cli_error(capsys, "worker", str(cfg), "--db", "mangodb://host/db")
    assert "unknown database URL scheme 'mangodb'" in line and "postgresql+psycopg://" in line
    with __import__("socket").socket() as s:  # a free port: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    line = _cli_error(capsys, "worker", str(cfg), "--db", f"postgresql+psycopg://zoo:secret@127.0.0.1:{port}/x")
    assert "cannot open the store" in line and "start the database server" in line
    assert "secret" not in line and "***" in line
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if psycopg were not installed
    line = _cli_error(capsys, "run", str(cfg), "--db", "postgresql+psycopg://zoo@127.0.0.1/x")
    assert "driver for 'postgresql+psycopg' is not installed" in line
    assert "pip install 'psycopg[binary]'" in line
    line = _cli_error(capsys, "worker", str(cfg), "--lease", "0", "--db", str(tmp_path / "r.sqlite"))
    assert "--lease: '0'" in line and "seconds a claim lasts" in line


# the full matrix is slow (~50 s and ~20 s a test); by default each backend gets one end-to-end test
def _backends(default):
    return pytest.mark.parametrize("db_url", [b if b == default else pytest.param(b, marks=pytest.mark.slow)
                                              for b in ("sqlite", "postgresql")], indirect=True)


SQLITE_BY_DEFAULT, POSTGRES_BY_DEFAULT = _backends("sqlite"), _backends("postgresql")


def _worker(cfg, db, out, *extra):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen([sys.executable, "-m", "experiments", "worker", str(cfg), "--db", db, "--out",
                             str(out), *extra], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


@SQLITE_BY_DEFAULT
def test_three_workers_finish_a_six_run_grid_each_run_once(db_url, tmp_path):
    cfg = tmp_path / "grid.yaml"
    cfg.write_text(yaml.safe_dump(GRID))
    procs = [_worker(cfg, db_url, tmp_path / "out") for _ in range(3)]
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], "\n".join(o[-3000:] for o in outputs)
    store = open_store(db_url)
    runs = store.runs()
    assert len(runs) == 6 and runs["run_key"].is_unique and set(runs["status"]) == {"FINISHED"}
    assert (runs["attempts"] == 1).all() and (runs["epochs_done"] == 2).all()
    grid = sorted((m, s) for m in ("vae", "iwae_k3") for s in (0, 1, 2))
    assert sorted(zip(runs["label"], runs["seed"])) == grid
    hist = store.history()
    assert not hist.duplicated(["run_id", "epoch", "name"]).any()
    metrics = store.metrics()
    assert not metrics.duplicated(["run_id", "split", "name"]).any()
    for frame, by in ((hist, "epoch"), (metrics, "split")):
        labelled = frame.merge(runs[["run_id", "label"]])
        names = labelled.groupby(["label", by, "run_id"])["name"].apply(frozenset)
        for group in names.index.droplevel("run_id").unique():  # an entry's seeds: the same names, none lost
            assert names[group].nunique() == 1 and len(names[group]) == 3
    assert hist.query("name == 'loss'").groupby("run_id")["epoch"].apply(sorted).tolist() == [[0, 1]] * 6
    assert (metrics.query("split == 'test' and name == 'nll'").groupby("run_id").size() == 1).sum() == 6
    assert all(Path(p).exists() for p in store.artifacts().query("name == 'model'")["path"])


class _Epochs(__import__("keras").callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = []

    def on_epoch_begin(self, epoch, logs=None):
        self.seen.append(epoch)


@POSTGRES_BY_DEFAULT
def test_a_killed_workers_run_is_resumed_by_another_at_the_last_recorded_epoch(db_url, tmp_path):
    from experiments import config as cfgmod
    from experiments.worker import work

    raw = {**GRID, "seeds": [0], "models": GRID["models"][:1],
           "dataset": {**GRID["dataset"], "n_train": 3000},
           "train": {"epochs": 6, "batch_size": 20, "verbose": 0, "checkpoint_every": "epoch"}}
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump(raw))
    doomed = _worker(path, db_url, tmp_path / "out", "--lease", "4")
    store = open_store(db_url, lease=60)
    deadline = time.time() + 300
    while time.time() < deadline and doomed.poll() is None:
        runs = store.runs()
        if len(runs) and runs["epochs_done"].iloc[0] >= 2:
            break
        time.sleep(0.05)
    os.kill(doomed.pid, signal.SIGKILL)  # mid-epoch: the next epoch has just begun
    output = doomed.communicate()[0]
    [run] = store.runs().to_dict("records")
    assert doomed.returncode == -signal.SIGKILL, output[-3000:]
    assert run["status"] == "RUNNING" and 2 <= run["epochs_done"] < 6, output[-3000:]
    watch = _Epochs()
    ran = work(cfgmod.load(path), store, out=tmp_path / "out", extra_callbacks=[watch], poll=0.5)
    assert ran == [run["run_id"]]
    assert watch.seen == list(range(run["epochs_done"], 6))  # BackupAndRestore: after the last recorded epoch
    after = store.run(run["run_id"])
    assert (after["status"], after["attempts"], after["owner"]) == ("FINISHED", 2, store.owner)
    hist = store.history(run["run_id"])
    assert sorted(hist["epoch"].unique()) == list(range(6)) and not hist.duplicated(["epoch", "name"]).any()
