"""The private folder of the bot's Matrix encryption keys, and the key that seals them.

matrix-nio keeps the bot's Olm account, its sessions and the devices it knows
in one SQLite file (``nio.store.SqliteStore``) in this folder, each secret
sealed with the pickle key. The folder is the bot's alone (0700, its files
0600); losing it means a new device and messages the bot can no longer read,
so it belongs in the backup, beside the database.

The pickle key comes from ``matrix.pickle_key`` (or its ``_file``, or
``LETSBOT_MATRIX__PICKLE_KEY``); without one the bot makes a random key once
and keeps it in the folder (``pickle-key``, 0600): as private as the store,
but not apart from it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
from pathlib import Path

from letsbot.config import MatrixSection

KEY_FILE = "pickle-key"


class StoreError(Exception):
    """The store's folder can't be made private or read; one line for the operator."""


def open_folder(folder: Path) -> None:
    """The folder, made if missing, readable by the bot's user only."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)  # also one made earlier by hand
    except OSError as error:
        raise StoreError(
            f"matrix.store_path {folder}: can't make it a private folder: {error.strerror}"
        ) from None


def pickle_key(section: MatrixSection, folder: Path) -> str:
    """The configured pickle key, else the one generated in ``folder`` (made on first use)."""
    configured = section.secret("pickle_key")
    if configured:
        return configured
    path = folder / KEY_FILE
    try:
        if path.exists():
            return path.read_text(encoding="utf-8").strip()
        key = secrets.token_urlsafe(32)
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(key + "\n")
        return key
    except OSError as error:
        raise StoreError(f"matrix: can't read or write {path}: {error.strerror}") from None


def make_private(folder: Path) -> None:
    """Every file in the folder 0600 (SQLite gives its journals the database's mode)."""
    for path in folder.iterdir():
        if path.is_file() and path.stat().st_mode & 0o077:
            path.chmod(0o600)


def account_file(folder: Path, user_id: str, device_id: str) -> Path:
    """Where nio's SqliteStore keeps the account of ``device_id`` (its own naming)."""
    return folder / f"{user_id}_{device_id}.db"


def room_keys(folder: Path | None, user_id: str) -> dict[str, int] | None:
    """Per room, from how many devices the bot holds room keys (nio's Megolm inbound
    sessions of its newest device's store); None without a store.

    Read-only, and without the pickle key: only which sessions there are, not the keys.
    """
    stores = sorted(
        (folder.glob(f"{user_id}_*.db") if folder is not None and folder.is_dir() else ()),
        key=lambda path: path.stat().st_mtime,
    )
    if not stores:
        return None
    with contextlib.closing(sqlite3.connect(f"{stores[-1].as_uri()}?mode=ro", uri=True)) as db:
        try:
            # the bot's own sessions (it keeps what it sends) are not members' keys
            rows = db.execute(
                "SELECT s.room_id, count(DISTINCT s.sender_key) FROM megolminboundsessions s"
                " JOIN keys k ON k.key = s.sender_key AND k.key_type = 'curve25519'"
                " JOIN devicekeys d ON d.id = k.device_id WHERE d.user_id != ?"
                " GROUP BY s.room_id",
                (user_id,),
            ).fetchall()
        except sqlite3.Error:
            return {}
    return {str(room): int(count) for room, count in rows}
