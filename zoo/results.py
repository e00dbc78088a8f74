"""The results store: the only reader/writer of runs, metrics, per-epoch history and artifacts.

SQLite by default (`experiments/results.sqlite`), any SQLAlchemy URL otherwise. Every write is its
own transaction, so whatever was recorded survives a later crash. Readers return pandas frames.
Typical use: `open_store()` -> `start_run` / `find_resumable` + `resume_run` -> `log_epoch`,
`log_metrics`, `log_artifact` -> `finish_run`. No TensorFlow here: the dashboard imports this.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

STATUSES = ("RUNNING", "FINISHED", "FAILED", "DIVERGED")
FINAL_STATUSES = ("FINISHED", "FAILED", "DIVERGED")
RESUMABLE_STATUSES = ("RUNNING", "FAILED")
MAX_ERROR_CHARS = 20_000
DEFAULT_DB = Path(__file__).resolve().parent.parent / "experiments" / "results.sqlite"

metadata = sa.MetaData()
C = sa.Column
runs_table = sa.Table(
    "runs", metadata,
    C("run_id", sa.Integer, primary_key=True, autoincrement=True),
    C("experiment", sa.String, nullable=False), C("model", sa.String, nullable=False),
    C("label", sa.String, nullable=False), C("dataset", sa.String, nullable=False),
    C("seed", sa.Integer, nullable=False), C("status", sa.String, nullable=False),
    C("run_key", sa.String, nullable=False, index=True), C("config", sa.Text, nullable=False),
    C("likelihood", sa.String), C("started_at", sa.DateTime, nullable=False), C("ended_at", sa.DateTime),
    C("wall_time", sa.Float), C("param_count", sa.Integer), C("code_version", sa.String),
    C("out_dir", sa.String), C("error", sa.Text), C("attempts", sa.Integer, nullable=False, default=1),
    C("epochs_done", sa.Integer, nullable=False, default=0),
)


def _run_fk() -> sa.Column:
    return C("run_id", sa.Integer, sa.ForeignKey("runs.run_id"), nullable=False)


metrics_table = sa.Table(
    "metrics", metadata, C("id", sa.Integer, primary_key=True), _run_fk(),
    C("split", sa.String, nullable=False), C("name", sa.String, nullable=False),
    C("value", sa.Float), C("kind", sa.String), sa.UniqueConstraint("run_id", "split", "name"),
)
history_table = sa.Table(
    "history", metadata, C("id", sa.Integer, primary_key=True), _run_fk(),
    C("epoch", sa.Integer, nullable=False), C("name", sa.String, nullable=False), C("value", sa.Float),
    sa.UniqueConstraint("run_id", "epoch", "name"),
)
artifacts_table = sa.Table(
    "artifacts", metadata, C("id", sa.Integer, primary_key=True), _run_fk(),
    C("name", sa.String, nullable=False), C("path", sa.String, nullable=False),
    sa.UniqueConstraint("run_id", "name"),
)
RUN_FIELDS = tuple(c.name for c in runs_table.columns if c.name != "run_id")


def _now() -> dt.datetime:
    """Naive UTC (stored as such on every backend; readers hand it back tz-aware)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def _num(v) -> float | None:
    """A float for the database; NaN becomes NULL (read back as NaN)."""
    v = float(v)
    return None if math.isnan(v) else v


def _plain(v):
    """numpy scalars -> Python scalars (the sqlite3 driver cannot bind numpy types)."""
    return v.item() if hasattr(v, "item") else v


def _match(col, v):
    """`col == v`, or `col IN v` for any non-string iterable (list, array, Series)."""
    if isinstance(v, Iterable) and not isinstance(v, str):
        return col.in_([_plain(x) for x in v])
    return col == _plain(v)


class Store:
    """A results database. Build with `open_store`; `url` is the resolved SQLAlchemy URL."""

    def __init__(self, url: str):
        self.url = url
        u = sa.make_url(url)
        kwargs = {}
        if u.get_backend_name() == "sqlite":
            kwargs["connect_args"] = {"timeout": 30}  # busy timeout: several processes share one file
            if u.database and u.database != ":memory:" and not u.database.startswith("file:"):
                Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        self.engine = sa.create_engine(u, **kwargs)
        try:
            metadata.create_all(self.engine)
        except sa.exc.OperationalError:  # another process created the tables in between
            metadata.create_all(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    # writers: one transaction each
    def start_run(self, *, experiment: str, model: str, label: str, dataset: str, seed: int,
                  config: dict, run_key: str, likelihood: str | None = None,
                  code_version: str | None = None, out_dir: str | None = None,
                  param_count: int | None = None) -> int:
        """Insert a RUNNING run and return its run_id."""
        row = dict(experiment=experiment, model=model, label=label, dataset=dataset, seed=int(seed),
                   status="RUNNING", run_key=run_key, config=json.dumps(config, sort_keys=True, default=str),
                   likelihood=likelihood, started_at=_now(), code_version=code_version,
                   out_dir=None if out_dir is None else str(out_dir),
                   param_count=None if param_count is None else int(param_count), attempts=1, epochs_done=0)
        with self.engine.begin() as conn:
            return conn.execute(runs_table.insert().values(**row)).inserted_primary_key[0]

    def find_resumable(self, run_key: str) -> int | None:
        """The latest run with `run_key` that is RUNNING or FAILED, else None."""
        r = runs_table.c
        q = (sa.select(r.run_id).where(r.run_key == run_key, r.status.in_(RESUMABLE_STATUSES))
             .order_by(r.run_id.desc()).limit(1))
        with self.engine.connect() as conn:
            return conn.execute(q).scalar()

    def resume_run(self, run_id: int) -> None:
        """Back to RUNNING, attempts + 1, error cleared; recorded history/metrics are kept."""
        self._update(run_id, status="RUNNING", attempts=runs_table.c.attempts + 1, error=None, ended_at=None)

    def update_run(self, run_id: int, **fields) -> None:
        """Set any `runs` columns, e.g. `update_run(rid, param_count=123, likelihood="elbo")`."""
        fields = {k: _plain(v) for k, v in fields.items()}
        unknown = sorted(set(fields) - set(RUN_FIELDS))
        if unknown:
            raise ValueError(f"unknown run field(s) {unknown}; valid fields: {', '.join(RUN_FIELDS)}")
        if "status" in fields and fields["status"] not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {fields['status']!r}")
        if isinstance(fields.get("config"), dict):
            fields["config"] = json.dumps(fields["config"], sort_keys=True, default=str)
        if fields:
            self._update(run_id, **fields)

    def log_epoch(self, run_id: int, epoch: int, values: dict[str, float]) -> None:
        """Record (or re-record) one epoch's values; raises runs.epochs_done to at least epoch + 1."""
        h, r, epoch = history_table.c, runs_table.c, int(epoch)
        with self.engine.begin() as conn:
            conn.execute(history_table.delete().where(
                h.run_id == int(run_id), h.epoch == epoch, h.name.in_(list(values))))
            if values:
                conn.execute(history_table.insert(), [
                    dict(run_id=int(run_id), epoch=epoch, name=k, value=_num(v)) for k, v in values.items()])
            conn.execute(runs_table.update().where(r.run_id == int(run_id), r.epochs_done < epoch + 1)
                         .values(epochs_done=epoch + 1))

    def log_metrics(self, run_id: int, split: str,
                    metrics: dict[str, float] | list[tuple[str, float, str | None]],
                    kind: str | None = None) -> None:
        """Upsert final metrics: a dict (all of kind `kind`) or (name, value, kind) tuples."""
        items = [(k, v, kind) for k, v in metrics.items()] if isinstance(metrics, dict) else list(metrics)
        if not items:
            return
        names = [n for n, _, _ in items]
        if len(set(names)) < len(names):
            raise ValueError(f"log_metrics: metric names repeat in one call: "
                             f"{sorted({n for n in names if names.count(n) > 1})}; "
                             f"give each metric its own name")
        m = metrics_table.c
        with self.engine.begin() as conn:
            conn.execute(metrics_table.delete().where(
                m.run_id == int(run_id), m.split == split, m.name.in_([n for n, _, _ in items])))
            conn.execute(metrics_table.insert(), [
                dict(run_id=int(run_id), split=split, name=n, value=_num(v), kind=k) for n, v, k in items])

    def log_artifact(self, run_id: int, name: str, path: str | os.PathLike) -> None:
        """Record (or replace) the path of a named artifact."""
        a = artifacts_table.c
        with self.engine.begin() as conn:
            conn.execute(artifacts_table.delete().where(a.run_id == int(run_id), a.name == name))
            conn.execute(artifacts_table.insert().values(run_id=int(run_id), name=name, path=str(path)))

    def finish_run(self, run_id: int, status: str = "FINISHED", error: str | None = None,
                   wall_time: float | None = None) -> None:
        """Close a run as FINISHED / FAILED / DIVERGED; wall_time defaults to now - started_at."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"finish status must be one of {FINAL_STATUSES}, got {status!r}")
        ended = _now()
        if wall_time is None:
            wall_time = (ended - self.run(run_id)["started_at"].replace(tzinfo=None)).total_seconds()
        if error is not None and len(error) > MAX_ERROR_CHARS:
            error = "...[truncated]\n" + error[-MAX_ERROR_CHARS:]  # keep the end of a traceback
        self._update(run_id, status=status, error=error, ended_at=ended, wall_time=float(wall_time))

    def _update(self, run_id: int, **values) -> None:
        with self.engine.begin() as conn:
            res = conn.execute(runs_table.update().where(runs_table.c.run_id == int(run_id)).values(**values))
        if res.rowcount == 0:
            raise KeyError(f"no run with run_id={run_id} in {self.url}")

    # readers: pandas frames, typed even when empty
    def _frame(self, query: sa.Select) -> pd.DataFrame:
        """Read `query` with dtypes taken from its column types (so empty frames are typed too)."""
        dtype, dates = {}, {}
        for c in query.selected_columns:
            if isinstance(c.type, sa.DateTime):
                dates[c.name] = {"utc": True}
            elif isinstance(c.type, sa.Integer):
                dtype[c.name] = "Int64" if c.nullable else "int64"
            else:
                dtype[c.name] = "float64" if isinstance(c.type, sa.Float) else "str"
        with self.engine.connect() as conn:
            return pd.read_sql(query, conn, dtype=dtype, parse_dates=dates)

    def runs(self, experiment=None, dataset=None, status=None) -> pd.DataFrame:
        """All runs (optionally filtered; each filter is a value or a list), by run_id."""
        r = runs_table.c
        q = sa.select(runs_table).order_by(r.run_id)
        for col, v in ((r.experiment, experiment), (r.dataset, dataset), (r.status, status)):
            if v is not None:
                q = q.where(_match(col, v))
        return self._frame(q)

    def run(self, run_id: int) -> dict:
        """One run as a dict (config as JSON text, datetimes tz-aware UTC); KeyError if missing."""
        q = sa.select(runs_table).where(runs_table.c.run_id == int(run_id))
        with self.engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        if row is None:
            raise KeyError(f"no run with run_id={run_id} in {self.url}")
        return {k: v.replace(tzinfo=dt.timezone.utc) if isinstance(v, dt.datetime) else v
                for k, v in row.items()}

    def _by_run(self, table: sa.Table, run_ids, *order) -> sa.Select:
        cols = [c for c in table.columns if c.name != "id"]
        q = sa.select(*cols).order_by(*order)
        return q if run_ids is None else q.where(_match(table.c.run_id, run_ids))

    def metrics(self, run_ids=None, split=None) -> pd.DataFrame:
        """Columns run_id, split, name, value, kind (NaN values come back as NaN)."""
        m = metrics_table.c
        q = self._by_run(metrics_table, run_ids, m.run_id, m.split, m.name)
        return self._frame(q if split is None else q.where(_match(m.split, split)))

    def history(self, run_ids=None) -> pd.DataFrame:
        """Columns run_id, epoch, name, value, sorted by run_id, epoch."""
        h = history_table.c
        return self._frame(self._by_run(history_table, run_ids, h.run_id, h.epoch, h.name))

    def artifacts(self, run_ids=None) -> pd.DataFrame:
        """Columns run_id, name, path."""
        a = artifacts_table.c
        return self._frame(self._by_run(artifacts_table, run_ids, a.run_id, a.name))

    def wide_metrics(self, split: str = "test", **run_filters) -> pd.DataFrame:
        """One row per run: the runs columns plus one column per metric name of `split`."""
        runs, m = self.runs(**run_filters), self.metrics(split=split)
        wide = m.pivot(index="run_id", columns="name", values="value")
        wide.columns.name = None
        return runs.merge(wide, how="left", left_on="run_id", right_index=True, suffixes=("", "_metric"))


def open_store(url: str | os.PathLike | None = None) -> Store:
    """Open (creating tables if needed) the store at `url`, `$ZOO_DB`, or experiments/results.sqlite.

    A bare file path (no "://") is taken as a SQLite file.
    """
    url = str(url if url is not None else os.environ.get("ZOO_DB") or DEFAULT_DB)
    if "://" not in url:
        url = f"sqlite:///{Path(url).expanduser().resolve()}"
    return Store(url)
