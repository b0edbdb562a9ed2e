"""Engines whose every transaction may write safely, and the schema's migrations."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import ConnectionPoolEntry

EXAMPLES = "e.g. sqlite:///var/letsbot.db or postgresql+psycopg://letsbot@localhost/letsbot"


class UrlError(ValueError):
    """A database URL that can't be used: why, in one line, without the password."""


def parse_url(url: str) -> URL:
    """``url`` parsed, or a ``UrlError`` that says what is wrong with it."""
    try:
        parsed = make_url(url)
        port = parsed.port  # a port that isn't a number fails in make_url already
    except (ArgumentError, ValueError):
        raise UrlError(f"not a database URL ({EXAMPLES})") from None
    if port is not None and not 0 < port < 65536:
        raise UrlError(f"port {port} is not a port number (1 to 65535)")
    return parsed


def error_reason(error: BaseException, url: str | URL) -> str:
    """Why a database refused: its kind and the driver's first line, never the password."""
    reason = _first_line(error, url)
    return f"{type(error).__name__}: {reason}" if reason else type(error).__name__


def _first_line(error: BaseException, url: str | URL) -> str:
    found = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    lines = str(found).strip().splitlines()
    line = lines[0] if lines else ""
    try:
        password = make_url(url).password
    except (ArgumentError, ValueError):
        password = None
    return line.replace(str(password), "***") if password else line


def make_engine(
    url: str, *, sqlite_synchronous: str = "NORMAL", busy_timeout_ms: int = 30000
) -> Engine:
    """An engine whose every transaction may write safely.

    SQLite: the driver's own transaction handling is switched off so that we
    send ``BEGIN IMMEDIATE`` ourselves: the write lock is taken before the
    first read, so a limit check and the booking it guards see the same
    balances. WAL, foreign keys and a busy timeout on every connection.
    Statement parameters never appear in errors or logs. A URL that can't be
    used raises ``UrlError``; a database that can't be reached fails on first use.
    """
    parsed = parse_url(url)
    # A database error's text would otherwise carry the statement's values (names,
    # descriptions) into the log with its traceback.
    if parsed.get_backend_name() != "sqlite":
        return _create(parsed, pool_pre_ping=True, hide_parameters=True)

    database = parsed.database or ""
    if database and database != ":memory:":
        folder = Path(database).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UrlError(f"can't create the folder {folder}: {error.strerror}") from None
        try:
            # Members' names, chats and the platforms' tokens live in it: the bot's user
            # alone reads a new file (its -wal and -shm files take its mode).
            os.close(os.open(database, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as error:
            raise UrlError(f"can't create {database}: {error.strerror}") from None
    engine = _create(parsed, hide_parameters=True)

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


def _create(url: URL, **options: Any) -> Engine:
    try:
        return create_engine(url, **options)
    except ImportError as error:
        raise UrlError(f"the driver of {url.drivername} is not installed ({error.name})") from None
    except ArgumentError as error:  # e.g. sqlite://host/file, or an unknown dialect
        raise UrlError(f"{_first_line(error, url)} ({EXAMPLES})") from None


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
