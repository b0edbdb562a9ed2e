"""Engines with the transaction rules of DESIGN.md, and the schema's migrations."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import ConnectionPoolEntry


def make_engine(
    url: str, *, sqlite_synchronous: str = "NORMAL", busy_timeout_ms: int = 30000
) -> Engine:
    """An engine whose every transaction may write safely.

    SQLite: the driver's own transaction handling is switched off so that we
    send ``BEGIN IMMEDIATE`` ourselves: the write lock is taken before the
    first read, so a limit check and the booking it guards see the same
    balances. WAL, foreign keys and a busy timeout on every connection.
    Statement parameters never appear in errors or logs.
    """
    parsed = make_url(url)
    # A database error's text would otherwise carry the statement's values (names,
    # descriptions) into the log with its traceback.
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, hide_parameters=True)

    database = parsed.database or ""
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, hide_parameters=True)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute(f"PRAGMA synchronous={sqlite_synchronous}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("storage") / "migrations"))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (``letsbot db upgrade``)."""
    command.upgrade(_alembic_config(engine), "head")


def schema_state(engine: Engine) -> tuple[str | None, str | None]:
    """(revision of the database, newest revision this code knows)."""
    head = ScriptDirectory.from_config(_alembic_config(engine)).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
        connection.rollback()
    return current, head


def is_current(engine: Engine) -> bool:
    current, head = schema_state(engine)
    return current == head
