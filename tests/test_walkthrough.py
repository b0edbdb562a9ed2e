"""The journeys of a first-time member, typed the way people type, in Dutch and English.

Through the console dispatcher, as `letsbot console` drives it: a stranger says
hello and joins, a coordinator approves them by name, they pay a neighbour by
name with every common way of writing the command and the amount and confirm
with every common way of saying yes (or no), look at their balance, offer
something and sign up for the market. Each phrasing asserts that the bot
understood it (or asked the right question) and changed exactly what it should.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import text

from letsbot.clock import VirtualClock
from storage.database import make_engine
from tests.support import Driver, make_settings
from tests.test_plain import NO, YES

START = datetime.fromisoformat("2026-12-01T09:00:00+01:00")

GREETINGS = {
    "nl": ["hallo", "Hallo!", "dag", "goeiedag", "ik wil meedoen", "hoe werkt dit?", "help", "?"],
    "en": ["hello", "hi there", "I want to join", "how does this work?", "Hello, please help"],
}

# (typed by An, paying Lies Peeters; the amount booked; the description booked)
PAYMENTS = {
    "nl": [
        ("/betaal Lies 30 soep", 30, "soep"),
        ("/betaal lies 30 soep", 30, "soep"),
        ("/Betaal LIES 30 soep", 30, "soep"),
        ("/ betaal lies 30 soep", 30, "soep"),
        ("/betaal lies peeters 30 soep", 30, "soep"),
        ("/betaal peeters 30 soep", 30, "soep"),
        ("/betaal Lies 30 pluimen soep", 30, "soep"),
        ("/betaal Lies 30 pluim voor soep", 30, "soep"),
        ("/betaal Lies 30,00 soep", 30, "soep"),
        ("/betaal Lies 30,- soep", 30, "soep"),
        ("/betaal Lies 30 voor de soep", 30, "de soep"),
        ("/betaal Lies 1.000 verhuis", 1000, "verhuis"),
        ("/betaal Lies 1.500 pluimen verhuis", 1500, "verhuis"),
        ("/betaal 30 aan Lies voor soep", 30, "soep"),
        ("/betaal 30 pluimen aan Lies Peeters voor verse soep", 30, "verse soep"),
        ("/betaal 30 aan lies soep", 30, "soep"),
        ("/betaal DU-003 30 soep", 30, "soep"),
        ("/betaal du3 30 soep", 30, "soep"),
        ("/betaal 3 30 soep", 30, "soep"),
        ("/betaal @lies 30 soep", 30, "soep"),
        ("/betaal Lies, 30 soep", 30, "soep"),
        ("/betaal Lies 30 soep en brood", 30, "soep en brood"),
        ("/betalen Lies 30 soep", 30, "soep"),  # the Dutch words people reach for
        ("/Betaling lies 30 soep", 30, "soep"),
        ("/betaal lies 2 uur tuinwerk", 120, "tuinwerk"),  # hours at the group's rate
        ("/betaal lies 1,5 uur voor tuinwerk", 90, "tuinwerk"),
        ("/betaal lies 2u tuinwerk", 120, "tuinwerk"),
        ("/betaal lies 0,5 uur tuinwerk", 30, "tuinwerk"),
        ("/betaal Lies €30 soep", 30, "soep"),
        ("/betaal Lies 30 euro soep", 30, "soep"),
        ("/betaal Lies $30 soep", 30, "soep"),
    ],
    "en": [
        ("/pay Lies 30 soup", 30, "soup"),
        ("/pay lies peeters 30 soup", 30, "soup"),
        ("/Pay LIES 30 soup", 30, "soup"),
        ("/pay Lies 30 pluimen soup", 30, "soup"),
        ("/pay Lies 30 for soup", 30, "soup"),
        ("/pay 30 to Lies for soup", 30, "soup"),
        ("/pay 30 pluimen to Lies Peeters for fresh soup", 30, "fresh soup"),
        ("/pay Lies 1.000 moving", 1000, "moving"),
        ("/pay DU-003 30 soup", 30, "soup"),
        ("/pay @lies 30 soup", 30, "soup"),
        ("/pay lies 2 hours gardening", 120, "gardening"),
        ("/pay lies 1 hour for gardening", 60, "gardening"),
        ("/pay Lies $30 soup", 30, "soup"),
    ],
}

# Mistakes that get a question back and change nothing.
MISTAKES = {
    "nl": [
        ("/betaa lies 30 soep", "Bedoel je /betaal?"),
        ("/betalne lies 30 soep", "Bedoel je /betaal?"),
        ("betaal lies 30 soep", "Dat is de opdracht /betaal. Typ ze met een / vooraan"),
        ("/betaal lise 30 soep", "Bedoel je Lies Peeters (DU-003)?"),
        ("/betaal lies soep", "Dit is geen geldig bedrag: soep"),
        ("/betaal lies 30", "Zet er een omschrijving bij"),
        ("/betaal", "Zeg welk lid je bedoelt"),
        ("/betaal lies 1,5 soep", "Een bedrag is een heel getal"),
        ("/betaal lies 1 000 verhuis", "Is het bedrag 1.000? Schrijf het dan zonder spatie"),
        ("/betaal lies -30 soep", "Dit is geen geldig bedrag"),
        ("/betaal an 30 soep", "Je kunt jezelf niet betalen."),
        ("/betaal zorro 30 soep", "Ik weet niet welk lid je bedoelt met zorro"),
    ],
    "en": [
        ("/pya lies 30 soup", "Did you mean /pay?"),
        ("pay lies 30 soup", "That is the command /pay. Type it with a / in front"),
        ("/pay lise 30 soup", "Did you mean Lies Peeters (DU-003)?"),
        ("/pay lies soup", "not a valid amount"),
        ("/pay lies 30", "Add a description"),
        ("/pay", "Say which member you mean"),
    ],
}

BALANCE = {
    "nl": ["/saldo", "/Saldo", "/ saldo", "/SALDO", "/saldo@letsbot"],
    "en": ["/balance", "/Balance", "/ balance"],
}


@pytest.fixture
def street(db_url: str) -> Iterator[Driver]:
    """admin DU-001 (coordinator), An Peeters DU-002 and Lies Peeters DU-003 (members)."""
    engine = make_engine(db_url)
    driver = Driver(engine, make_settings(), clock=VirtualClock(START))
    driver.say("admin", "/start")
    yield driver
    engine.dispose()


def balance_of(driver: Driver, number: int) -> int:
    with driver.engine.connect() as connection:
        value = connection.execute(
            text("SELECT balance FROM members WHERE number = :n"), {"n": number}
        ).scalar_one()
        connection.rollback()
    return int(value)


def join(driver: Driver, language: str) -> None:
    """An and Lies say hello, apply, and the coordinator approves them by name."""
    word, lang = ("aanmelden", "taal") if language == "nl" else ("join", "lang")
    for name, full in (("an", "An Peeters"), ("lies", "Lies Peeters")):
        before = driver.count("members")
        for said in GREETINGS[language]:
            out = driver.say(name, said)
            assert f"/{word} " in out, (said, out)  # the welcome shows how to join
        assert driver.count("members") == before  # greetings made no one a member
        joined = driver.say(name, f"/{word} {full}")
        assert ("kandidaat-lid" if language == "nl" else "candidate member") in joined
        if language == "en":
            assert "English" in driver.say(name, f"/{lang} en")
    driver.say("admin", "/goedkeuren An Peeters")
    assert "is nu lid" in driver.say("admin", "/goedkeuren lies")


@pytest.mark.parametrize("language", ["nl", "en"])
def test_a_newcomer_joins_pays_by_name_and_confirms_as_they_speak(
    street: Driver, language: str
) -> None:
    join(street, language)
    yes = [said for said in YES if said not in ("1",)]
    expected_an, expected_lies = 0, 0
    street.say("admin", "/limiet an -100000 100000")
    street.say("admin", "/limiet lies -100000 100000")
    for index, (typed, amount, description) in enumerate(PAYMENTS[language]):
        asked = street.say("an", typed)
        assert "Lies Peeters (DU-003)" in asked, (typed, asked)
        assert f"{description}?" in asked, (typed, asked)
        answer = yes[index % len(yes)]
        booked = street.say("an", answer)
        receipt = "je betaalde" if language == "nl" else "you paid"
        assert receipt in booked and f"{description}." in booked, (typed, answer, booked)
        expected_an -= amount
        expected_lies += amount
        assert balance_of(street, 2) == expected_an, (typed, answer)
        assert balance_of(street, 3) == expected_lies, (typed, answer)


@pytest.mark.parametrize("language", ["nl", "en"])
def test_every_way_of_saying_no_books_nothing(street: Driver, language: str) -> None:
    join(street, language)
    word = "/betaal" if language == "nl" else "/pay"
    for said in NO:
        street.say("an", f"{word} lies 5 soep")
        out = street.say("an", said)
        assert "Geannuleerd" in out or "Cancelled" in out, (said, out)
        assert street.count("transfers") == 0, said


@pytest.mark.parametrize("language", ["nl", "en"])
def test_mistakes_get_a_question_back_and_change_nothing(street: Driver, language: str) -> None:
    join(street, language)
    before = street.snapshot()
    for typed, answer in MISTAKES[language]:
        out = street.say("an", typed)
        assert answer in out, (typed, out)
        assert street.snapshot() == before, typed
        assert "Traceback" not in out


@pytest.mark.parametrize("language", ["nl", "en"])
def test_balance_offers_and_the_market(street: Driver, language: str) -> None:
    join(street, language)
    for typed in BALANCE[language]:
        out = street.say("lies", typed)
        assert ("Je saldo: 0 pluimen" if language == "nl" else "Your balance: 0 pluimen") in out
    offer, offers, going = (
        ("/aanbod", "/aanbiedingen", "/ikkom")
        if language == "nl"
        else ("/offer", "/offers", "/going")
    )
    assert "#1" in street.say("lies", f"{offer} Verse soep op zaterdag #eten")
    assert "Verse soep op zaterdag" in street.say("an", f"{offers} soep")
    if language == "nl":
        assert "Verse soep op zaterdag" in street.say("an", "/zoek soep")
        assert "Dat is de opdracht /aanbiedingen." in street.say("an", "zoeken soep")
    street.say("admin", "/activiteit nieuw markt 12/12 10:00-16:00 Wintermarkt @ Parochiezaal")
    street.say("admin", "ja")
    assert street.last is not None
    announced = [reply for reply in street.last.replies if reply.choices]
    # The group's announcement, in the group's language, with its buttons.
    assert [c.answer for c in announced[0].choices] == ["/ikkom 1", "/ikkomniet 1"]
    for typed in (f"{going} 1", f"{going.upper()} 1", f"/ {going[1:]} 1"):
        out = street.say("an", typed)
        assert "Wintermarkt" in out, (typed, out)
    with street.engine.connect() as connection:
        going_count = connection.execute(text("SELECT count(*) FROM rsvps")).scalar_one()
        connection.rollback()
    assert going_count == 1  # saying it three times is one sign-up
