"""One person on several chat platforms, and claiming an imported account."""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from storage.check import ledger_problems
from storage.database import make_engine
from storage.exchange import import_members, read_sheet
from tests.support import START, Driver, make_settings
from tests.test_cli import CONFIG, letsbot

TG = "telegram"
ELAS_MEMBERS = (
    "letscode;name;fullname;status;minlimit;maxlimit\n"
    "DU-002;an;An Peeters;1;-1000;1000\n"
    "DU-003;bo;Bö Janssens;1;;\n"
    "DU-004;cé;Céline De Smet;0;;\n"
    "DU-005;dé;Dé Nieuwe;5;;\n"
)


@pytest.fixture
def db(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def two(db: Engine) -> Driver:
    """An (DU-002) and Bo (DU-003), console members with 100 pluimen each."""
    driver = Driver(db, make_settings(limits={"start_credit": 100}))
    driver.member("an", "An")
    driver.member("bo", "Bo")
    return driver


def state(driver: Driver) -> dict[str, list[tuple[Any, ...]]]:
    """The ledger and the codes: what a refused command must leave as it was."""
    found = driver.snapshot()
    with driver.engine.connect() as connection:
        found["access_codes"] = [
            tuple(row) for row in connection.execute(text("SELECT * FROM access_codes ORDER BY id"))
        ]
        connection.rollback()
    return found


def link_code(reply: str) -> str:
    match = re.search(r"/(?:koppel|link) ([0-9]{3} [0-9]{3})$", reply, re.MULTILINE)
    assert match, reply
    return match[1]


def claim_code(reply: str) -> str:
    match = re.search(r"/(?:activeer|claim) ([0-9]{4} [0-9]{4})$", reply, re.MULTILINE)
    assert match, reply
    return match[1]


def balance_of(engine: Engine, number: int) -> int:
    with engine.connect() as connection:
        value = connection.execute(
            text("SELECT balance FROM members WHERE number = :n"), {"n": number}
        ).scalar_one()
        connection.rollback()
    return int(value)


def identities_of(engine: Engine, number: int) -> list[str]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT i.platform || ':' || i.user_id FROM identities i"
                " JOIN members m ON m.id = i.member_id WHERE m.number = :n ORDER BY 1"
            ),
            {"n": number},
        ).scalars()
        found = list(rows)
        connection.rollback()
    return found


def linked(two: Driver) -> str:
    """An's console account linked to telegram:tg-an; the code used."""
    code = link_code(two.say("an", "/koppel"))
    two.say("tg-an", f"/koppel {code}", platform=TG)
    assert identities_of(two.engine, 2) == ["console:an", "telegram:tg-an"]
    return code


# /link ------------------------------------------------------------------------


def test_link_joins_a_second_platform_to_the_one_account(two: Driver) -> None:
    out = two.say("an", "/koppel")
    code = link_code(out)
    assert out.startswith(f"[dm an] Je koppelcode: {code}\n")
    assert "De code werkt één keer, tot 1 dec 2026 09:15 (15 minuten)." in out
    out = two.say("tg-an", f"/koppel {code.replace(' ', '')}", platform=TG)
    assert out == (
        "[dm tg-an] Gelukt! Deze chat hoort nu bij An (DU-002): dezelfde rekening als op"
        " console. Je saldo: 100 pluimen.\n"
        "[dm an] Je rekening is nu ook gekoppeld aan telegram. Was jij dat niet? Stuur dan"
        " meteen /ontkoppel telegram en verwittig een coördinator."
    )
    members = two.count("members")
    # Both chats see one balance; a payment from either books on the one account.
    assert "Je saldo: 100 pluimen" in two.say("tg-an", "/saldo", platform=TG)
    two.say("tg-an", "/betaal DU-003 30 soep", platform=TG)
    assert "Geboekt: #4" in two.say("tg-an", "ja", platform=TG)
    assert "Je saldo: 70 pluimen" in two.say("an", "/saldo")
    two.say("an", "/betaal DU-003 20 brood")
    two.say("an", "ja")
    assert "Je saldo: 50 pluimen" in two.say("tg-an", "/saldo", platform=TG)
    assert (two.balance("an"), two.balance("bo")) == (50, 150)
    assert two.count("members") == members
    assert ledger_problems(two.engine, two.settings.group_limits) == []


def test_link_speaks_the_language_of_the_command(two: Driver) -> None:
    two.say("bo", "/lang en")
    code = link_code(two.say("bo", "/link"))
    out = two.say("tg-bo", f"/link {code}", platform=TG)
    assert out.startswith("[dm tg-bo] Done! This chat now belongs to Bo (DU-003)")
    assert "[dm bo] Your account is now also linked to telegram." in out


def test_a_link_code_expires_after_15_minutes(two: Driver) -> None:
    code = link_code(two.say("an", "/koppel"))
    two.advance(START + timedelta(minutes=15, seconds=1))
    before = state(two)
    out = two.say("tg-an", f"/koppel {code}", platform=TG)
    assert out == (
        "[dm tg-an] Die koppelcode is verlopen (hij werkt 15 minuten). Vraag een nieuwe met"
        " /koppel in je andere chat-app.\n"
        "  Je kunt het dit uur nog 4 keer proberen."
    )
    assert state(two) == before
    assert two.count("code_attempts") == 1


def test_a_link_code_works_once(two: Driver) -> None:
    code = linked(two)
    before = state(two)
    out = two.say("mx-x", f"/koppel {code}", platform="matrix")
    assert "Die koppelcode is al gebruikt." in out
    assert state(two) == before
    assert identities_of(two.engine, 2) == ["console:an", "telegram:tg-an"]


def test_a_new_link_code_replaces_the_old(two: Driver) -> None:
    old = link_code(two.say("an", "/koppel"))
    new = link_code(two.say("an", "/koppel"))
    if old != new:
        assert "klopt niet" in two.say("tg-an", f"/koppel {old}", platform=TG)
    assert "Gelukt!" in two.say("tg-an", f"/koppel {new}", platform=TG)
    assert two.count("access_codes") == 1


def test_wrong_codes_run_out_of_tries_across_restarts(two: Driver) -> None:
    code = link_code(two.say("an", "/koppel"))
    wrong = "000 000" if code != "000 000" else "000 001"
    for left in (4, 3, 2, 1):
        out = two.say("tg-x", f"/koppel {wrong}", platform=TG)
        assert out.endswith(f"Je kunt het dit uur nog {left} keer proberen.")
        assert two.last is not None and two.last.outcome == "wrong_code"
    assert two.say("tg-x", f"/koppel {wrong}", platform=TG).endswith(
        "Je kunt het pas over een uur opnieuw proberen."
    )
    # A new process on the same database remembers: not even the right code gets through.
    restarted = Driver(two.engine, two.settings, clock=two.clock, _ids=itertools.count(1000))
    before = state(restarted)
    assert restarted.say("tg-x", f"/koppel {code}", platform=TG) == (
        "[dm tg-x] Er kwamen te veel verkeerde codes binnen. Probeer het over een uur opnieuw,"
        " of vraag een coördinator om hulp."
    )
    assert state(restarted) == before
    assert restarted.count("code_attempts") == 5
    # Another person is not held back; after an hour the first may try again.
    assert "nog 4 keer" in restarted.say("tg-y", f"/koppel {wrong}", platform=TG)
    restarted.advance(START + timedelta(hours=1, minutes=1))
    code = link_code(restarted.say("an", "/koppel"))
    assert "Gelukt!" in restarted.say("tg-x", f"/koppel {code}", platform=TG)


def test_many_senders_together_run_out_of_tries(two: Driver) -> None:
    code = link_code(two.say("an", "/koppel"))
    wrong = "000 000" if code != "000 000" else "000 001"
    for sender in range(4):  # 20 wrong codes
        for _ in range(5):
            two.say(f"tg-{sender}", f"/koppel {wrong}", platform=TG)
    assert "te veel verkeerde codes" in two.say("tg-new", f"/koppel {code}", platform=TG)
    assert identities_of(two.engine, 2) == ["console:an"]


def test_codes_that_are_no_codes_are_explained_and_not_counted(two: Driver) -> None:
    before = state(two)
    assert "Een koppelcode heeft 6 cijfers, bijvoorbeeld:\n  /koppel 123 456" in two.say(
        "tg-x", "/koppel 12a456", platform=TG
    )
    assert "activeercode. Stuur hem zo:\n  /activeer 1234 5678" in two.say(
        "tg-x", "/koppel 1234 5678", platform=TG
    )
    assert "koppelcode. Stuur hem zo:\n  /koppel 123 456" in two.say(
        "tg-x", "/activeer 123 456", platform=TG
    )
    assert "Een koppelcode heeft 6 cijfers" in two.say("tg-x", "/koppel ١٢٣٤٥٦", platform=TG)
    assert state(two) == before
    assert two.count("code_attempts") == 0


def test_a_stranger_asking_for_a_code_is_told_how_it_works(two: Driver) -> None:
    out = two.say("tg-x", "/koppel", platform=TG)
    assert out.startswith("[dm tg-x] Ik ken je hier nog niet. Ben je al lid")
    assert "/aanmelden An Peeters" in out


def test_a_chat_of_another_member_is_never_taken_over(two: Driver) -> None:
    code = link_code(two.say("an", "/koppel"))
    before = state(two)
    out = two.say("bo", f"/koppel {code}")
    assert out == (
        "[dm bo] Deze chat hoort al bij Bo (DU-003). Stuur de code in de andere chat-app,"
        " die de bot nog niet kent."
    )
    assert state(two) == before
    assert "Gelukt!" in two.say("tg-an", f"/koppel {code}", platform=TG)  # still valid


def test_a_fresh_candidate_on_the_new_platform_is_closed(two: Driver) -> None:
    two.say("tg-an", "/aanmelden An P.", platform=TG)  # DU-004, by mistake
    code = link_code(two.say("an", "/koppel"))
    out = two.say("tg-an", f"/koppel {code}", platform=TG)
    assert "[dm tg-an] Gelukt! Deze chat hoort nu bij An (DU-002)" in out
    assert (
        "[dm tg-an] Je aanvraag als nieuw lid (DU-004) is niet meer nodig en is afgesloten." in out
    )
    assert (
        "[dm admin] De aanvraag An P. (DU-004) is afgesloten: die persoon is al lid als An"
        " (DU-002) en gebruikt die chat nu met die rekening."
    ) in out
    assert identities_of(two.engine, 4) == []
    assert "(DU-004)" not in two.say("admin", "/leden")


def test_a_candidate_with_a_history_keeps_it(two: Driver) -> None:
    two.say("tg-x", "/aanmelden Xavier", platform=TG)  # DU-004
    two.say("admin", "/goedkeuren 4")
    code = link_code(two.say("an", "/koppel"))
    before = state(two)
    assert "Deze chat hoort al bij Xavier (DU-004)" in two.say(
        "tg-x", f"/koppel {code}", platform=TG
    )
    assert state(two) == before


def test_one_chat_per_platform(two: Driver) -> None:
    linked(two)
    code = link_code(two.say("an", "/koppel"))
    before = state(two)
    out = two.say("tg-an2", f"/koppel {code}", platform=TG)
    assert "Er is al een telegram-account gekoppeld aan die rekening." in out
    assert state(two) == before


IN_GROUP = (
    "[group] Typ een code nooit in de groep: iedereen kan hem lezen. Een code die in de groep"
    " getypt is, werkt niet meer. Vraag een nieuwe met /koppel in een privégesprek met mij."
)


def test_a_code_typed_in_the_group_stops_working(two: Driver) -> None:
    code = link_code(two.say("an", "/koppel"))
    out = two.say("an", f"/koppel {code}", group=True)
    assert out == IN_GROUP
    assert "al gebruikt" in two.say("tg-an", f"/koppel {code}", platform=TG)
    before = state(two)
    assert "Doe /koppel in een privégesprek met mij" in two.say("an", "/koppel", group=True)
    assert two.say("an", "/koppel 999 999", group=True) == IN_GROUP
    assert state(two) == before


@pytest.mark.parametrize(
    "line",
    [
        "/koppel {code} graag",  # a word after it: not read as a code try, spent all the same
        "/koppel {code}, nu!",
        "mijn code is {code}",  # plain chat, which the bot otherwise ignores
        "/hulp koppel {code}",
        "/koppel {code}\u202e",  # refused for the invisible character, spent all the same
    ],
)
def test_a_code_anywhere_in_a_group_message_stops_working(two: Driver, line: str) -> None:
    code = link_code(two.say("an", "/koppel"))
    two.say("bo", line.format(code=code), group=True)
    assert "al gebruikt" in two.say("tg-an", f"/koppel {code}", platform=TG)
    assert identities_of(two.engine, 2) == ["console:an"]


# /unlink ----------------------------------------------------------------------


def test_unlink_a_platform_but_never_the_last(two: Driver) -> None:
    linked(two)
    before = state(two)
    assert "Welke chat-app wil je loskoppelen? Gekoppeld: console, telegram." in two.say(
        "an", "/ontkoppel"
    )
    assert "Er is geen matrix gekoppeld aan je rekening." in two.say("an", "/ontkoppel matrix")
    assert state(two) == before
    assert two.say("an", "/ontkoppel Telegram") == (
        "[dm an] telegram is losgekoppeld van je rekening. Je gebruikt de bot nu via: console."
    )
    assert identities_of(two.engine, 2) == ["console:an"]
    assert "You are not a member" in two.say("tg-an", "/balance", platform=TG)
    before = state(two)
    assert two.say("an", "/ontkoppel console") == (
        "[dm an] console is de enige chat-app van je rekening. Zonder kun je de bot niet meer"
        " gebruiken, dus dat doe ik niet. Koppel eerst een andere chat-app met /koppel."
    )
    assert state(two) == before


def test_unlink_from_the_other_platform(two: Driver) -> None:
    linked(two)
    assert "console is losgekoppeld" in two.say("tg-an", "/ontkoppel console", platform=TG)
    assert "Je saldo: 100 pluimen" in two.say("tg-an", "/saldo", platform=TG)
    assert "Je bent nog geen lid van LETS Durme" in two.say("an", "/saldo")


# /claim -----------------------------------------------------------------------


@pytest.fixture
def imported(db: Engine, tmp_path: Path) -> Driver:
    """An, Bo (active), Céline (inactive), Dé (candidate) imported from eLAS; admin after."""
    path = tmp_path / "leden.csv"
    path.write_bytes(ELAS_MEMBERS.encode("latin-1"))
    sheet = read_sheet(path, ("code", "name"))
    report = import_members(db, sheet, prefix="DU", decimals=0, dry_run=False, now=START)
    assert (report.added, report.problems) == (4, [])
    driver = Driver(db, make_settings())
    driver.say("admin", "/start")  # DU-006
    return driver


def test_claim_an_imported_account_then_pay(imported: Driver) -> None:
    out = imported.say("admin", "/activeercode DU-002")
    code = claim_code(out)
    assert out.startswith(f"[dm admin] Activeercode voor An Peeters (DU-002): {code}\n")
    assert "Geldig tot 8 dec 2026 09:00 (7 dagen)" in out
    out = imported.say("tg-an", f"/activeer {code}", platform=TG)
    assert out.startswith(
        "[dm tg-an] Welkom, An Peeters! Deze chat is nu gekoppeld aan je rekening DU-002 bij"
        " LETS Durme. Je saldo: 0 pluimen.\n  Zo werkt het:"
    )
    assert "[dm admin] An Peeters (DU-002) gebruikt de bot nu (via telegram)." in out
    imported.say("tg-an", "/betaal DU-003 40 fiets", platform=TG)
    assert "Geboekt: #1" in imported.say("tg-an", "ja", platform=TG)
    assert (balance_of(imported.engine, 2), balance_of(imported.engine, 3)) == (-40, 40)
    assert identities_of(imported.engine, 2) == ["telegram:tg-an"]
    # Imported limits hold: -1000.
    assert "Je saldo: -40 pluimen" in imported.say("tg-an", "/saldo", platform=TG)
    assert "van -1.000 pluimen tot 1.000 pluimen" in imported.say("tg-an", "/saldo", platform=TG)


def test_claim_in_english(imported: Driver) -> None:
    code = claim_code(imported.say("admin", "/claimcode 3"))
    out = imported.say("mx-bo", f"/claim {code}", platform="matrix")
    assert out.startswith("[dm mx-bo] Welcome, Bö Janssens! This chat is now linked to your")
    listed = imported.say("mx-bo", "/help", platform="matrix")
    assert "/balance" in listed
    assert "/claim" not in listed  # no longer needed


def test_an_imported_candidate_claims_the_request(imported: Driver) -> None:
    code = claim_code(imported.say("admin", "/activeercode DU-005"))
    out = imported.say("tg-de", f"/activeer {code}", platform=TG)
    assert out.startswith(
        "[dm tg-de] Welkom, Dé Nieuwe! Deze chat is nu gekoppeld aan je aanvraag DU-005."
        " Een coördinator neemt contact met je op."
    )
    assert "nog niet goedgekeurd" in imported.say("tg-de", "/saldo", platform=TG)
    imported.say("admin", "/goedkeuren DU-005")
    assert "Je saldo: 0 pluimen" in imported.say("tg-de", "/saldo", platform=TG)


def test_claim_refusals_change_nothing(imported: Driver) -> None:
    code = claim_code(imported.say("admin", "/activeercode DU-002"))
    before = state(imported)
    # A coordinator who tries the code can't take the account into their own chat.
    assert "Deze chat hoort al bij admin (DU-006)" in imported.say("admin", f"/activeer {code}")
    assert "Stuur de activeercode die je van een coördinator kreeg" in imported.say(
        "tg-an", "/activeer", platform=TG
    )
    assert "DU-004) is geen lid meer" in imported.say("admin", "/activeercode DU-004")
    assert "groepsrekening: die krijgt geen activeercode" in imported.say(
        "admin", "/activeercode DU-000"
    )
    assert "Er is geen lid met code DU-009" in imported.say("admin", "/activeercode DU-009")
    assert "Zeg welk lid je bedoelt" in imported.say("admin", "/activeercode")
    assert state(imported) == before
    imported.say("tg-an", f"/activeer {code}", platform=TG)
    before = state(imported)
    assert "DU-002) gebruikt de bot al" in imported.say("admin", "/activeercode DU-002")
    assert "al gebruikt" in imported.say("tg-other", f"/activeer {code}", platform=TG)
    assert state(imported) == before


def test_a_claim_code_lasts_seven_days(imported: Driver) -> None:
    code = claim_code(imported.say("admin", "/activeercode 3"))
    imported.advance(START + timedelta(days=7))
    before = state(imported)
    assert "Die activeercode is verlopen (hij werkt 7 dagen)" in imported.say(
        "tg-bo", f"/activeer {code}", platform=TG
    )
    assert state(imported) == before


def test_a_claim_code_asked_in_the_group_comes_privately(imported: Driver) -> None:
    out = imported.say("admin", "/activeercode DU-003", group=True)
    assert out.startswith("[dm admin] Activeercode voor Bö Janssens (DU-003)")
    code = claim_code(out)
    assert "werkt niet meer" in imported.say("bo-tg", f"/activeer {code}", group=True)
    assert "al gebruikt" in imported.say("bo-tg", f"/activeer {code}", platform=TG)


def test_claim_codes_from_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "bot.toml").write_text(CONFIG, encoding="utf-8")
    assert letsbot("db", "upgrade", cwd=tmp_path).returncode == 0
    (tmp_path / "leden.csv").write_bytes(ELAS_MEMBERS.encode("latin-1"))
    assert letsbot("import", "members", "leden.csv", cwd=tmp_path).returncode == 0
    refused = letsbot("claim-code", "DU-002", "DU-004", "DU-009", cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        "DU-004: is no longer a member",
        "DU-009: no member with that code",
        "no codes made: fix the member codes and run it again",
    ]
    made = letsbot("claim-code", "--all", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    lines = made.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == [
        "DU-002 An Peeters",
        "DU-003 Bö Janssens",
        "DU-005 Dé Nieuwe",
    ]
    assert lines[3].startswith("3 code(s); hand each to its member")
    code = re.search(r": ([0-9]{4} [0-9]{4}) \(valid until ", lines[0])
    assert code is not None
    script = f"an: /activeer {code[1]}\nan: /betaal DU-003 25 soep\nan: ja\n"
    played = letsbot("console", "--script", "-", cwd=tmp_path, stdin=script)
    assert "[dm an] Welkom, An Peeters! Deze chat is nu gekoppeld aan je rekening DU-002" in (
        played.stdout
    )
    assert (
        "Geboekt: #1: je betaalde 25 pluimen aan Bö Janssens (DU-003) voor soep." in played.stdout
    )
    again = letsbot("claim-code", "DU-002", cwd=tmp_path)
    assert again.returncode == 1
    assert again.stderr.startswith("DU-002: uses the bot already")


# at the same moment -------------------------------------------------------------


def at_once(drivers: list[Driver], messages: list[tuple[str, str]]) -> list[str]:
    """Each driver (its own Bot, as in its own process) sends its message at the same moment."""
    barrier = threading.Barrier(len(drivers))
    replies: list[str] = [""] * len(drivers)

    def send(index: int) -> None:
        name, message = messages[index]
        barrier.wait()
        replies[index] = drivers[index].say(name, message, platform=TG)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(drivers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return replies


def bots(two: Driver, count: int) -> list[Driver]:
    return [
        Driver(two.engine, two.settings, clock=two.clock, _ids=itertools.count(1000 * (i + 1)))
        for i in range(count)
    ]


def test_one_code_sent_from_many_chats_at_once_links_one(two: Driver) -> None:
    code = link_code(two.say("an", "/koppel"))
    replies = at_once(bots(two, 6), [(f"tg-{i}", f"/koppel {code}") for i in range(6)])
    assert sum("Gelukt!" in reply for reply in replies) == 1, replies
    assert sum("al gebruikt" in reply for reply in replies) == 5, replies
    assert len(identities_of(two.engine, 2)) == 2


def test_wrong_codes_sent_at_once_stop_at_the_limit(two: Driver) -> None:
    code = link_code(two.say("an", "/koppel"))
    wrong = "000 000" if code != "000 000" else "000 001"
    replies = at_once(bots(two, 8), [("tg-x", f"/koppel {wrong}")] * 8)
    assert sum("klopt niet" in reply for reply in replies) == 5, replies
    assert sum("te veel verkeerde codes" in reply for reply in replies) == 3, replies
    assert two.count("code_attempts") == 5
