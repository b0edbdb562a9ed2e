"""Moving a group out and in again: export, import into a fresh database, export again.

The second export is the first, byte for byte, on SQLite and on PostgreSQL;
the copy passes ``check``, and what was reversed can't be reversed again.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, insert, select, text
from sqlalchemy.engine import make_url

from storage.check import ledger_problems
from storage.database import make_engine, upgrade
from storage.exchange import (
    COLUMNS,
    MEMBER_FIELDS,
    TRANSFER_FIELDS,
    export_rows,
    import_events,
    import_members,
    import_transfers,
    parse_amount,
    parse_code,
    read_events,
    read_sheet,
    write_rows,
)
from storage.tables import identities, members
from storage.uow import SqlStore
from tests.support import Driver, make_settings
from tests.test_exchange import NOW, TZ

SETTINGS = make_settings()
WHATS = ("members", "transfers", "events")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def two(
    request: pytest.FixtureRequest, template_db: Path, tmp_path: Path
) -> Iterator[tuple[Engine, Engine]]:
    """A database to move out of, and a fresh one to move into, of the same kind."""
    if request.param == "sqlite":
        for name in ("source.db", "copy.db"):
            shutil.copy(template_db, tmp_path / name)
        pair = (
            make_engine(f"sqlite:///{tmp_path / 'source.db'}"),
            make_engine(f"sqlite:///{tmp_path / 'copy.db'}"),
        )
        yield pair
        for engine in pair:
            engine.dispose()
        return
    url = str(request.getfixturevalue("pg_url"))
    base = make_url(url)
    target = base.set(database=f"{base.database}_trip")
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{target.database}"'))
    source = make_engine(url)
    copy = make_engine(target.render_as_string(hide_password=False))
    upgrade(copy)
    yield source, copy
    source.dispose()
    copy.dispose()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    admin.dispose()


def busy_group(engine: Engine) -> Driver:
    """Payments with text a spreadsheet would run, a reversal, a series of events."""
    driver = Driver(engine, SETTINGS)
    driver.member("an")
    driver.member("bo")
    for amount, description in (
        (10, "=SUM(A1:A9)"),
        (11, "+32 475 12 34 56"),
        (12, "-) soep"),
        (13, "@bo merci"),
        (14, "'=al gequoteerd"),
        (15, 'soep, "vers" en warm'),
    ):
        driver.say("an", f"/betaal DU-003 {amount} {description}")
        assert "#" in driver.say("an", "ja")
    driver.say("admin", "/terugboeken 3 vergissing")
    driver.say("admin", "ja")
    driver.say(
        "admin",
        "/activiteit nieuw markt 12/12 10:00-16:00 =Ruilmarkt @ @Parochiezaal elke week tot 26/12",
    )
    driver.say("admin", "ja")
    driver.say("an", "/ikkom 1")
    driver.say("bo", "/ikkom 1")
    driver.say("admin", "/ikkomniet 1")
    driver.say("admin", "/activiteit annuleer 2 -te weinig kramen")
    driver.say("admin", "ja")
    return driver


def exported(engine: Engine, what: str) -> bytes:
    out = io.StringIO()
    write_rows(export_rows(engine, what, "DU", 0), out, "csv", COLUMNS[what])  # type: ignore[arg-type]
    return out.getvalue().encode("utf-8")


def move(files: dict[str, Path], copy: Engine, *, dry_run: bool) -> None:
    """Members, then transfers (compared with the members' balances), then events."""
    people = read_sheet(files["members"], MEMBER_FIELDS)
    done = import_members(copy, people, prefix="DU", decimals=0, dry_run=dry_run, now=NOW)
    assert done.problems == []
    if dry_run:
        return
    shown: dict[int, int] = {}
    for _, values in people.rows:
        number, balance = parse_code(values["code"], "DU"), parse_amount(values["balance"], 0)
        assert number is not None and balance is not None
        shown[number] = balance
    for trial in (True, False):
        moved = import_transfers(
            copy,
            read_sheet(files["transfers"], TRANSFER_FIELDS),
            prefix="DU",
            decimals=0,
            tz=TZ,
            dry_run=trial,
            limits=SETTINGS.group_limits,
            expected_balances=shown,
        )
        assert (moved.problems, moved.warnings, moved.kept_numbers) == ([], [], True)
    for trial in (True, False):
        events = import_events(copy, read_events(files["events"]), prefix="DU", dry_run=trial)
        assert (events.problems, events.added, events.answers) == ([], 3, 3)


def test_export_import_export_is_byte_identical(two: tuple[Engine, Engine], tmp_path: Path) -> None:
    source, copy = two
    busy_group(source)
    files = {}
    for what in WHATS:
        files[what] = tmp_path / f"{what}.csv"
        files[what].write_bytes(exported(source, what))
    assert b"'=SUM(A1:A9)" in files["transfers"].read_bytes()
    move(files, copy, dry_run=True)  # a dry run first: numbers it used are not missed after
    move(files, copy, dry_run=False)
    for what in WHATS:
        assert exported(copy, what) == files[what].read_bytes(), what
    assert ledger_problems(copy, SETTINGS.group_limits) == []
    # Importing the same files again changes nothing.
    again = import_transfers(
        copy,
        read_sheet(files["transfers"], TRANSFER_FIELDS),
        prefix="DU",
        decimals=0,
        tz=TZ,
        dry_run=False,
        limits=SETTINGS.group_limits,
    )
    assert (again.added, again.unchanged, again.problems) == (0, 7, [])
    events = import_events(copy, read_events(files["events"]), prefix="DU", dry_run=False)
    assert (events.added, events.unchanged, events.problems) == (0, 3, [])
    for what in WHATS:
        assert exported(copy, what) == files[what].read_bytes(), what


def test_a_reversal_moved_in_cant_be_reversed_again(
    two: tuple[Engine, Engine], tmp_path: Path
) -> None:
    source, copy = two
    busy_group(source)
    files = {}
    for what in WHATS:
        files[what] = tmp_path / f"{what}.csv"
        files[what].write_bytes(exported(source, what))
    move(files, copy, dry_run=False)
    with copy.begin() as connection:
        store = SqlStore(connection)
        reversal = store.ledger.reversal_of(3)
        assert reversal is not None and reversal.kind.value == "reversal"
        # The coordinator links their chat account again, as /claim does.
        admin = connection.execute(select(members.c.id).where(members.c.number == 1)).scalar_one()
        connection.execute(
            insert(identities).values(
                member_id=admin, platform="console", user_id="admin", display_name="admin"
            )
        )
    moved = Driver(copy, SETTINGS, _admin_spoke=True)
    assert moved.say("admin", "/terugboeken 3 nog eens").endswith(
        "Transactie #3 is al teruggeboekt."
    )
    assert moved.say("admin", f"/terugboeken {reversal.id} terug").endswith(
        f"Transactie #{reversal.id} is zelf een terugboeking en kan niet teruggeboekt worden."
    )
    # New transfers follow the numbers the import kept.
    moved.say("admin", "/betaal DU-002 5 brood")
    assert f"#{reversal.id + 1}" in moved.say("admin", "ja")
    assert ledger_problems(copy, SETTINGS.group_limits) == []


def test_events_that_cant_be_imported_are_named_by_line(
    two: tuple[Engine, Engine], tmp_path: Path
) -> None:
    source, copy = two
    busy_group(source)
    for what in ("members", "events"):
        (tmp_path / f"{what}.csv").write_bytes(exported(source, what))
    people = read_sheet(tmp_path / "members.csv", MEMBER_FIELDS)
    import_members(copy, people, prefix="DU", decimals=0, dry_run=False, now=NOW)
    lines = (tmp_path / "events.csv").read_text(encoding="utf-8").splitlines()
    broken = [
        lines[0],
        lines[1].replace("market", "braderie"),
        lines[2].replace("DU-001", "DU-009", 1),
        lines[3].replace("2026-12-26T09", "26/12/2026 09"),
        lines[3],
        lines[3],
    ]
    (tmp_path / "broken.csv").write_text("\n".join(broken) + "\n", encoding="utf-8")
    report = import_events(copy, read_events(tmp_path / "broken.csv"), prefix="DU", dry_run=False)
    assert report.problems == [
        "line 2: kind 'braderie' is unknown (one of market, meeting, other, repaircafe)",
        "line 3: created_by: member 'DU-009' is unknown: import the members first",
        "line 4: a time is not a date and time with its zone (as the export writes them)",
        "line 6: event 3 twice in the file (line 5 too)",
    ]
    assert report.added == 0
    good = import_events(copy, read_events(tmp_path / "events.csv"), prefix="DU", dry_run=False)
    assert (good.added, good.problems) == (3, [])
    changed = [lines[0], lines[1].replace("Parochiezaal", "Schuur")]
    (tmp_path / "changed.csv").write_text("\n".join(changed) + "\n", encoding="utf-8")
    again = import_events(copy, read_events(tmp_path / "changed.csv"), prefix="DU", dry_run=False)
    assert again.problems == [
        "line 2: event 1 is here already with other content; a changed file? change an event"
        " in the chat, not by an import"
    ]
