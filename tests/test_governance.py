"""Proposals and votes in the chat, on a virtual clock, in Dutch and English."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text

from letsbot.clock import VirtualClock
from tests.support import Driver, make_settings


@pytest.fixture
def group(driver: Driver) -> Driver:
    """admin (coordinator, DU-001), an (DU-002), bo (DU-003, English), cas (DU-004), dirk (DU-005).

    Five eligible voters; quorum 25% is 2 votes. The clock stands at Tue 1 Dec 2026 09:00.
    """
    for name in ("an", "bo", "cas", "dirk"):
        driver.member(name, language="en" if name == "bo" else "nl")
    return driver


def rows(driver: Driver, sql: str) -> list[tuple[Any, ...]]:
    with driver.engine.connect() as connection:
        found = [tuple(row) for row in connection.execute(text(sql))]
        connection.rollback()
    return found


def later(driver: Driver, **delta: int) -> str:
    return driver.advance(driver.clock.now() + timedelta(**delta))


def test_a_proposal_is_announced_voted_changed_and_closed_at_the_deadline(group: Driver) -> None:
    out = group.say("an", "/voorstel Markt voortaan op zaterdag tot 10/12 20:00", group=True)
    assert out == (
        "[dm an] Je voorstel #1 staat open tot 10 dec 2026 20:00. Ik heb het in de groep gemeld.\n"
        "[group] Nieuw voorstel #1 van An (DU-002):\n"
        "  Markt voortaan op zaterdag\n"
        "  Keuzes: 1 Voor, 2 Tegen, 3 Onthouding\n"
        "  Stemmen kan tot 10 dec 2026 20:00. Regel: meer Voor dan Tegen; er moeten minstens 2 van"
        " de 5 leden stemmen (quorum 25%); open stemming.\n"
        "  Stem in de groep of privé, bijvoorbeeld: /stem 1 voor"
    )
    assert group.say("an", "/stem 1 ja", group=True) == (
        "[group] Je stem op voorstel #1: Voor. Wijzigen kan tot 10 dec 2026 20:00."
    )
    assert group.say("cas", "/stem 1 nee") == (
        "[dm cas] Je stem op voorstel #1: Tegen. Wijzigen kan tot 10 dec 2026 20:00."
    )
    assert "is gewijzigd: Onthouding" in group.say("cas", "/stem 1 3")
    assert group.say("bo", "/vote 1 yes") == (
        "[dm bo] Your vote on proposal #1: For. You can change it until 10 Dec 2026 20:00."
    )
    assert rows(group, "SELECT member_id, choice FROM votes ORDER BY member_id") == [
        (3, 0),
        (4, 0),
        (5, 2),
    ]  # member ids: the group account is 1, admin 2
    assert group.say("cas", "/voorstel 1") == group.say("cas", "/stemming 1")  # a number: show it
    details = group.say("cas", "/stemming 1")
    assert "Stemmen: Voor: 2, Tegen: 0, Onthouding: 1" in details
    assert "Gestemd: 3 van 5 leden." in details and "Jouw stem: Onthouding." in details
    listing = group.say("dirk", "/voorstellen")
    assert "#1 Markt voortaan op zaterdag: tot 10 dec 2026 20:00, 3 van 5 gestemd" in listing

    # 2 For, 0 Against: the 2 others could still tie it, so it waits for the deadline.
    assert later(group, days=10) == (
        "[group] Uitslag voorstel #1: Markt voortaan op zaterdag\n"
        "  Aangenomen.\n"
        "  Stemmen: Voor: 2, Tegen: 0, Onthouding: 1\n"
        "  Gestemd: 3 van 5 leden; er moesten er minstens 2 stemmen: gehaald.\n"
        "  Regel: meer Voor dan Tegen; er moeten minstens 2 van de 5 leden stemmen (quorum 25%);"
        " open stemming."
    )
    assert rows(group, "SELECT status, verdict FROM proposals") == [("closed", "accepted")]
    assert later(group, days=1) == ""  # announced once
    # A restart: a new bot on the same database, later still, posts nothing again.
    again = Driver(group.engine, group.settings, VirtualClock(group.clock.now()))
    assert again.advance(again.clock.now() + timedelta(days=1)) == ""
    assert "voorbij" in group.say("dirk", "/stem 1 voor")


def test_early_close_when_the_outcome_is_certain(group: Driver) -> None:
    group.say("an", "/voorstel Nieuwe koffiemachine")
    group.say("an", "/stem 1 voor")
    group.say("bo", "/vote 1 for")
    group.say("cas", "/stem 1 voor", group=True)
    # 3 For of 5: the 2 others can't outvote them; it closed with the third vote.
    assert rows(group, "SELECT status, verdict FROM proposals") == [("closed", "accepted")]


def test_the_third_for_closes_with_the_result_announced(group: Driver) -> None:
    group.say("an", "/voorstel Nieuwe koffiemachine")
    group.say("an", "/stem 1 voor")
    assert "Uitslag" not in group.say("bo", "/vote 1 for")
    out = group.say("cas", "/stem 1 voor", group=True)
    assert out == (
        "[group] Je stem op voorstel #1: Voor. Wijzigen kan tot 8 dec 2026 09:00.\n"
        "[group] Uitslag voorstel #1: Nieuwe koffiemachine\n"
        "  De uitslag staat vast, ook als alle anderen nog zouden stemmen: de stemming is"
        " vervroegd gesloten.\n"
        "  Aangenomen.\n"
        "  Stemmen: Voor: 3, Tegen: 0, Onthouding: 0\n"
        "  Gestemd: 3 van 5 leden; er moesten er minstens 2 stemmen: gehaald.\n"
        "  Regel: meer Voor dan Tegen; er moeten minstens 2 van de 5 leden stemmen (quorum 25%);"
        " open stemming."
    )
    assert "voorbij" in group.say("dirk", "/stem 1 tegen")
    assert later(group, days=8) == ""  # not announced again at the deadline


def test_early_close_can_be_switched_off(engine: Engine) -> None:
    driver = Driver(engine, make_settings(governance={"early_close": False}))
    for name in ("an", "bo"):
        driver.member(name)
    driver.say("an", "/voorstel Soep op de markt")
    for name in ("admin", "an", "bo"):
        assert "Uitslag" not in driver.say(name, "/stem 1 voor")
    assert "Aangenomen." in later(driver, days=7)


def test_consent_asks_the_objection_and_shows_it(group: Driver) -> None:
    group.say("admin", "/voorstel Kas betaalt de zaalhuur regel:consent")
    assert "zeg je waarom je bezwaar maakt" in group.say("an", "/stem 1 tegen")
    assert rows(group, "SELECT count(*) FROM votes") == [(0,)]
    group.say("bo", "/vote 1 for")
    out = group.say("an", "/stem 1 tegen te duur voor de kas")
    # Quorum met and one objection: rejected whatever the others do.
    assert "Verworpen." in out and "De uitslag staat vast" in out
    assert "Bezwaren:\n  - An (DU-002): te duur voor de kas" in out
    assert "aanvaard tenzij iemand bezwaar maakt" in out


def test_missing_quorum_is_not_decided(engine: Engine) -> None:
    driver = Driver(engine, make_settings(governance={"quorum": 0.5}))
    for name in ("an", "bo", "cas"):
        driver.member(name)
    driver.say("an", "/voorstel Vergaderen op maandag")
    driver.say("bo", "/stem 1 tegen")
    out = later(driver, days=7)
    assert "Niet beslist: te weinig leden stemden (niet verworpen)." in out
    assert "Gestemd: 1 van 4 leden; er moesten er minstens 2 stemmen: niet gehaald." in out
    assert rows(driver, "SELECT verdict FROM proposals") == [("not_decided",)]


def test_options_in_english_plurality_and_tie(group: Driver) -> None:
    out = group.say("bo", "/propose Where do we hold the market? | Parish hall | Library")
    assert "Keuzes: 1 Parish hall, 2 Library" in out  # the group's language
    assert "de keuze met de meeste stemmen" in out and "/stem 1 1" in out
    assert "Your vote on proposal #1: Library." in group.say("bo", "/vote 1 library")
    assert "Je stem op voorstel #1: Parish hall." in group.say("an", "/stem 1 1")
    assert "Die keuze ken ik niet: zwembad" in group.say("cas", "/stem 1 zwembad")
    assert "Parish hall" in group.say("cas", "/stem 1 par")  # a unique beginning will do
    group.say("dirk", "/stem 1 2")
    out = later(group, days=7)
    assert "Gelijkspel tussen Parish hall, Library: niet beslist." in out
    assert "Stemmen: Parish hall: 2, Library: 2" in out


@pytest.mark.parametrize(
    ("who", "command", "expected"),
    [
        ("an", "/voorstel", "Zet er een omschrijving bij"),
        ("an", "/voorstel Waar? | zaal", "Geef minstens twee keuzes"),
        ("an", "/voorstel Waar? | zaal | Zaal", "Twee keuzes zijn gelijk"),
        ("an", "/voorstel Soep regel:consent", "Alleen coördinatoren kiezen"),
        ("admin", "/voorstel Soep regel:loting", "Dat begrijp ik niet: regel:loting"),
        ("bo", "/propose Soup until 1/1/2020 10:00", "That moment has already passed"),
        ("an", "/stem 9 voor", "Voorstel #9 bestaat niet"),
        ("an", "/stem", "Zeg welk voorstel je bedoelt"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    group: Driver, who: str, command: str, expected: str
) -> None:
    assert expected in group.say(who, command)
    assert group.last is not None and group.last.outcome == "refused"
    assert rows(group, "SELECT count(*) FROM proposals") == [(0,)]


def test_overrides_by_a_coordinator(group: Driver) -> None:
    out = group.say("admin", "/voorstel Ledenbijdrage naar 10 euro regel: tweederde quorum:60%")
    assert "minstens 66,7% Voor van Voor en Tegen samen; er moeten minstens 3 van de 5" in out
    assert "Ledenbijdrage naar 10 euro\n" in out


def test_only_members_active_at_the_start_vote(group: Driver) -> None:
    group.say("an", "/voorstel Nieuwe koffiemachine")
    group.member("eva")
    assert "alleen de leden die actief waren" in group.say("eva", "/stem 1 voor")


def test_withdraw_rules(group: Driver) -> None:
    group.say("an", "/voorstel Eerste")
    assert "Only the proposer of #1" in group.say("bo", "/withdraw_proposal 1")
    assert "Alleen wie voorstel #1 deed" in group.say("cas", "/voorstel_intrekken 1")
    assert group.say("an", "/voorstel_intrekken 1") == (
        "[dm an] Voorstel #1 is ingetrokken. Ik heb het in de groep gemeld.\n"
        "[group] Voorstel #1 is ingetrokken: Eerste"
    )
    group.say("an", "/voorstel Tweede")
    group.say("bo", "/vote 2 against")
    assert "nu kan alleen een coördinator" in group.say("an", "/voorstel_intrekken 2")
    assert "Zeg waarom je het intrekt" in group.say("admin", "/voorstel_intrekken 2")
    out = group.say("admin", "/voorstel_intrekken 2 staat al in het reglement")
    assert "[group] Voorstel #2 is ingetrokken door een coördinator: Tweede\n" in out
    assert "Reden: staat al in het reglement" in out
    assert "niet meer open" in group.say("admin", "/voorstel_intrekken 2 nog eens")
    assert later(group, days=8) == ""  # no result for withdrawn proposals
    assert "Withdrawn on 1 Dec 2026 09:00." in group.say("bo", "/proposal 2")


def test_reminder_a_day_before_to_opted_in_members_who_did_not_vote(group: Driver) -> None:
    assert "krijg je een herinnering" in group.say("cas", "/meldingen aan")
    assert "Reminders are off now." in group.say("bo", "/notify")
    group.say("bo", "/notify on")
    group.say("an", "/meldingen aan")
    group.say("an", "/stem 1 voor")  # refused: nothing proposed yet
    group.say("admin", "/voorstel Picknick in juni")
    group.say("an", "/stem 1 voor")
    assert later(group, days=5) == ""
    out = later(group, days=1, hours=1)
    assert out == (
        "[dm bo] Reminder: voting on proposal #1 closes in 1 day (8 Dec 2026 09:00) and you"
        " haven't voted yet.\n"
        "  Picknick in juni\n"
        "  Vote for example with: /vote 1 for\n"
        "  No more reminders: /notify off\n"
        "[dm cas] Herinnering: de stemming over voorstel #1 sluit over 1 dag (8 dec 2026 09:00)"
        " en je stemde nog niet.\n"
        "  Picknick in juni\n"
        "  Stem bijvoorbeeld met: /stem 1 voor\n"
        "  Geen herinneringen meer: /meldingen uit"
    )
    again = Driver(group.engine, group.settings, VirtualClock(group.clock.now()))
    assert again.advance(again.clock.now() + timedelta(hours=1)) == ""
    assert "Uitslag" in later(group, days=1)


def test_notify_off(group: Driver) -> None:
    group.say("cas", "/meldingen aan")
    assert "geen herinneringen meer" in group.say("cas", "/meldingen uit")
    group.say("admin", "/voorstel Picknick in juni")
    assert "Herinnering" not in later(group, days=6, hours=1)


# secret ballot: nothing anyone sees or logs depends on a choice before the close


def secret_run(engine: Engine, choices: dict[str, str], caplog: pytest.LogCaptureFixture) -> str:
    driver = Driver(engine, make_settings(governance={"ballot": "secret", "quorum": 1.0}))
    for name in ("an", "bo", "cas"):
        driver.member(name)
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        seen = [driver.say("admin", "/voorstel Geheim | Appel | Peer | Kers")]
        for name, choice in choices.items():
            seen.append(driver.say(name, f"/stem 1 {choice}", group=name == "bo"))
            seen.append(driver.say(name, "/stemming 1"))
            seen.append(driver.say(name, "/voorstellen"))
        seen.append(driver.say("admin", "/stemming 1"))
    logged = [re.sub(r"ms=[0-9.]+", "ms=", record.getMessage()) for record in caplog.records]
    return "\n".join(seen + logged)


def test_secret_ballot_never_leaks_a_choice(
    template_db: Any, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from shutil import copy

    from storage.database import make_engine

    outputs = []
    for n, choices in enumerate(
        [
            {"an": "1", "bo": "appel", "cas": "2"},
            {"an": "3", "bo": "peer", "cas": "kers"},
        ]
    ):
        path = tmp_path / f"{n}.db"
        copy(template_db, path)
        engine = make_engine(f"sqlite:///{path}")
        outputs.append(secret_run(engine, choices, caplog))
        engine.dispose()
    assert outputs[0] == outputs[1]
    assert "geteld. Geheime stemming: ik herhaal je keuze nergens" in outputs[0]
    assert "Je hebt gestemd (geheim: ik toon je keuze niet)." in outputs[0]
    assert "Gestemd: 3 van 4 leden." in outputs[0] and "Appel: " not in outputs[0]


def test_secret_ballot_tallies_at_the_close(engine: Engine) -> None:
    driver = Driver(engine, make_settings(governance={"ballot": "secret"}))
    for name in ("an", "bo"):
        driver.member(name)
    driver.say("admin", "/voorstel Geheim regel:consent")
    driver.say("bo", "/stem 1 voor")
    out = driver.say("an", "/stem 1 tegen te veel werk")  # an objection: closed at once
    assert "Verworpen." in out and "Stemmen: Voor: 1, Tegen: 1, Onthouding: 0" in out
    assert "Bezwaren:\n  - te veel werk" in out and "An" not in out  # the reason, not who


def test_choices_are_offered_as_votes_anyone_may_press(group: Driver) -> None:
    group.say("an", "/voorstel Markt voortaan op zaterdag", group=True)
    announce = group.last.replies[-1] if group.last else None
    assert announce is not None and announce.asked is None  # anyone may press
    assert [(c.label, c.answer) for c in announce.choices] == [
        ("Voor", "/stem 1 1"),
        ("Tegen", "/stem 1 2"),
        ("Onthouding", "/stem 1 3"),
    ]
    # A press in the group runs the vote as the presser and answers privately.
    assert group.say("cas", "/stem 1 2", group=True, pressed=True) == (
        "[dm cas] Je stem op voorstel #1: Tegen. Wijzigen kan tot 8 dec 2026 09:00."
    )
    assert group.say("bo", "/stem 1 1", group=True, pressed=True) == (
        "[dm bo] Your vote on proposal #1: For. You can change it until 8 Dec 2026 09:00."
    )
    # A refused press is answered privately too, and changes nothing.
    assert group.say("stranger", "/stem 1 1", group=True, pressed=True).startswith("[dm stranger]")
    assert rows(group, "SELECT member_id, choice FROM votes ORDER BY member_id") == [(4, 0), (5, 1)]
    # The details of an open proposal offer the same buttons, in the reader's language.
    group.say("bo", "/proposal 1")
    details = group.last.replies[-1] if group.last else None
    assert details is not None
    assert [c.answer for c in details.choices] == ["/vote 1 1", "/vote 1 2", "/vote 1 3"]
    assert [c.label for c in details.choices] == ["For", "Against", "Abstain"]


def test_options_are_pressed_by_number_and_gone_after_the_close(group: Driver) -> None:
    group.say("an", "/voorstel Marktdag | zaterdag | zondag | maandag tot 3/12 20:00")
    announce = group.last.replies[-1] if group.last else None
    assert announce is not None
    assert [(c.label, c.answer) for c in announce.choices] == [
        ("zaterdag", "/stem 1 1"),
        ("zondag", "/stem 1 2"),
        ("maandag", "/stem 1 3"),
    ]
    assert "zondag" in group.say("dirk", "/stem 1 2", group=True, pressed=True)
    later(group, days=3)
    group.say("dirk", "/stemming 1")
    closed = group.last.replies[-1] if group.last else None
    assert closed is not None and closed.choices == ()
    assert "voorbij" in group.say("dirk", "/stem 1 1", group=True, pressed=True)


def test_the_reminder_offers_the_choices(group: Driver) -> None:
    group.say("cas", "/meldingen aan")
    group.say("admin", "/voorstel Picknick in juni")
    group.clock.set(group.clock.now() + timedelta(days=6, hours=1))
    posts = group.bot.scheduled_work()
    assert [(c.label, c.answer) for c in posts[0].choices] == [
        ("Voor", "/stem 1 1"),
        ("Tegen", "/stem 1 2"),
        ("Onthouding", "/stem 1 3"),
    ]


DUTCH_SCRIPT = """\
@2026-12-01 09:00
admin: /start
an: /aanmelden An
admin: /goedkeuren 2
bo: /aanmelden Bo
admin: /goedkeuren 3
an@group: /voorstel Repaircafé ook in de zomer tot 4/12 20:00
bo@group: /stem 1 voor
@2026-12-03 20:00
admin: /stem 1 tegen
@2026-12-04 20:01
an: /stemming 1
"""

ENGLISH_SCRIPT = """\
@2026-12-01 09:00
admin: /start
an: /join An
admin: /approve 2
bo: /join Bo
admin: /approve 3
admin: /lang en
an@group: /propose Market day | Saturday | Sunday until 3/12 12:00
bo: /vote 1 sunday
an: /vote 1 2
"""


def run_console(engine: Engine, script: str, language: str = "nl") -> str:
    """What ``letsbot console --script`` prints for ``script``."""
    from io import StringIO

    from adapters.console import Console, parse_script

    settings = make_settings(group={"language": language})
    clock = VirtualClock(datetime(2026, 12, 1, 9, 0, tzinfo=settings.tz))
    out = StringIO()
    driver = Driver(engine, settings, clock=clock)
    Console(driver.bot, out, clock).run_script(parse_script(script.splitlines(), settings.tz))
    return out.getvalue()


def after(output: str, start: str) -> str:
    return output[output.index(start) :]


def test_console_script_in_dutch_closes_at_the_deadline(engine: Engine) -> None:
    output = run_console(engine, DUTCH_SCRIPT)
    assert after(output, "[dm an] Je voorstel") == (
        "[dm an] Je voorstel #1 staat open tot 4 dec 2026 20:00. Ik heb het in de groep gemeld.\n"
        "[group] Nieuw voorstel #1 van An (DU-002):\n"
        "  Repaircafé ook in de zomer\n"
        "  Keuzes: 1 Voor, 2 Tegen, 3 Onthouding\n"
        "  Stemmen kan tot 4 dec 2026 20:00. Regel: meer Voor dan Tegen; er moeten minstens 1 van"
        " de 3 leden stemmen (quorum 25%); open stemming.\n"
        "  Stem in de groep of privé, bijvoorbeeld: /stem 1 voor\n"
        "[group] Je stem op voorstel #1: Voor. Wijzigen kan tot 4 dec 2026 20:00.\n"
        "[dm admin] Je stem op voorstel #1: Tegen. Wijzigen kan tot 4 dec 2026 20:00.\n"
        "[group] Uitslag voorstel #1: Repaircafé ook in de zomer\n"
        "  Verworpen.\n"
        "  Stemmen: Voor: 1, Tegen: 1, Onthouding: 0\n"
        "  Gestemd: 2 van 3 leden; er moesten er minstens 1 stemmen: gehaald.\n"
        "  Regel: meer Voor dan Tegen; er moeten minstens 1 van de 3 leden stemmen (quorum 25%);"
        " open stemming.\n"
        "[dm an] Voorstel #1 van An (DU-002):\n"
        "  Repaircafé ook in de zomer\n"
        "  Keuzes: 1 Voor, 2 Tegen, 3 Onthouding\n"
        "  Regel: meer Voor dan Tegen; er moeten minstens 1 van de 3 leden stemmen (quorum 25%);"
        " open stemming.\n"
        "  Gesloten op 4 dec 2026 20:00.\n"
        "  Verworpen.\n"
        "  Stemmen: Voor: 1, Tegen: 1, Onthouding: 0\n"
        "  Gestemd: 2 van 3 leden.\n"
    )


def test_console_script_in_english_closes_early_on_certainty(engine: Engine) -> None:
    output = run_console(engine, ENGLISH_SCRIPT, "en")
    assert after(output, "[dm an] Your proposal") == (
        "[dm an] Your proposal #1 is open until 3 Dec 2026 12:00. I have announced it in the"
        " group.\n"
        "[group] New proposal #1 by An (DU-002):\n"
        "  Market day\n"
        "  Choices: 1 Saturday, 2 Sunday\n"
        "  Voting is open until 3 Dec 2026 12:00. Rule: the option with the most votes; at least 1"
        " of the 3 members must vote (quorum 25%); open ballot.\n"
        "  Vote in the group or privately, for example: /vote 1 1\n"
        "[dm bo] Your vote on proposal #1: Sunday. You can change it until 3 Dec 2026 12:00.\n"
        "[dm an] Your vote on proposal #1: Sunday. You can change it until 3 Dec 2026 12:00.\n"
        "[group] Result of proposal #1: Market day\n"
        "  The outcome can no longer change, even if everyone else still voted: voting closed"
        " early.\n"
        "  Chosen: Sunday.\n"
        "  Votes: Saturday: 0, Sunday: 2\n"
        "  Voted: 2 of 3 members; at least 1 had to vote: met.\n"
        "  Rule: the option with the most votes; at least 1 of the 3 members must vote (quorum"
        " 25%); open"
        " ballot.\n"
    )
