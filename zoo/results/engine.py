"""Opening a store: the SQLAlchemy engine (SQLite with WAL and a busy timeout, or PostgreSQL via
psycopg), and the schema upgraded to Alembic's head (zoo/results/migrations/), one process at a time."""
from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BASELINE = "0001"  # the schema stores had before Alembic (metadata.create_all): stamped, then upgraded


class StoreError(RuntimeError):
    """A store that cannot be opened: the message names the problem and the fix."""


def alembic_config():
    """Alembic's Config for zoo/results/migrations, built in code (no alembic.ini). A new revision:
    `alembic.command.revision(alembic_config(), "what changes")`, then edit the file it writes."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def connect(url: str) -> sa.Engine:
    """The engine for `url`, connected once. Raises StoreError for an unknown scheme, a missing driver or
    a server that does not answer."""
    try:
        u = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise StoreError(f"cannot parse the database URL {url!r}; give a SQLite file (a path or "
                         f"sqlite:///PATH) or postgresql+psycopg://USER@HOST:PORT/DB") from None
    shown = u.render_as_string(hide_password=True)
    backend, kwargs = u.get_backend_name(), {}
    if backend == "sqlite":
        kwargs["connect_args"] = {"timeout": 30}  # busy timeout: several processes share one file
        if u.database and u.database != ":memory:" and not u.database.startswith("file:"):
            try:
                Path(u.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise StoreError(f"cannot create the folder of the store {shown}: {err}; "
                                 f"give a path in a writable folder") from None
    elif backend == "postgresql":
        kwargs["connect_args"] = {"connect_timeout": 10}
    try:
        engine = sa.create_engine(u, **kwargs)
    except sa.exc.NoSuchModuleError:
        raise StoreError(f"unknown database URL scheme {u.drivername!r} in {shown}; use a SQLite file "
                         f"(a path or sqlite:///PATH) or postgresql+psycopg://USER@HOST:PORT/DB") from None
    except ImportError as err:
        raise StoreError(f"the database driver for {u.drivername!r} is not installed ({err}); for PostgreSQL "
                         f"pip install 'psycopg[binary]' and use postgresql+psycopg://...") from None
    if backend == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
    try:
        engine.connect().close()
    except sa.exc.OperationalError as err:
        reason = str(err.orig).strip().splitlines()[0] if err.orig is not None else str(err)
        fix = ("check the path and its permissions" if backend == "sqlite" else
               "start the database server or fix host, port, user and database in the URL")
        raise StoreError(f"cannot open the store {shown}: {reason}; {fix}") from None
    return engine


def _sqlite_connect(dbapi_conn, _record) -> None:
    """WAL journal (readers never block the writer) and transactions begun by `_sqlite_begin`."""
    dbapi_conn.isolation_level = None
    dbapi_conn.execute("PRAGMA journal_mode=WAL")


def _sqlite_begin(conn) -> None:
    """Writes take the write lock up front (waiting on the busy timeout), never upgrade to it midway."""
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("zoo_write") else "BEGIN")


def upgrade(engine: sa.Engine) -> None:
    """Upgrade the schema to Alembic's head, one process at a time; a store made before Alembic
    (tables, no alembic_version) is stamped as BASELINE first, so its rows are kept."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = alembic_config()
    head = ScriptDirectory.from_config(cfg).get_current_head()
    with engine.connect() as conn:
        if MigrationContext.configure(conn).get_current_revision() == head:
            return
    with engine.execution_options(zoo_write=True).begin() as conn:
        if conn.dialect.name == "postgresql":  # SQLite: BEGIN IMMEDIATE already serializes
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7212345)"))
        cfg.attributes["connection"] = conn
        if MigrationContext.configure(conn).get_current_revision() is None \
                and sa.inspect(conn).has_table("runs"):
            command.stamp(cfg, BASELINE)
        command.upgrade(cfg, "head")

