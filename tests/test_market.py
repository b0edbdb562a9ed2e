"""Offers and wants, search, private messages and blocks; expiry and digest on a virtual clock."""

from __future__ import annotations

from datetime import UTC, datetime
from io import StringIO
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, text

from adapters.console import Console, parse_script
from letsbot.clock import VirtualClock
from storage.database import make_engine
from tests.support import Driver, make_settings

BRUSSELS = ZoneInfo("Europe/Brussels")
MARKET_TABLES = ("listings", "listing_tags", "direct_messages", "blocks")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=BRUSSELS)  # type: ignore[misc]


@pytest.fixture
def group(driver: Driver) -> Driver:
    """admin (coordinator, DU-001), an (DU-002, Dutch) and bo (DU-003, English).

    The clock stands at Tue 1 Dec 2026 09:00 in Brussels.
    """
    driver.member("an")
    driver.member("bo", language="en")
    return driver


def everything(driver: Driver) -> dict[str, list[tuple[Any, ...]]]:
    """The ledger's snapshot and the market's tables: a refusal changes none of them."""
    state = driver.snapshot()
    with driver.engine.connect() as connection:
        for table in MARKET_TABLES:
            rows = connection.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2"))
            state[table] = [tuple(row) for row in rows]
        connection.rollback()
    return state


def rows(driver: Driver, sql: str) -> list[tuple[Any, ...]]:
    with driver.engine.connect() as connection:
        found = [tuple(row) for row in connection.execute(text(sql))]
        connection.rollback()
    return found


BIKES = "/aanbod Ik herstel fietsen #fiets prijs: 60 pluimen per uur"


# posting


def test_an_offer_is_saved_and_announced(group: Driver) -> None:
    out = group.say("an", BIKES)
    assert out == (
        "[group] Nieuw aanbod #1 van An (DU-002):\n"
        "  Ik herstel fietsen #fiets (prijs: 60 pluimen per uur)\n"
        "  Interesse? Stuur me privé: /reageer 1 en je bericht.\n"
        "[dm an] Je aanbod #1 staat online tot en met 1 mrt 2027.\n"
        "  Intrekken: /intrekken 1. Langer online: /verlengen 1.\n"
        "  Ik heb het in de groep gemeld."
    )
    ((kind, text_, price, search, expires),) = rows(
        group, "SELECT kind, text, price, search_text, expires_at FROM listings"
    )
    assert (kind, text_, price) == ("offer", "Ik herstel fietsen #fiets", "60 pluimen per uur")
    assert search == "ik herstel fietsen #fiets 60 pluimen per uur"
    assert str(expires)[:16] == "2027-03-01 23:00"  # the end of 1 March in Brussels
    assert rows(group, "SELECT tag, label FROM listing_tags") == [("fiets", "fiets")]


def test_a_want_in_english_from_the_group(group: Driver) -> None:
    out = group.say("bo", "/want Someone to trim my hedge #Garden until 2027-01-15", group=True)
    assert out == (
        "[group] Nieuwe vraag #1 van Bo (DU-003):\n"
        "  Someone to trim my hedge #Garden\n"
        "  Kun je helpen? Stuur me privé: /reageer 1 en je bericht.\n"
        "[dm bo] Your want #1 is online until 15 Jan 2027 inclusive.\n"
        "  Withdraw: /withdraw 1. Longer online: /extend 1.\n"
        "  I have announced it in the group."
    )
    assert rows(group, "SELECT tag, label FROM listing_tags") == [("garden", "garden")]


def test_announcements_can_be_switched_off(engine: Engine) -> None:
    driver = Driver(engine, make_settings(market={"announce": False, "listing_days": 30}))
    driver.member("an")
    out = driver.say("an", "/vraag Een ladder voor één dag tot en met 24/12")
    assert out == (
        "[dm an] Je vraag #1 staat online tot en met 24 dec 2026.\n"
        "  Intrekken: /intrekken 1. Langer online: /verlengen 1."
    )
    assert "tot en met 31 dec 2026" in driver.say("an", "/aanbod Soep")  # 30 days


def test_tot_inside_the_text_is_just_text(group: Driver) -> None:
    group.say("an", "/aanbod Ik help van 10 tot 12 uur #klussen")
    assert rows(group, "SELECT text FROM listings") == [("Ik help van 10 tot 12 uur #klussen",)]


@pytest.mark.parametrize(
    ("who", "command", "expected"),
    [
        ("an", "/aanbod", "Zet er een omschrijving bij, bijvoorbeeld:\n  /aanbod Ik herstel"),
        ("bo", "/want", "Add a description, for example:\n  /want Who helps me"),
        ("an", "/aanbod " + "x" * 501, "Je tekst is te lang: 501 tekens, hoogstens 500."),
        ("an", "/aanbod Soep prijs:", "Zet na prijs: wat je ervoor vraagt, bijvoorbeeld:"),
        ("bo", "/offer Soup price: " + "9" * 101, "The price is too long: at most 100"),
        ("an", "/aanbod x #a #b #c #d #e #f", "Hoogstens 5 categorieën (#woorden)"),
        ("an", "/aanbod x #" + "a" * 31, "Een categorie is hoogstens 30 tekens lang"),
        ("an", "/aanbod Soep tot 31/13", "Die datum begrijp ik niet: tot 31/13."),
        ("an", "/aanbod Soep tot 1/3 elke week", "Zet tot en de datum helemaal aan het einde"),
        ("bo", "/offer Soup until 1/1/2020", "That date is past: until 1/1/2020."),
        (
            "an",
            "/aanbod Soep tot 1/1/2028",
            "hoogstens 365 dagen vooruit, dus tot en met 1 dec 2027",
        ),
        ("an", "/aanbod Soep tot zo 5/12", "Die datum begrijp ik niet: tot zo 5/12."),
    ],
)
def test_bad_listings_are_explained_and_change_nothing(
    group: Driver, who: str, command: str, expected: str
) -> None:
    before = everything(group)
    out = group.say(who, command)
    assert expected in out
    assert group.last is not None and group.last.outcome == "refused"
    assert everything(group) == before


def test_at_most_max_active_listings(engine: Engine) -> None:
    driver = Driver(engine, make_settings(market={"max_active": 2}))
    driver.member("an")
    driver.say("an", "/aanbod Soep")
    driver.say("an", "/vraag Ladder")
    before = everything(driver)
    assert "Je hebt al 2 aanbiedingen en vragen online, het maximum." in driver.say(
        "an", "/aanbod Brood"
    )
    assert everything(driver) == before
    driver.say("an", "/intrekken 1")
    assert "Je aanbod #3 staat online" in driver.say("an", "/aanbod Brood")


def test_help_lists_the_market_commands(group: Driver) -> None:
    dutch = group.say("an", "/hulp alles")
    for usage in ("/aanbod <tekst>", "/vragen [woorden of #categorie]", "/bericht <lid> <tekst>"):
        assert usage in dutch
    group.say("bo", "/offer Soup")
    group.say("an", "/aanbod Brood")
    # The example names an offer that exists, and not one of the reader's own.
    assert "Bijvoorbeeld: /reageer 1 Hallo, ik heb interesse!" in group.say("an", "/hulp reageer")
    assert "Bijvoorbeeld: /intrekken 2" in group.say("an", "/hulp intrekken")
    english = group.say("bo", "/help categories")
    assert english.startswith("[dm bo] /categories\n  The categories in use")
    assert "/categorieën" in group.say("an", "/hulp categorieen")  # accents may be left out


def test_only_members_post(group: Driver) -> None:
    group.say("zoe", "/aanmelden Zoe")
    assert "Je aanvraag is nog niet goedgekeurd" in group.say("zoe", "/aanbod Soep")
    assert group.count("listings") == 0


# finding


def market_day(driver: Driver) -> None:
    driver.say("an", BIKES)  # 1
    driver.say("an", "/aanbod Soep in het Café De Zwaan, elke zaterdag #eten")  # 2
    driver.say("bo", "/offer Cafe au lait and cake #Eten #café")  # 3
    driver.say("bo", "/want Someone to trim my hedge #tuin")  # 4
    driver.say("an", "/vraag Wie leent me een ladder? #klussen #tuin")  # 5


def test_search_ignores_case_and_accents_newest_first(group: Driver) -> None:
    market_day(group)
    out = group.say("an", "/aanbiedingen cafe")
    assert out == (
        "[dm an] Aanbod met “cafe” (2 gevonden, pagina 1 van 1):\n"
        "  #3 Cafe au lait and cake #Eten #café — Bo (DU-003)\n"
        "  #2 Soep in het Café De Zwaan, elke zaterdag #eten — An (DU-002)\n"
        "  Reageren: /reageer <nummer> <je bericht>"
    )
    assert "#2 Soep" in group.say("an", "/aanbiedingen CAFÉ zwaan")  # every word must match
    assert "#3" not in group.say("an", "/aanbiedingen CAFÉ zwaan")
    out = group.say("bo", "/offers bikes")
    assert out == "[dm bo] No offers found with “bikes”. Try another word, or look at /categories."
    assert "#1 Ik herstel fietsen #fiets (price: 60 pluimen per uur) — An (DU-002)" in group.say(
        "bo", "/offers 60 PLUIMEN"
    )


def test_search_by_tag(group: Driver) -> None:
    market_day(group)
    out = group.say("bo", "/offers #EETEN")
    assert "No offers found" in out
    out = group.say("bo", "/offers #Eten")
    assert "Offers with “#Eten” (2 found, page 1 of 1):" in out
    assert "#3 Cafe" in out and "#2 Soep" in out
    out = group.say("an", "/vragen #tuin")
    assert out.splitlines()[1:3] == [
        "  #5 Wie leent me een ladder? #klussen #tuin — An (DU-002)",
        "  #4 Someone to trim my hedge #tuin — Bo (DU-003)",
    ]
    assert "#5" not in group.say("an", "/vragen #tuin hedge")
    # "#caf" is no tag of #café: tags match whole, words match anywhere
    assert "Geen aanbod gevonden" in group.say("an", "/aanbiedingen #caf")
    assert "#3 Cafe" in group.say("an", "/aanbiedingen #cafe")


def test_everything_and_pages(group: Driver) -> None:
    assert group.say("an", "/aanbiedingen") == (
        "[dm an] Er staat nog geen aanbod online. Zet zelf iets online, bijvoorbeeld:\n"
        "  /aanbod Ik herstel fietsen #fiets prijs: 60 pluimen per uur"
    )
    assert "There are no wants online yet." in group.say("bo", "/wants")
    for number in range(1, 13):
        group.say("an", f"/aanbod Soep nummer {number}")
    first = group.say("an", "/aanbiedingen soep")
    assert "Aanbod met “soep” (12 gevonden, pagina 1 van 2):" in first
    assert "#12 Soep nummer 12" in first and "#3 Soep nummer 3" in first and "#2 " not in first
    assert first.endswith("Meer: /aanbiedingen soep 2")
    second = group.say("an", "/aanbiedingen soep 2")
    assert "pagina 2 van 2" in second and "#1 Soep nummer 1" in second and "Meer" not in second
    assert "More: /offers 2" in group.say("bo", "/offers")
    assert "Pagina 3 bestaat niet; de laatste pagina is 2." in group.say("an", "/aanbiedingen 3")
    assert "Geef een paginanummer vanaf 1" in group.say("an", "/aanbiedingen 0")


def test_lists_are_answered_privately(group: Driver) -> None:
    market_day(group)
    out = group.say("an", "/aanbiedingen", group=True)
    assert out.startswith("[dm an] Aanbod (3 gevonden")
    assert group.say("an", "/categorieën", group=True).startswith("[dm an] Categorieën")


def test_categories(group: Driver) -> None:
    assert "Er zijn nog geen categorieën." in group.say("an", "/categorieën")
    market_day(group)
    assert group.say("an", "/categorieen") == (
        "[dm an] Categorieën (aanbod / vragen):\n"
        "  #eten: 2 / 0\n"
        "  #tuin: 0 / 2\n"
        "  #café: 1 / 0\n"
        "  #fiets: 1 / 0\n"
        "  #klussen: 0 / 1\n"
        "  Zoeken op een categorie: /aanbiedingen #eten of /vragen #eten"
    )
    out = group.say("bo", "/categories")
    assert out.startswith("[dm bo] Categories (offers / wants):\n  #eten: 2 / 0")
    assert out.endswith("Search a category: /offers #eten or /wants #eten")


def test_mine_shows_own_listings_and_recently_expired_ones(group: Driver) -> None:
    assert "Je hebt geen aanbod of vragen online." in group.say("an", "/mijn")
    group.say("an", "/aanbod Soep tot 10/12")
    group.say("an", "/vraag Ladder #klussen")
    group.say("bo", "/offer Cake")
    group.clock.set(local(2026, 12, 11, 9, 0))
    assert group.say("an", "/mijn") == (
        "[dm an] Jouw aanbod en vragen:\n"
        "  Vraag #2 (tot en met 1 mrt 2027): Ladder #klussen\n"
        "  Aanbod #1 (verlopen na 10 dec 2026): Soep. Weer online: /verlengen 1\n"
        "  Intrekken: /intrekken <nummer>. Langer online: /verlengen <nummer>."
    )
    assert group.say("bo", "/mine") == (
        "[dm bo] Your offers and wants:\n"
        "  Offer #3 (until 1 Mar 2027 inclusive): Cake\n"
        "  Withdraw: /withdraw <number>. Longer online: /extend <number>."
    )
    group.clock.set(local(2027, 1, 20, 9, 0))  # more than 30 days after its expiry
    assert "Aanbod #1" not in group.say("an", "/mijn")


# withdrawing and extending


def test_withdraw_by_owner_and_by_coordinator(group: Driver) -> None:
    market_day(group)
    assert group.say("an", "/intrekken 2") == (
        "[dm an] Aanbod #2 is ingetrokken en staat niet meer online."
    )
    assert "#2" not in group.say("bo", "/offers")
    assert "#2 is al ingetrokken." in group.say("an", "/intrekken 2")
    before = everything(group)
    assert "#1 is not yours." in group.say("bo", "/withdraw 1")
    assert everything(group) == before
    out = group.say("admin", "/intrekken #4 geen LETS-dienst")
    assert out == (
        "[dm admin] Vraag #4 is ingetrokken en staat niet meer online.\n"
        "[dm bo] A coordinator withdrew your want #4: Someone to trim my hedge #tuin\n"
        "  Reason: geen LETS-dienst"
    )
    assert group.say("bo", "/withdraw 3") == "[dm bo] Offer #3 is withdrawn and no longer online."


def test_extend(group: Driver) -> None:
    group.say("an", "/aanbod Soep tot 10/12")
    group.clock.set(local(2026, 12, 5, 9, 0))
    assert group.say("an", "/verlengen 1") == (
        "[dm an] Aanbod #1 staat nu online tot en met 5 mrt 2027."
    )
    assert "tot en met 30 jun 2027" in group.say("an", "/verlengen 1 tot 30/6")
    assert "tot en met 1 jul 2027" in group.say("an", "/verlengen 1 1 juli")
    group.say("bo", "/offer Cake until 20/12")
    group.say("admin", "/lang en")
    assert group.say("admin", "/extend 2 until 24/12") == (
        "[dm admin] Offer #2 is now online until 24 Dec 2026 inclusive.\n"
        "[dm bo] A coordinator extended your offer #2: online until 24 Dec 2026 inclusive."
    )
    assert rows(group, "SELECT id, notice_at FROM listings ORDER BY id")[1][1] is not None


def test_an_expired_listing_comes_back_when_extended(engine: Engine) -> None:
    driver = Driver(engine, make_settings(market={"max_active": 1}))
    driver.member("an")
    driver.say("an", "/aanbod Soep tot 2/12")
    driver.clock.set(local(2026, 12, 3, 9, 0))
    assert "Er staat nog geen aanbod online." in driver.say("an", "/aanbiedingen")
    driver.say("an", "/vraag Ladder")  # the only place is taken again
    assert "het maximum" in driver.say("an", "/verlengen 1")
    driver.say("an", "/intrekken 2")
    assert "staat nu online" in driver.say("an", "/verlengen 1")
    assert "#1 Soep" in driver.say("an", "/aanbiedingen")


@pytest.mark.parametrize(
    ("who", "command", "expected"),
    [
        ("an", "/verlengen", "Zeg welk aanbod of welke vraag je bedoelt, met het nummer."),
        ("an", "/verlengen 99", "Aanbod of vraag #99 bestaat niet."),
        ("an", "/verlengen abc", "Zeg welk aanbod of welke vraag je bedoelt"),
        ("an", "/verlengen 1 morgen", "Zet na het nummer niets, of tot en een datum."),
        ("an", "/verlengen 1 tot", "Zet na het nummer niets, of tot en een datum."),
        ("an", "/verlengen 1 tot 1/1/2020", "Die datum is al voorbij"),
        ("bo", "/extend 1", "#1 is not yours."),
        ("an", "/verlengen 2", "#2 is ingetrokken en kan niet meer verlengd worden."),
        ("bo", "/withdraw", "Say which offer or want you mean, with its number."),
        ("bo", "/withdraw 99", "Offer or want #99 doesn't exist."),
    ],
)
def test_bad_extend_and_withdraw_change_nothing(
    group: Driver, who: str, command: str, expected: str
) -> None:
    group.say("an", "/aanbod Soep")
    group.say("an", "/aanbod Brood")
    group.say("an", "/intrekken 2")
    before = everything(group)
    assert expected in group.say(who, command)
    assert everything(group) == before


# private messages


def test_msg_reaches_the_member_in_their_language(group: Driver) -> None:
    out = group.say("an", "/bericht DU-003 Heb je zaterdag tijd?")
    assert out == (
        "[dm bo] Message from An (DU-002):\n"
        "  Heb je zaterdag tijd?\n"
        "  To answer: /msg DU-002 <your answer>. No more messages from this member? /block DU-002\n"
        "[dm an] Verstuurd aan Bo (DU-003)."
    )
    out = group.say("bo", "/msg @an Yes, from ten", group=True)
    assert out == (
        "[dm an] Bericht van Bo (DU-003):\n"
        "  Yes, from ten\n"
        "  Antwoorden: /bericht DU-003 <je antwoord>. Geen berichten meer van dit lid?"
        " /blokkeer DU-003\n"
        "[dm bo] Sent to An (DU-002)."
    )
    an, bo = 3, 4  # member ids: the group account is 1, admin 2
    assert rows(group, "SELECT sender_id, receiver_id, listing_id FROM direct_messages") == [
        (an, bo, None),
        (bo, an, None),
    ]


def test_msg_to_the_author_of_the_message_replied_to(group: Driver) -> None:
    out = group.say("an", "/bericht Dank je!", group=True, reply_to="bo")
    assert out.startswith("[dm bo] Message from An (DU-002):\n  Dank je!")


def test_contact_quotes_the_listing(group: Driver) -> None:
    market_day(group)
    out = group.say("bo", "/contact 1 Can you fix my bike on Saturday?")
    assert out == (
        "[dm an] Bo (DU-003) reageert op je aanbod #1:"
        " Ik herstel fietsen #fiets (prijs: 60 pluimen per uur)\n"
        "  Can you fix my bike on Saturday?\n"
        "  Antwoorden: /bericht DU-003 <je antwoord>. Geen berichten meer van dit lid?"
        " /blokkeer DU-003\n"
        "[dm bo] Sent to An (DU-002)."
    )
    out = group.say("an", "/reageer 4 Ik kom met mijn schaar")
    assert out.startswith("[dm bo] An (DU-002) answers your want #4: Someone to trim my hedge")
    assert rows(group, "SELECT listing_id FROM direct_messages ORDER BY id") == [(1,), (4,)]


@pytest.mark.parametrize(
    ("who", "command", "expected"),
    [
        ("an", "/bericht", "Zeg welk lid je bedoelt"),
        ("an", "/bericht DU-003", "Zet er een omschrijving bij, bijvoorbeeld:\n  /bericht DU-001"),
        ("an", "/bericht DU-002 hallo", "Je kunt jezelf geen bericht sturen."),
        ("an", "/bericht 0 hallo", "De groepsrekening leest geen berichten."),
        ("an", "/bericht DU-099 hallo", "Er is geen lid met code DU-099."),
        ("an", "/bericht DU-004 hallo", "Zoe (DU-004) is geen actief lid. Je bericht is niet"),
        ("bo", "/msg 2 " + "x" * 1001, "Your text is too long: 1001 characters, at most 1000."),
        ("bo", "/contact 1 hi", "#1 is no longer online (withdrawn or expired)."),
        ("an", "/reageer 2 hallo", "#2 is van jezelf."),
        ("an", "/reageer 99 hallo", "Aanbod of vraag #99 bestaat niet."),
        ("bo", "/contact 2", "Add a description, for example:\n  /contact 2"),
        ("bo", "/contact", "Say which offer or want you mean"),
    ],
)
def test_bad_messages_are_explained_and_change_nothing(
    group: Driver, who: str, command: str, expected: str
) -> None:
    group.say("zoe", "/aanmelden Zoe")  # a candidate, DU-004
    group.say("an", "/aanbod Soep")
    group.say("an", "/aanbod Brood")
    group.say("an", "/intrekken 1")
    before = everything(group)
    out = group.say(who, command)
    assert expected in out
    assert "[dm an]" not in out or who == "an"  # nobody else hears of it
    assert everything(group) == before


def test_a_block_stops_messages_without_telling_the_receiver(group: Driver) -> None:
    group.say("an", "/aanbod Soep")
    assert group.say("an", "/blokkeer DU-003") == (
        "[dm an] Je krijgt geen berichten meer van Bo (DU-003). Ongedaan maken: /deblokkeer DU-003"
    )
    before = everything(group)
    # bo hears what anyone hears whose message went through; an hears nothing.
    assert group.say("bo", "/msg DU-002 hello?") == "[dm bo] Sent to An (DU-002)."
    assert group.say("bo", "/contact 1 hello?") == "[dm bo] Sent to An (DU-002)."
    after = everything(group)
    an, bo = 3, 4  # member ids: the group account is 1, admin 2
    assert rows(group, "SELECT sender_id, receiver_id, listing_id FROM direct_messages") == [
        (bo, an, None),
        (bo, an, 1),
    ]  # counted toward bo's messages per hour, as if delivered
    after["direct_messages"] = before["direct_messages"]
    assert after == before
    assert "Verstuurd aan Bo" in group.say("an", "/bericht 3 a block goes one way")
    assert group.say("an", "/blokkeer") == (
        "[dm an] Je krijgt geen berichten van: Bo (DU-003)\n"
        "  Weer toelaten, bijvoorbeeld: /deblokkeer DU-003"
    )
    assert "Je blokkeert Bo (DU-003) al." in group.say("an", "/blokkeer 3")
    assert "Je kunt jezelf niet blokkeren." in group.say("an", "/blokkeer 2")
    assert group.say("an", "/deblokkeer @bo") == (
        "[dm an] Bo (DU-003) kan je weer berichten sturen."
    )
    assert "Je blokkeert Bo (DU-003) niet." in group.say("an", "/deblokkeer 3")
    assert "Message from" not in group.say("bo", "/msg 2 hello again")  # to an, in Dutch
    assert "[dm an] Bericht van Bo (DU-003):" in group.say("bo", "/msg 2 hello again")


def test_block_in_english(group: Driver) -> None:
    assert group.say("bo", "/block") == (
        "[dm bo] You block nobody. To block a member, for example:\n  /block DU-001"
    )
    assert "You will get no more messages from An (DU-002). To undo: /unblock DU-002" in (
        group.say("bo", "/block 2")
    )
    assert "An (DU-002) can send you messages again." in group.say("bo", "/unblock 2")
    assert "You don't block An (DU-002)." in group.say("bo", "/unblock 2")


def test_messages_per_hour_are_limited(engine: Engine) -> None:
    driver = Driver(engine, make_settings(market={"msgs_per_hour": 3}))
    driver.member("an")
    driver.member("bo", language="en")
    driver.say("an", "/aanbod Soep")
    for minute in (0, 10, 20):
        driver.clock.set(local(2026, 12, 1, 10, minute))
        assert "Sent to" in driver.say("bo", f"/msg 2 number {minute}")
    before = everything(driver)
    driver.clock.set(local(2026, 12, 1, 10, 30))
    assert driver.say("bo", "/contact 1 one more") == (
        "[dm bo] You have sent 3 messages in the past hour, the most allowed."
        " You can send again from 1 Dec 2026 11:00."
    )
    assert everything(driver) == before
    driver.clock.set(local(2026, 12, 1, 11, 0, 1))
    assert "Sent to" in driver.say("bo", "/contact 1 one more")  # the first fell out
    assert "the most allowed" in driver.say("bo", "/msg 2 and another")
    for number in range(3):  # each sender counts alone
        assert "Verstuurd aan" in driver.say("an", f"/bericht 3 nummer {number}")
    assert driver.say("an", "/bericht 3 nog eentje") == (
        "[dm an] Je hebt het afgelopen uur al 3 berichten gestuurd, het maximum."
        " Vanaf 1 dec 2026 12:00 kan het weer."
    )


def test_a_member_who_left_gets_no_messages_and_their_listings_go(group: Driver) -> None:
    group.say("an", "/aanbod Soep")
    group.say("an", "/vraag Ladder")
    group.say("bo", "/offer Cake")
    group.say("an", "/uitstappen")
    group.say("an", "ja")  # balance 0: closed at once
    assert "An (DU-002) is not an active member. Your message was not sent." in group.say(
        "bo", "/msg 2 hello"
    )
    assert "#1 is no longer online" in group.say("bo", "/contact 1 hi")
    assert "#3 Cake" in group.say("bo", "/offers") and "#1" not in group.say("bo", "/offers")
    withdrawn = rows(group, "SELECT id FROM listings WHERE withdrawn_at IS NOT NULL ORDER BY id")
    assert withdrawn == [(1,), (2,)]


def test_listings_go_when_a_leaving_members_account_closes(group: Driver) -> None:
    group.say("an", "/betaal 3 30 soep")
    group.say("an", "ja")
    group.say("an", "/aanbod Soep")
    group.say("an", "/uitstappen")
    group.say("an", "ja")  # leaving, with -30: may still trade toward zero
    assert "#1 Soep" in group.say("bo", "/offers")
    group.say("bo", "/pay 2 30 back")
    group.say("bo", "yes")  # an's balance reaches 0: the account closes
    assert "There are no offers online yet." in group.say("bo", "/offers")


# scheduled: expiry notices and the weekly digest


def test_expiry_notice_once_then_hidden_at_expiry(group: Driver) -> None:
    group.say("bo", "/want Someone to trim my hedge #tuin until 31/12")
    group.say("an", "/vraag Ladder tot 4/12")  # too soon for a notice
    out = group.advance(local(2026, 12, 24, 9, 59))
    assert "[dm" not in out
    assert group.advance(local(2026, 12, 24, 10, 0)) == (
        "[dm bo] Your want #1 is online until 31 Dec 2026 inclusive:\n"
        "  Someone to trim my hedge #tuin\n"
        "  Still needed? Extend it with /extend 1. Not needed any more? /withdraw 1"
    )
    assert group.bot.scheduled_work() == []
    restarted = Driver(group.engine, group.settings, clock=group.clock)
    assert restarted.bot.scheduled_work() == []  # claimed: a restart never sends it again
    group.clock.set(local(2026, 12, 31, 23, 59))
    assert "#1 Someone" in group.say("an", "/vragen")
    group.clock.set(local(2027, 1, 1, 0, 0))
    assert "Er staan nog geen vragen online." in group.say("an", "/vragen")


def test_an_extended_listing_gets_a_fresh_notice(group: Driver) -> None:
    group.say("an", "/aanbod Soep tot 20/12")
    assert "[dm an] Je aanbod #1 staat nog online tot en met 20 dec 2026:" in group.advance(
        local(2026, 12, 14, 12, 0)
    )
    group.say("an", "/verlengen 1 tot 27/12")
    out = group.advance(local(2026, 12, 28, 12, 0))
    assert out.count("Je aanbod #1 staat nog online tot en met 27 dec 2026:") == 1
    assert rows(group, "SELECT count(*) FROM listing_notices") == [(2,)]


def test_no_notice_for_withdrawn_listings_or_when_notices_are_off(engine: Engine) -> None:
    driver = Driver(engine, make_settings(market={"expiry_notice": "0d"}))
    driver.member("an")
    driver.say("an", "/aanbod Soep tot 20/12")
    driver.say("an", "/aanbod Brood tot 20/12")
    assert "[dm" not in driver.advance(local(2026, 12, 21, 12, 0))
    on = Driver(engine, make_settings(), clock=driver.clock)
    on.say("an", "/aanbod Cake tot 31/12")
    on.say("an", "/intrekken 3")
    assert "[dm" not in on.advance(local(2027, 1, 2, 12, 0))


def test_weekly_digest_of_new_listings(group: Driver) -> None:
    market_day(group)
    group.say("an", "/intrekken 2")  # withdrawn before the digest: left out
    posted = group.advance(local(2026, 12, 7, 9, 0))
    assert posted == (
        "[group] Nieuw deze week bij LETS Durme:\n"
        "  Aanbod:\n"
        "  #1 Ik herstel fietsen #fiets (prijs: 60 pluimen per uur) — An (DU-002)\n"
        "  #3 Cafe au lait and cake #Eten #café — Bo (DU-003)\n"
        "  Vragen:\n"
        "  #4 Someone to trim my hedge #tuin — Bo (DU-003)\n"
        "  #5 Wie leent me een ladder? #klussen #tuin — An (DU-002)\n"
        "  Interesse? Stuur me privé: /reageer <nummer> <je bericht>."
        " Alles zien: /aanbiedingen en /vragen"
    )
    assert Driver(group.engine, group.settings, clock=group.clock).bot.scheduled_work() == []
    group.say("bo", "/want A ladder")  # at the digest's time: in the next one
    group.clock.set(local(2026, 12, 7, 9, 1))
    group.say("bo", "/offer Cake")
    assert group.advance(local(2026, 12, 14, 9, 0)).splitlines() == [
        "[group] Nieuw deze week bij LETS Durme:",
        "  Aanbod:",
        "  #7 Cake — Bo (DU-003)",
        "  Vragen:",
        "  #6 A ladder — Bo (DU-003)",
        "  Interesse? Stuur me privé: /reageer <nummer> <je bericht>."
        " Alles zien: /aanbiedingen en /vragen",
    ]
    assert group.advance(local(2026, 12, 28, 12, 0)) == ""  # nothing new: nothing posted
    assert rows(group, "SELECT outcome, listings FROM digests ORDER BY due_at") == [
        ("posted", 4),
        ("posted", 2),
        ("empty", 0),
        ("empty", 0),
    ]


def test_digest_on_the_configured_day_in_english_shortened(engine: Engine) -> None:
    settings = make_settings(
        group={"language": "en"}, reminders={"digest_weekday": "friday", "digest_time": "18:30"}
    )
    driver = Driver(engine, settings)
    driver.member("an", language="en")
    driver.say("an", "/offer " + "Soup " * 30)
    posted = driver.advance(local(2026, 12, 4, 18, 30))
    assert posted.splitlines()[:2] == ["[group] New this week at LETS Durme:", "  Offers:"]
    assert posted.splitlines()[2].endswith("Soup Soup Soup Soup… — An (DU-002)")
    assert len(posted.splitlines()[2]) < 130
    assert posted.endswith("See everything: /offers and /wants")


def test_a_digest_missed_beyond_the_grace_is_skipped(group: Driver) -> None:
    group.say("an", "/aanbod Soep")
    group.clock.set(local(2026, 12, 7, 16, 0))  # down from before 09:00 until 16:00
    assert group.bot.scheduled_work() == []
    assert rows(group, "SELECT outcome FROM digests") == [("skipped",)]


SCRIPT = """\
@2026-12-01 09:00
admin: /start
an: /aanmelden An
admin: /goedkeuren 2
bo: /join Bo
admin: /approve 3
bo: /lang en
an: /aanbod Soep in het café #eten prijs: 5 pluimen per kom
bo@group: /want A ladder for one day #tools until 20/12
@2026-12-07 12:00
an: /vraag Een ladder #klussen
@2026-12-21 12:00
bo: /wants
"""


def test_console_script_posts_digests_and_notices_in_order(engine: Engine) -> None:
    settings = make_settings()
    clock = VirtualClock(local(2026, 12, 1, 9, 0))
    out = StringIO()
    driver = Driver(engine, settings, clock=clock)
    Console(driver.bot, out, clock).run_script(parse_script(SCRIPT.splitlines(), settings.tz))
    blocks: list[str] = []
    for printed in out.getvalue().splitlines():
        if printed.startswith("["):
            blocks.append(printed)
        else:
            blocks[-1] += "\n" + printed
    shown = (
        "[group] Nieuw",
        "[dm bo] Your want #2 is online until 20 Dec 2026 inclusive:",
        "[dm bo] Wants",
    )
    market = [block for block in blocks if block.startswith(shown)]
    assert market == [
        "[group] Nieuw aanbod #1 van An (DU-002):\n"
        "  Soep in het café #eten (prijs: 5 pluimen per kom)\n"
        "  Interesse? Stuur me privé: /reageer 1 en je bericht.",
        "[group] Nieuwe vraag #2 van Bo (DU-003):\n"
        "  A ladder for one day #tools\n"
        "  Kun je helpen? Stuur me privé: /reageer 2 en je bericht.",
        "[group] Nieuw deze week bij LETS Durme:\n"
        "  Aanbod:\n"
        "  #1 Soep in het café #eten (prijs: 5 pluimen per kom) — An (DU-002)\n"
        "  Vragen:\n"
        "  #2 A ladder for one day #tools — Bo (DU-003)\n"
        "  Interesse? Stuur me privé: /reageer <nummer> <je bericht>."
        " Alles zien: /aanbiedingen en /vragen",
        "[group] Nieuwe vraag #3 van An (DU-002):\n"
        "  Een ladder #klussen\n"
        "  Kun je helpen? Stuur me privé: /reageer 3 en je bericht.",
        "[dm bo] Your want #2 is online until 20 Dec 2026 inclusive:\n"
        "  A ladder for one day #tools\n"
        "  Still needed? Extend it with /extend 2. Not needed any more? /withdraw 2",
        "[group] Nieuw deze week bij LETS Durme:\n"
        "  Vragen:\n"
        "  #3 Een ladder #klussen — An (DU-002)\n"
        "  Interesse? Stuur me privé: /reageer <nummer> <je bericht>."
        " Alles zien: /aanbiedingen en /vragen",
        "[dm bo] Wants (1 found, page 1 of 1):\n"
        "  #3 Een ladder #klussen — An (DU-002)\n"
        "  To answer: /contact <number> <your message>",
    ]


# the same storage on PostgreSQL


def test_market_storage_on_every_database(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        driver = Driver(engine, make_settings(market={"msgs_per_hour": 1}))
        driver.member("an")
        driver.member("bo", language="en")
        market_day(driver)
        driver.say("an", "/aanbod Korting: 50% op soep")  # 6
        assert "(2 gevonden" in driver.say("an", "/aanbiedingen CAFÉ")
        assert "#6 Korting: 50% op soep" in driver.say("an", "/aanbiedingen 50%")
        assert "Geen aanbod gevonden" in driver.say("an", "/aanbiedingen 5_")  # no wildcards
        assert "#eten: 2 / 0" in driver.say("an", "/categorieën")
        assert "Sent to" in driver.say("bo", "/contact 1 hi")
        assert "the most allowed" in driver.say("bo", "/msg 2 again")
        assert "Je krijgt geen berichten meer" in driver.say("an", "/blokkeer 3")
        posted = driver.advance(local(2027, 2, 24, 12, 0))
        assert posted.count("[group] Nieuw deze week") == 1
        assert posted.count("staat nog online tot en met 1 mrt 2027") == 4  # an's 1, 2, 5, 6
        assert posted.count("is online until 1 Mar 2027 inclusive") == 2  # bo's 3 and 4
        assert Driver(engine, driver.settings, clock=driver.clock).bot.scheduled_work() == []
        driver.clock.set(datetime(2027, 3, 2, 0, 0, tzinfo=UTC))
        assert "Er staat nog geen aanbod online." in driver.say("an", "/aanbiedingen")
    finally:
        engine.dispose()
