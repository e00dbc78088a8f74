"""The store's tables (SQLAlchemy Core) and the names of a run's statuses. Changing a table here
needs an Alembic revision in zoo/results/migrations/versions (see `zoo.results.engine.alembic_config`)."""
import sqlalchemy as sa

STATUSES = ("PENDING", "RUNNING", "FINISHED", "FAILED", "DIVERGED")
FINAL_STATUSES = ("FINISHED", "FAILED", "DIVERGED")
RESUMABLE_STATUSES = ("PENDING", "RUNNING", "FAILED")
WHERE_COLUMNS = ("host", "devices", "replicas", "dtype_policy", "versions")  # zoo.distribute.where

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
    C("owner", sa.String), C("lease_expires", sa.DateTime),  # who holds a RUNNING run, until when
    # where it ran (zoo.distribute.where): host, devices, replica count, the training's Keras dtype
    # policy (train.precision; not "precision", a sample metric's name), library versions
    C("host", sa.String), C("devices", sa.String), C("replicas", sa.Integer), C("dtype_policy", sa.String),
    C("versions", sa.String),
)
assert tuple(c.name for c in runs_table.columns)[-len(WHERE_COLUMNS):] == WHERE_COLUMNS


def _run_fk() -> sa.Column:
    return C("run_id", sa.Integer, sa.ForeignKey("runs.run_id"), nullable=False)


metrics_table = sa.Table(
    "metrics", metadata, C("id", sa.Integer, primary_key=True), _run_fk(),
    C("split", sa.String, nullable=False), C("name", sa.String, nullable=False),
    C("value", sa.Float), C("kind", sa.String), sa.UniqueConstraint("run_id", "split", "name"),
    C("units", sa.String),  # zoo.vocabulary.metric_units: nats, bits/dim, fraction, ...
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


