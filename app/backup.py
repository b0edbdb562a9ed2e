"""``letsbot backup FILE``: a copy of the SQLite database, safely while the bot runs."""

from __future__ import annotations

import argparse

from app.compose import CliError, ready_engine, settings_from
from storage.backup import BackupError, backup_sqlite


def cmd_backup(args: argparse.Namespace) -> int:
    settings, path = settings_from(args)
    engine = ready_engine(settings, path.parent)
    try:
        pages = backup_sqlite(str(engine.url), args.file)
    except (BackupError, OSError) as error:
        raise CliError(str(error)) from None
    print(f"wrote {args.file} ({pages} pages); to restore, point storage.url at a copy of it")
    return 0
