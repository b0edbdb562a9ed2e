"""Moving in from eLAS/eLAND exactly: every letscode, external accounts, a second
look at the members, listings, and several files in one transaction."""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from storage.database import make_engine
from storage.exchange import export_rows, import_members, import_transfers, write_rows
from storage.exchange.codes import CodeBook
from storage.exchange.formats import read_source
from storage.exchange.listings_import import import_listings
from storage.exchange.members_import import MembersReport
from tests.support import START, Driver, make_settings
from tests.test_cli import CONFIG, letsbot

TZ = make_settings().tz

# An eLAS users export: every shape of letscode, an external account (status 7), an
# interlets account (role), Latin-1, semicolons.
USERS = (
    "letscode;name;fullname;accountrole;status;minlimit;maxlimit\n"
    "012;tine;Tine Peeters;admin;1;-500;500\n"
    "DU-0007;jan;Jan Zeven;user;3;;\n"
    "ILGENT;ilse;Ilse Gent;user;1;;\n"
    "AB12;abdel;Abdel Bakr;user;4;;\n"
    "DU-1000000;groot;Groot Getal;user;5;;\n"
    "XY-0003;lets xy;LETS Xy;user;7;-1000;1000\n"
    "GENT;lets gent;LETS Gent;interlets;1;;\n"
    "000;kas;Kas;admin;1;;\n"
)


@pytest.fixture
def db(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def members_in(engine: Engine, tmp_path: Path, body: str, **options: bool) -> MembersReport:
    path = tmp_path / "users.csv"
    path.write_bytes(body.encode("latin-1"))
    (sheet,) = read_source(path, None)
    assert sheet.kind == "members"
    return import_members(engine, sheet, prefix="DU", decimals=0, now=START, **options)  # type: ignore[arg-type]


def rows(engine: Engine, sql: str) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        found = [tuple(row) for row in connection.execute(text(sql))]
        connection.rollback()
    return found


def test_codes_of_every_shape_get_numbers_and_keep_their_old_code(
    db: Engine, tmp_path: Path
) -> None:
    report = members_in(db, tmp_path, USERS, dry_run=False)
    assert report.problems == []
    assert (report.added, report.unchanged) == (7, 1)  # 000 is the group account
    # Numbers kept first (12, 7); the others the lowest free numbers, in file order.
    assert report.mapping == [
        "ILGENT -> DU-001",
        "AB12 -> DU-002",
        "DU-1000000 -> DU-003",  # seven digits: no one could type it in a chat
        "XY-0003 -> DU-004",  # another prefix: another group's code
        "GENT -> DU-005",
    ]
    assert rows(db, "SELECT number, name, status, role, old_code FROM members ORDER BY number") == [
        (0, "", "active", "member", None),  # the group account, as it was
        (1, "Ilse Gent", "active", "member", "ILGENT"),
        (2, "Abdel Bakr", "active", "member", "AB12"),
        (3, "Groot Getal", "candidate", "member", "DU-1000000"),
        (4, "LETS Xy", "external", "member", "XY-0003"),
        (5, "LETS Gent", "external", "member", "GENT"),
        (7, "Jan Zeven", "active", "member", None),  # 3, a newcomer: active
        (12, "Tine Peeters", "active", "member", None),  # an admin there: bot.toml decides
    ]
    again = members_in(db, tmp_path, USERS, dry_run=False)
    assert (again.added, again.unchanged, again.changed, again.mapping) == (0, 8, 0, [])


def test_a_member_without_any_name_is_a_problem(db: Engine, tmp_path: Path) -> None:
    report = members_in(db, tmp_path, "letscode;fullname\n012;Tine\nILGENT;\n", dry_run=False)
    assert report.problems == ["line 3: ILGENT: no name (neither a full name nor a nickname)"]
    assert rows(db, "SELECT count(*) FROM members") == [(1,)]  # all or nothing


def test_a_numeric_code_equal_to_a_number_given_out_gets_its_own(
    db: Engine, tmp_path: Path
) -> None:
    assert members_in(
        db, tmp_path, "letscode;fullname\nILGENT;Ilse Gent\n", dry_run=False
    ).mapping == ["ILGENT -> DU-001"]
    # 001 in the old system is not Ilse: Ilse was ILGENT there.
    report = members_in(
        db, tmp_path, "letscode;fullname\n001;Jan Een\n002;Bo Twee\n", dry_run=False
    )
    assert (report.added, report.problems, report.mapping) == (2, [], ["001 -> DU-003"])
    assert rows(
        db, "SELECT number, name, old_code FROM members WHERE number > 0 ORDER BY number"
    ) == [
        (1, "Ilse Gent", "ILGENT"),
        (2, "Bo Twee", None),
        (3, "Jan Een", "001"),
    ]
    with db.connect() as connection:
        book = CodeBook.load(connection, "DU")
    assert book.resolve("001") == 3  # the old code
    assert book.resolve("DU-001") == 1  # our own code
    assert book.resolve("ILGENT") == 1
    assert book.resolve("002") == 2


def test_cells_name_members_by_either_code(db: Engine, tmp_path: Path) -> None:
    members_in(db, tmp_path, USERS + "0013;jan;Jan Dertien;user;1;;\n", dry_run=False)
    with db.connect() as connection:
        book = CodeBook.load(connection, "DU")
    cells = {
        "012": 12,
        "DU-012": 12,
        "du - 0012": 12,
        "  012  ": 12,
        "012 Tine": 12,  # eLAND: the code, then the name
        "012 tine peeters": 12,
        "Tine Peeters (012)": 12,
        "ilgent": 1,
        "ILGENT Ilse": 1,
        "Ilse Gent (ILGENT)": 1,
        "xy-0003": 4,
        "XY - 0003": 4,
        "DU-1000000": 3,
        "7": 7,
        "GENT": 5,
        "999": None,  # no one
        "NOBODY": None,
        "": None,
        "012 Jan Dertien": None,  # Tine's code, another member's name: which one?
    }
    assert {cell: book.resolve(cell) for cell in cells} == cells


def test_the_old_code_is_shown_in_the_members_list_and_history(db: Engine, tmp_path: Path) -> None:
    members_in(db, tmp_path, USERS, dry_run=False)
    transfers = tmp_path / "transactions.csv"
    transfers.write_text("date,from,to,amount,description\n2026-11-02,DU-002,DU-001,40,soep\n")
    (sheet,) = read_source(transfers, None)
    assert import_transfers(db, sheet, prefix="DU", decimals=0, tz=TZ, dry_run=False).added == 1
    driver = Driver(db, make_settings())
    driver.say("admin", "/start")
    listed = driver.say("admin", "/leden")
    assert "Ilse Gent (DU-001, voorheen ILGENT)" in listed
    assert "Tine Peeters (DU-012)" in listed  # kept her number: nothing to add
    assert "LETS Xy" not in listed and "LETS Gent" not in listed  # other groups' accounts
    code = re.search(r"([0-9]{4} [0-9]{4})", driver.say("admin", "/activeercode DU-001"))
    assert code is not None
    driver.say("ilse", f"/activeer {code[1]}")
    history = driver.say("ilse", "/overzicht")
    assert "+40 pluimen van Abdel Bakr (DU-002, voorheen AB12), soep" in history
    english = driver.say("ilse", "/lang en") and driver.say("ilse", "/history")
    assert "from Abdel Bakr (DU-002, formerly AB12)" in english
    exported = export_rows(db, "members", "DU", 0)
    assert [(r["code"], r["old_code"]) for r in exported][:3] == [
        ("DU-000", None),
        ("DU-001", "ILGENT"),
        ("DU-002", "AB12"),
    ]


def test_external_accounts_cannot_claim_vote_or_count(db: Engine, tmp_path: Path) -> None:
    members_in(db, tmp_path, USERS + "0020;an;An Twintig;user;1;;\n", dry_run=False)
    driver = Driver(db, make_settings())
    driver.say("admin", "/start")
    assert "rekening van een andere groep: die krijgt geen activeercode" in driver.say(
        "admin", "/activeercode DU-004"
    )
    assert "rekening van een andere groep" in driver.say("admin", "/activeercode DU-005")
    # An becomes another group's account after she claimed hers (the file says so now).
    code = re.search(r"([0-9]{4} [0-9]{4})", driver.say("admin", "/activeercode DU-020"))
    assert code is not None
    driver.say("an", f"/activeer {code[1]}")
    changed = USERS + "0020;an;An Twintig;user;7;;\n"
    report = members_in(db, tmp_path, changed, dry_run=False, update=True)
    assert report.changes == ["DU-020 An Twintig: status active -> external"]
    out = driver.say("admin", "/voorstel Markt op zaterdag")
    # Voters: admin, Tine, Jan (newcomer), Ilse, Abdel (secretariat); not the candidate,
    # not the three accounts of other groups.
    assert "minstens 2 van de 5 leden stemmen (quorum 25%)" in out
    assert "geen actief lid" in driver.say("an", "/stem 1 voor")
    assert "geen actief lid" in driver.say("admin", "/betaal DU-004 5 soep")
    figures = driver.say("admin", "/leden")
    assert "An Twintig" not in figures
    assert figures.splitlines()[0].endswith(
        "(6), en de groepsrekening:"
    )  # and the candidate Groot Getal


def test_a_second_look_at_the_members_changes_only_with_update(tmp_path: Path) -> None:
    (tmp_path / "bot.toml").write_text(CONFIG, encoding="utf-8")
    assert letsbot("db", "upgrade", cwd=tmp_path).returncode == 0
    (tmp_path / "users.csv").write_bytes(USERS.encode("latin-1"))
    first = letsbot("import", "users.csv", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "users.csv: new code ILGENT -> DU-001" in first.stdout
    assert "added 7 members; 1 already there" in first.stdout
    refused = letsbot("claim-code", "DU-004", cwd=tmp_path)
    assert refused.returncode == 1
    assert "DU-004: is an account of another group (external)" in refused.stderr
    handed = letsbot("claim-code", "--all", cwd=tmp_path).stdout
    assert "DU-001 Ilse Gent:" in handed and "DU-003 Groot Getal:" in handed
    assert "DU-004" not in handed and "DU-005" not in handed
    later = USERS.replace(
        "012;tine;Tine Peeters;admin;1;-500;500", "012;tine;Tine Peters;admin;2;-500;800"
    ).replace("ILGENT;ilse;Ilse Gent;user;1", "ILGENT;ilse;Ilse Gent;user;0")
    (tmp_path / "users.csv").write_bytes(later.encode("latin-1"))
    shown = letsbot("import", "users.csv", cwd=tmp_path)
    assert shown.returncode == 1
    changes = [
        "users.csv: DU-001 Ilse Gent: status active -> inactive",
        "users.csv: DU-012 Tine Peeters: name Tine Peeters -> Tine Peters",
        "users.csv: DU-012 Tine Peeters: status active -> leaving",
        "users.csv: DU-012 Tine Peeters: maximum 500 -> 800",
    ]
    for line in changes:
        assert line in shown.stdout.splitlines()
    assert "2 member(s) differ from the file" in shown.stdout
    members = "SELECT name, status, max_balance FROM members WHERE number = 12"
    ready = make_engine(f"sqlite:///{tmp_path / 'var' / 'letsbot.db'}")
    assert rows(ready, members) == [("Tine Peeters", "active", 500)]
    dry = letsbot("import", "users.csv", "--update", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0 and "; 2 would change" in dry.stdout
    assert rows(ready, members) == [("Tine Peeters", "active", 500)]
    applied = letsbot("import", "users.csv", "--update", cwd=tmp_path)
    assert applied.returncode == 0 and "; 2 changed" in applied.stdout
    assert rows(ready, members) == [("Tine Peters", "leaving", 800)]
    calm = letsbot("import", "users.csv", cwd=tmp_path)
    assert calm.returncode == 0 and "added 0 members; 8 already there" in calm.stdout
    ready.dispose()


LISTINGS = (
    "id,kind,owner,text,category,expires,created\n"
    "31,1,012,Soep op vrijdag,Eten & Drinken,2027-03-01,2026-11-01 10:00\n"
    "32,0,ILGENT Ilse,Iemand die mijn fiets herstelt #fiets,Vervoer,2027-02-01,2026-11-02\n"
    "33,1,Abdel Bakr (AB12),Oude lessen Arabisch,,2026-11-20,2026-10-01\n"
)


def test_listings_come_in_once_with_their_categories_as_tags(db: Engine, tmp_path: Path) -> None:
    members_in(db, tmp_path, USERS, dry_run=False)
    path = tmp_path / "messages.csv"
    path.write_text(LISTINGS, encoding="utf-8")
    (sheet,) = read_source(path, None)
    assert sheet.kind == "listings"

    def once() -> tuple[int, int, list[str]]:
        report = import_listings(
            db,
            sheet,
            prefix="DU",
            tz=TZ,
            dry_run=False,
            now=START,
            days=60,
            notice_at=lambda _: None,
        )
        return report.added, report.unchanged, report.problems

    assert once() == (3, 0, [])
    assert once() == (0, 3, [])
    listed = export_rows(db, "listings", "DU", 0, now=START)
    assert [(r["kind"], r["owner"], r["text"], r["tags"], r["status"]) for r in listed] == [
        ("offer", "DU-012", "Soep op vrijdag #eten-drinken", ["eten-drinken"], "live"),
        (
            "want",
            "DU-001",
            "Iemand die mijn fiets herstelt #fiets #vervoer",
            ["fiets", "vervoer"],
            "live",
        ),
        ("offer", "DU-002", "Oude lessen Arabisch", [], "expired"),
    ]
    driver = Driver(db, make_settings())
    assert "Soep op vrijdag" in driver.say("admin", "/aanbiedingen")
    assert "fiets" in driver.say("admin", "/vragen")


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_listings_export_import_export_is_byte_identical(
    db: Engine, template_db: Path, tmp_path: Path, fmt: str
) -> None:
    members_in(db, tmp_path, USERS, dry_run=False)
    path = tmp_path / "messages.csv"
    path.write_text(LISTINGS, encoding="utf-8")
    (sheet,) = read_source(path, None)
    options = {"prefix": "DU", "tz": TZ, "dry_run": False, "now": START, "days": 60}
    import_listings(db, sheet, notice_at=lambda _: None, **options)  # type: ignore[arg-type]
    driver = Driver(db, make_settings())
    driver.say("admin", "/start")
    driver.say("admin", "/aanbod Koffie zetten #koffie prijs: 5 pluimen")
    driver.say("admin", "/intrekken 34")  # withdrawn: it moves too
    fresh_path = tmp_path / "fresh.db"
    shutil.copy(template_db, fresh_path)
    fresh = make_engine(f"sqlite:///{fresh_path}")
    files = {}
    for what in ("members", "listings"):
        out = io.StringIO()
        write_rows(export_rows(db, what, "DU", 0, now=START), out, fmt)  # type: ignore[arg-type]
        files[what] = out.getvalue()
        (tmp_path / f"{what}.{fmt}").write_text(out.getvalue(), encoding="utf-8")
    (members,) = read_source(tmp_path / f"members.{fmt}", None)
    assert (
        import_members(fresh, members, prefix="DU", decimals=0, dry_run=False, now=START).problems
        == []
    )
    (listings,) = read_source(tmp_path / f"listings.{fmt}", None)
    assert listings.kind == "listings"
    report = import_listings(fresh, listings, notice_at=lambda _: None, **options)  # type: ignore[arg-type]
    assert (report.added, report.problems) == (4, [])
    for what in ("members", "listings"):
        out = io.StringIO()
        write_rows(export_rows(fresh, what, "DU", 0, now=START), out, fmt)  # type: ignore[arg-type]
        if what == "listings":
            assert out.getvalue() == files[what]
    # The same ids: a new listing after the import takes the next one (PostgreSQL's sequence too).
    assert rows(fresh, "SELECT max(id) FROM listings") == [(34,)]
    fresh.dispose()


TRANSACTIONS = (
    "date;from;to;amount;description\n"
    "2026-11-02;DU-012;DU-007;40;soep\n"
    "2026-11-03;DU-007;DU-012;10;eieren\n"
)


def test_several_files_are_one_transaction(tmp_path: Path) -> None:
    (tmp_path / "bot.toml").write_text(CONFIG, encoding="utf-8")
    assert letsbot("db", "upgrade", cwd=tmp_path).returncode == 0
    (tmp_path / "users.csv").write_bytes(USERS.encode("latin-1"))
    (tmp_path / "transactions.csv").write_text(TRANSACTIONS + "2026-11-04;DU-012;DU-099;5;x\n")
    database = make_engine(f"sqlite:///{tmp_path / 'var' / 'letsbot.db'}")
    # Transfers named first: members are imported first all the same.
    failed = letsbot("import", "transactions.csv", "users.csv", cwd=tmp_path)
    assert failed.returncode == 1
    assert "transactions.csv: transfers, read by its headers" in failed.stdout
    assert "users.csv: members, recognised as eLAND users" in failed.stdout
    assert "transactions.csv: line 4: member 'DU-099' is unknown" in failed.stdout
    assert "nothing imported from any file" in failed.stdout
    assert rows(database, "SELECT count(*) FROM members") == [(1,)]  # the first file too
    (tmp_path / "transactions.csv").write_text(TRANSACTIONS)
    dry = letsbot("import", "users.csv", "transactions.csv", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stdout
    assert "would add 2 transfers" in dry.stdout
    # The options may come first, as people type them.
    first = letsbot("import", "--dry-run", "users.csv", "transactions.csv", cwd=tmp_path)
    assert first.returncode == 0 and first.stdout == dry.stdout, first.stdout + first.stderr
    assert rows(database, "SELECT count(*) FROM members") == [(1,)]
    done = letsbot("import", "users.csv", "transactions.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert rows(database, "SELECT count(*) FROM members") == [(8,)]
    assert rows(database, "SELECT balance FROM members WHERE number = 7") == [(30,)]
    assert letsbot("check", cwd=tmp_path).stdout.startswith("OK")
    database.dispose()


def test_the_import_command_line(tmp_path: Path) -> None:
    (tmp_path / "bot.toml").write_text(CONFIG, encoding="utf-8")
    assert letsbot("db", "upgrade", cwd=tmp_path).returncode == 0
    helped = letsbot("import", "--help", cwd=tmp_path)
    assert helped.returncode == 0
    assert "letsbot import [members|transfers|balances|listings] PATH..." in helped.stdout
    assert "--update" in helped.stdout and "--widen-limits" in helped.stdout
    assert "import" in letsbot("--help", cwd=tmp_path).stdout
    assert letsbot("import", cwd=tmp_path).returncode == 2
    assert letsbot("import", "members", cwd=tmp_path).returncode == 2  # no file
    missing = letsbot("import", "nowhere.csv", cwd=tmp_path)
    assert missing.returncode == 2 and "nowhere.csv" in missing.stderr
    (tmp_path / "odd.csv").write_text("a,b\n1,2\n")
    odd = letsbot("import", "odd.csv", cwd=tmp_path)
    assert odd.returncode == 2 and "not an export we know" in odd.stderr
    named = letsbot("import", "members", "odd.csv", cwd=tmp_path)
    assert named.returncode == 2 and "name the columns with --map" in named.stderr
    mapped = letsbot(
        "import", "members", "odd.csv", "--map", "a=code", "--map", "b=name", cwd=tmp_path
    )
    assert mapped.returncode == 0, mapped.stdout + mapped.stderr
    bad = letsbot("import", "odd.csv", "--map", "a=nothing", cwd=tmp_path)
    assert bad.returncode == 2 and "--map a=nothing" in bad.stderr
