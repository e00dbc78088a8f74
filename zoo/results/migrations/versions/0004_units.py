"""The units of each metric: metrics.units (nats, bits/dim, fraction, ...), filled for the rows already
recorded from their names by `zoo.vocabulary.metric_units`.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

from zoo.vocabulary import metric_units

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("metrics", sa.Column("units", sa.String))
    metrics = sa.table("metrics", sa.column("name", sa.String), sa.column("units", sa.String))
    conn = op.get_bind()
    for (name,) in conn.execute(sa.select(metrics.c.name).distinct()).all():
        if metric_units(name) is not None:
            conn.execute(metrics.update().where(metrics.c.name == name).values(units=metric_units(name)))


def downgrade() -> None:
    with op.batch_alter_table("metrics") as batch:
        batch.drop_column("units")
