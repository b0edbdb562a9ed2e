"""Moving in from eLAS/eLAND and out again: real files, real databases."""

from __future__ import annotations

import csv
import io
import json
import shutil
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, text

from storage.check import ledger_problems
from storage.database import make_engine
from storage.exchange import (
    COLUMNS,
    TRANSFER_FIELDS,
    BalancesReport,
    ImportError_,
    Report,
    Sheet,
    TransfersReport,
    export_rows,
    import_balances,
    import_members,
    import_transfers,
    neutralised,
    plain_cell,
    read_sheet,
    write_rows,
)
from tests.support import Driver, make_settings

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
TZ = ZoneInfo("Europe/Brussels")

# An eLAS users export: semicolons, Latin-1, Dutch decimal commas, a broken line.
ELAS_MEMBERS = (
    "letscode;cdate;comments;hobbies;name;postcode;login;accountrole;status;lastlogin;"
    "minlimit;maxlimit;fullname\n"
    "DU-001;2015-01-01;;;an;9160;an;admin;1;2026-11-01;-1500;1500;An Peeters\n"
    "DU-002;2016-03-01;;tuin;bo;9160;bo;user;1;2026-10-01;-1000,5;1000;Bö Janssens\n"
    "DU-003;2017-05-01;;;cé;9160;ce;user;2;;;;Céline De Smet\n"
    "ABC;2018-01-01;;;x;9160;x;user;1;;;;Broken Code\n"
)
ELAS_TRANSFERS = (
    "datum;van;naar;bedrag;omschrijving\n"
    "2026-01-05 10:00:00;DU-001;DU-002;60;soep\n"
    "12/02/2026;DU-002;DU-003;120,0;fiets hersteld\n"
    "2026-03-01;DU-003;DU-001;30;eieren\n"
)


@pytest.fixture
def elas(tmp_path: Path) -> tuple[Path, Path]:
    members = tmp_path / "leden.csv"
    members.write_bytes(ELAS_MEMBERS.encode("latin-1"))
    transfers = tmp_path / "transacties.csv"
    transfers.write_bytes(ELAS_TRANSFERS.encode("latin-1"))
    return members, transfers


def count(engine: Engine, table: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def members_of(sheet_path: Path, engine: Engine, *, dry_run: bool, decimals: int = 0) -> Report:
    sheet = read_sheet(sheet_path, ("code", "name"))
    return import_members(engine, sheet, prefix="DU", decimals=decimals, dry_run=dry_run, now=NOW)


def test_dry_run_reports_every_problem_by_line_and_changes_nothing(
    engine: Engine, elas: tuple[Path, Path]
) -> None:
    report = members_of(elas[0], engine, dry_run=True)
    # ABC, no number, is a code like any other: it gets the lowest free number.
    assert report.problems == ["line 3: DU-002: limits are not numbers"]  # -1000,5, 0 decimals
    assert count(engine, "members") == 1  # only the group account


def test_a_real_run_is_all_or_nothing(engine: Engine, elas: tuple[Path, Path]) -> None:
    report = members_of(elas[0], engine, dry_run=False)
    assert report.problems and report.added == 0
    assert count(engine, "members") == 1


def test_import_then_again_adds_nothing(engine: Engine, tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    lines = ELAS_MEMBERS.replace("-1000,5", "-1000").splitlines()
    good.write_bytes(("\n".join(lines[:-1]) + "\n").encode("latin-1"))
    first = members_of(good, engine, dry_run=False)
    assert (first.added, first.problems) == (3, [])
    again = members_of(good, engine, dry_run=False)
    assert (again.added, again.unchanged) == (0, 3)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT number, name, status, role, min_balance FROM members ORDER BY number")
        ).all()
    assert [tuple(r) for r in rows][1:] == [
        (1, "An Peeters", "active", "member", -1500),  # an admin there: bot.toml decides
        (2, "Bö Janssens", "active", "member", -1000),
        (3, "Céline De Smet", "leaving", "member", None),
    ]
    transfers = tmp_path / "t.csv"
    transfers.write_bytes(ELAS_TRANSFERS.encode("latin-1"))
    sheet = read_sheet(transfers, ("date", "from", "to", "amount"))
    done = import_transfers(engine, sheet, prefix="DU", decimals=0, tz=TZ, dry_run=False)
    assert (done.added, done.problems) == (3, [])
    twice = import_transfers(engine, sheet, prefix="DU", decimals=0, tz=TZ, dry_run=False)
    assert (twice.added, twice.unchanged) == (0, 3)
    assert ledger_problems(engine, make_settings().group_limits) == []
    with engine.connect() as connection:
        balances = dict(connection.execute(text("SELECT number, balance FROM members")).all())
    assert balances == {0: 0, 1: -30, 2: -60, 3: 90}


def test_alike_rows_are_alike_transfers_each_booked_once(engine: Engine, tmp_path: Path) -> None:
    """Soup bought twice on one day: two rows, two transfers, however often imported."""
    good = tmp_path / "good.csv"
    lines = ELAS_MEMBERS.replace("-1000,5", "-1000").splitlines()
    good.write_bytes(("\n".join(lines[:-1]) + "\n").encode("latin-1"))
    members_of(good, engine, dry_run=False)
    twice = tmp_path / "twice.csv"
    row = "2026-01-05;DU-001;DU-002;60;soep\n"
    twice.write_bytes(("datum;van;naar;bedrag;omschrijving\n" + row + row).encode("latin-1"))
    sheet = read_sheet(twice, ("date", "from", "to", "amount"))
    first = import_transfers(engine, sheet, prefix="DU", decimals=0, tz=TZ, dry_run=False)
    assert (first.added, first.unchanged, first.problems) == (2, 0, [])
    again = import_transfers(engine, sheet, prefix="DU", decimals=0, tz=TZ, dry_run=False)
    assert (again.added, again.unchanged) == (0, 2)
    assert count(engine, "transfers") == 2
    assert ledger_problems(engine, make_settings().group_limits) == []


def test_transfers_need_their_members_first(engine: Engine, elas: tuple[Path, Path]) -> None:
    sheet = read_sheet(elas[1], ("date", "from", "to", "amount"))
    report = import_transfers(engine, sheet, prefix="DU", decimals=0, tz=TZ, dry_run=True)
    assert report.problems[0] == "line 2: member 'DU-001' is unknown: import the members first"
    assert count(engine, "transfers") == 0


def test_unknown_columns_are_named_and_can_be_mapped(tmp_path: Path) -> None:
    odd = tmp_path / "odd.csv"
    odd.write_text("nummer,wie\nDU-001,An\n", encoding="utf-8")
    with pytest.raises(ImportError_, match="no column for code, name"):
        read_sheet(odd, ("code", "name"))
    sheet = read_sheet(odd, ("code", "name"), {"nummer": "code", "wie": "name"})
    assert sheet.rows == [(2, {"code": "DU-001", "name": "An"})]


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_then_import_round_trips_exactly(
    engine: Engine, template_db: Path, tmp_path: Path, fmt: str, elas: tuple[Path, Path]
) -> None:
    good = tmp_path / "good.csv"
    good.write_bytes(
        "\n".join(ELAS_MEMBERS.replace("-1000,5", "-1000").splitlines()[:-1]).encode("latin-1")
    )
    members_of(good, engine, dry_run=False)
    sheet = read_sheet(elas[1], ("date", "from", "to", "amount"))
    import_transfers(engine, sheet, prefix="DU", decimals=0, tz=TZ, dry_run=False)
    fresh_path = tmp_path / "fresh.db"
    shutil.copy(template_db, fresh_path)
    fresh = make_engine(f"sqlite:///{fresh_path}")
    for what, fields in (
        ("members", ("code", "name")),
        ("transfers", ("date", "from", "to", "amount")),
    ):
        out = io.StringIO()
        rows = export_rows(engine, what, "DU", 0)  # type: ignore[arg-type]
        write_rows(rows, out, fmt)
        path = tmp_path / f"{what}.{fmt}"
        if fmt == "json":  # read back as the other system would, then as CSV to us
            listed = json.loads(out.getvalue())
            assert listed == json.loads(json.dumps(rows, default=str))
            out = io.StringIO()
            write_rows(listed, out, "csv")
        path.write_text(out.getvalue(), encoding="utf-8")
        sheet = read_sheet(path, fields)  # type: ignore[arg-type]
        if what == "members":
            report = import_members(fresh, sheet, prefix="DU", decimals=0, dry_run=False, now=NOW)
        else:
            report = import_transfers(fresh, sheet, prefix="DU", decimals=0, tz=TZ, dry_run=False)
        assert report.problems == []
    for what in ("members", "transfers"):
        assert export_rows(fresh, what, "DU", 0) == export_rows(engine, what, "DU", 0)  # type: ignore[arg-type]
    fresh.dispose()


# Balances only (groups that kept no transfers): Dutch headers, Latin-1, semicolons,
# decimal commas, an unknown member and a member listed twice.
GOOD_MEMBERS = "\n".join(ELAS_MEMBERS.replace("-1000,5", "-1000").splitlines()[:-1]) + "\n"
ELAS_BALANCES = (
    "letscode;naam;saldo\n"
    "DU-001;An Peeters;-120,0\n"
    "DU-002;Bö Janssens;200\n"
    "DU-003;Céline De Smet;-80\n"
    "DU 004;Niemand;10\n"
    "DU-002;Bö Janssens;veel\n"
)


def balances_of(
    path: Path,
    engine: Engine,
    *,
    dry_run: bool = False,
    via: bool = False,
    decimals: int = 0,
) -> BalancesReport:
    sheet = read_sheet(path, ("code", "balance"))
    limits = make_settings(currency={"decimals": decimals}).group_limits
    return import_balances(
        engine,
        sheet,
        prefix="DU",
        decimals=decimals,
        limits=limits,
        via_group_account=via,
        dry_run=dry_run,
        now=NOW,
        description="Beginsaldo (overgenomen)",
    )


@pytest.fixture
def members_in(engine: Engine, tmp_path: Path) -> Engine:
    path = tmp_path / "leden.csv"
    path.write_bytes(GOOD_MEMBERS.encode("latin-1"))
    assert members_of(path, engine, dry_run=False).added == 3
    return engine


def balances_file(tmp_path: Path, text: str, name: str = "saldi.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("latin-1"))
    return path


def balances(engine: Engine) -> dict[int, int]:
    with engine.connect() as connection:
        return dict(connection.execute(text("SELECT number, balance FROM members")).all())  # type: ignore[arg-type]


def test_balances_dry_run_lists_bookings_and_every_problem_by_line(
    members_in: Engine, tmp_path: Path
) -> None:
    report = balances_of(balances_file(tmp_path, ELAS_BALANCES), members_in, dry_run=True)
    assert report.problems == [
        "line 5: DU-004 is unknown: import the members first",
        "line 6: DU-002 twice in the file",
    ]
    assert report.booked == [
        "line 2: DU-001 An Peeters pays 120 to the group account DU-000",
        "line 3: DU-002 Bö Janssens gets 200 from the group account DU-000",
        "line 4: DU-003 Céline De Smet pays 80 to the group account DU-000",
    ]
    assert (report.added, report.total, report.group_change) == (3, 0, 0)
    assert count(members_in, "transfers") == 0


def test_balances_real_run_is_all_or_nothing(members_in: Engine, tmp_path: Path) -> None:
    report = balances_of(balances_file(tmp_path, ELAS_BALANCES), members_in)
    assert len(report.problems) == 2 and report.added == 0 and report.booked == []
    assert count(members_in, "transfers") == 0
    assert set(balances(members_in).values()) == {0}


def test_balances_import_twice_books_once(members_in: Engine, tmp_path: Path) -> None:
    good = balances_file(tmp_path, "\n".join(ELAS_BALANCES.splitlines()[:4]) + "\n")
    first = balances_of(good, members_in)
    assert (first.added, first.unchanged, first.problems) == (3, 0, [])
    assert balances(members_in) == {0: 0, 1: -120, 2: 200, 3: -80}
    again = balances_of(good, members_in)
    assert (again.added, again.unchanged, again.problems) == (0, 3, [])
    assert count(members_in, "transfers") == 3
    assert balances(members_in) == {0: 0, 1: -120, 2: 200, 3: -80}
    with members_in.connect() as connection:
        rows = connection.execute(
            text("SELECT kind, event_key, description FROM transfers ORDER BY id")
        ).all()
    assert [tuple(r) for r in rows] == [
        ("opening", "opening:1", "Beginsaldo (overgenomen)"),
        ("opening", "opening:2", "Beginsaldo (overgenomen)"),
        ("opening", "opening:3", "Beginsaldo (overgenomen)"),
    ]
    assert ledger_problems(members_in, make_settings().group_limits) == []
    # A different balance for a member already opened is refused, never booked twice.
    changed = balances_file(tmp_path, "code;saldo\nDU-001;-100\nDU-002;180\nDU-003;-80\n", "b.csv")
    refused = balances_of(changed, members_in)
    assert refused.problems == [
        "line 2: DU-001 has an opening balance of -120 already (transfer #1), not -100;"
        " correct the difference with a booking (/book), not a second import",
        "line 3: DU-002 has an opening balance of 200 already (transfer #2), not 180;"
        " correct the difference with a booking (/book), not a second import",
    ]
    assert count(members_in, "transfers") == 3


def test_unbalanced_balances_are_refused_with_the_difference(
    members_in: Engine, tmp_path: Path
) -> None:
    path = balances_file(tmp_path, "letscode;saldo\nDU-001;-100\nDU-002;250\n")
    refused = balances_of(path, members_in)
    assert refused.problems == [
        "the balances sum to 150, not 0 (a difference of 150); add a line for the group"
        " account DU-000 with -150, or use --via-group-account to let the group account"
        " carry the difference"
    ]
    assert count(members_in, "transfers") == 0
    carried = balances_of(path, members_in, via=True)
    assert (carried.added, carried.problems, carried.group_change) == (2, [], -150)
    assert balances(members_in) == {0: -150, 1: -100, 2: 250, 3: 0}
    assert ledger_problems(members_in, make_settings().group_limits) == []
    again = balances_of(path, members_in, via=True)
    assert (again.added, again.unchanged) == (0, 2)


def test_a_line_for_the_group_account_balances_the_file(members_in: Engine, tmp_path: Path) -> None:
    path = balances_file(tmp_path, "code;saldo\nDU-000;-150\nDU-001;-100\nDU-002;250\n")
    report = balances_of(path, members_in)
    assert (report.added, report.problems, report.total) == (2, [], 0)
    assert balances(members_in) == {0: -150, 1: -100, 2: 250, 3: 0}


def test_opening_balances_respect_limits_and_come_first(members_in: Engine, tmp_path: Path) -> None:
    path = balances_file(tmp_path, "code;saldo\nDU-001;-1600\nDU-002;1600\nDU-003;0\n")
    report = balances_of(path, members_in, dry_run=True)
    assert report.problems == [
        "line 2: DU-001: balance -1600 is below its minimum -1500; give the member a lower"
        " limit first (minlimit in the members file, or /limit)",
        "line 3: DU-002: balance 1600 is above its maximum 1000; give the member a higher"
        " limit first (maxlimit in the members file, or /limit)",
    ]
    assert report.zero == 1
    transfers = balances_file(tmp_path, ELAS_TRANSFERS, "t.csv")
    sheet = read_sheet(transfers, ("date", "from", "to", "amount"))
    import_transfers(members_in, sheet, prefix="DU", decimals=0, tz=TZ, dry_run=False)
    late = balances_of(balances_file(tmp_path, "code;saldo\nDU-001;-5\nDU-002;5\n"), members_in)
    assert late.problems[0] == (
        "line 2: DU-001 has transfers already; an opening balance must be the first booking"
        " of an account"
    )


def test_balances_with_decimal_commas(engine: Engine, tmp_path: Path) -> None:
    members_of(
        balances_file(tmp_path, GOOD_MEMBERS, "leden.csv"), engine, dry_run=False, decimals=2
    )
    path = balances_file(tmp_path, "letscode;stand\nDU-001;-12,50\nDU-002;-1000\nDU-003;1.012,50\n")
    report = balances_of(path, engine, decimals=2)
    assert report.problems == []
    assert balances(engine) == {0: 0, 1: -1250, 2: -100000, 3: 101250}


def test_exported_members_import_as_balances(
    members_in: Engine, template_db: Path, tmp_path: Path
) -> None:
    """Another system's member list with balances moves in as opening balances."""
    sheet = read_sheet(balances_file(tmp_path, ELAS_TRANSFERS, "t.csv"), TRANSFER_FIELDS)
    import_transfers(members_in, sheet, prefix="DU", decimals=0, tz=TZ, dry_run=False)
    out = io.StringIO()
    write_rows(export_rows(members_in, "members", "DU", 0), out, "csv")
    exported = tmp_path / "members.csv"
    exported.write_text(out.getvalue(), encoding="utf-8")
    fresh_path = tmp_path / "fresh.db"
    shutil.copy(template_db, fresh_path)
    fresh = make_engine(f"sqlite:///{fresh_path}")
    members_of(exported, fresh, dry_run=False)
    report = balances_of(exported, fresh)
    assert report.problems == [] and report.added == 3
    assert balances(fresh) == balances(members_in)
    fresh.dispose()


def test_import_balances_from_the_command_line(tmp_path: Path) -> None:
    from tests.test_cli import CONFIG, letsbot

    (tmp_path / "bot.toml").write_text(CONFIG, encoding="utf-8")
    assert letsbot("db", "upgrade", cwd=tmp_path).returncode == 0
    balances_file(tmp_path, GOOD_MEMBERS, "leden.csv")
    assert letsbot("import", "members", "leden.csv", cwd=tmp_path).returncode == 0
    balances_file(tmp_path, "letscode;saldo\nDU-001;-100\nDU-002;250,0\n")
    dry = letsbot("import", "balances", "saldi.csv", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 1
    assert dry.stdout.splitlines() == [
        "saldi.csv: the balances sum to 150, not 0 (a difference of 150); add a line for the"
        " group account DU-000 with -150, or use --via-group-account to let the group account"
        " carry the difference",
        "saldi.csv: line 2: DU-001 An Peeters pays 100 to the group account DU-000",
        "saldi.csv: line 3: DU-002 Bö Janssens gets 250 from the group account DU-000",
        "would book 2 opening balances; 0 already booked, 0 at zero; the file sums to 150;"
        " the group account DU-000 would change by -150",
    ]
    real = letsbot("import", "balances", "saldi.csv", cwd=tmp_path)
    assert real.returncode == 1 and "nothing imported: 1 problem(s)" in real.stdout
    via = letsbot("import", "balances", "saldi.csv", "--via-group-account", cwd=tmp_path)
    assert via.returncode == 0, via.stdout + via.stderr
    assert via.stdout.endswith(
        "booked 2 opening balances; 0 already booked, 0 at zero; the file sums to 150;"
        " the group account DU-000 changed by -150\n"
    )
    again = letsbot("import", "balances", "saldi.csv", "--via-group-account", cwd=tmp_path)
    assert "booked 0 opening balances; 2 already booked" in again.stdout
    assert letsbot("check", cwd=tmp_path).stdout.startswith("OK: 3 members, 2 transfers")
    exported = letsbot("export", "transfers", "--format", "json", cwd=tmp_path)
    assert exported.stdout.count('"kind": "opening"') == 2
    assert letsbot("export", "events", "--format", "json", cwd=tmp_path).stdout == "[]\n"
    listings = letsbot("export", "listings", "--output", "aanbod.csv", cwd=tmp_path)
    assert listings.returncode == 0 and "wrote 0 listings to aanbod.csv" in listings.stderr
    assert (tmp_path / "aanbod.csv").read_bytes() == (
        b"id,kind,owner,text,tags,price,created,expires,withdrawn,status\r\n"
    )


def test_export_listings_and_events_with_everything_needed_to_move(
    driver: Driver, engine: Engine
) -> None:
    driver.member("an")
    driver.member("bo", language="en")
    driver.say("an", "/aanbod Soep in het Café De Zwaan #eten #Café prijs: 30 pluimen per pot")
    driver.say("bo", "/want Someone to trim my hedge #tuin")
    driver.say("an", "/vraag Ladder tot 5/12")
    driver.say("bo", "/withdraw 2")
    driver.say(
        "admin",
        "/activiteit nieuw markt 12/12 10:00-16:00 Ruilmarkt @ Parochiezaal elke week tot 19/12",
    )
    driver.say("admin", "ja")
    driver.say("an", "/ikkom 1")
    driver.say("bo", "/notgoing 1")
    driver.say("admin", "/activiteit annuleer 2 te weinig kramen")
    driver.say("admin", "ja")
    now = datetime(2026, 12, 10, tzinfo=UTC)
    listings = export_rows(engine, "listings", "DU", 0, now=now)
    assert [(r["id"], r["kind"], r["owner"], r["status"]) for r in listings] == [
        (1, "offer", "DU-002", "live"),
        (2, "want", "DU-003", "withdrawn"),
        (3, "want", "DU-002", "expired"),
    ]
    assert listings[0] == {
        "id": 1,
        "kind": "offer",
        "owner": "DU-002",
        "text": "Soep in het Café De Zwaan #eten #Café",
        "tags": ["café", "eten"],
        "price": "30 pluimen per pot",
        "created": "2026-12-01T08:00:00+00:00",
        "expires": "2027-03-01T23:00:00+00:00",
        "withdrawn": None,
        "status": "live",
    }
    assert listings[1]["withdrawn"] == "2026-12-01T08:00:00+00:00"
    assert listings[2]["expires"] == "2026-12-05T23:00:00+00:00"
    events = export_rows(engine, "events", "DU", 0)
    assert events == [
        {
            "id": 1,
            "series": 1,
            "kind": "market",
            "title": "Ruilmarkt",
            "place": "Parochiezaal",
            "starts": "2026-12-12T09:00:00+00:00",
            "ends": "2026-12-12T15:00:00+00:00",
            "status": "scheduled",
            "cancel_reason": None,
            "created_by": "DU-001",
            "created": "2026-12-01T08:00:00+00:00",
            "going": ["DU-002"],
            "not_going": ["DU-003"],
        },
        {
            "id": 2,
            "series": 1,
            "kind": "market",
            "title": "Ruilmarkt",
            "place": "Parochiezaal",
            "starts": "2026-12-19T09:00:00+00:00",
            "ends": "2026-12-19T15:00:00+00:00",
            "status": "cancelled",
            "cancel_reason": "te weinig kramen",
            "created_by": "DU-001",
            "created": "2026-12-01T08:00:00+00:00",
            "going": [],
            "not_going": [],
        },
    ]
    out = io.StringIO()
    write_rows(listings, out, "csv")
    assert out.getvalue().splitlines()[:2] == [
        "id,kind,owner,text,tags,price,created,expires,withdrawn,status",
        "1,offer,DU-002,Soep in het Café De Zwaan #eten #Café,café eten,30 pluimen per pot,"
        "2026-12-01T08:00:00+00:00,2027-03-01T23:00:00+00:00,,live",
    ]
    out = io.StringIO()
    write_rows(events, out, "json")
    assert json.loads(out.getvalue())[0]["going"] == ["DU-002"]
    out = io.StringIO()
    write_rows(events, out, "csv")
    assert out.getvalue().splitlines()[1].endswith(",DU-002,DU-003")


def test_balances_on_both_databases(db_url: str, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    members_of(balances_file(tmp_path, GOOD_MEMBERS, "leden.csv"), engine, dry_run=False)
    path = balances_file(tmp_path, "code;saldo\nDU-001;-100\nDU-002;250\n")
    assert balances_of(path, engine, via=True).added == 2
    assert balances_of(path, engine, via=True).unchanged == 2
    assert balances(engine) == {0: -150, 1: -100, 2: 250, 3: 0}
    assert ledger_problems(engine, make_settings().group_limits) == []
    engine.dispose()


# Transfers booked exactly: in date order, keyed on the source's ids, reversals
# linked, limits and the source's balances checked at the end.
LIMITS = make_settings().group_limits
HEADER = "id;datum;van;naar;bedrag;omschrijving;kind;reverses\n"


def group_on(db_url: str, tmp_path: Path) -> Engine:
    """A database of either kind with An (DU-001), Bö (DU-002) and Céline (DU-003, leaving)."""
    engine = make_engine(db_url)
    assert members_of(balances_file(tmp_path, GOOD_MEMBERS, "leden.csv"), engine, dry_run=False)
    return engine


def transfers_sheet(tmp_path: Path, text: str, name: str = "t.csv") -> Sheet:
    return read_sheet(balances_file(tmp_path, text, name), TRANSFER_FIELDS)


def book(engine: Engine, sheet: Sheet, *, dry_run: bool = False, **options: Any) -> TransfersReport:
    return import_transfers(
        engine, sheet, prefix="DU", decimals=0, tz=TZ, dry_run=dry_run, limits=LIMITS, **options
    )


def ledger(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT id, amount, description, kind, reverses_id FROM transfers ORDER BY id")
        ).all()
    return [tuple(row) for row in rows]


def test_a_newest_first_file_is_booked_oldest_first(db_url: str, tmp_path: Path) -> None:
    engine = group_on(db_url, tmp_path)
    newest_first = (
        "datum;van;naar;bedrag;omschrijving\n"
        "2026-03-01 12:00:00;DU-003;DU-001;30;eieren\n"
        "2026-02-12 10:00:00;DU-002;DU-003;5;later die dag\n"  # the same time: the file's
        "2026-02-12 10:00:00;DU-002;DU-003;4;eerst\n"  # own order, read backwards
        "2026-01-05 10:00:00;DU-001;DU-002;60;soep\n"
    )
    report = book(engine, transfers_sheet(tmp_path, newest_first))
    assert (report.added, report.problems, report.kept_numbers) == (4, [], False)
    assert [row[2] for row in ledger(engine)] == ["soep", "eerst", "later die dag", "eieren"]
    assert book(engine, transfers_sheet(tmp_path, newest_first)).unchanged == 4
    assert ledger_problems(engine, LIMITS) == []
    engine.dispose()


def test_the_source_ids_are_the_keys_and_the_numbers(db_url: str, tmp_path: Path) -> None:
    engine = group_on(db_url, tmp_path)
    rows = (
        "14;2026-03-01;DU-003;DU-001;30;eieren;;\n"
        "12;2026-02-12;DU-002;DU-003;4;soep;;\n"
        "13;2026-02-12;DU-002;DU-003;4;soep;;\n"  # alike, but their own ids
        "11;2026-01-05;DU-001;DU-002;60;soep;payment;\n"
    )
    first = book(engine, transfers_sheet(tmp_path, HEADER + rows))
    assert (first.added, first.problems, first.kept_numbers) == (4, [], True)
    assert [row[:3] for row in ledger(engine)] == [
        (11, 60, "soep"),
        (12, 4, "soep"),
        (13, 4, "soep"),
        (14, 30, "eieren"),
    ]
    again = book(engine, transfers_sheet(tmp_path, HEADER + rows))
    assert (again.added, again.unchanged, again.problems) == (0, 4, [])
    # The same id with other content: an edited file, or another source; never a second transfer.
    changed = HEADER + "12;2026-02-12;DU-002;DU-003;5;soep;;\n15;2026-04-01;DU-001;DU-003;1;x;;\n"
    refused = book(engine, transfers_sheet(tmp_path, changed))
    assert refused.problems == [
        "line 2: id 12 was imported before with other content (transfer #12); a changed file?"
        " correct a transfer with a booking, not an import"
    ]
    assert refused.added == 0 and len(ledger(engine)) == 4
    twice = HEADER + "20;2026-04-01;DU-001;DU-003;1;x;;\n20;2026-04-02;DU-001;DU-003;2;y;;\n"
    assert book(engine, transfers_sheet(tmp_path, twice)).problems == [
        "line 3: id 20 twice in the file (line 2 too)"
    ]
    # Numbers taken here already: the transfers get new ones, and the report says so.
    taken = HEADER + "11;2026-04-01;DU-001;DU-003;1;brood;;\n"
    moved = book(engine, transfers_sheet(tmp_path, taken))
    assert (moved.added, moved.kept_numbers, moved.problems) == (0, False, [moved.problems[0]])
    assert moved.problems[0].startswith("line 2: id 11 was imported before with other content")
    fresh = HEADER + "1;2026-04-01;DU-001;DU-003;1;brood;;\n"
    assert book(engine, transfers_sheet(tmp_path, fresh)).kept_numbers is True
    late = HEADER + "1b;2026-04-01;DU-001;DU-003;1;brood;;\n12x;2026-04-01;DU-001;DU-003;2;x;;\n"
    late_report = book(engine, transfers_sheet(tmp_path, late))
    assert (late_report.added, late_report.kept_numbers) == (2, False)
    assert [row[0] for row in ledger(engine)][-2:] == [15, 16]  # after the highest number
    assert ledger_problems(engine, LIMITS) == []
    engine.dispose()


def test_numbers_taken_here_are_not_kept(engine: Engine, tmp_path: Path) -> None:
    members_of(balances_file(tmp_path, GOOD_MEMBERS, "leden.csv"), engine, dry_run=False)
    book(engine, transfers_sheet(tmp_path, ELAS_TRANSFERS))
    report = book(engine, transfers_sheet(tmp_path, HEADER + "2;2026-04-01;DU-001;DU-003;1;x;;\n"))
    assert (report.added, report.kept_numbers) == (1, False)
    assert report.warnings == [
        "transfer numbers of the file are taken here (#2 first): the transfers get new numbers"
    ]
    assert [row[0] for row in ledger(engine)] == [1, 2, 3, 4]
    assert ledger_problems(engine, LIMITS) == []


def test_an_unknown_kind_is_a_problem_of_its_line(engine: Engine, tmp_path: Path) -> None:
    members_of(balances_file(tmp_path, GOOD_MEMBERS, "leden.csv"), engine, dry_run=False)
    sheet = transfers_sheet(
        tmp_path,
        "datum;van;naar;bedrag;omschrijving;kind\n"
        "2026-01-05;DU-001;DU-002;60;soep;payment\n"
        "2026-01-06;DU-001;DU-002;60;soep;betaling\n",
    )
    report = book(engine, sheet)
    assert report.problems == [
        "line 3: kind 'betaling' is unknown (one of booking, group, opening, payment, request, rest,"
        " reversal, start_credit)"
    ]
    assert report.added == 0 and ledger(engine) == []


def test_reversals_point_at_the_transfer_of_their_source_id(db_url: str, tmp_path: Path) -> None:
    engine = group_on(db_url, tmp_path)
    first = (
        "1;2026-01-05;DU-001;DU-002;60;soep;payment;\n"
        "2;2026-01-06;DU-001;DU-003;10;eieren;payment;\n"
        "3;2026-01-07;DU-002;DU-001;60;Terugboeking van #1;reversal;1\n"
    )
    assert book(engine, transfers_sheet(tmp_path, HEADER + first)).problems == []
    later = HEADER + "4;2026-01-08;DU-003;DU-001;10;Terugboeking van #2;;2\n"  # no kind given
    assert book(engine, transfers_sheet(tmp_path, later, "later.csv")).problems == []
    assert ledger(engine)[2:] == [
        (3, 60, "Terugboeking van #1", "reversal", 1),
        (4, 10, "Terugboeking van #2", "reversal", 2),
    ]
    wrong = (
        HEADER + "5;2026-01-09;DU-002;DU-001;60;nog eens;reversal;1\n"
        "6;2026-01-09;DU-002;DU-001;60;nergens;reversal;99\n"
        "7;2026-01-09;DU-002;DU-001;1;te vroeg;reversal;8\n"
        "8;2026-01-10;DU-001;DU-002;1;later;payment;\n"
    )
    report = book(engine, transfers_sheet(tmp_path, wrong, "wrong.csv"))
    assert report.problems == [
        "line 2: reverses 1 (transfer #1), reversed already by #3",
        "line 3: reverses 99: no transfer with that id in the file or imported before",
        "line 4: reverses 8 (line 5), which is not booked before it",
    ]
    assert len(ledger(engine)) == 4
    # A reversal pays the same amount back between the same two members, and says so.
    nonsense = (
        HEADER + "9;2026-01-11;DU-001;DU-002;5;brood;payment;\n"
        "10;2026-01-12;DU-001;DU-002;5;dezelfde kant op;reversal;9\n"
        "11;2026-01-12;DU-002;DU-001;4;te weinig;reversal;9\n"
        "12;2026-01-12;DU-003;DU-001;5;andere leden;reversal;9\n"
        "13;2026-01-12;DU-002;DU-001;5;zonder verwijzing;reversal;\n"
        "14;2026-01-12;DU-002;DU-001;5;een betaling;payment;9\n"
    )
    report = book(engine, transfers_sheet(tmp_path, nonsense, "nonsense.csv"))
    assert report.problems == [
        "line 6: a reversal names the transfer it undoes (the reverses column)",
        "line 7: reverses 9 but its kind is payment, not reversal",
        "line 3: reverses 9 (transfer #9) but doesn't undo it: a reversal pays the same amount"
        " back between the same two members",
        "line 4: reverses 9 (transfer #9) but doesn't undo it: a reversal pays the same amount"
        " back between the same two members",
        "line 5: reverses 9 (transfer #9) but doesn't undo it: a reversal pays the same amount"
        " back between the same two members",
    ]
    assert len(ledger(engine)) == 4
    assert ledger_problems(engine, LIMITS) == []
    engine.dispose()


# An's history crosses her limit for a while and ends within it; Bö ends above his
# maximum, Céline (leaving) below the group's minimum.
OVER_LIMITS = (
    "datum;van;naar;bedrag;omschrijving\n"
    "2026-01-05;DU-001;DU-002;1600;fiets\n"
    "2026-02-01;DU-003;DU-001;1700;zonnepaneel\n"
)


def test_limits_are_checked_on_the_balances_at_the_end(db_url: str, tmp_path: Path) -> None:
    engine = group_on(db_url, tmp_path)
    sheet = transfers_sheet(tmp_path, OVER_LIMITS)
    expected = [
        "DU-002 Bö Janssens (last transfer on line 2): the balance after the import, 1600, is"
        " above its maximum 1000 (letsbot check would report it); re-run with --widen-limits"
        " to make 1600 its maximum",
        "DU-003 Céline De Smet (last transfer on line 3): the balance after the import, -1700,"
        " is below its minimum -1500 (letsbot check would report it); re-run with"
        " --widen-limits to make -1700 its minimum",
    ]
    dry = book(engine, sheet, dry_run=True)
    assert (dry.problems, dry.added, dry.widened) == (expected, 2, [])
    real = book(engine, sheet)
    assert (real.problems, real.added) == (expected, 0)
    assert ledger(engine) == [] and set(balances(engine).values()) == {0}
    would = book(engine, sheet, dry_run=True, widen_limits=True)
    widened = [
        "DU-002 Bö Janssens (last transfer on line 2): maximum 1000 -> 1600, the balance after"
        " the import",
        "DU-003 Céline De Smet (last transfer on line 3): minimum -1500 -> -1700, the balance"
        " after the import",
    ]
    assert (would.problems, would.widened) == ([], widened)
    with engine.connect() as connection:
        limits = connection.execute(
            text("SELECT number, min_balance, max_balance FROM members ORDER BY number")
        ).all()
    assert [tuple(row) for row in limits][2:] == [(2, -1000, 1000), (3, None, None)]
    done = book(engine, sheet, widen_limits=True)
    assert (done.problems, done.added, done.widened) == ([], 2, widened)
    assert ledger_problems(engine, LIMITS) == []
    with engine.connect() as connection:
        limits = connection.execute(
            text("SELECT number, min_balance, max_balance FROM members ORDER BY number")
        ).all()
    assert [tuple(row) for row in limits][2:] == [(2, -1000, 1600), (3, -1700, None)]
    engine.dispose()


def test_inactive_members_history_and_soft_limits(engine: Engine, tmp_path: Path) -> None:
    """History is history: an inactive member's is booked and their balance not held
    to a limit (check doesn't either); soft limits warn and book."""
    members_of(balances_file(tmp_path, GOOD_MEMBERS, "leden.csv"), engine, dry_run=False)
    with engine.begin() as connection:
        connection.execute(text("UPDATE members SET status = 'inactive' WHERE number = 3"))
    sheet = transfers_sheet(tmp_path, OVER_LIMITS)
    report = book(engine, sheet, dry_run=True)
    assert [problem[:6] for problem in report.problems] == ["DU-002"]
    soft = import_transfers(
        engine,
        sheet,
        prefix="DU",
        decimals=0,
        tz=TZ,
        dry_run=False,
        limits=make_settings(limits={"soft": True}).group_limits,
    )
    assert (soft.problems, soft.added) == ([], 2)
    assert soft.warnings == [
        "DU-002 Bö Janssens (last transfer on line 2): the balance after the import, 1600, is"
        " above its maximum 1000; it stands, as the group's limits are soft"
    ]
    assert balances(engine) == {0: 0, 1: 100, 2: 1600, 3: -1700}
    assert ledger_problems(engine, make_settings(limits={"soft": True}).group_limits) == []


@dataclass(frozen=True)
class CappedSheet(Sheet):
    """A file as long as the source exports at most."""

    capped: bool = True


def test_a_file_missing_its_oldest_transfers_is_refused(db_url: str, tmp_path: Path) -> None:
    engine = group_on(db_url, tmp_path)
    # The source's balances after all three transfers; the file lost the oldest one.
    shown = {1: -30, 2: -60, 3: 90}
    newest = "\n".join(ELAS_TRANSFERS.splitlines()[:1] + ELAS_TRANSFERS.splitlines()[2:]) + "\n"
    sheet = CappedSheet(transfers_sheet(tmp_path, newest).rows)
    report = book(engine, sheet, expected_balances=shown)
    assert report.warnings == [
        "the file holds 2 rows, as many as the source exports at most: the oldest transfers"
        " may be missing; give the balances the source shows to compare"
    ]
    assert report.problems == [
        "DU-001 An Peeters: the transfers give a balance of 30, the source shows -30"
        " (a difference of -60)",
        "DU-002 Bö Janssens: the transfers give a balance of -120, the source shows -60"
        " (a difference of 60)",
        "the balances differ from the source's: transfers are missing (an export may hold"
        " only the newest), or the source's balances include more; import the whole history,"
        " or opening balances instead (import balances)",
    ]
    assert report.added == 0 and ledger(engine) == []
    whole = book(engine, transfers_sheet(tmp_path, ELAS_TRANSFERS), expected_balances=shown)
    assert (whole.problems, whole.added) == ([], 3)
    assert ledger_problems(engine, LIMITS) == []
    engine.dispose()


@pytest.mark.parametrize("first", ["=", "+", "-", "@", "\t", "\r"])
def test_a_cell_a_spreadsheet_would_run_is_quoted_and_read_back_exactly(first: str) -> None:
    cell = f'{first}HYPERLINK("http://x")'
    assert neutralised(cell) == "'" + cell
    assert plain_cell(neutralised(cell)) == cell
    quoted = "'" + cell  # a text that looks quoted already gets a quote of its own
    assert neutralised(quoted) == "''" + cell and plain_cell(neutralised(quoted)) == quoted
    out = io.StringIO()
    write_rows([{"description": cell, "balance": "-12.50"}], out, "csv")
    assert out.getvalue().splitlines()[0] == "description,balance"
    assert out.getvalue().endswith(",-12.50\r\n")
    assert next(csv.reader(io.StringIO(out.getvalue().split("\r\n", 1)[1])))[0] == "'" + cell
    out = io.StringIO()
    write_rows([{"description": cell}], out, "json")
    assert json.loads(out.getvalue()) == [{"description": cell}]


@pytest.mark.parametrize("cell", ["-12.50", "-5", "12", "'-5", "'plain", "plain", "", "'", "-"])
def test_numbers_and_plain_text_stay_as_they_are(cell: str) -> None:
    kept = cell not in ("-",)
    assert (neutralised(cell) == cell) is kept
    assert plain_cell(neutralised(cell)) == cell


@pytest.mark.parametrize("what", ["members", "transfers", "listings", "events", "partner-payments"])
def test_an_empty_export_still_has_its_header(engine: Engine, what: str) -> None:
    out = io.StringIO()
    rows = [row for row in export_rows(engine, what, "DU", 0) if not row.get("group_account")]  # type: ignore[arg-type]
    write_rows(rows, out, "csv", COLUMNS[what])
    assert out.getvalue() == ",".join(COLUMNS[what]) + "\r\n"


@pytest.mark.postgres
def test_two_imports_of_one_file_at_once_book_each_transfer_once(
    pg_url: str, tmp_path: Path
) -> None:
    engine = group_on(pg_url, tmp_path)
    row = "2026-01-05;DU-001;DU-002;1;soep\n"
    many = "datum;van;naar;bedrag;omschrijving\n" + row * 20 + ELAS_TRANSFERS.split("\n", 1)[1]
    sheet = transfers_sheet(tmp_path, many)
    barrier = threading.Barrier(2)
    results: list[TransfersReport | BaseException] = []

    def run() -> None:
        own = make_engine(pg_url)  # a connection of its own, as a second volunteer has
        try:
            barrier.wait()
            results.append(book(own, sheet))
        except BaseException as error:  # shown by the assertion below
            results.append(error)
        finally:
            own.dispose()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reports = [r for r in results if isinstance(r, TransfersReport)]
    assert len(reports) == 2, results
    assert sorted((r.added, r.unchanged, tuple(r.problems)) for r in reports) == [
        (0, 23, ()),
        (23, 0, ()),
    ]
    assert len(ledger(engine)) == 23
    assert ledger_problems(engine, LIMITS) == []
    engine.dispose()


def test_a_file_imported_before_ids_were_read_is_found_booked(
    engine: Engine, tmp_path: Path
) -> None:
    members_of(balances_file(tmp_path, GOOD_MEMBERS, "leden.csv"), engine, dry_run=False)
    rows = ["2026-01-05;DU-001;DU-002;60;soep", "2026-01-05;DU-001;DU-002;60;soep"]
    without = "datum;van;naar;bedrag;omschrijving\n" + "\n".join(rows) + "\n"
    assert book(engine, transfers_sheet(tmp_path, without)).added == 2
    with_ids = "id;datum;van;naar;bedrag;omschrijving\n" + "".join(
        f"{n};{row}\n" for n, row in enumerate(rows, start=7)
    )
    again = book(engine, transfers_sheet(tmp_path, with_ids, "ids.csv"))
    assert (again.added, again.unchanged, again.problems) == (0, 2, [])
    assert len(ledger(engine)) == 2
    assert ledger_problems(engine, LIMITS) == []
