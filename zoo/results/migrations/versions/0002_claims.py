"""Runs claimed by workers: runs.owner and runs.lease_expires (a RUNNING run's claim and its end).

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("owner", sa.String))
    op.add_column("runs", sa.Column("lease_expires", sa.DateTime))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("lease_expires")
        batch.drop_column("owner")
