"""What every subcommand shares: the settings, the database engine, the bot."""

from __future__ import annotations

import argparse
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from letsbot.clock import Clock
from letsbot.config import Settings, default_config_path, load_settings, resolve_sqlite_path
from letsbot.dispatcher import Bot
from storage.database import UrlError, error_reason, make_engine, schema_state
from storage.uow import SqlUnitOfWork


class CliError(Exception):
    """One line for the person at the terminal; exit status 2."""


def config_path(args: argparse.Namespace) -> Path:
    path: Path | None = args.config
    return path if path is not None else default_config_path()


def settings_from(args: argparse.Namespace) -> tuple[Settings, Path]:
    path = config_path(args)
    return load_settings(path), path


def engine_for(settings: Settings, base: Path) -> Engine:
    url = resolve_sqlite_path(settings.storage.url, base)
    return open_engine(url, "storage.url", settings.storage.sqlite_synchronous)


def open_engine(url: str, what: str, sqlite_synchronous: str = "NORMAL") -> Engine:
    """An engine on ``url``, or a CliError naming ``what`` (the key or option) and why."""
    try:
        return make_engine(url, sqlite_synchronous=sqlite_synchronous)
    except UrlError as error:
        raise CliError(f"{what} {safe_url(url)}: {error}") from None
    except SQLAlchemyError as error:
        raise CliError(f"{what} {safe_url(url)}: {error_reason(error, url)}") from None


def safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # a port that is no number is a ValueError
        return "(unreadable URL)"


def sqlite_file(engine: Engine) -> Path | None:
    """The database's file when it is SQLite (a platform keeps its own files beside it)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).resolve()


def ready_engine(settings: Settings, base: Path) -> Engine:
    """An engine on a database whose schema is current, or a clear CliError."""
    engine = engine_for(settings, base)
    try:
        current, head = schema_state(engine)
    except SQLAlchemyError as error:
        shown = safe_url(str(engine.url))
        raise CliError(
            f"can't open the database {shown}: {error_reason(error, engine.url)}"
        ) from None
    if current != head:
        state = "has no letsbot tables" if current is None else f"is at revision {current}"
        raise CliError(
            f"the database {safe_url(str(engine.url))} {state}; this version needs {head}:"
            " run 'letsbot db upgrade'"
        )
    return engine


def build_bot(settings: Settings, engine: Engine, clock: Clock) -> Bot:
    return Bot(settings, SqlUnitOfWork(engine), clock)


def pictures_dir(engine: Engine) -> Path | None:
    """Where the console writes charts: beside a SQLite file, else a temporary folder (None)."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).parent / "pictures"
    return None
