"""Where a run ran: runs.host, runs.devices, runs.replicas, runs.dtype_policy, runs.versions.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = (("host", sa.String), ("devices", sa.String), ("replicas", sa.Integer), ("dtype_policy", sa.String),
           ("versions", sa.String))


def upgrade() -> None:
    for name, kind in COLUMNS:
        op.add_column("runs", sa.Column(name, kind))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
