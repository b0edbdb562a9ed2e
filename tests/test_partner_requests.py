"""``/vraagbetaling`` across groups: a member asks a member of a partner group to pay.
Two real bots, each on its own database, over real HTTP on loopback (the bots of
tests/test_partners.py: Durme counts 60 pluimen an hour, Gent 40 munten)."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from app.partner_http import PartnerService, http_send
from letsbot.domain import PartnerState
from letsbot.partner_requests import (
    REQUEST_PATH,
    due_requests,
    receive_request,
    request_answer,
    send_due_requests,
)
from letsbot.signing import SigningKey, sign_object
from tests.test_partners import Group, groups, tine_code, transfers, urls

__all__ = ["groups", "urls"]  # the fixtures: two bots that are partners


def jan_code(durme: Group) -> str:
    return f"DU-{durme.driver.number('jan'):03d}"


async def send_requests(group: Group) -> str:
    """One round of the request sender, as 'letsbot run' does with the payments."""
    return group.shown(await asyncio.to_thread(send_due_requests, group.desk, http_send))


def later(seconds: float, *both: Group) -> None:
    for group in both:
        group.driver.clock.set(group.driver.clock.now() + timedelta(seconds=seconds))


def waiting(group: Group) -> list[str]:
    """What the bot queued for its hub (the tests have none): questions, receipts."""
    rows = group.rows("SELECT body FROM outbox WHERE body <> '' ORDER BY id")
    with group.engine.begin() as connection:  # read once, as the hub would send it once
        connection.execute(text("UPDATE outbox SET body = ''"))
    return [body for (body,) in rows]


def states(group: Group, direction: str) -> list[tuple[Any, ...]]:
    return group.rows(
        "SELECT state, reason, amount, their_amount FROM partner_requests"
        f" WHERE direction = '{direction}' ORDER BY id"
    )


async def test_a_request_each_way_is_paid_exactly(
    groups: tuple[Group, Group], capsys: pytest.CaptureFixture[str]
) -> None:
    durme, gent = groups
    for group in (durme, gent):  # 'letsbot partner check' reads the system clock
        group.driver.clock.set(datetime.now(UTC))
    jan, tine = jan_code(durme), tine_code(gent)

    # Gent → Durme: Tine asks 30 munten; Jan is asked 45 pluimen (30 × 60 / 40).
    said = gent.driver.say("tine", f"/vraagbetaling {jan} 30 soep")
    assert f"Gevraagd: {jan} bij LETS Durme krijgt de vraag om 45 pluimen te betalen" in said
    assert "Zegt die ja, dan krijg jij 30 munten" in said
    assert transfers(gent) == [] and states(gent, "out") == [("sending", None, 30, 45)]
    assert await send_requests(gent) == ""
    assert states(gent, "out") == [("asked", None, 30, 45)]
    [question] = waiting(durme)
    assert f"Tine ({tine}) van LETS Gent vraagt je 45 pluimen voor: soep. Betalen?" in question
    assert "Bij LETS Gent krijgt die 30 munten." in question
    assert "afgerond" not in question
    said = durme.driver.say("jan", "ja")
    assert "De betaling is onderweg naar LETS Gent" in said and "je betaalde 45 pluimen" in said
    assert states(durme, "in") == [("paid", None, 45, 30)]
    assert "Aangekomen: je betaling van 45 pluimen" in await durme.send()
    assert gent.driver.balance("tine") == 30 and durme.driver.balance("jan") == -45
    [receipt] = waiting(gent)
    assert f"je kreeg 30 munten van Jan ({jan}) bij LETS Durme voor: soep" in receipt
    later(6, durme, gent)
    assert await send_requests(gent) == ""  # paid: the receipt said it already
    assert states(gent, "out") == [("paid", None, 30, 45)]

    # Durme → Gent: Jan asks 20 pluimen; 13,33 munten is rounded up to 14, and Jan
    # gets what 14 munten are: 21 pluimen, as the reply says before anything is sent.
    said = durme.driver.say("jan", f"/vraagbetaling {tine} 20 brood")
    assert "de vraag om 14 munten te betalen voor: brood" in said
    assert "dan krijg jij 21 pluimen" in said
    await send_requests(durme)
    [question] = waiting(gent)
    assert f"Jan ({jan}) van LETS Durme vraagt je 14 munten voor: brood." in question
    assert "Bij LETS Durme krijgt die 21 pluimen." in question
    assert "onderweg" in gent.driver.say("tine", "ja")
    assert "Aangekomen" in await gent.send()
    assert gent.driver.balance("tine") == 16 and durme.driver.balance("jan") == -24
    later(6, durme, gent)
    assert await send_requests(durme) == ""
    assert states(durme, "out") == [("paid", None, 21, 14)]

    for group in (durme, gent):
        group.ledger_sums_to_zero()
        capsys.readouterr()
        assert await asyncio.to_thread(group.cli, "check") == 0
        assert await asyncio.to_thread(group.cli, "partner", "check") == 0, capsys.readouterr()
        assert "OK    trade with" in capsys.readouterr().out


async def test_no_tells_the_requester_and_books_nothing(groups: tuple[Group, Group]) -> None:
    durme, gent = groups
    gent.driver.say("tine", f"/vraagbetaling {jan_code(durme)} 30 soep")
    await send_requests(gent)
    assert "Geannuleerd. Er is niets geboekt." in durme.driver.say("jan", "nee")
    assert states(durme, "in") == [("declined", None, 45, 30)]
    later(6, durme, gent)
    told = await send_requests(gent)
    assert f"[dm tine] {jan_code(durme)} bij LETS Durme wil je betaalverzoek van 30 munten" in told
    assert "voor: soep niet betalen. Er is niets geboekt." in told
    assert states(gent, "out") == [("declined", None, 30, 45)]
    later(60, durme, gent)
    assert await send_requests(gent) == ""  # told once
    assert transfers(durme) == [] and transfers(gent) == []


async def test_no_answer_in_time_tells_the_requester(groups: tuple[Group, Group]) -> None:
    durme, gent = groups
    gent.driver.say("tine", f"/vraagbetaling {jan_code(durme)} 30 soep")
    await send_requests(gent)
    for _ in range(3):  # looked at again and again while Jan doesn't answer
        later(30 * 60 / 3, durme, gent)
        assert await send_requests(gent) == ""
    assert states(gent, "out")[0][0] == "asked"
    later(31 * 60, durme, gent)  # past the request's hour (partners.give_up here)
    told = await send_requests(gent)
    assert "heeft niet geantwoord op je betaalverzoek van 30 munten voor: soep" in told
    assert states(gent, "out")[0][0] == "expired"
    assert states(durme, "in")[0][0] == "expired"
    assert "Er staat geen vraag voor je open" in durme.driver.say("jan", "ja")
    assert transfers(durme) == []


@pytest.mark.parametrize(
    ("payer", "said"),
    [
        ("DU-099", "die persoon is daar geen lid"),
        ("DU-000", "die persoon is daar geen lid"),  # the group account
        ("account", "die persoon is daar geen lid"),  # Durme's account of a partner
        ("paused", "betalen met die groep staat even stil"),
    ],
)
async def test_a_refused_request_is_told(
    groups: tuple[Group, Group], payer: str, said: str
) -> None:
    durme, gent = groups
    code = payer
    if payer == "account":
        [(number,)] = durme.rows(
            "SELECT m.number FROM members m JOIN partners p ON p.account_id = m.id"
        )
        code = f"DU-{number:03d}"
    if payer == "paused":
        code = jan_code(durme)
        assert durme.cli("partner", "pause", "GE") == 0
    gent.driver.say("tine", f"/vraagbetaling {code} 30 soep")
    told = await send_requests(gent)
    assert f"[dm tine] Je betaalverzoek aan {code} bij LETS Durme van 30 munten" in told
    assert said in told and "Er is niets geboekt." in told
    assert states(gent, "out")[0][0] == "refused"
    assert waiting(durme) == []  # no one asked
    assert transfers(durme) == [] and transfers(gent) == []


async def test_refused_before_anything_is_sent(groups: tuple[Group, Group]) -> None:
    durme, gent = groups
    assert gent.cli("partner", "pause", "DU") == 0
    said = gent.driver.say("tine", f"/vraagbetaling {jan_code(durme)} 30 soep")
    assert "Betalen met LETS Durme staat even stil" in said
    assert gent.cli("partner", "resume", "DU") == 0
    # Gent's cap with Durme is 200 munten: the account would pay more than that.
    said = gent.driver.say("tine", f"/vraagbetaling {jan_code(durme)} 201 soep")
    assert "en met dit bedrag ga je daarover" in said
    said = gent.driver.say("tine", f"/vraagbetaling {jan_code(durme)} soep")
    assert "Dit is geen geldig bedrag: soep" in said
    other = ("--units-per-hour", "60", "--unit", "uren", "--cap", "100")
    assert gent.cli("partner", "add", "EL", "--name", "LETS Eland", "--manual", *other) == 0
    said = gent.driver.say("tine", "/vraagbetaling EL-004 30 soep")
    assert "LETS Eland werkt zonder bot (met eLAND)" in said
    assert gent.rows("SELECT count(*) FROM partner_requests") == [(0,)]


async def test_a_repeated_delivery_asks_once(groups: tuple[Group, Group]) -> None:
    durme, gent = groups
    gent.driver.say("tine", f"/vraagbetaling {jan_code(durme)} 30 soep")
    [(request, partner, message)] = due_requests(gent.desk)
    url = durme.url + REQUEST_PATH
    answers = [await asyncio.to_thread(http_send, url, message) for _ in range(3)]
    assert {status for status, _ in answers} == {200}
    assert {json.loads(body)["state"] for _, body in answers} == {"asked"}
    assert len(waiting(durme)) == 1  # one question
    assert durme.rows("SELECT count(*) FROM pending WHERE status = 'open'") == [(1,)]
    durme.driver.say("jan", "ja")
    status, body = await asyncio.to_thread(http_send, url, message)
    assert (status, json.loads(body)["state"]) == (200, "paid")
    assert len(transfers(durme)) == 1
    gent.shown(request_answer(gent.desk, request, partner, status, body))
    assert states(gent, "out")[0][0] == "paid"


def _message(durme: Group, gent: Group, **changes: Any) -> dict[str, Any]:
    now = durme.driver.clock.now()
    message: dict[str, Any] = {
        "v": 1,
        "kind": "request",
        "from": "GE",
        "to": "DU",
        "request_id": "r1",
        "sent_at": now.isoformat(),
        "expires_at": (now + timedelta(hours=1)).isoformat(),
        "requester": tine_code(gent),
        "requester_name": "Tine",
        "payer": jan_code(durme),
        "amount": 45,
        "description": "soep",
        "requester_amount": 30,  # munten at 40 an hour: 45 pluimen at 60
        "requester_units_per_hour": 40,
        "requester_decimals": 0,
    }
    message.update(changes)
    return message


async def _post(durme: Group, message: dict[str, Any], key: SigningKey) -> tuple[int, Any]:
    body = json.dumps(sign_object(message, key)).encode()
    status, answer = await asyncio.to_thread(http_send, durme.url + REQUEST_PATH, body)
    return status, json.loads(answer)


async def test_forged_replayed_and_stale_requests_ask_no_one(
    groups: tuple[Group, Group], caplog: pytest.LogCaptureFixture
) -> None:
    durme, gent = groups
    key = gent.desk.key
    forged = await _post(durme, _message(durme, gent), SigningKey.generate())
    assert forged == (403, {"error": "bad signature"})
    assert (await _post(durme, _message(durme, gent, **{"from": "XX"}), key))[0] == 403
    stale = (durme.driver.clock.now() - timedelta(minutes=6)).isoformat()
    assert (await _post(durme, _message(durme, gent, sent_at=stale), key))[0] == 403
    assert (await _post(durme, _message(durme, gent, kind="payment"), key))[0] == 400
    assert (await _post(durme, _message(durme, gent, description="x" * 201), key))[0] == 400
    assert waiting(durme) == []
    status, answer = await _post(durme, _message(durme, gent, description="so\u202eep"), key)
    assert (status, answer["state"]) == (200, "asked")
    [question] = waiting(durme)
    assert "voor: soep." in question
    replay = _message(durme, gent, amount=450)  # the same request id, another amount
    assert await _post(durme, replay, key) == (409, {"error": "request id replayed"})
    renamed = _message(durme, gent, requester_name="Tine V.", description="so\u202eep")
    assert (await _post(durme, renamed, key))[1]["state"] == "asked"  # a new name is no replay
    assert waiting(durme) == []
    refused = [r for r in caplog.records if "partner message refused" in r.getMessage()]
    assert len(refused) == 6  # each logged once
    assert transfers(durme) == []


async def test_the_partner_down_then_up_gets_the_request_later(
    groups: tuple[Group, Group],
) -> None:
    durme, gent = groups
    await durme.service.stop()
    gent.driver.say("tine", f"/vraagbetaling {jan_code(durme)} 30 soep")
    assert await send_requests(gent) == ""
    tries = "SELECT state, tries FROM partner_requests"
    assert gent.rows(tries) == [("sending", 1)]
    later(6, durme, gent)
    assert await send_requests(gent) == ""
    assert gent.rows(tries) == [("sending", 2)]
    later(6, durme, gent)
    assert await send_requests(gent) == ""  # the pause grew: 10 s now
    assert gent.rows(tries) == [("sending", 2)]
    durme.service.listen = f"127.0.0.1:{durme.service.port}"
    await durme.service.start(send_every=0)
    later(5, durme, gent)
    assert await send_requests(gent) == ""
    assert gent.rows(tries) == [("asked", 3)]
    assert len(waiting(durme)) == 1


async def test_a_partner_that_never_answers_is_told_after_the_expiry(
    groups: tuple[Group, Group],
) -> None:
    durme, gent = groups
    await durme.service.stop()
    gent.driver.say("tine", f"/vraagbetaling {jan_code(durme)} 30 soep")
    await send_requests(gent)
    later(60 * 60 + 6 * 60, durme, gent)  # past the hour and the window
    told = await send_requests(gent)
    assert "is niet gelukt: de andere groep antwoordde te lang niet" in told
    assert states(gent, "out")[0][:2] == ("refused", "no_answer")


async def test_in_english_and_sent_by_the_running_sender(groups: tuple[Group, Group]) -> None:
    durme, gent = groups
    durme.driver.say("jan", "/lang en")
    gent.driver.say("tine", "/taal en")
    said = gent.driver.say("tine", f"/request {jan_code(durme)} 31 soup")
    # 31 munten at 40 an hour: 46,5 pluimen, rounded up to 47; 47 pluimen are 31,33 munten.
    assert "is asked to pay 47 pluimen for: soup" in said and "you get 31 munten" in said
    sender = PartnerService(gent.desk, None, "")
    await sender.send_round()  # what 'letsbot run' does every few seconds
    [question] = waiting(durme)
    assert "of LETS Gent asks you 47 pluimen for: soup. Pay?" in question
    assert "At LETS Gent they get 31 munten." in question and "Rounded down" in question
    durme.driver.say("jan", "no")
    later(6, durme, gent)
    await sender.send_round()
    [told] = waiting(gent)
    assert "doesn't want to pay your request of 31 munten for: soup" in told


async def test_doctor_names_requests_past_their_expiry(
    groups: tuple[Group, Group], capsys: pytest.CaptureFixture[str]
) -> None:
    durme, gent = groups
    await durme.service.stop()
    # The doctor reads the system clock: the request was made two hours ago.
    gent.driver.clock.set(datetime.now(UTC) - timedelta(hours=2))
    gent.driver.say("tine", f"/vraagbetaling {jan_code(durme)} 30 soep")
    capsys.readouterr()
    assert await asyncio.to_thread(gent.cli, "doctor") == 1
    said = capsys.readouterr().out
    assert (
        "FAIL  partner DU: 1 payment request(s) to LETS Durme past their expiry, their"
        " requesters not told; fix: keep 'letsbot run' running" in said
    )
    gent.driver.clock.set(datetime.now(UTC))
    await send_requests(gent)  # what 'letsbot run' does: tells Tine, and it is settled
    capsys.readouterr()
    await asyncio.to_thread(gent.cli, "doctor")
    assert "payment request(s)" not in capsys.readouterr().out


async def test_deliveries_at_the_same_moment_ask_once(groups: tuple[Group, Group]) -> None:
    durme, gent = groups
    body = json.dumps(sign_object(_message(durme, gent), gent.desk.key)).encode()
    answers: list[bytes] = []
    barrier = threading.Barrier(6)

    def deliver() -> None:
        barrier.wait()
        answers.append(receive_request(durme.desk, body).body)

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 6 and {json.loads(a)["state"] for a in answers} == {"asked"}
    assert durme.rows("SELECT count(*) FROM pending") == [(1,)]
    assert durme.rows("SELECT count(*) FROM partner_requests") == [(1,)]


async def test_a_request_to_a_partner_removed_meanwhile_is_told(
    groups: tuple[Group, Group],
) -> None:
    durme, gent = groups
    await durme.service.stop()
    gent.driver.say("tine", f"/vraagbetaling {jan_code(durme)} 30 soep")
    await send_requests(gent)
    assert gent.cli("partner", "remove", "DU") == 0
    later(6, durme, gent)
    told = await send_requests(gent)
    assert "is niet gelukt: betalen met die groep staat even stil" in told
    assert states(gent, "out")[0][:2] == ("refused", "paused")


async def test_forgetting_a_member_takes_their_name_out_of_trade_with_partners(
    groups: tuple[Group, Group],
) -> None:
    """A payment to a partner group and requests between groups keep their words, as
    transfers do, but not the forgotten member's name."""
    durme, gent = groups
    jan, tine = jan_code(durme), tine_code(gent)
    durme.driver.say("jan", f"/vraagbetaling {tine} 20 brood van Jan")
    gent.driver.say("tine", f"/vraagbetaling {jan} 30 soep voor jan")
    await send_requests(gent)
    durme.driver.say("jan", "nee")  # Tine's request: declined
    durme.driver.say("jan", f"/betaal {tine} 30 taart van Jan Claes")
    durme.driver.say("jan", "ja")
    assert "Aangekomen" in await durme.send()
    durme.driver.member("an")
    durme.driver.say("an", f"/betaal {jan} 30 terug")
    durme.driver.say("an", "ja")
    durme.driver.say("jan", "/leave")
    assert "is gesloten" in durme.driver.say("jan", "ja")
    durme.driver.say("admin", f"/vergeet {durme.driver.number('jan')}")
    assert "is vergeten" in durme.driver.say("admin", "ja")
    kept = [
        *durme.rows("SELECT description FROM partner_outgoing"),
        *durme.rows("SELECT description FROM partner_requests ORDER BY id"),
    ]
    assert kept == [
        (f"taart van {jan} Claes",),
        (f"brood van {jan}",),
        (f"soep voor {jan}",),
    ]


async def test_the_requester_hears_when_the_payment_for_their_request_cant_be_booked(
    groups: tuple[Group, Group],
) -> None:
    durme, gent = groups
    jan = jan_code(durme)
    gent.driver.say("tine", f"/vraagbetaling {jan} 30 soep")
    await send_requests(gent)
    waiting(gent)
    with gent.engine.begin() as connection:  # meanwhile Tine may receive nothing more
        connection.execute(text("UPDATE members SET max_balance = 0"))
    assert "onderweg" in durme.driver.say("jan", "ja")
    assert "teruggeboekt" in await durme.send()  # Jan hears it, and has it back
    assert durme.driver.balance("jan") == 0 and gent.driver.balance("tine") == 0
    [told] = waiting(gent)
    assert (
        f"{jan} bij LETS Durme zei ja op je betaalverzoek van 30 munten voor: soep, maar de"
        " betaling kon hier niet geboekt worden: je saldo zou boven je grens gaan. Er is niets"
        " geboekt; bij LETS Durme wordt ze teruggeboekt." in told
    )
    # A repeat of that payment (its answer lost) gets the same answer, and tells her
    # nothing again.
    with durme.driver.bot.uow.transaction() as store:
        [payment] = store.partners.outgoing_payments([PartnerState.REVERSED])
        partner = store.partners.partner(payment.partner_id)
        payer = store.members.member(payment.payer_id)
    assert partner is not None and payer is not None
    again = gent.desk.receive(durme.desk.message_for(payment, partner, payer))
    assert json.loads(again.body)["reason"] == "limit"
    assert waiting(gent) == []


async def test_a_want_naming_a_partner_member_and_an_amount_is_a_request(
    groups: tuple[Group, Group],
) -> None:
    durme, gent = groups
    tine = tine_code(gent)
    said = durme.driver.say("jan", f"/vraag {tine} 30 soep")
    assert (
        f"Om {tine} (LETS Gent) te vragen je te betalen, stuur:\n  /vraagbetaling {tine} 30" in said
    )
    assert durme.rows("SELECT count(*) FROM listings") == [(0,)]
    said = durme.driver.say("jan", f"vraag {tine} 30 soep")  # no slash: the same advice
    assert f"/vraagbetaling {tine} 30 soep" in said
    assert durme.rows("SELECT count(*) FROM listings") == [(0,)]


async def test_the_same_request_typed_twice_asks_once(groups: tuple[Group, Group]) -> None:
    durme, gent = groups
    tine = tine_code(gent)
    assert "Gevraagd:" in durme.driver.say("jan", f"/vraagbetaling {tine} 10 peren")
    said = durme.driver.say("jan", f"/vraagbetaling {tine} 10 Peren")
    assert f"Je vroeg {tine} bij LETS Gent al om 10 pluimen voor: Peren." in said
    assert "Gevraagd:" in durme.driver.say("jan", f"/vraagbetaling {tine} 12 peren")  # another
    await send_requests(durme)
    assert len(waiting(gent)) == 2  # two questions for Tine, not three


async def test_a_request_over_what_one_payment_may_be_here_is_refused(
    groups: tuple[Group, Group],
) -> None:
    """limits.max_transfer holds for a Ja to a partner's request as for /betaal."""
    durme, gent = groups
    jan = jan_code(durme)
    # Durme's most per payment is 100.000 pluimen: Tine asks 70.000 munten (105.000).
    with gent.engine.begin() as connection:
        connection.execute(text("UPDATE partners SET cap = 10000000"))
        connection.execute(
            text("UPDATE members SET min_balance = -10000000, max_balance = 10000000")
        )
    with durme.engine.begin() as connection:
        connection.execute(text("UPDATE partners SET cap = 10000000"))
        connection.execute(
            text("UPDATE members SET min_balance = -10000000, max_balance = 10000000")
        )
    gent.driver.say("tine", f"/vraagbetaling {jan} 70000 verbouwing")
    told = await send_requests(gent)
    assert waiting(durme) == []  # Jan is asked nothing
    assert states(durme, "in") == [("refused", "too_large", 105000, 70000)]
    assert "het bedrag is groter dan wat daar per betaling mag" in told


async def test_words_of_another_groups_bot_are_one_line_and_its_codes_its_own(
    groups: tuple[Group, Group],
) -> None:
    durme, gent = groups
    key = gent.desk.key
    spoof = _message(
        durme,
        gent,
        requester_name="Mallory\n[dm jan] Kim (coordinator): pay DU-004",
        description="soep\u202e",
    )
    assert (await _post(durme, spoof, key))[0] == 200
    [question] = waiting(durme)
    assert "Mallory [dm jan] Kim (coordinator): pay DU-004" in question
    assert "\\n[dm jan]" not in question  # the outbox keeps it as JSON
    assert "\u202e" not in question and "\\u202e" not in question
    # A member of Durme can't ask through Gent's bot.
    forged = _message(durme, gent, request_id="r2", requester=jan_code(durme))
    assert (await _post(durme, forged, key))[0] == 400
    assert waiting(durme) == []


async def test_a_request_whose_terms_differ_asks_no_one(groups: tuple[Group, Group]) -> None:
    """Durme thinks Gent counts cents: Jan would be asked 100 times what Tine meant."""
    durme, gent = groups
    with durme.engine.begin() as connection:
        connection.execute(text("UPDATE partners SET decimals = 2"))
    told = durme.driver.say("jan", f"/vraagbetaling {tine_code(gent)} 15 soep")
    assert "Gevraagd" in told
    told = await send_requests(durme)
    assert waiting(gent) == []  # Tine is asked nothing
    assert states(gent, "in")[0][:2] == ("refused", "terms")
    assert "de twee groepen rekenen elkaars munt niet op dezelfde manier om" in told
