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
    ImportError_,
    Report,
    export_rows,
    import_members,
    import_transfers,
    read_sheet,
    write_rows,
)
from tests.support import make_settings

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
    assert report.problems == [
        "line 3: limits are not numbers",  # -1000,5 with 0 decimals
        "line 5: member code 'ABC' is not DU-NNN",
    ]
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
