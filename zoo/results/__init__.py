"""The results store: the only reader/writer of runs, metrics, per-epoch history and artifacts.

SQLite by default (`experiments/results.sqlite`, WAL journal and a busy timeout, so processes on one
machine share it), PostgreSQL (psycopg) for workers on several machines. Every write is its own
transaction, so whatever was recorded survives a later crash. Readers return pandas frames.
Typical use: `open_store()` -> `start_run` / `find_resumable` + `resume_run` -> `log_epoch`,
`log_metrics`, `log_artifact` -> `finish_run`. Workers: `add_pending` -> `claim_run` -> the same.
A RUNNING run is claimed by `owner` until `lease_expires`; each write of the run (each epoch at least)
renews the lease, and a lapsed claim may be taken by another worker. The schema is kept by Alembic
(zoo/results/migrations/), upgraded on open. No TensorFlow here: the dashboard imports this.
"""
from zoo.results.engine import BASELINE, MIGRATIONS, StoreError, alembic_config, connect, upgrade
from zoo.results.schema import (
    FINAL_STATUSES,
    RESUMABLE_STATUSES,
    RUN_FIELDS,
    STATUSES,
    WHERE_COLUMNS,
    artifacts_table,
    history_table,
    metadata,
    metrics_table,
    runs_table,
)
from zoo.results.store import DEFAULT_DB, DEFAULT_LEASE, MAX_ERROR_CHARS, Store, _now, _num, open_store

__all__ = ["BASELINE", "DEFAULT_DB", "DEFAULT_LEASE", "FINAL_STATUSES", "MAX_ERROR_CHARS", "MIGRATIONS",
           "RESUMABLE_STATUSES", "RUN_FIELDS", "STATUSES", "WHERE_COLUMNS", "Store", "StoreError", "_now",
           "_num", "alembic_config", "artifacts_table", "connect", "history_table", "metadata",
           "metrics_table", "open_store", "runs_table", "upgrade"]
