"""Moving in from eLAS/eLAND and out again: real files, real databases."""

from __future__ import annotations

import io
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, text

from storage.check import ledger_problems
from storage.database import make_engine
from storage.exchange import (
    TRANSFER_FIELDS,
    BalancesReport,
    ImportError_,
    Report,
    export_rows,
    import_balances,
    import_members,
    import_transfers,
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
        (1, "An Peeters", "active", "coordinator", -1500),
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
    assert report.problems[0] == "line 2: a member code is unknown: import the members first"
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
