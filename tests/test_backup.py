"""Backups are consistent while the bot writes, and restorable."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import text

from storage.backup import BackupError, backup_sqlite
from storage.check import ledger_problems
from storage.database import is_current, make_engine
from tests.support import Driver, make_settings


def test_a_backup_taken_during_a_write_is_consistent_and_restorable(
    sqlite_url: str, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_url)
    driver = Driver(engine, make_settings())
    driver.member("an")
    driver.member("bo")
    for n in range(5):
        driver.say("an", f"/betaal 3 {n + 1} ruil")
        driver.say("an", "ja")
    target = tmp_path / "copy" / "letsbot-backup.db"
    with engine.connect() as writer:  # a booking in progress, not committed
        writer.execute(text("UPDATE members SET balance = balance + 1000 WHERE number = 2"))
        assert backup_sqlite(sqlite_url, target) > 0
        writer.rollback()
    copy = make_engine(f"sqlite:///{target}")
    assert is_current(copy)
    assert ledger_problems(copy, make_settings().group_limits) == []
    with copy.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM transfers")).scalar_one() == 5
    # Restoring is putting the file back: the bot runs on it as before.
    restored = tmp_path / "restored.db"
    shutil.copy(target, restored)
    again = Driver(make_engine(f"sqlite:///{restored}"), make_settings())
    result = again.send(again.incoming("an", "/saldo", event_id="after-restore"))
    assert "Je saldo: -15 pluimen" in result.replies[0].text


def test_backup_refuses_what_it_cannot_do(sqlite_url: str, tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="pg_dump"):
        backup_sqlite("postgresql+psycopg://u@localhost/x", tmp_path / "x.db")
    existing = tmp_path / "there.db"
    existing.write_bytes(b"")
    with pytest.raises(BackupError, match="exists already"):
        backup_sqlite(sqlite_url, existing)
    with pytest.raises(BackupError, match="no such database file"):
        backup_sqlite(f"sqlite:///{tmp_path / 'none.db'}", tmp_path / "y.db")
