"""The Store: one transaction per write (whatever was recorded survives a later crash), pandas
frames for reads, and the claims of workers (an owner and a lease per RUNNING run)."""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import socket
import uuid
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from zoo.results.engine import StoreError, connect, upgrade
from zoo.results.schema import (
    FINAL_STATUSES,
    RESUMABLE_STATUSES,
    RUN_FIELDS,
    STATUSES,
    artifacts_table,
    history_table,
    metrics_table,
    runs_table,
)
from zoo.vocabulary import metric_units

MAX_ERROR_CHARS = 20_000
DEFAULT_LEASE = 600.0  # seconds a claim lasts after its last heartbeat (each epoch, each recorded metric)
DEFAULT_DB = Path(__file__).resolve().parents[2] / "experiments" / "results.sqlite"


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

    def __init__(self, url: str, lease: float = DEFAULT_LEASE):
        self.url, self.lease = url, float(lease)
        self.shown_url = sa.make_url(url).render_as_string(hide_password=True)  # for messages
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.engine = connect(url)
        upgrade(self.engine)

    def _write(self):
        """A write transaction; on SQLite `BEGIN IMMEDIATE`, so writers queue on the busy timeout."""
        return self.engine.execution_options(zoo_write=True).begin()

    def dispose(self) -> None:
        self.engine.dispose()

    # writers: one transaction each
    def start_run(self, *, experiment: str, model: str, label: str, dataset: str, seed: int,
                  config: dict, run_key: str, likelihood: str | None = None,
                  code_version: str | None = None, out_dir: str | None = None,
                  param_count: int | None = None) -> int:
        """Insert a RUNNING run, claimed by this store's owner, and return its run_id."""
        row = dict(experiment=experiment, model=model, label=label, dataset=dataset, seed=int(seed),
                   status="RUNNING", run_key=run_key, config=json.dumps(config, sort_keys=True, default=str),
                   likelihood=likelihood, started_at=_now(), code_version=code_version,
                   out_dir=None if out_dir is None else str(out_dir),
                   param_count=None if param_count is None else int(param_count), attempts=1, epochs_done=0,
                   owner=self.owner, lease_expires=self._lease_end())
        with self._write() as conn:
            return conn.execute(runs_table.insert().values(**row)).inserted_primary_key[0]

    def add_pending(self, runs: list[dict]) -> list[int]:
        """Enter runs (`start_run` keywords; `out_dir` may hold "{run_id}") as PENDING, each run_key once.

        One transaction, one process at a time: a key whose latest run FAILED goes back to PENDING (a
        retry); a key with a PENDING, RUNNING, FINISHED or DIVERGED run is left alone. Returns the run
        ids in order.
        """
        r, ids = runs_table.c, []
        with self._write() as conn:
            if conn.dialect.name == "postgresql":  # two workers entering the same grid: one waits
                conn.execute(sa.text("LOCK TABLE runs IN SHARE ROW EXCLUSIVE MODE"))
            for run in runs:
                latest = conn.execute(sa.select(r.run_id, r.status).where(r.run_key == run["run_key"])
                                      .order_by(r.run_id.desc()).limit(1)).first()
                if latest is not None:
                    if latest.status == "FAILED":
                        conn.execute(runs_table.update().where(r.run_id == latest.run_id)
                                     .values(status="PENDING", owner=None, lease_expires=None))
                    ids.append(latest.run_id)
                    continue
                out_dir = run.get("out_dir")
                row = dict(run, seed=int(run["seed"]), status="PENDING", started_at=_now(), attempts=0,
                           epochs_done=0, config=json.dumps(run["config"], sort_keys=True, default=str),
                           out_dir=None)
                rid = conn.execute(runs_table.insert().values(**row)).inserted_primary_key[0]
                if out_dir is not None:
                    conn.execute(runs_table.update().where(r.run_id == rid)
                                 .values(out_dir=str(out_dir).format(run_id=rid)))
                ids.append(rid)
        return ids

    def claim_run(self, run_keys: Iterable[str]) -> int | None:
        """Take one run with a key in `run_keys` that is PENDING, or RUNNING with a lapsed lease: a
        conditional UPDATE, so exactly one claimant wins it. Returns its run_id (now RUNNING, owned by
        this store until the lease ends), or None when there is nothing to claim."""
        r, now = runs_table.c, _now()
        claimable = sa.or_(r.status == "PENDING", sa.and_(
            r.status == "RUNNING", sa.or_(r.lease_expires.is_(None), r.lease_expires < now)))
        query = sa.select(r.run_id).where(_match(r.run_key, list(run_keys)), claimable).order_by(r.run_id)
        with self.engine.connect() as conn:
            candidates = conn.execute(query).scalars().all()
        for rid in candidates:
            with self._write() as conn:
                won = conn.execute(runs_table.update().where(r.run_id == rid, claimable).values(
                    status="RUNNING", owner=self.owner, lease_expires=self._lease_end(),
                    started_at=sa.case((r.status == "PENDING", now), else_=r.started_at))).rowcount
            if won:
                return rid
        return None

    def _lease_end(self) -> dt.datetime:
        return _now() + dt.timedelta(seconds=self.lease)

    def _renew(self, conn, run_id: int) -> None:
        """The heartbeat: this owner's claim on a RUNNING run lasts another `lease` seconds."""
        r = runs_table.c
        conn.execute(runs_table.update().where(r.run_id == int(run_id), r.owner == self.owner,
                                               r.status == "RUNNING").values(lease_expires=self._lease_end()))

    def find_resumable(self, run_key: str) -> int | None:
        """The latest run with `run_key` that is PENDING, RUNNING or FAILED, else None."""
        r = runs_table.c
        q = (sa.select(r.run_id).where(r.run_key == run_key, r.status.in_(RESUMABLE_STATUSES))
             .order_by(r.run_id.desc()).limit(1))
        with self.engine.connect() as conn:
            return conn.execute(q).scalar()

    def resume_run(self, run_id: int) -> None:
        """Back to RUNNING, claimed by this store, attempts + 1, error cleared; recorded history and
        metrics are kept. (It takes the run whoever held it: workers claim first with `claim_run`.)"""
        self._update(run_id, status="RUNNING", attempts=runs_table.c.attempts + 1, error=None, ended_at=None,
                     owner=self.owner, lease_expires=self._lease_end())

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
        """Record (or re-record) one epoch's values; raises runs.epochs_done to at least epoch + 1 and
        renews this owner's lease (the heartbeat)."""
        h, r, epoch = history_table.c, runs_table.c, int(epoch)
        with self._write() as conn:
            conn.execute(history_table.delete().where(
                h.run_id == int(run_id), h.epoch == epoch, h.name.in_(list(values))))
            if values:
                conn.execute(history_table.insert(), [
                    dict(run_id=int(run_id), epoch=epoch, name=k, value=_num(v)) for k, v in values.items()])
            conn.execute(runs_table.update().where(r.run_id == int(run_id), r.epochs_done < epoch + 1)
                         .values(epochs_done=epoch + 1))
            self._renew(conn, run_id)

    def log_epochs(self, run_id: int, epochs: dict[int, dict[str, float]]) -> None:
        """`log_epoch` for many epochs of one run ({epoch: values}) in ONE transaction: the same rows,
        epochs_done and lease as logging them one by one, for bulk writes (an import, a benchmark
        store) where a transaction per epoch is too slow."""
        h, r, run_id = history_table.c, runs_table.c, int(run_id)
        rows = [dict(run_id=run_id, epoch=int(e), name=k, value=_num(v))
                for e, values in epochs.items() for k, v in values.items()]
        with self._write() as conn:
            if rows and conn.execute(sa.select(h.run_id).where(
                    h.run_id == run_id, h.epoch.in_([int(e) for e in epochs])).limit(1)).first() is not None:
                conn.execute(history_table.delete().where(  # re-recorded values replace the old ones
                    h.run_id == run_id, h.epoch == sa.bindparam("e"), h.name == sa.bindparam("n")),
                    [dict(e=row["epoch"], n=row["name"]) for row in rows])
            if rows:
                conn.execute(history_table.insert(), rows)
            if epochs:
                last = max(int(e) for e in epochs) + 1
                conn.execute(runs_table.update().where(r.run_id == run_id, r.epochs_done < last)
                             .values(epochs_done=last))
            self._renew(conn, run_id)

    def log_metrics(self, run_id: int, split: str,
                    metrics: dict[str, float] | list[tuple[str, float, str | None]],
                    kind: str | None = None) -> None:
        """Upsert final metrics: a dict (all of kind `kind`) or (name, value, kind) tuples; each row's
        units come from its name (`zoo.vocabulary.metric_units`: nats, bits/dim, fraction, ...)."""
        items = [(k, v, kind) for k, v in metrics.items()] if isinstance(metrics, dict) else list(metrics)
        if not items:
            return
        names = [n for n, _, _ in items]
        if len(set(names)) < len(names):
            raise ValueError(f"log_metrics: metric names repeat in one call: "
                             f"{sorted({n for n in names if names.count(n) > 1})}; "
                             f"give each metric its own name")
        m = metrics_table.c
        with self._write() as conn:
            conn.execute(metrics_table.delete().where(
                m.run_id == int(run_id), m.split == split, m.name.in_([n for n, _, _ in items])))
            conn.execute(metrics_table.insert(), [
                dict(run_id=int(run_id), split=split, name=n, value=_num(v), kind=k, units=metric_units(n))
                for n, v, k in items])
            self._renew(conn, run_id)

    def log_artifact(self, run_id: int, name: str, path: str | os.PathLike) -> None:
        """Record (or replace) the path of a named artifact."""
        a = artifacts_table.c
        with self._write() as conn:
            conn.execute(artifacts_table.delete().where(a.run_id == int(run_id), a.name == name))
            conn.execute(artifacts_table.insert().values(run_id=int(run_id), name=name, path=str(path)))
            self._renew(conn, run_id)

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
        with self._write() as conn:
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
                dtype[c.name] = "Int64" if getattr(c, "nullable", True) else "int64"  # a label: may be NULL
            else:
                dtype[c.name] = "float64" if isinstance(c.type, sa.Float) else "str"
        with self.engine.connect() as conn:
            return pd.read_sql(query, conn, dtype=dtype, parse_dates=dates)

    @staticmethod
    def _run_filters(experiment=None, dataset=None, status=None, run_ids=None) -> list:
        """WHERE clauses on `runs` (each filter a value or a list; None: any)."""
        r = runs_table.c
        return [_match(col, v) for col, v in ((r.experiment, experiment), (r.dataset, dataset),
                                              (r.status, status), (r.run_id, run_ids)) if v is not None]

    @staticmethod
    def _run_columns(names) -> list:
        """The `runs` columns called `names` (all when None), run_id first; ValueError for another name."""
        if names is None:
            return list(runs_table.columns)
        unknown = sorted(set(names) - {c.name for c in runs_table.columns})
        if unknown:
            raise ValueError(f"unknown run column(s) {unknown}; valid: run_id, {', '.join(RUN_FIELDS)}")
        return [runs_table.c.run_id] + [runs_table.c[n] for n in dict.fromkeys(names) if n != "run_id"]

    def runs(self, experiment=None, dataset=None, status=None, run_ids=None, columns=None) -> pd.DataFrame:
        """All runs (optionally filtered in SQL; each filter is a value or a list), by run_id. `columns`:
        only these columns of `runs` (run_id always), e.g. without the config JSON."""
        q = sa.select(*self._run_columns(columns)).order_by(runs_table.c.run_id)
        return self._frame(q.where(*self._run_filters(experiment, dataset, status, run_ids)))

    def count_runs(self, by=("dataset", "status"), experiment=None, dataset=None,
                   status=None) -> pd.DataFrame:
        """How many runs there are per value of the `by` columns (GROUP BY in SQL; no run is read),
        optionally filtered like `runs`: columns `by` and `runs`, sorted by `by`."""
        cols = [c for c in self._run_columns(by) if c.name in by]
        q = sa.select(*cols, sa.func.count().label("runs")).where(
            *self._run_filters(experiment, dataset, status)).group_by(*cols).order_by(*cols)
        return self._frame(q).astype({"runs": "int64"})

    def run(self, run_id: int) -> dict:
        """One run as a dict (config as JSON text, datetimes tz-aware UTC); KeyError if missing."""
        q = sa.select(runs_table).where(runs_table.c.run_id == int(run_id))
        with self.engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        if row is None:
            raise KeyError(f"no run with run_id={run_id} in {self.url}")
        return {k: v.replace(tzinfo=dt.timezone.utc) if isinstance(v, dt.datetime) else v
                for k, v in row.items()}

    def _by_run(self, table: sa.Table, run_ids, names, run_filters: dict, *order) -> sa.Select:
        """The rows of `table` (no id) of `run_ids` and of the runs matching `run_filters` (a subquery on
        `runs`: each run's rows are found by the table's (run_id, ...) unique index), named `names`."""
        cols = [c for c in table.columns if c.name != "id"]
        q = sa.select(*cols).order_by(*order)
        if run_ids is not None:
            q = q.where(_match(table.c.run_id, run_ids))
        if names is not None:
            q = q.where(_match(table.c.name, names))
        where = self._run_filters(**run_filters)
        return q.where(table.c.run_id.in_(sa.select(runs_table.c.run_id).where(*where))) if where else q

    def metrics(self, run_ids=None, split=None, names=None, *, experiment=None, dataset=None,
                status=None) -> pd.DataFrame:
        """Columns run_id, split, name, value, kind, units (NaN values come back as NaN). Filtered in SQL: by
        run ids, split(s), metric name(s), and the runs' experiment, dataset or status."""
        m = metrics_table.c
        q = self._by_run(metrics_table, run_ids, names, dict(experiment=experiment, dataset=dataset,
                                                             status=status), m.run_id, m.split, m.name)
        return self._frame(q if split is None else q.where(_match(m.split, split)))

    def history(self, run_ids=None, names=None, *, experiment=None, dataset=None,
                status=None) -> pd.DataFrame:
        """Columns run_id, epoch, name, value, sorted by run_id, epoch. Filtered in SQL like `metrics`."""
        h = history_table.c
        return self._frame(self._by_run(history_table, run_ids, names, dict(
            experiment=experiment, dataset=dataset, status=status), h.run_id, h.epoch, h.name))

    def artifacts(self, run_ids=None, names=None, *, experiment=None, dataset=None,
                  status=None) -> pd.DataFrame:
        """Columns run_id, name, path. Filtered in SQL like `metrics`."""
        a = artifacts_table.c
        return self._frame(self._by_run(artifacts_table, run_ids, names, dict(
            experiment=experiment, dataset=dataset, status=status), a.run_id, a.name))

    def wide_metrics(self, split: str = "test", names=None, columns=None, **run_filters) -> pd.DataFrame:
        """One row per run: the runs columns (`columns`: only those) plus one column per metric name of
        `split` (`names`: only those). `run_filters` (experiment, dataset, status, run_ids) filter both
        reads in SQL, so only the metrics of the runs returned are read."""
        runs = self.runs(columns=columns, **run_filters)
        ids = run_filters.pop("run_ids", None)
        m = self.metrics(ids, split=split, names=names, **run_filters)
        wide = m.pivot(index="run_id", columns="name", values="value")
        wide.columns.name = None
        return runs.merge(wide, how="left", left_on="run_id", right_index=True, suffixes=("", "_metric"))


def open_store(url: str | os.PathLike | None = None, lease: float = DEFAULT_LEASE) -> Store:
    """Open (creating or upgrading the schema if needed) the store at `url`, `$ZOO_DB`, or
    experiments/results.sqlite. A bare file path (no "://") is taken as a SQLite file. `lease`: seconds a
    claim on a run lasts after its last heartbeat. Raises StoreError when the store cannot be opened.
    """
    from alembic.util.exc import CommandError

    url = str(url if url is not None else os.environ.get("ZOO_DB") or DEFAULT_DB)
    if "://" not in url:
        url = f"sqlite:///{Path(url).expanduser().resolve()}"
    shown = sa.make_url(url).render_as_string(hide_password=True)
    try:
        return Store(url, lease)
    except sa.exc.SQLAlchemyError as err:  # e.g. a file that is not a database
        reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        raise StoreError(f"cannot open the store {shown}: {reason}; give a SQLite file the zoo made (or a "
                         f"new path), or a postgresql+psycopg:// URL") from None
    except CommandError as err:  # Alembic: a schema revision this code does not know
        raise StoreError(f"cannot open the store {shown}: {err}; it was made by another version of the "
                         f"zoo: update this checkout, or give another --db") from None
