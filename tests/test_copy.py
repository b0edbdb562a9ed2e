"""``letsbot db copy``: every row moves, the copy passes check, the bot runs on it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from storage.check import ledger_problems
from storage.copy import CopyError, copy_database, tables
from storage.database import is_current, make_engine, upgrade
from storage.exchange import export_rows
from tests.support import POSTGRES_ENV, Driver, make_settings, postgres_url
from tests.test_cli import CONFIG, letsbot, one_clear_line


def busy_group(engine: Engine) -> Driver:
    """Members, payments, a reversal, an offer, an event with RSVPs, a vote."""
    driver = Driver(engine, make_settings())
    driver.member("an")
    driver.member("bo")
    for n in range(3):
        driver.say("an", f"/betaal DU-003 {n + 10} soep")
        driver.say("an", "ja")
    driver.say("admin", "/terugboeken 2 vergissing")
    driver.say("admin", "ja")
    driver.say("bo", "/aanbod Fiets herstellen #fiets")
    driver.say("admin", "/activiteit nieuw markt 12/12 10:00 Ruilmarkt")
    driver.say("admin", "ja")
    driver.say("an", "/ikkom 1")
    driver.say("admin", "/voorstel Zaal huren?", group=True)
    driver.say("bo", "/stem 1 ja")
    return driver


def every_row(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    with engine.connect() as connection:
        state = {
            table.name: sorted((tuple(row) for row in connection.execute(table.select())), key=repr)
            for table in tables()
        }
        connection.rollback()
    return state


def test_copy_moves_every_row_and_refuses_a_target_with_data(
    engine: Engine, tmp_path: Path
) -> None:
    busy_group(engine)
    target = make_engine(f"sqlite:///{tmp_path / 'copy.db'}")
    counts = copy_database(engine, target)
    assert counts["transfers"] == 4 and counts["members"] == 4 and counts["votes"] == 1
    assert is_current(target)
    assert every_row(target) == every_row(engine)
    for what in ("members", "transfers", "listings", "events"):
        assert export_rows(target, what, "DU", 0) == export_rows(engine, what, "DU", 0)  # type: ignore[arg-type]
    assert ledger_problems(target, make_settings().group_limits) == []
    with pytest.raises(CopyError, match=r"holds data already \(members: 3 rows\)"):
        copy_database(engine, target)
    with pytest.raises(CopyError, match="the database the bot uses now"):
        copy_database(engine, engine)
    target.dispose()
    migrated = make_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    upgrade(migrated)  # 'letsbot db upgrade' on the target first: still empty, so fine
    assert copy_database(engine, migrated) == counts
    migrated.dispose()


@pytest.fixture
def pg_target() -> Iterator[str]:
    """A database of its own (``<test database>_copy``), dropped and made anew each time."""
    url = postgres_url()
    if url is None:
        pytest.skip(f"{POSTGRES_ENV} is not set: no PostgreSQL server to test against")
    base = make_url(url)
    target = base.set(database=f"{base.database}_copy")
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{target.database}"'))
    yield target.render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.postgres
def test_copy_from_sqlite_to_postgresql_then_the_bot_runs_on_it(
    tmp_path: Path, pg_target: str
) -> None:
    (tmp_path / "bot.toml").write_text(CONFIG, encoding="utf-8")
    assert letsbot("db", "upgrade", cwd=tmp_path).returncode == 0
    source = make_engine(f"sqlite:///{tmp_path / 'var' / 'letsbot.db'}")
    driver = busy_group(source)
    before = every_row(source)
    result = letsbot("db", "copy", "--to", pg_target, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[1:] == [
        "check on the copy: OK, 3 members, 4 transfers",
        "next: point storage.url at the copy (a password belongs in LETSBOT_STORAGE__URL,"
        " not in bot.toml), then start the bot",
    ]
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"copied {sum(len(rows) for rows in before.values())} rows to ")
    for part in ("members 4,", "identities 3,", "transfers 4,", "votes 1"):
        assert part in first
    copy = make_engine(pg_target)
    assert every_row(copy) == before
    # The bot on the copy: new rows get fresh ids after the copied ones.
    moved = Driver(copy, make_settings(), _ids=itertools.count(1000))
    moved._admin_spoke = True
    # An event handled before the move is still known, so a redelivery does nothing.
    assert moved.send(moved.incoming("an", "/betaal DU-003 5 x", event_id="t2")).replies == []
    assert moved.number("bo") == driver.number("bo")
    moved.member("cas")
    assert moved.number("cas") == 4
    moved.say("an", "/betaal DU-004 7 brood")
    assert "#5: je betaalde 7 pluimen aan Cas (DU-004) voor brood." in moved.say("an", "ja")
    moved.say("admin", "/voorstel Nog een?", group=True)
    with copy.connect() as connection:
        ids = connection.execute(text("SELECT max(id) FROM proposals")).scalar_one()
    assert ids == 2
    assert ledger_problems(copy, make_settings().group_limits) == []
    again = letsbot("db", "copy", "--to", pg_target, cwd=tmp_path)
    assert "holds data already (members: 4 rows)" in one_clear_line(again)
    back = make_engine(f"sqlite:///{tmp_path / 'back.db'}")  # and back again, to SQLite
    copy_database(copy, back)
    assert every_row(back) == every_row(copy)
    back.dispose()
    copy.dispose()
    source.dispose()
