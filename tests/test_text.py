"""Invisible control characters: refused when typed, cleaned when a platform or an old file brings them."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from letsbot.text import find_control, strip_controls
from storage.copy import copy_database, tables
from storage.database import make_engine
from storage.exchange import (
    ImportError_,
    import_balances,
    import_members,
    import_transfers,
    read_sheet,
)
from tests.support import Driver, make_settings
from tests.test_copy import pg_target  # noqa: F401  (a fixture: a PostgreSQL database to copy to)
from tests.test_exchange import NOW, TZ

# NUL, ESC, BS, DEL, two C1 characters and the bidirectional controls.
CONTROLS = (
    "\x00",
    "\u202e",
    "\x1b",
    "\x85",
    "\u2066",
    "\x7f",
    "\x9b",
    "\u200f",
    "\x08",
    "\u061c",
    "\u202a",
    "\u2069",
    "\u200e",
)


def test_which_characters_are_controls() -> None:
    invisible = ("\u200b", "\u2060", "\ufeff", "\u180e")  # they hide a word
    for char in (*CONTROLS, *invisible, "\r", "\x1f", "\x80", "\x9f", "\u202c", "\ud800"):
        assert find_control(f"ab{char}c") is not None, repr(char)
        assert strip_controls(f"ab{char}c") == "abc"
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # an emoji joined by U+200D
    for fine in ("tab\there", "two\nlines", "windows\r\nline", "Bö € “x” ✓ 🙂 עברית", family):
        assert find_control(fine) is None
        assert strip_controls(fine) == fine
    found = find_control("soep\x00pan")
    assert found is not None and (found.position, found.code) == (5, "U+0000")


def every_row(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every table, so that a refusal is shown to change nothing at all."""
    with engine.connect() as connection:
        state = {
            table.name: sorted((tuple(r) for r in connection.execute(table.select())), key=repr)
            for table in tables()
        }
        connection.rollback()
    return state


@pytest.fixture
def group(db_url: str) -> Iterator[Driver]:
    """Members, a payment, an offer, an event, a consent proposal and a candidate."""
    engine = make_engine(db_url)
    driver = Driver(engine, make_settings())
    driver.member("an")
    driver.member("bo")
    driver.say("an", "/betaal DU-003 5 soep")
    driver.say("an", "ja")
    driver.say("bo", "/aanbod Fiets herstellen #fiets")
    driver.say("admin", "/activiteit nieuw markt 12/12 10:00 Ruilmarkt")
    driver.say("admin", "ja")
    driver.say("admin", "/voorstel Zaal huren? regel:consent", group=True)
    driver.say("cy", "/aanmelden Cy Claes")
    yield driver
    engine.dispose()


# Who types what: every kind of free text a member can give the bot ({c}: the character).
FREE_TEXTS = (
    ("dy", "/aanmelden D{c}y Peeters"),  # a name
    ("an", "/betaal DU-003 5 so{c}ep"),  # descriptions
    ("bo", "/vraagbetaling DU-002 5 tu{c}inwerk"),
    ("admin", "/boeken DU-002 DU-003 4 fi{c}ets"),
    ("admin", "/terugboeken 1 ver{c}gissing"),  # reasons
    ("admin", "/weigeren DU-004 geen ge{c}sprek"),
    ("an", "/aanbod Fiet{c}sen herstellen #fiets"),  # offers and wants
    ("an", "/vraag Wie hel{c}pt me snoeien?"),
    ("an", "/aanbiedingen fi{c}ets"),  # a search
    ("an", "/reageer 1 Hal{c}lo, ik heb interesse"),  # private messages
    ("an", "/bericht DU-003 Hal{c}lo Bo"),
    ("an", "/voorstel Markt op za{c}terdag"),  # a proposal's title and options
    ("an", "/voorstel Waar? | Parochiezaal | Bib{c}liotheek"),
    ("bo", "/stem 1 tegen te du{c}ur"),  # an objection
    ("admin", "/voorstel_intrekken 1 dub{c}bel"),
    ("admin", "/activiteit nieuw markt 13/12 10:00 Ruil{c}markt"),  # an event's title, place
    ("admin", "/activiteit nieuw markt 13/12 10:00 Ruilmarkt @ Paro{c}chiezaal"),
    ("admin", "/activiteit annuleer 1 re{c}gen"),
    ("an", "/hulp be{c}taal"),
)


def test_every_free_text_with_a_control_character_is_refused_and_changes_nothing(
    group: Driver,
) -> None:
    before = every_row(group.engine)
    for index, (who, template) in enumerate(FREE_TEXTS):
        char = CONTROLS[index % len(CONTROLS)]
        typed = template.format(c=char)
        said = group.say(who, typed)
        code = f"U+{ord(char):04X}"
        place = typed.index(char) + 1
        example = " ".join(template.format(c="").split())
        assert group.last is not None and group.last.outcome == "refused", (typed, said)
        assert f"Je bericht bevat een onzichtbaar teken ({code}) op plaats {place}." in said, (
            typed,
            said,
        )
        assert f"Zo is het goed: {example}" in said, (typed, said)
        assert char not in said
        assert every_row(group.engine) == before, typed


def test_the_refusal_speaks_english_and_a_message_of_only_controls_gets_one_too(
    group: Driver,
) -> None:
    before = every_row(group.engine)
    said = group.say("dy", "/join D\x00y")
    assert said == (
        "[dm dy] Your message contains an invisible character (U+0000) at position 8. Such a"
        " character often comes along when you copy and paste text. Type your message again,"
        " without it. This works: /join Dy"
    )
    said = group.say("an", "\u202e\u2066")
    assert said == (
        "[dm an] Je bericht bestaat alleen uit onzichtbare tekens (U+202E). Typ zelf een"
        " opdracht, bijvoorbeeld: /hulp"
    )
    assert every_row(group.engine) == before
    group.say("dy", "/join Dy")  # typed again without it, it works
    assert group.last is not None and group.last.outcome == "applied"


def test_a_name_from_the_platform_is_cleaned_before_it_is_stored(db_url: str) -> None:
    engine = make_engine(db_url)
    driver = Driver(engine, make_settings())
    # The first coordinator becomes a member with the name the platform gives.
    first = driver.incoming("admin", "/start")
    driver.send(dataclasses.replace(first, sender_name="Ad\x00min\u202e"))
    assert driver.last is not None and driver.last.outcome == "applied"
    joining = driver.incoming("cy", "/aanmelden Cy Claes")
    driver.send(dataclasses.replace(joining, sender_name="C\x00y\u2066 \x1bClaes"))
    assert driver.last is not None and driver.last.outcome == "applied"
    with engine.connect() as connection:
        names = connection.execute(
            text(
                "SELECT m.name, i.display_name FROM members m"
                " JOIN identities i ON i.member_id = m.id ORDER BY m.number"
            )
        ).all()
        connection.rollback()
    assert [tuple(row) for row in names] == [("Admin", "Admin"), ("Cy Claes", "Cy Claes")]
    engine.dispose()


# imports: a value with a control character is a problem on its physical line


def write(tmp_path: Path, name: str, content: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode(encoding))
    return path


def test_an_import_names_the_line_of_a_control_character(engine: Engine, tmp_path: Path) -> None:
    members = write(
        tmp_path,
        "leden.csv",
        'letscode;fullname;comments\nDU-001;An Peeters;"two\nlines"\n'  # line 2 ends on line 3
        "DU-002;B\x00o Janssens;\nDU-003;C\u202eé;\nDU-004;Dirk;\x00 not imported anyway\n",
    )
    sheet = read_sheet(members, ("code", "name"))
    report = import_members(engine, sheet, prefix="DU", decimals=0, dry_run=False, now=NOW)
    assert report.problems == [
        "line 4: the name has an invisible control character (U+0000) at position 2;"
        " remove it from the file",
        "line 5: the name has an invisible control character (U+202E) at position 2;"
        " remove it from the file",
    ]
    assert report.added == 0
    good = write(tmp_path, "goed.csv", "letscode;fullname\nDU-001;An\nDU-002;Bo\n")
    sheet = read_sheet(good, ("code", "name"))
    assert import_members(engine, sheet, prefix="DU", decimals=0, dry_run=False, now=NOW).added
    transfers = write(
        tmp_path,
        "transacties.csv",
        "datum;van;naar;bedrag;omschrijving\n2026-01-05;DU-001;DU-002;60;soep\n"
        "2026-01-06;DU-001;DU-002;60;so\x81ep\n",
        "latin-1",  # byte 0x81 is no Windows-1252: read as Latin-1, a C1 control
    )
    sheet = read_sheet(transfers, ("date", "from", "to", "amount"))
    report = import_transfers(engine, sheet, prefix="DU", decimals=0, tz=TZ, dry_run=False)
    assert report.problems == [
        "line 3: the description has an invisible control character (U+0081) at position 3;"
        " remove it from the file"
    ]
    balances = write(tmp_path, "saldi.csv", "code;saldo\nDU-001;10\nDU-002;-1\x000\n")
    sheet = read_sheet(balances, ("code", "balance"))
    report = import_balances(
        engine,
        sheet,
        prefix="DU",
        decimals=0,
        limits=make_settings().group_limits,
        via_group_account=True,
        dry_run=True,
        now=NOW,
        description="beginsaldo",
    )
    assert report.problems == [
        "line 3: the balance has an invisible control character (U+0000) at position 3;"
        " remove it from the file"
    ]
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM transfers")).scalar_one() == 0
        names = connection.execute(text("SELECT name FROM members ORDER BY number")).scalars()
        assert list(names)[1:] == ["An", "Bo"]


def test_an_import_reads_windows_quotes_and_names_a_stray_carriage_return(
    tmp_path: Path,
) -> None:
    windows = write(tmp_path, "leden.csv", "letscode;fullname\nDU-001;“An” – 5 €\n", "cp1252")
    assert read_sheet(windows, ("code", "name")).rows == [
        (2, {"code": "DU-001", "name": "“An” – 5 €"})
    ]
    stray = write(tmp_path, "cr.csv", "letscode;fullname\nDU-001;An\nDU-002;B\ro\n")
    with pytest.raises(ImportError_, match=r"line 3: a carriage return \(U\+000D\) inside a value"):
        read_sheet(stray, ("code", "name"))


# db copy: an old SQLite file with a NUL in it still moves


@pytest.mark.parametrize("to", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_copy_removes_control_characters_of_an_old_database_with_a_warning(
    engine: Engine, tmp_path: Path, to: str, request: pytest.FixtureRequest
) -> None:
    driver = Driver(engine, make_settings())
    driver.member("an")
    driver.member("bo")
    driver.say("an", "/betaal DU-003 5 soep")
    driver.say("an", "ja")
    with engine.begin() as connection:  # as an older version stored them
        connection.execute(
            text("UPDATE members SET name = :name WHERE number = 2"), {"name": "A\x00n\u202e"}
        )
        connection.execute(
            text("UPDATE transfers SET description = :text WHERE id = 1"), {"text": "so\x00ep"}
        )
    if to == "sqlite":
        url = f"sqlite:///{tmp_path / 'copy.db'}"
    else:
        url = request.getfixturevalue("pg_target")
    target = make_engine(url)
    warnings: list[str] = []
    counts = copy_database(engine, target, warnings.append)
    assert counts["members"] == 4 and counts["transfers"] == 1
    assert warnings == [
        "warning: members row id=3: removed invisible control characters from name"
        " (first U+0000 at position 2)",
        "warning: transfers row id=1: removed invisible control characters from description"
        " (first U+0000 at position 3)",
    ]
    with target.connect() as connection:
        assert (
            connection.execute(text("SELECT name FROM members WHERE number = 2")).scalar() == "An"
        )
        assert connection.execute(text("SELECT description FROM transfers")).scalar() == "soep"
        connection.rollback()
    moved = Driver(target, make_settings(), _ids=itertools.count(1000))
    assert "Je saldo: -5 pluimen" in moved.say("an", "/saldo")
    target.dispose()


def test_db_copy_prints_the_warnings(tmp_path: Path) -> None:
    from tests.test_cli import CONFIG, letsbot

    (tmp_path / "bot.toml").write_text(CONFIG, encoding="utf-8")
    assert letsbot("db", "upgrade", cwd=tmp_path).returncode == 0
    source = make_engine(f"sqlite:///{tmp_path / 'var' / 'letsbot.db'}")
    Driver(source, make_settings()).member("an")
    with source.begin() as connection:
        connection.execute(text("UPDATE identities SET display_name = :name"), {"name": "A\x00n"})
    source.dispose()
    result = letsbot("db", "copy", "--to", f"sqlite:///{tmp_path / 'copy.db'}", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("copied ")
    assert lines[1:3] == [
        "warning: identities row id=1: removed invisible control characters from display_name"
        " (first U+0000 at position 2)",
        "warning: identities row id=2: removed invisible control characters from display_name"
        " (first U+0000 at position 2)",
    ]
    assert lines[3].startswith("check on the copy: OK")
