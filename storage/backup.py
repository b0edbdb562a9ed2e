"""``letsbot backup``: a consistent copy of a SQLite database, safe while the bot runs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupError(Exception):
    """One line for the person running the backup."""


def backup_sqlite(url: str, target: Path) -> int:
    """Copy the database at ``url`` to ``target``; the number of pages copied.

    SQLite's online backup API copies a consistent snapshot even while the bot
    writes (WAL); the copy is a plain file that ``storage.url`` can point at.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        raise BackupError("backup copies SQLite files; for PostgreSQL use pg_dump (see the README)")
    source_path = Path(parsed.database)
    if not source_path.exists():
        raise BackupError(f"{source_path}: no such database file")
    if target.exists():
        raise BackupError(f"{target} exists already; choose a new file name")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BackupError(f"{target}: can't create its folder: {error.strerror}") from None
    try:
        return _copy(source_path, target)
    except sqlite3.Error as error:  # e.g. a folder the bot's user may not write in
        target.unlink(missing_ok=True)
        raise BackupError(f"{target}: can't write the copy: {error}") from None


def _copy(source_path: Path, target: Path) -> int:
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=30)
    try:
        copy = sqlite3.connect(target)
    except sqlite3.Error:
        source.close()
        raise
    try:
        pages = 0

        def progress(status: int, remaining: int, total: int) -> None:
            nonlocal pages
            pages = total

        source.backup(copy, pages=1024, progress=progress)
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        copy.close()
        source.close()
    return pages
