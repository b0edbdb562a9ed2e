"""``letsbot db upgrade`` and ``letsbot db copy --to URL``."""

from __future__ import annotations

import argparse
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from app.compose import CliError, engine_for, open_engine, ready_engine, safe_url, settings_from
from letsbot.config import resolve_sqlite_path
from storage.check import ledger_problems, ledger_size
from storage.copy import CopyError, copy_database
from storage.database import error_reason, schema_state, upgrade


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings, path = settings_from(args)
    engine = engine_for(settings, path.parent)
    try:
        upgrade(engine)
        current, _ = schema_state(engine)
    except SQLAlchemyError as error:
        raise CliError(
            f"can't upgrade {safe_url(str(engine.url))}: {error_reason(error, engine.url)}"
        ) from None
    print(f"database {safe_url(str(engine.url))} is at revision {current}")
    return 0


def cmd_db_copy(args: argparse.Namespace) -> int:
    settings, path = settings_from(args)
    source = ready_engine(settings, path.parent)
    target_url = resolve_sqlite_path(args.to, Path.cwd())
    shown = safe_url(target_url)
    target = open_engine(target_url, "--to")
    warnings: list[str] = []
    try:
        counts = copy_database(source, target, warnings.append)
    except CopyError as error:
        raise CliError(f"{shown}: {error}") from None
    rows = ", ".join(f"{name} {count}" for name, count in counts.items() if count)
    print(f"copied {sum(counts.values())} rows to {shown} ({rows or 'no rows'})")
    for warning in warnings:
        print(warning)
    problems = ledger_problems(target, settings.group_limits)
    members, transfers = ledger_size(target)
    if problems:
        print(f"check on the copy FAILED: {len(problems)} problem(s)")
        for problem in problems:
            print(f"  {problem}")
        return 1
    print(f"check on the copy: OK, {members} members, {transfers} transfers")
    print(
        "next: point storage.url at the copy (a password belongs in LETSBOT_STORAGE__URL,"
        " not in bot.toml), then start the bot"
    )
    return 0
