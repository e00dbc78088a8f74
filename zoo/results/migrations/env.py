"""Alembic environment of the results store. Run by `zoo.results.Store` on open, on the connection it
passes in `config.attributes["connection"]` (no alembic.ini; see `zoo.results.alembic_config`)."""
from alembic import context

from zoo.results import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():  # joins the caller's transaction
    context.run_migrations()
