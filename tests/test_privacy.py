"""/privacy, /forget_me and /forget: what the bot keeps, and erasing it without breaking the books."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from app.logs import LIBRARY_LEVELS, quiet_libraries
from letsbot.domain import Status
from storage.check import ledger_problems
from storage.database import _alembic_config, make_engine, schema_state, upgrade
from storage.platform import SqlPlatformStore
from storage.uow import SqlUnitOfWork
from tests.support import Driver, make_settings
from tests.telegram_api import FakeTelegram, Person
from tests.test_cli import CONFIG, letsbot
from tests.test_storage import HEAD
from tests.test_telegram import ANN, GROUP, Harness, settings_for

# Griet's chat account has an id of its own, so that a search for it finds only her.
GRIET = "grietv77"
NAME = "Griet Verstraeten"


@pytest.fixture
def any_engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def group(driver: Driver) -> Driver:
    """admin (coordinator, DU-001), an (DU-002, Dutch) and bo (DU-003, English)."""
    driver.member("an", "An Peeters")
    driver.member("bo", "Bo Janssens", language="en")
    return driver


def dump(engine: Engine) -> str:
    """Every column of every row of every table, as text."""
    parts: list[str] = []
    with engine.connect() as connection:
        for table in sorted(inspect(connection).get_table_names()):
            for row in connection.execute(text(f'SELECT * FROM "{table}"')):
                parts.append(f"{table}: " + " | ".join(str(value) for value in row))
        connection.rollback()
    return "\n".join(parts)


def traces(engine: Engine, *needles: str) -> list[str]:
    """The dumped rows that hold any of ``needles``, without regard to case."""
    return [
        line
        for line in dump(engine).splitlines()
        if any(needle.casefold() in line.casefold() for needle in needles)
    ]


def rows(driver: Driver, sql: str) -> list[tuple[object, ...]]:
    with driver.engine.connect() as connection:
        found = [tuple(row) for row in connection.execute(text(sql))]
        connection.rollback()
    return found


def sound(driver: Driver) -> bool:
    return ledger_problems(driver.engine, driver.settings.group_limits) == []


# /privacy


def test_privacy_in_dutch_tells_what_is_kept_and_who_sees_it(group: Driver) -> None:
    group.say("an", "/aanbod Ik herstel fietsen")
    group.say("an", "/betaal 3 30 soep")
    group.say("an", "ja")
    out = group.say("an", "/privacy", group=True)  # answered privately
    assert out == (
        "[dm an] Wat de bot van LETS Durme over jou bewaart:\n"
        "  - je code DU-002, je naam (An Peeters), je taal (nog niet gekozen: die van de groep)"
        " en je plaats in de groep (lid);\n"
        "  - je chat-accounts (console): het nummer of adres waarmee die chat-app je kent, de naam"
        " die je daar toont, je @gebruikersnaam, je privéchat met de bot, berichten die wachten"
        " tot je die chat opent, en een koppel- of activeercode die nog geldt (alleen in een vorm"
        " die niemand kan teruglezen);\n"
        "  - je saldo (-30 pluimen), je grenzen en je transacties (1): met wie, hoeveel, wanneer"
        " en de omschrijving;\n"
        "  - je aanbiedingen en vragen (1, ook ingetrokken of verlopen), wanneer je wie een"
        " privébericht stuurde via de bot (0, nooit de tekst) en wie je blokkeert (0);\n"
        "  - of je naar activiteiten komt (0), je stemmen (0) en voorstellen (0), of je"
        " herinneringen voor stemmingen krijgt (uit), en je open Ja/Nee-vragen (0).\n"
        "  Wie ziet wat:\n"
        "  - Leden zien je naam en code (/leden), je saldo (de groep houdt open boekhouding), je"
        " aanbiedingen, vragen en voorstellen, en hun eigen transacties met jou (en wat je in de"
        " groep boekt). Hoe je stemde, zien ze nooit, alleen de telling; bij een open stemming wel"
        " je bezwaar met je naam.\n"
        "  - Coördinatoren zien daarbij ieders saldo en grenzen, de kandidaat-leden, en wie naar"
        " een activiteit komt (net als wie ze organiseert).\n"
        "  - Wie de bot beheert (de server en de databank) kan alles hierboven zien. De logboeken"
        " bevatten alleen codes van leden en nummers van berichten, geen namen of teksten.\n"
        "  - Wat je in een chat schrijft, bewaart ook Telegram of je Matrix-server; dat kan de"
        " bot niet wissen.\n"
        "  Wil je dat de bot je vergeet? /vergeetmij (als je saldo nul is, of als je de rest aan"
        " de groepsrekening geeft)"
    )


def test_privacy_in_english_counts_what_the_member_left(engine: Engine) -> None:
    driver = Driver(engine, make_settings(group={"open_bookkeeping": False}))
    driver.member("bo", "Bo Janssens", language="en")
    driver.member("an")
    driver.say("bo", "/notify on")
    driver.say("bo", "/block 3")
    driver.say("bo", "/msg 3 hello")
    driver.say("bo", "/request 3 10 soup")  # a question for an, not for bo; a message too
    out = driver.say("bo", "/privacy")
    assert out.startswith(
        "[dm bo] What the bot of LETS Durme keeps about you:\n"
        "  - your code DU-002, your name (Bo Janssens), your language (English) and your place in"
        " the group (member);\n"
    )
    assert (
        "  - your offers and wants (0, also withdrawn or expired ones), when you sent whom a"
        " private message through the bot (2, never the text) and whom you block (1);\n"
        "  - whether you come to events (0), your votes (0) and proposals (0), whether you get"
        " vote reminders (on), and your open Yes/No questions (0).\n"
    ) in out
    assert (
        "  - Members see your name and code (/members), your offers, wants and proposals, and"
        " their own transactions with you (and what you book in the group), but not your"
        " balance."
    ) in out
    assert out.endswith(
        "  Want the bot to forget you? /forget_me (when your balance is zero, or if you give the"
        " rest to the group account)"
    )


def test_privacy_for_a_candidate_and_a_stranger(driver: Driver) -> None:
    driver.say("admin", "/start")
    driver.say("cas", "/join Cas")
    driver.say("cas", "/lang en")
    out = driver.say("cas", "/privacy")
    assert "your language (English) and your place in the group (candidate member);" in out
    assert driver.say("zoe", "/privacy") == (
        "[dm zoe] Over jou bewaart de bot van LETS Durme niets: je bent geen lid of kandidaat-lid."
        " Alleen de nummers van je berichten aan de bot blijven bewaard, zodat niets twee keer"
        " gebeurt, je @gebruikersnaam op Telegram als je er een hebt (om je te herkennen als"
        " iemand je vermeldt), je privéchat met de bot op Matrix en de taal die je met /taal"
        " koos. /vergeetmij wist die taal.\n"
        "  Lid worden? /aanmelden An Peeters"
    )
    assert "[dm admin] Wat de bot" in driver.say("admin", "/privacy")
    assert "(coördinator);" in driver.say("admin", "/privacy")


# /forget_me


def test_forget_me_with_a_negative_balance_is_refused_and_changes_nothing(group: Driver) -> None:
    group.say("an", "/betaal 3 40 soep")
    group.say("an", "ja")
    before = group.snapshot()
    assert group.say("an", "/vergeetmij") == (
        "[dm an] Je saldo is -40 pluimen. De bot kan je pas vergeten als je saldo nul is:"
        " verdien het eerst terug. Een schuld kwijtschelden kan alleen de groep; vraag het aan"
        " een coördinator."
    )
    assert group.last is not None and group.last.outcome == "refused"
    assert "Use /forget_me in a direct chat with me" in group.say("bo", "/forget_me", group=True)
    assert "De bot bewaart niets (meer) over jou" in group.say("zoe", "/vergeetmij")
    assert group.snapshot() == before


def test_forget_me_asks_first_and_moves_the_rest_to_the_group_account(group: Driver) -> None:
    group.say("an", "/betaal 3 40 soep")
    group.say("an", "ja")
    out = group.say("bo", "/forget_me")
    assert out == (
        "[dm bo] Do you really want the bot to forget you?\n"
        "  Your balance is 40 pluimen. If you say Yes, it goes to the group account.\n"
        "  Then the bot erases your name, your language, your chat accounts, your offers and"
        " wants, your event answers, your open questions, whom you block and your reminder"
        " choice, and closes your account DU-003. Your transactions stay in the books, under"
        ' "Forgotten member (DU-003)", so the accounts still add up; your votes on closed'
        " proposals still count and your proposals stay, without your name. This can't be"
        " undone.\n"
        "  (1) Yes  (2) No"
    )
    before = group.snapshot()
    assert group.say("bo", "no") == "[dm bo] Fine, nothing was erased."
    assert group.snapshot()["members"] == before["members"]
    assert group.snapshot()["transfers"] == before["transfers"]

    group.say("bo", "/forget_me")
    out = group.say("bo", "yes")
    assert out == (
        "[dm bo] Done: the bot has forgotten you and your account at LETS Durme is closed. To the"
        " group account: 40 pluimen. Thank you for taking part! If you want to come back later,"
        " you can join again.\n"
        "[dm admin] Een lid vroeg om vergeten te worden: Vergeten lid (DU-003). De rekening is"
        " gesloten; naar de groepsrekening: 40 pluimen."
    )
    assert rows(group, "SELECT payer_id, receiver_id, amount, kind, description FROM transfers")[
        -1
    ] == (4, 1, 40, "rest", "Rest naar de groepsrekening bij het vergeten van een lid")
    assert rows(group, "SELECT name, status, balance FROM members WHERE number = 3") == [
        ("DU-003", "inactive", 0)
    ]
    assert sound(group)
    assert "Groepsrekening (DU-000): 40 pluimen" in group.say("admin", "/leden")
    assert "Vergeten lid (DU-003), soep" in group.say("an", "/overzicht")


def test_a_balance_that_moved_after_the_question_erases_nothing(group: Driver) -> None:
    group.say("an", "/betaal 3 40 soep")
    group.say("an", "ja")
    group.say("bo", "/forget_me")
    group.say("an", "/betaal 3 5 brood")
    group.say("an", "ja")
    before = group.snapshot()["members"]
    assert group.say("bo", "yes") == (
        "[dm bo] Your balance is now 45 pluimen; nothing was erased. Ask again: /forget_me"
    )
    assert group.snapshot()["members"] == before
    assert (
        group.say("bo", "yes")
        == "[dm bo] There is no open question for you. Send /help to see what you can do."
    )


def test_a_candidate_and_a_member_who_left_can_be_forgotten_too(group: Driver) -> None:
    group.say("cas", "/aanmelden Cas Claes")
    group.say("cas", "/vergeetmij")
    assert "Klaar: de bot heeft je vergeten" in group.say("cas", "ja")
    group.say("an", "/uitstappen")
    group.say("an", "ja")
    # An never traded: she may apply again, so /start welcomes her as a newcomer.
    assert "Wil je lid worden?" in group.say("an", "/start")
    group.say("an", "/vergeetmij")
    assert "Klaar: de bot heeft je vergeten" in group.say("an", "ja")
    assert traces(group.engine, "Cas Claes", "An Peeters") == []
    assert sound(group)


def test_a_coordinator_named_in_the_configuration_is_told_why_not(driver: Driver) -> None:
    driver.say("admin", "/start")
    before = driver.snapshot()
    assert "Je staat als coördinator in de instellingen van de bot" in driver.say(
        "admin", "/vergeetmij"
    )
    assert driver.snapshot() == before


def say_as_griet(driver: Driver, numbers: Iterator[int], message: str) -> str:
    """Griet in her direct chat; event ids carry her id, as Telegram's do."""
    return driver.say(GRIET, message, event_id=f"{GRIET}:{next(numbers)}")


def test_forget_me_leaves_no_trace_and_a_sound_ledger(any_engine: Engine) -> None:
    driver = Driver(any_engine, make_settings(limits={"start_credit": 20}))
    numbers = itertools.count(1)
    driver.member("an", "An Peeters")
    driver.member("bo", "Bo Janssens", language="en")
    say_as_griet(driver, numbers, f"/aanmelden {NAME}")
    driver.say("admin", "/goedkeuren 4")
    # Everything a member leaves behind: transfers both ways (with her name in a
    # description), offers, an RSVP, votes, a block both ways, a private message,
    # reminders, a question still open for her and one she asked.
    say_as_griet(driver, numbers, "/betaal 2 30 appeltaart")
    say_as_griet(driver, numbers, "ja")
    driver.say("an", "/betaal 4 10 bedankt griet voor de taart")
    driver.say("an", "ja")
    say_as_griet(driver, numbers, "/aanbod Naaiatelier in de Kerkstraat #naaien prijs: 30 pluimen")
    say_as_griet(driver, numbers, "/vraag Een ladder lenen")
    say_as_griet(driver, numbers, "/intrekken 2")
    driver.say("admin", "/activiteit nieuw markt 12/12 10:00 Ruilmarkt")
    driver.say("admin", "ja")
    say_as_griet(driver, numbers, "/ikkom 1")
    say_as_griet(driver, numbers, "/voorstel Markt op zaterdag tot 5/12 20:00")
    say_as_griet(driver, numbers, "/stem 1 tegen")
    driver.say("an", "/stem 1 voor")
    driver.say("bo", "/vote 1 yes")
    driver.advance(driver.clock.now() + timedelta(days=5))  # proposal 1 closes
    driver.say("an", "/voorstel Repaircafé elke maand tot 20/12 20:00")
    say_as_griet(driver, numbers, "/stem 2 voor")
    say_as_griet(driver, numbers, "/blokkeer 3")
    driver.say("bo", "/block 4")
    say_as_griet(driver, numbers, "/bericht 2 Heb je de taartvorm nog?")
    say_as_griet(driver, numbers, "/meldingen aan")
    driver.say("admin", "/request 4 5 thread")  # an open question for her (she blocks bo)
    say_as_griet(driver, numbers, "/vraagbetaling 2 5 naaiwerk")  # one she asked
    # What a chat adapter keeps about her chat account.
    platform = SqlPlatformStore(any_engine, "console", driver.clock)
    platform.remember_handle("griet_v", GRIET)
    platform.hold(GRIET, '{"text": "Welkom Griet"}')
    platform.set_state(f"dm:{GRIET}", "!room1:example.org")
    platform.set_state("room:!room1:example.org", f"direct:{GRIET}")
    platform.set_state(f"buttons:{GRIET}", f"{GRIET}:12")
    platform.set_state("asking:$question", f"7 {GRIET}")
    platform.set_state("since", "s123")
    assert driver.balance(GRIET) == 0
    assert len(traces(any_engine, "griet", "verstraeten")) > 20

    say_as_griet(driver, numbers, "/koppel")  # a link code, still unused
    assert rows(driver, "SELECT count(*) FROM access_codes WHERE member_id = 5") == [(1,)]

    say_as_griet(driver, numbers, "/vergeetmij")
    out = say_as_griet(driver, numbers, "ja")  # Bo's request waits in her chat too
    assert "Er staan hier 2 vragen voor je open. Welke bedoel je?" in out
    forget = rows(driver, "SELECT max(id) FROM pending WHERE action = 'forget'")[0][0]
    out = say_as_griet(driver, numbers, f"/ja {forget}")
    assert out.startswith(
        f"[dm {GRIET}] Klaar: de bot heeft je vergeten en je rekening bij LETS Durme is gesloten."
    )
    assert "[dm admin] Een lid vroeg om vergeten te worden: Vergeten lid (DU-004)." in out

    assert traces(any_engine, "griet", "verstraeten", "naaiatelier", "ladder") == []
    assert rows(driver, "SELECT count(*) FROM access_codes WHERE member_id = 5") == [(0,)]
    assert sound(driver)
    # The books keep her transfers under the code, with her name taken out.
    assert rows(driver, "SELECT description FROM transfers WHERE id = 6") == [
        ("bedankt DU-004 voor de taart",)
    ]
    assert rows(driver, "SELECT count(*) FROM transfers WHERE payer_id = 5 OR receiver_id = 5") == [
        (3,)
    ]
    # Her vote on the closed proposal still counts; on the open one it is gone.
    assert rows(driver, "SELECT proposal_id, choice, objection FROM votes WHERE member_id = 5") == [
        (1, 1, None)
    ]
    assert "Voted: 3 of 4 members." in driver.say("bo", "/proposal 1")
    assert rows(driver, "SELECT count(*) FROM proposal_voters WHERE proposal_id = 2") == [(3,)]
    assert rows(driver, "SELECT key FROM platform_state") == [("since",)]
    assert "Vergeten lid (DU-004)" in driver.say("an", "/overzicht")
    # The same chat account is a stranger now, and may join again as someone new.
    assert "Je bent nog geen lid van LETS Durme" in say_as_griet(driver, numbers, "/saldo")
    out = say_as_griet(driver, numbers, f"/aanmelden {NAME}")
    assert "met code DU-005" in out


def test_forget_me_in_the_console_script(tmp_path: Path) -> None:
    (tmp_path / "bot.toml").write_text(CONFIG, encoding="utf-8")
    assert letsbot("db", "upgrade", cwd=tmp_path).returncode == 0
    script = (
        "@2026-12-01 09:00\n"
        "admin: /start\n"
        "griet: /aanmelden Griet Verstraeten\n"
        "admin: /goedkeuren 2\n"
        "griet: /aanbod Naaiatelier #naaien\n"
        "griet: /vergeetmij\n"
        "griet: ja\n"
        "griet: /saldo\n"
        "admin: /leden\n"
    )
    result = letsbot("console", "--script", "-", cwd=tmp_path, stdin=script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(
        "[dm griet] Klaar: de bot heeft je vergeten en je rekening bij LETS Durme is gesloten."
        " Dank je om mee te doen! Wil je later terugkomen, dan kun je je opnieuw aanmelden.\n"
        "[dm admin] Een lid vroeg om vergeten te worden: Vergeten lid (DU-002). De rekening is"
        " gesloten; naar de groepsrekening: 0 pluimen.\n"
        "[dm griet] Je bent nog geen lid van LETS Durme. Lid worden? Typ /aanmelden met je voor-"
        " en achternaam, bijvoorbeeld:\n"
        "  /aanmelden An Peeters\n"
        "[dm admin] Leden van LETS Durme (1), en de groepsrekening:\n"
        "  admin (DU-001) (coördinator): 0 pluimen\n"
        "  Groepsrekening (DU-000): 0 pluimen\n"
    )
    check = letsbot("check", cwd=tmp_path)
    assert check.returncode == 0 and check.stdout.startswith("OK: 2 members, 0 transfers")
    database = (tmp_path / "var" / "letsbot.db").read_bytes()
    assert b"Verstraeten" not in database and b"Naaiatelier" not in database


# /forget, by a coordinator


def test_a_coordinator_forgets_a_member_who_left(any_engine: Engine) -> None:
    driver = Driver(any_engine, make_settings())
    driver.member("an", "An Peeters")
    driver.member("bo", "Bo Janssens", language="en")
    driver.say("bo", "/leave")
    driver.say("bo", "yes")
    out = driver.say("admin", "/vergeet 3")
    assert out == (
        "[dm admin] Wil je dat de bot Bo Janssens (DU-003) vergeet? Naam, chat-accounts,"
        " aanbiedingen en vragen worden gewist; de transacties blijven onder de code. Dit kan"
        " niet ongedaan worden.\n"
        "  (1) Ja  (2) Nee"
    )
    assert driver.say("admin", "nee") == "[dm admin] Goed, er is niets gewist."
    assert traces(any_engine, "Janssens") != []
    driver.say("admin", "/vergeet 3")
    assert driver.say("admin", "ja") == (
        "[dm admin] Klaar: Vergeten lid (DU-003) is vergeten. De transacties blijven onder die code."
    )
    assert traces(any_engine, "Janssens") == []
    assert sound(driver)
    assert "Vergeten lid (DU-003) is al vergeten." in driver.say("admin", "/vergeet 3")


@pytest.mark.parametrize(
    ("who", "command", "expected"),
    [
        ("admin", "/vergeet 2", "An Peeters (DU-002) is niet gestopt."),
        ("admin", "/vergeet 4", "Cas (DU-004) is niet gestopt."),  # a candidate
        ("admin", "/vergeet 0", "De groepsrekening kan niet vergeten worden."),
        ("admin", "/vergeet 5", "Dit (DU-005) heeft nog een saldo van 25 pluimen."),
        ("admin", "/vergeet 9", "Er is geen lid met code DU-009"),
        ("admin", "/vergeet", "Zeg welk lid je bedoelt"),
        ("an", "/vergeet 5", "Dat kan alleen een coördinator."),
        ("admin@group", "/vergeet 5", "in een privégesprek"),
    ],
)
def test_forget_refusals_change_nothing(
    group: Driver, who: str, command: str, expected: str
) -> None:
    group.say("cas", "/aanmelden Cas")
    group.member("dit", "Dit")
    group.say("an", "/betaal 5 25 soep")
    group.say("an", "ja")
    with SqlUnitOfWork(group.engine).transaction() as store:
        found = store.members.member_by_number(5)
        assert found is not None
        store.members.update_member(found.id, status=Status.INACTIVE)  # as an import may leave it
    before = group.snapshot()
    name, _, where = who.partition("@")
    assert expected in group.say(name, command, group=bool(where))
    assert group.snapshot() == before


def test_migration_0007_goes_down_and_up_with_members_in_place(any_engine: Engine) -> None:
    driver = Driver(any_engine, make_settings())
    driver.member("an", "An Peeters")
    driver.say("an", "/aanbod Soep")
    driver.say("an", "/uitstappen")
    driver.say("an", "ja")
    driver.say("admin", "/vergeet 2")
    driver.say("admin", "ja")
    command.downgrade(_alembic_config(any_engine), "0006")
    assert schema_state(any_engine)[0] == "0006"
    upgrade(any_engine)
    assert schema_state(any_engine) == (HEAD, HEAD)
    assert rows(driver, "SELECT number, name, forgotten_at FROM members ORDER BY number") == [
        (0, "", None),
        (1, "admin", None),
        (2, "DU-002", None),  # the data stays erased; only the mark is gone
    ]


# logs


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every record, as ``letsbot run --log-level DEBUG`` sets up logging."""
    saved = {name: logging.getLogger(name).level for name in LIBRARY_LEVELS}
    caplog.set_level(logging.DEBUG)
    quiet_libraries()
    yield caplog
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def leaks(caplog: pytest.LogCaptureFixture, needles: list[str]) -> list[str]:
    """Log lines (with their tracebacks) that hold any of ``needles``, without regard to case."""
    assert caplog.records  # something was logged at all
    lines = [record.getMessage() for record in caplog.records] + caplog.text.splitlines()
    return [line for line in lines if any(n.casefold() in line.casefold() for n in needles)]


def test_logs_hold_codes_and_ids_never_names_or_texts(
    engine: Engine, debug_logs: pytest.LogCaptureFixture
) -> None:
    driver = Driver(engine, make_settings(limits={"start_credit": 20}))
    driver.member("an", "Annelies Vermeulen")
    driver.say("bo", "/aanmelden Bartholomeus Dewaele")
    driver.say("admin", "/goedkeuren 3")
    driver.say("an", "/betaal 3 15 pompoensoep")
    driver.say("an", "ja")
    driver.say("bo", "/aanbod Ik herstel oude fietsen #fietsherstel")
    driver.say("an", "/reageer 1 Kan het zaterdag?")
    driver.say("bo", "/voorstel Kermis in de Kapelstraat tot 10/12 20:00")
    driver.say("an", "/stem 1 voor")
    driver.say("admin", "/activiteit nieuw markt 12/12 10:00 Ruilmarkt @ Parochiezaal")
    driver.say("admin", "ja")
    driver.advance(driver.clock.now() + timedelta(days=14))  # reminders, digest, the vote closes
    driver.say("bo", "/betaal 2 20 kaasplank")
    driver.say("bo", "ja")
    driver.say("bo", "/vergeetmij")
    driver.say("bo", "ja")
    driver.say("admin", "/vergeet 3")
    driver.say("admin", "ja")
    texts = [
        "Annelies",
        "Vermeulen",
        "Bartholomeus",
        "Dewaele",
        "pompoensoep",
        "fietsen",
        "fietsherstel",
        "zaterdag",
        "Kermis",
        "Kapelstraat",
        "Ruilmarkt",
        "Parochiezaal",
        "kaasplank",
    ]
    handled = [r for r in debug_logs.records if r.getMessage().startswith("event=console:")]
    assert len(handled) == 19  # one line per handled message
    assert leaks(debug_logs, texts) == []


BOB = Person(200, "Bartholomeus", "Dewaele", username="bartdewaele")


async def test_telegram_logs_and_database_keep_nothing_of_a_forgotten_member(
    engine: Engine, debug_logs: pytest.LogCaptureFixture
) -> None:
    server = FakeTelegram()
    await server.start()
    server.group(GROUP)
    tg = Harness(server, engine, settings_for(server))
    try:
        server.person(ANN)
        server.person(BOB)
        await tg.start()
        await tg.ask(ANN, None, "/start", "Welkom bij LETS Durme")
        await tg.member(BOB, "Bartholomeus Dewaele")
        await tg.ask(ANN, None, "/betaal @bartdewaele 25 pompoensoep", "Betaal 25 pluimen")
        await tg.ask(ANN, None, "ja", "Geboekt")
        await tg.ask(BOB, None, "/aanbod Ik herstel oude fietsen", "staat online")
        await tg.ask(BOB, None, "/privacy", "Wat de bot van LETS Durme over jou bewaart")
        await tg.ask(BOB, None, "/vergeetmij", "Wil je echt dat de bot je vergeet?")
        await tg.ask(BOB, None, "ja", "Klaar: de bot heeft je vergeten")
        await tg.ask(BOB, None, "/saldo", "Je bent nog geen lid")
        await tg.stop()
    finally:
        if tg.task is not None and not tg.task.done():
            await tg.stop()
        await server.close()
    texts = ["Bartholomeus", "Dewaele", "pompoensoep", "fietsen", "Ann Coord", "ann_coord"]
    assert leaks(debug_logs, texts) == []
    assert traces(engine, "Bartholomeus", "Dewaele", "fietsen") == []
    person = str(BOB.id)
    with engine.connect() as connection:
        kept = connection.execute(
            text(
                "SELECT (SELECT count(*) FROM identities WHERE user_id = :id)"
                " + (SELECT count(*) FROM handles WHERE user_id = :id)"
                " + (SELECT count(*) FROM held_messages WHERE user_id = :id)"
                " + (SELECT count(*) FROM processed_events WHERE key LIKE :key)"
                " + (SELECT count(*) FROM transfers WHERE event_key LIKE :key)"
                " + (SELECT count(*) FROM platform_state WHERE key LIKE :state)"
            ),
            {"id": person, "key": f"telegram:{person}:%", "state": f"%:{person}"},
        ).scalar_one()
        connection.rollback()
    assert kept == 0
    assert ledger_problems(engine, tg.settings.group_limits) == []


def test_database_errors_do_not_carry_the_values_into_the_log(any_engine: Engine) -> None:
    with pytest.raises(IntegrityError) as error, any_engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO members (id, number, name, status, role, is_group_account, balance,"
                " created_at) VALUES (1, 0, :name, 'active', 'member', false, 0, :at)"
            ),
            {"name": "Annelies Vermeulen", "at": "2026-12-01 09:00:00"},
        )
    assert "Vermeulen" not in str(error.value)
    assert "hidden" in str(error.value)
