"""Refusals leak nothing, and blocking blocks.

Under closed bookkeeping no reply shows another member's balance, limits or
room left; /request is held back by a block and counted like /msg, without
the blocked sender noticing; a code typed in the group is never confirmed or
denied there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from storage.database import make_engine
from storage.exchange import import_members, read_sheet
from tests.support import START, Driver, make_settings

TG = "telegram"


@pytest.fixture
def db(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def numbers_in(text: str) -> list[str]:
    """Every amount a text shows (``-1.500 pluimen``, ``100 pluimen``)."""
    return re.findall(r"-?[0-9][0-9.]* pluim", text)


# limits under closed bookkeeping ----------------------------------------------


@pytest.fixture
def closed(db: Engine) -> Driver:
    """admin DU-001 (coordinator), an DU-002, bo DU-003; upper limit 100, books closed."""
    driver = Driver(
        db, make_settings(group={"open_bookkeeping": False}, limits={"max_balance": 100})
    )
    driver.member("an")
    driver.member("bo")
    return driver


def test_another_members_limit_is_checked_only_at_the_ja(closed: Driver) -> None:
    """Refused when asking, "/betaal bo 101" would tell for free how much bo can still
    receive, amount after amount: it is refused after the Ja, where one that fits books."""
    before = closed.snapshot()
    # an pays bo past bo's upper limit: that bo can't receive it, not bo's numbers.
    for group in (False, True):
        out = closed.say("an", "/betaal 3 101 x", group=group)
        assert "Betaal 101 pluimen aan Bo (DU-003) voor: x?" in out
        out = closed.say("an", "ja", group=group)
        assert "Dat gaat niet: Bo (DU-003) kan dit bedrag nu niet ontvangen" in out
        assert numbers_in(out) == [], out
        # Refused is final: a later "ja" books nothing (the question is closed).
        assert "Geboekt" not in closed.say("an", "ja", group=group)
    assert closed.snapshot()["transfers"] == before["transfers"]
    closed.say("admin", "/boeken 2 0 1450 bijdrage")  # an at -1.450: 50 above the limit
    closed.say("admin", "ja")
    # bo asks an for more than an's lower limit allows: not an's numbers either.
    for group in (False, True):
        out = closed.say("bo", "/vraagbetaling 2 60 x", group=group)
        assert "Ik heb An (DU-002) gevraagd" in out
        assert "kan dit bedrag nu niet" not in out
        out = closed.say("an", "ja")  # an's own numbers, to an alone
        assert "Dat gaat niet: zoveel kan je nu niet betalen. Je saldo is -1.450" in out
        assert "Er staat geen vraag voor je open" in closed.say("an", "ja")  # closed
    assert closed.balance("bo") == 0


def test_own_numbers_only_in_a_direct_chat(closed: Driver) -> None:
    out = closed.say("an", "/betaal 3 1501 x")
    assert out == (
        "[dm an] Dat gaat niet: zoveel kan je nu niet betalen. Je saldo is 0 pluimen en mag"
        " niet lager worden dan -1.500 pluimen. Je kan nog 1.500 pluimen betalen."
    )
    out = closed.say("an", "/betaal 3 1501 x", group=True)  # the group would read along
    assert out == (
        "[group] Dat gaat niet: je kunt dit bedrag nu niet betalen, je grenzen laten het niet"
        " toe. Stuur /saldo om te zien hoeveel je nog kunt betalen; ik antwoord privé."
    )
    assert "niet hoger worden dan 100 pluimen" in closed.say("bo", "/vraagbetaling 2 101 x")
    out = closed.say("bo", "/vraagbetaling 2 101 x", group=True)
    assert "je kunt dit bedrag nu niet ontvangen" in out
    assert numbers_in(out) == []


def test_coordinators_see_numbers_but_not_in_the_group(closed: Driver) -> None:
    out = closed.say("admin", "/boeken 2 3 101 x")
    assert "het saldo van Bo (DU-003) mag niet hoger worden dan 100 pluimen (nu 0" in out
    out = closed.say("admin", "/boeken 2 3 101 x", group=True)
    assert "Bo (DU-003) kan dit bedrag nu niet ontvangen" in out
    assert numbers_in(out) == []
    closed.say("admin", "/boeken 2 3 50 soep")
    closed.say("admin", "ja")
    assert "(50 pluimen) ligt buiten die grenzen" in closed.say("admin", "/limiet 3 -10 20")
    out = closed.say("admin", "/limiet 3 -10 20", group=True)
    assert out == (
        "[group] Dat gaat niet: het saldo van Bo (DU-003) ligt buiten die grenzen."
        " Stuur /saldo DU-003 om het saldo te zien; ik antwoord privé."
    )
    closed.say("admin", "/boeken 3 0 1540 schenking")  # bo at -1.490: 10 above the limit
    closed.say("admin", "ja")
    assert "(nu -1.490 pluimen)" in closed.say("admin", "/terugboeken 1 vergissing")
    out = closed.say("admin", "/terugboeken 1 vergissing", group=True)
    assert "Dat gaat niet: Bo (DU-003) kan dit bedrag nu niet betalen" in out
    assert numbers_in(out) == []


def test_the_check_at_the_answer_shows_no_one_elses_numbers(closed: Driver) -> None:
    assert "Ik heb An (DU-002) gevraagd" in closed.say("bo", "/vraagbetaling 2 60 soep")
    closed.say("admin", "/boeken 1 3 50 start")  # bo now has 50: 60 more is past 100
    closed.say("admin", "ja")
    out = closed.say("an", "ja")
    assert "Dat gaat niet: Bo (DU-003) kan dit bedrag nu niet ontvangen" in out
    assert numbers_in(out) == [], out
    assert closed.balance("an") == 0


def test_a_leaving_receiver_keeps_their_balance_to_themselves(closed: Driver) -> None:
    closed.say("an", "/betaal 3 40 soep")
    closed.say("an", "ja")
    closed.say("bo", "/uitstappen")
    assert "Je stapt uit. Je saldo is 40 pluimen" in closed.say("bo", "ja")
    closed.say("an", "/betaal 3 10 x")
    out = closed.say("an", "ja")
    assert out == (
        "[dm an] Dat gaat niet: Bo (DU-003) kan dit bedrag nu niet ontvangen, de grenzen van de"
        " groep laten het niet toe. Spreek samen iets anders af, of vraag een coördinator om hulp."
    )


def test_open_bookkeeping_keeps_the_detailed_texts(db: Engine) -> None:
    driver = Driver(db, make_settings(limits={"max_balance": 100}))
    driver.member("an")
    driver.member("bo")
    out = driver.say("an", "/betaal 3 101 x", group=True)
    assert "het saldo van Bo (DU-003) mag niet hoger worden dan 100 pluimen (nu 0" in out


# /request respects /block and counts as a message ------------------------------


@pytest.fixture
def three(db: Engine) -> Driver:
    """admin DU-001, an DU-002 (Dutch), bo DU-003 (English); 3 messages an hour."""
    driver = Driver(db, make_settings(market={"msgs_per_hour": 3}))
    driver.member("an")
    driver.member("bo", language="en")
    return driver


def test_a_blocked_request_looks_sent_and_asks_nobody(three: Driver) -> None:
    assert "Je krijgt geen berichten meer van Bo (DU-003)" in three.say("an", "/blokkeer 3")
    pending = three.count("pending")
    out = three.say("bo", "/request 2 10 soup")
    assert out == ("[dm bo] I asked An (DU-002) to pay 10 pluimen. You will hear when they answer.")
    assert three.count("pending") == pending  # no question for an: nothing can be booked
    assert "Er staat geen vraag voor je open" in three.say("an", "ja")
    assert three.say("bo", "/request 2 10 soup", group=True) == (
        "[group] I asked An (DU-002) to pay 10 pluimen. You will hear when they answer."
    )
    assert three.count("pending") == pending
    assert three.count("transfers") == 0
    # The same request once unblocked: bo reads exactly what bo read before.
    three.advance(START + timedelta(hours=2))
    three.say("an", "/deblokkeer 3")
    out = three.say("bo", "/request 2 10 soup")
    assert out.splitlines()[-1] == (
        "[dm bo] I asked An (DU-002) to pay 10 pluimen. You will hear when they answer."
    )
    assert "[dm an] Bo (DU-003) vraagt 10 pluimen van je voor: soup" in out
    assert three.count("pending") == pending + 1


def test_requests_count_toward_the_messages_per_hour(three: Driver) -> None:
    three.say("an", "/blokkeer 3")
    assert "I asked admin (DU-001)" in three.say("bo", "/request 1 10 a")
    assert "I asked An (DU-002)" in three.say("bo", "/request 2 10 b")  # blocked: counts too
    assert "Sent to admin (DU-001)" in three.say("bo", "/msg 1 hello")
    before = three.snapshot()
    out = three.say("bo", "/request 1 5 c")
    assert out == (
        "[dm bo] You have sent 3 messages in the past hour, the most allowed."
        " You can send again from 1 Dec 2026 10:00."
    )
    assert three.snapshot() == before
    # A blocked /msg counts as well and reads as sent.
    three.advance(START + timedelta(hours=1, minutes=1))
    assert three.say("bo", "/msg 2 hello") == "[dm bo] Sent to An (DU-002)."
    three.say("bo", "/request 1 1 x")
    three.say("bo", "/request 1 1 y")
    assert "the most allowed" in three.say("bo", "/request 1 1 z")


# codes typed in the group -----------------------------------------------------


def link_code(reply: str) -> str:
    match = re.search(r"/koppel ([0-9]{3} [0-9]{3})$", reply, re.MULTILINE)
    assert match, reply
    return match[1]


def test_a_code_in_the_group_is_neither_confirmed_nor_denied(db: Engine) -> None:
    driver = Driver(db, make_settings())
    driver.member("an")
    code = link_code(driver.say("an", "/koppel"))
    wrong = "000 000" if code != "000 000" else "000 001"
    right_reply = driver.say("an", f"/koppel {code}", group=True)
    wrong_reply = driver.say("an", f"/koppel {wrong}", group=True)
    used_reply = driver.say("an", f"/koppel {code}", group=True)
    assert right_reply == wrong_reply == used_reply
    assert right_reply.startswith("[group] Typ een code nooit in de groep")
    assert "Dat is gelukt" not in right_reply and "klopt niet" not in wrong_reply
    assert driver.count("code_attempts") == 3  # each a wrong try
    assert "al gebruikt" in driver.say("tg-an", f"/koppel {code}", platform=TG)


def test_codes_typed_in_the_group_use_up_the_tries(db: Engine) -> None:
    driver = Driver(db, make_settings())
    driver.member("an")
    for _ in range(5):
        driver.say("tg-x", "/koppel 111 111", platform=TG, group=True)
    code = link_code(driver.say("an", "/koppel"))
    assert "te veel verkeerde codes" in driver.say("tg-x", f"/koppel {code}", platform=TG)


def test_a_claim_code_in_the_group_is_neither_confirmed_nor_denied(
    db: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "leden.csv"
    path.write_text("letscode;name;fullname;status\nDU-002;bo;Bo Janssens;1\n", encoding="utf-8")
    report = import_members(
        db, read_sheet(path, ("code", "name")), prefix="DU", decimals=0, dry_run=False, now=START
    )
    assert report.problems == []
    driver = Driver(db, make_settings())
    out = driver.say("admin", "/activeercode DU-002")
    match = re.search(r"/activeer ([0-9]{4} [0-9]{4})$", out, re.MULTILINE)
    assert match, out
    right = driver.say("tg-bo", f"/activeer {match[1]}", platform=TG, group=True)
    wrong = driver.say("tg-bo", "/activeer 0000 0000", platform=TG, group=True)
    assert right == wrong
    assert "al gebruikt" in driver.say("tg-bo", f"/activeer {match[1]}", platform=TG)


def test_a_payment_description_does_not_reach_a_member_who_blocks_its_author(
    closed: Driver,
) -> None:
    closed.say("an", f"/blokkeer {closed.number('bo')}")
    closed.say("bo", f"/betaal {closed.number('an')} 1 ik weet waar je woont")
    out = closed.say("bo", "ja")
    told_an = [line for line in out.splitlines() if line.startswith("[dm an]")]
    assert told_an and "ik weet waar je woont" not in told_an[0]
    assert "omschrijving niet getoond" in told_an[0]
    assert "ik weet waar je woont" in out  # bo sees his own words
    assert closed.count("transfers") == 1  # the payment itself stands
