"""The schema before Alembic: runs, metrics, history, artifacts (as metadata.create_all made it).

A store made then is stamped at this revision on open and upgraded from here.

Revision ID: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None
C = sa.Column


def _run_fk() -> sa.Column:
    return C("run_id", sa.Integer, sa.ForeignKey("runs.run_id"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "runs",
        C("run_id", sa.Integer, primary_key=True, autoincrement=True),
        C("experiment", sa.String, nullable=False), C("model", sa.String, nullable=False),
        C("label", sa.String, nullable=False), C("dataset", sa.String, nullable=False),
        C("seed", sa.Integer, nullable=False), C("status", sa.String, nullable=False),
        C("run_key", sa.String, nullable=False), C("config", sa.Text, nullable=False),
        C("likelihood", sa.String), C("started_at", sa.DateTime, nullable=False), C("ended_at", sa.DateTime),
        C("wall_time", sa.Float), C("param_count", sa.Integer), C("code_version", sa.String),
        C("out_dir", sa.String), C("error", sa.Text), C("attempts", sa.Integer, nullable=False),
        C("epochs_done", sa.Integer, nullable=False))
    op.create_index("ix_runs_run_key", "runs", ["run_key"])
    op.create_table(
        "metrics", C("id", sa.Integer, primary_key=True), _run_fk(),
        C("split", sa.String, nullable=False), C("name", sa.String, nullable=False),
        C("value", sa.Float), C("kind", sa.String), sa.UniqueConstraint("run_id", "split", "name"))
    op.create_table(
        "history", C("id", sa.Integer, primary_key=True), _run_fk(),
        C("epoch", sa.Integer, nullable=False), C("name", sa.String, nullable=False), C("value", sa.Float),
        sa.UniqueConstraint("run_id", "epoch", "name"))
    op.create_table(
        "artifacts", C("id", sa.Integer, primary_key=True), _run_fk(),
        C("name", sa.String, nullable=False), C("path", sa.String, nullable=False),
        sa.UniqueConstraint("run_id", "name"))


def downgrade() -> None:
    for table in ("artifacts", "history", "metrics", "runs"):
        op.drop_table(table)
