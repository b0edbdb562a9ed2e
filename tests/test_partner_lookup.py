"""Who is GE-012? Before a payment or a request across, the bot asks the partner's bot
and shows the receiver's name, or refuses at once. The two real bots of
tests/test_partners.py (Durme: 60 pluimen an hour, Gent: 40 munten), over real HTTP on
loopback, each asking the other as 'letsbot run' wires them."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from app.partner_http import LOOKUP_TIMEOUT, http_send
from letsbot.partner_lookup import LOOKUPS_PER_MINUTE, MEMBER_PATH
from letsbot.signing import SigningKey, sign_object
from tests.test_partners import Group, groups, tine_code, transfers, urls

__all__ = ["groups", "urls"]  # the fixtures: two bots that are partners

NOTE = "De naam kon niet nagekeken worden bij LETS Gent."


@pytest.fixture
def bots(groups: tuple[Group, Group]) -> tuple[Group, Group]:
    """Both bots ask each other who a code is, as 'letsbot run' has them do."""
    for group in groups:
        group.driver.bot.partner_lookup = group.service.look_up
    return groups


async def say(group: Group, name: str, words: str) -> str:
    """In a thread, as the hub does: the partner answers on this test's event loop."""
    return await asyncio.to_thread(group.driver.say, name, words)


def jan_code(durme: Group) -> str:
    return f"DU-{durme.driver.number('jan'):03d}"


def nothing_asked_or_booked(*both: Group) -> None:
    for group in both:
        assert group.rows("SELECT count(*) FROM pending WHERE status = 'open'") == [(0,)]
        assert transfers(group) == []
        assert group.rows("SELECT count(*) FROM partner_outgoing") == [(0,)]
        assert group.rows("SELECT count(*) FROM partner_requests") == [(0,)]


async def test_the_question_names_the_receiver(bots: tuple[Group, Group]) -> None:
    durme, gent = bots
    code = tine_code(gent)
    asked = await say(durme, "jan", f"/betaal {code} 30 soep")
    assert f"Betaal 30 pluimen aan Tine ({code}, LETS Gent) voor: soep?" in asked
    assert "Tine krijgt daar 20 munten." in asked
    assert "nagekeken" not in asked
    assert "onderweg" in await say(durme, "jan", "ja")
    assert "Tine" in await durme.send() and gent.driver.balance("tine") == 20
    # Her name stays with the payment in Jan's history, as the payer's does there.
    assert durme.rows("SELECT description FROM transfers") == [(f"soep (Tine, {code})",)]

    await say(durme, "jan", "/taal en")
    asked = await say(durme, "jan", f"/betaal {code} 45 brood")
    assert f"Pay 45 pluimen to Tine ({code}, LETS Gent) for: brood?" in asked
    assert "Tine gets 30 munten there." in asked

    # The other way, a request: Tine asks Jan, and sees whom she asked.
    said = await say(gent, "tine", f"/vraagbetaling {jan_code(durme)} 30 soep")
    assert f"Gevraagd: Jan ({jan_code(durme)}) bij LETS Durme krijgt de vraag" in said


async def test_an_unknown_or_inactive_code_is_refused_before_any_question(
    bots: tuple[Group, Group],
) -> None:
    durme, gent = bots
    said = await say(durme, "jan", "/betaal GE-099 30 soep")
    assert said == (
        "[dm jan] Dat gaat niet: GE-099 bij LETS Gent: die persoon is daar geen lid."
        " Er is niets gevraagd of geboekt. Kijk de code nog eens na: vraag die persoon om zijn"
        " of haar code."
    )
    assert durme.driver.last is not None and durme.driver.last.outcome == "refused"
    # Gent's group account and its account of Durme are no one to pay.
    [(account,)] = gent.rows("SELECT number FROM members WHERE status = 'external'")
    for number in (0, account):
        assert "daar geen lid" in await say(durme, "jan", f"/betaal GE-{number:03d} 30 soep")
    said = await say(gent, "tine", "/vraagbetaling DU-099 30 soep")
    assert "Dat gaat niet: DU-099 bij LETS Durme: die persoon is daar geen lid." in said
    nothing_asked_or_booked(durme, gent)

    code = tine_code(gent)
    with gent.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE members SET status = 'inactive' WHERE name = 'Tine'")
    said = await say(durme, "jan", f"/betaal {code} 30 soep")
    assert f"Dat gaat niet: {code} bij LETS Gent: die persoon is daar geen actief lid." in said
    assert "De code klopt, maar die rekening kan nu niets ontvangen" in said
    nothing_asked_or_booked(durme, gent)


async def test_a_forgotten_member_is_unknown(bots: tuple[Group, Group]) -> None:
    durme, gent = bots
    code = tine_code(gent)
    assert "vergeet" in await say(gent, "tine", "/vergeetmij")
    await say(gent, "tine", "ja")
    said = await say(durme, "jan", f"/betaal {code} 30 soep")
    assert f"{code} bij LETS Gent: die persoon is daar geen lid." in said
    assert "Tine" not in said
    nothing_asked_or_booked(durme)


async def test_a_partner_down_is_asked_anyway_with_the_code_only(
    bots: tuple[Group, Group],
) -> None:
    durme, gent = bots
    code = tine_code(gent)
    await gent.service.stop()  # its endpoint is gone: the lookup's connection is refused
    asked = await say(durme, "jan", f"/betaal {code} 30 soep")
    assert f"Betaal 30 pluimen aan {code} bij LETS Gent voor: soep?" in asked
    assert NOTE in asked and f"Kijk zelf na of {code} de juiste code is." in asked
    assert "onderweg" in await say(durme, "jan", "ja")  # paid as today, once it answers
    assert durme.rows("SELECT state FROM partner_outgoing") == [("sending",)]


@pytest.fixture
def silent() -> Iterator[str]:
    """A partner's address that takes the connection and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


async def test_a_slow_partner_is_waited_for_briefly(bots: tuple[Group, Group], silent: str) -> None:
    durme, gent = bots
    with durme.engine.begin() as connection:
        connection.exec_driver_sql(f"UPDATE partners SET url = '{silent}'")
    started = time.monotonic()
    asked = await say(durme, "jan", f"/betaal {tine_code(gent)} 30 soep")
    waited = time.monotonic() - started
    assert NOTE in asked
    assert LOOKUP_TIMEOUT <= waited < LOOKUP_TIMEOUT + 2


def lookup(durme: Group, gent: Group, **changes: Any) -> dict[str, Any]:
    message = {
        "v": 1,
        "kind": "member",
        "from": "DU",
        "to": "GE",
        "sent_at": gent.driver.clock.now().isoformat(),
        "nonce": "n1",
        "member": tine_code(gent),
    }
    message.update(changes)
    return message


async def ask(gent: Group, message: dict[str, Any], key: SigningKey | None) -> tuple[int, Any]:
    signed = sign_object(message, key) if key is not None else message
    status, body = await asyncio.to_thread(
        http_send, gent.url + MEMBER_PATH, json.dumps(signed).encode()
    )
    return status, json.loads(body)


async def test_forged_unsigned_and_stale_lookups_are_refused(
    bots: tuple[Group, Group], caplog: pytest.LogCaptureFixture
) -> None:
    durme, gent = bots
    key = durme.desk.key
    assert await ask(gent, lookup(durme, gent), SigningKey.generate()) == (
        403,
        {"error": "bad signature"},
    )
    assert await ask(gent, lookup(durme, gent), None) == (403, {"error": "bad signature"})
    assert (await ask(gent, lookup(durme, gent, **{"from": "XX"}), key))[0] == 403
    stale = (gent.driver.clock.now() - timedelta(minutes=6)).isoformat()
    assert (await ask(gent, lookup(durme, gent, sent_at=stale), key))[0] == 403
    assert (await ask(gent, lookup(durme, gent, to="DU"), key))[0] == 400
    assert (await ask(gent, lookup(durme, gent, member=["GE-001"]), key))[0] == 400
    # A group on eLAND sends nothing: a message in its name is refused.
    other = ("--units-per-hour", "60", "--unit", "uren", "--cap", "100")
    assert gent.cli("partner", "add", "EL", "--name", "LETS Eland", "--manual", *other) == 0
    assert await ask(gent, lookup(durme, gent, **{"from": "EL"}), key) == (
        403,
        {"error": "unknown group"},
    )
    refused = [
        r.getMessage() for r in caplog.records if "partner message refused" in r.getMessage()
    ]
    assert len(refused) == 7 and not any("Tine" in line for line in refused)

    # Signed by Durme: the state and the name, signed by Gent, and nothing else.
    status, answer = await ask(gent, lookup(durme, gent), key)
    assert status == 200
    assert set(answer) == {"v", "kind", "from", "to", "sent_at", "nonce", "member", "state"} | {
        "name",
        "signature",
    }
    assert (answer["state"], answer["name"], answer["nonce"]) == ("active", "Tine", "n1")


async def test_lookups_are_limited_per_partner(
    bots: tuple[Group, Group], caplog: pytest.LogCaptureFixture
) -> None:
    durme, gent = bots
    key = durme.desk.key
    for number in range(LOOKUPS_PER_MINUTE):
        status, answer = await ask(gent, lookup(durme, gent, member=f"GE-{number:03d}"), key)
        assert status == 200, answer
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert await ask(gent, lookup(durme, gent), key) == (429, {"error": "too many lookups"})
    assert [r.getMessage() for r in caplog.records] == [
        f"partner DU: lookup of a member refused, more than {LOOKUPS_PER_MINUTE} in a minute"
    ]
    # A member paying now is asked with the code only, and the payment goes as always.
    asked = await say(durme, "jan", f"/betaal {tine_code(gent)} 30 soep")
    assert NOTE in asked and "Tine" not in asked
    # A minute later Gent answers again.
    gent.driver.clock.set(gent.driver.clock.now() + timedelta(seconds=61))
    durme.driver.clock.set(gent.driver.clock.now())
    assert (await ask(gent, lookup(durme, gent), key))[0] == 200


@pytest.mark.parametrize(
    "words",
    [
        "{code} 30 soep",
        "30 {unit} aan {code} voor soep",
        "30 aan {code} soep",
        "30 {unit} aan {code} soep",
        "30{unit} to {code} for soep",
    ],
)
async def test_the_orders_people_type(bots: tuple[Group, Group], words: str) -> None:
    durme, gent = bots
    code, jan = tine_code(gent), jan_code(durme)
    asked = await say(durme, "jan", "/betaal " + words.format(code=code, unit="pluimen"))
    assert f"Betaal 30 pluimen aan Tine ({code}, LETS Gent) voor: soep?" in asked
    said = await say(gent, "tine", "/vraagbetaling " + words.format(code=jan, unit="munten"))
    assert (
        f"Gevraagd: Jan ({jan}) bij LETS Durme krijgt de vraag om 45 pluimen te betalen voor: soep."
    ) in said


async def test_without_a_lookup_the_code_is_shown(groups: tuple[Group, Group]) -> None:
    """The console, and a bot without a partner endpoint: asked as before."""
    durme, gent = groups
    code = tine_code(gent)
    asked = durme.driver.say("jan", f"/betaal 30 aan {code} voor soep")
    assert f"Betaal 30 pluimen aan {code} bij LETS Gent voor: soep?" in asked
    assert "nagekeken" not in asked


async def test_help_says_how_to_pay_a_partner_group(groups: tuple[Group, Group]) -> None:
    durme, _ = groups
    said = durme.driver.say("jan", "/hulp betaal")
    assert (
        "Iemand van een partnergroep (LETS Gent) betalen? Gebruik de code van die persoon,"
        " bv. /betaal GE-012 30 soep"
    ) in said
    said = durme.driver.say("jan", "/hulp vraagbetaling")
    assert (
        "om een betaling vragen? Gebruik de code van die persoon, bv. /vraagbetaling GE-012" in said
    )
    durme.driver.say("jan", "/taal en")
    said = durme.driver.say("jan", "/help pay")
    assert "Paying someone of a partner group (LETS Gent)? Use their code, e.g. /pay GE-012" in said
    assert durme.cli("partner", "remove", "GE") == 0
    assert "partner group" not in durme.driver.say("jan", "/help pay")
