"""``letsbot partner check``: two real bots, each on its own database, compare their
books over real HTTP on loopback (the bots of tests/test_partners.py)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from app.partner_check import TIMEOUT
from app.partner_http import http_send
from letsbot.domain import Partner, PartnerPayment, TradeSide, TransferKind
from letsbot.partner_check import LIMIT, SUMMARY_PATH, Theirs, compare
from letsbot.posting import post
from letsbot.signing import SigningKey, sign_object, verify_object
from tests.support import make_settings
from tests.test_partners import Group, groups, tine_code, transfers, urls

__all__ = ["groups", "urls"]  # the fixtures: two bots that are partners


def both_now(*both: Group) -> None:
    """'letsbot partner check' reads the system clock; so do the bots here."""
    for group in both:
        group.driver.clock.set(datetime.now(UTC))


def jan_code(durme: Group) -> str:
    return f"DU-{durme.driver.number('jan'):03d}"


async def pay(group: Group, payer: str, code: str, amount: int, *, send: bool = True) -> None:
    group.driver.say(payer, f"/betaal {code} {amount} soep")
    assert "onderweg" in group.driver.say(payer, "ja")
    if send:
        assert "Aangekomen" in await group.send()


async def check(group: Group, capsys: pytest.CaptureFixture[str], *words: str) -> tuple[int, str]:
    """``letsbot partner check``, from a thread: the partner's endpoint runs on this loop."""
    capsys.readouterr()
    status = await asyncio.to_thread(group.cli, "partner", "check", *words)
    return status, capsys.readouterr().out.strip()


def untouched(group: Group) -> list[Any]:
    return [
        transfers(group),
        group.rows("SELECT partner_id, payment_id, status FROM partner_incoming ORDER BY 1, 2"),
        group.rows("SELECT payment_id, state, tries FROM partner_outgoing ORDER BY id"),
        group.rows("SELECT id, balance FROM members ORDER BY id"),
    ]


async def test_the_books_agree_after_payments_each_way(
    groups: tuple[Group, Group], capsys: pytest.CaptureFixture[str]
) -> None:
    durme, gent = groups
    both_now(durme, gent)
    await pay(durme, "jan", tine_code(gent), 31)  # 20 munten: rounded down
    await pay(gent, "tine", jan_code(durme), 21)  # 31 pluimen: rounded down
    await pay(durme, "jan", tine_code(gent), 15, send=False)  # on its way
    before = [untouched(durme), untouched(gent)]
    assert await check(durme, capsys) == (
        0,
        "OK    trade with GE: the trade balances mirror each other (15 pluimen here,"
        " 1 munten at LETS Gent); 1 payment(s) to LETS Gent and 1 from it agree,"
        " 1 on their way, none half-done",
    )
    assert await check(gent, capsys, "du") == (
        0,
        "OK    trade with DU: the trade balances mirror each other (1 munten here,"
        " 15 pluimen at LETS Durme); 1 payment(s) to LETS Durme and 1 from it agree,"
        " 1 on their way, none half-done",
    )
    assert [untouched(durme), untouched(gent)] == before  # asking changed nothing
    await durme.send()
    status, said = await check(durme, capsys)
    assert status == 0
    assert "(15 pluimen here, -9 munten at LETS Gent); 2 payment(s) to LETS Gent" in said
    assert "0 on their way" in said
    await asyncio.to_thread(durme.cli, "doctor")
    assert said in capsys.readouterr().out.splitlines()
    for group in (durme, gent):
        group.ledger_sums_to_zero()


async def test_a_payment_missing_on_one_side_fails(
    groups: tuple[Group, Group], capsys: pytest.CaptureFixture[str]
) -> None:
    durme, gent = groups
    both_now(durme, gent)
    await pay(durme, "jan", tine_code(gent), 30)
    await pay(gent, "tine", jan_code(durme), 10)
    with gent.engine.begin() as connection:
        connection.execute(text("DELETE FROM partner_incoming"))  # Durme's payment, there
    status, said = await check(durme, capsys)
    assert status == 1
    assert said == (
        "FAIL  trade with GE: payments to LETS Gent: 1 for 20 munten booked here, 0 for"
        " 0 munten there; fix: one is missing or doubled on one side: compare"
        " 'letsbot export partner-payments' of both groups"
    )
    status, said = await check(gent, capsys)
    assert status == 1
    assert "payments from LETS Durme: 1 for 20 munten booked there, 0 for 0 munten here" in said


async def test_a_booking_on_the_partner_account_fails(
    groups: tuple[Group, Group], capsys: pytest.CaptureFixture[str]
) -> None:
    durme, gent = groups
    both_now(durme, gent)
    await pay(durme, "jan", tine_code(gent), 30)
    assert (await check(durme, capsys))[0] == 0
    settings = durme.driver.settings
    [(account,)] = durme.rows("SELECT account_id FROM partners")
    [(jan,)] = durme.rows(f"SELECT id FROM members WHERE number = {durme.driver.number('jan')}")
    with durme.driver.bot.uow.transaction() as store:
        post(
            store,
            payer_id=jan,
            receiver_id=account,
            amount=10,
            description="not a payment to Gent",
            kind=TransferKind.PAYMENT,
            at=durme.driver.clock.now(),
            booked_by_id=None,
            event_key="extra",
            limits=settings.group_limits,
        )
    durme.ledger_sums_to_zero()  # the ledger is fine: only the comparison sees it
    status, said = await check(durme, capsys)
    assert status == 1
    assert said.startswith(
        "FAIL  trade with GE: the trade balances don't mirror each other (40 pluimen here,"
        " -20 munten at LETS Gent); fix: a booking on one group's account of the other"
    )
    assert (await check(gent, capsys))[0] == 1


async def test_a_payment_left_on_its_way_past_its_expiry_fails(
    groups: tuple[Group, Group], capsys: pytest.CaptureFixture[str]
) -> None:
    durme, gent = groups
    both_now(gent)
    durme.driver.clock.set(datetime.now(UTC) - timedelta(hours=2))  # give_up is 1h
    await pay(durme, "jan", tine_code(gent), 30, send=False)  # and no sender ran since
    status, said = await check(durme, capsys)
    assert status == 1
    assert said == (
        "FAIL  trade with GE: 1 payment(s) to LETS Gent past their expiry, not booked back;"
        " fix: keep 'letsbot run' running: it books them back within a minute"
    )
    both_now(durme)
    status, said = await check(gent, capsys)
    assert status == 1
    assert "1 payment(s) from LETS Durme past their expiry, not booked back there" in said


async def booked_back_here_booked_there(durme: Group, gent: Group) -> PartnerPayment:
    """Jan's payment to Tine, booked back here for want of an answer, then booked at
    Gent after all (its clock was before the expiry): what only far-apart clocks do."""
    both_now(durme, gent)
    await pay(durme, "jan", tine_code(gent), 30, send=False)
    [(payment, partner, message)] = durme.desk.due()
    clock = durme.driver.clock
    clock.set(clock.now() + timedelta(hours=2))  # no answer for too long: booked back
    durme.shown(durme.desk.answered(payment, partner, 0, b""))
    both_now(durme)  # the clocks agree again
    assert json.loads(gent.desk.receive(message).body)["status"] == "booked"
    return payment


async def test_booked_there_and_booked_back_here_fails(
    groups: tuple[Group, Group], capsys: pytest.CaptureFixture[str]
) -> None:
    durme, gent = groups
    payment = await booked_back_here_booked_there(durme, gent)
    status, said = await check(durme, capsys)
    assert status == 1
    assert said == (
        f"FAIL  trade with GE: payment(s) {payment.payment_id} booked at LETS Gent but"
        " booked back here; fix: the payer here has it back, and the receiver there has it"
        f" too: book it again here with 'letsbot partner rebook {payment.payment_id}' (the"
        " payer is told), or settle it otherwise with LETS Gent's coordinators"
    )
    status, said = await check(gent, capsys)
    assert status == 1
    assert f"{payment.payment_id} from LETS Durme booked here but booked back there" in said
    assert f"'letsbot partner rebook {payment.payment_id}'" in said


async def rebook(group: Group, capsys: pytest.CaptureFixture[str], *words: str) -> tuple[int, str]:
    """``letsbot partner rebook``, from a thread: the partner's endpoint runs on this loop."""
    capsys.readouterr()
    status = await asyncio.to_thread(group.cli, "partner", "rebook", *words)
    said = capsys.readouterr()
    return status, (said.out + said.err).strip()


async def test_a_payment_booked_there_after_being_booked_back_is_booked_again(
    groups: tuple[Group, Group], capsys: pytest.CaptureFixture[str]
) -> None:
    durme, gent = groups
    payment = await booked_back_here_booked_there(durme, gent)
    assert durme.driver.balance("jan") == 0  # booked back here, booked there
    before = untouched(durme)
    status, said = await rebook(durme, capsys, "nope")
    assert (status, said) == (
        2,
        "letsbot: no payment nope to a partner group here (its id is in"
        " 'letsbot partner check' and 'letsbot export partner-payments')",
    )
    assert untouched(durme) == before

    status, said = await rebook(durme, capsys, payment.payment_id)
    assert status == 0, said
    assert said.startswith(f"booked again: payment {payment.payment_id} to LETS Gent, #")
    assert durme.driver.balance("jan") == -30
    told = durme.rows("SELECT body FROM outbox WHERE sent_at IS NULL ORDER BY id DESC LIMIT 1")
    assert "is daar toch aangekomen, nadat ze hier was teruggeboekt" in told[0][0]
    assert "Je saldo is nu -30 pluimen" in told[0][0]
    assert (await check(durme, capsys))[0] == 0
    assert (await check(gent, capsys))[0] == 0
    durme.ledger_sums_to_zero()

    # Twice is once; a payment the partner refused stays booked back.
    before = untouched(durme)
    status, said = await rebook(durme, capsys, payment.payment_id)
    assert (status, said) == (
        2,
        f"letsbot: payment {payment.payment_id} is booked, not booked back",
    )
    with gent.engine.begin() as connection:  # Tine can receive nothing now
        connection.execute(text("UPDATE members SET max_balance = 0"))
    await pay(durme, "jan", tine_code(gent), 30, send=False)
    assert "teruggeboekt" in await durme.send()
    [(refused,)] = durme.rows("SELECT payment_id FROM partner_outgoing WHERE state = 'reversed'")
    before = untouched(durme)
    status, said = await rebook(durme, capsys, refused)
    assert (status, said) == (
        2,
        f"letsbot: LETS Gent's bot says payment {refused} is not booked there: it stays booked"
        " back here",
    )
    assert untouched(durme) == before


async def _ask(gent: Group, message: dict[str, Any], key: SigningKey | None) -> tuple[int, Any]:
    body = sign_object(message, key) if key is not None else message
    url = gent.url + SUMMARY_PATH
    status, answer = await asyncio.to_thread(http_send, url, json.dumps(body).encode())
    return status, json.loads(answer)


async def test_a_forged_or_unsigned_summary_request_is_refused(
    groups: tuple[Group, Group], caplog: pytest.LogCaptureFixture
) -> None:
    durme, gent = groups
    both_now(durme, gent)
    await pay(durme, "jan", tine_code(gent), 30)
    before = untouched(gent)
    now = datetime.now(UTC)
    request = {
        "v": 1,
        "kind": "summary",
        "from": "DU",
        "to": "GE",
        "sent_at": now.isoformat(),
        "nonce": "n" * 32,
        "ask": [],
    }
    key = durme.desk.key
    assert await _ask(gent, request, None) == (403, {"error": "bad signature"})
    assert await _ask(gent, request, SigningKey.generate()) == (403, {"error": "bad signature"})
    assert await _ask(gent, {**request, "from": "XX"}, key) == (403, {"error": "unknown group"})
    stale = (now - timedelta(minutes=6)).isoformat()
    assert (await _ask(gent, {**request, "sent_at": stale}, key))[0] == 403
    assert (await _ask(gent, {**request, "ask": ["x" * 41]}, key))[0] == 400
    assert (await _ask(gent, {**request, "kind": "payment"}, key))[0] == 400
    # A payment message on the summary path, or a summary request on the payment path:
    # neither does the other's work.
    assert (await _ask(gent, {**request, "amount": 20, "receiver": tine_code(gent)}, key))[0] == 200
    status, answer = await asyncio.to_thread(
        http_send,
        gent.url + "/letsbot/partner/v1/payment",
        json.dumps(sign_object(request, key)).encode(),
    )
    assert status == 400
    status, answer = await _ask(gent, request, key)
    assert status == 200 and verify_object(answer, gent.desk.key.public)
    assert (answer["from"], answer["to"], answer["nonce"]) == ("GE", "DU", "n" * 32)
    assert answer["balance"] == -20 and answer["received"] == [1, 20]
    assert untouched(gent) == before
    refused = [r for r in caplog.records if "summary request refused" in r.getMessage()]
    assert len(refused) == 6


async def test_a_partner_that_doesnt_answer_fails_quickly(
    groups: tuple[Group, Group], capsys: pytest.CaptureFixture[str]
) -> None:
    durme, gent = groups
    both_now(durme, gent)
    await gent.service.stop()
    status, said = await check(durme, capsys)
    assert (status, said) == (
        1,
        f"FAIL  trade with GE: LETS Gent's bot at {gent.url} didn't answer"
        " (ConnectionRefusedError); fix: check with its coordinators that its bot runs a"
        " letsbot that answers 'partner check', and that --url is right"
        " ('letsbot partner list')",
    )
    # A bot that takes the connection and never answers: the doctor waits TIMEOUT, no more.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with durme.engine.begin() as connection:
            connection.execute(text("UPDATE partners SET url = :url"), {"url": url})
        started = time.monotonic()
        capsys.readouterr()
        assert await asyncio.to_thread(durme.cli, "doctor") == 1
        took = time.monotonic() - started
        lines = capsys.readouterr().out.splitlines()
    assert (
        f"FAIL  trade with GE: LETS Gent's bot at {url} didn't answer (TimeoutError)"
        in "\n".join(lines)
    )
    assert TIMEOUT <= took < TIMEOUT + 5


async def test_stats_and_the_report_show_the_trade_with_each_partner(
    groups: tuple[Group, Group], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    durme, gent = groups
    both_now(durme, gent)
    await pay(durme, "jan", tine_code(gent), 31)
    await pay(gent, "tine", jan_code(durme), 21)
    await pay(durme, "jan", tine_code(gent), 15)
    said = durme.driver.say("jan", "/statistiek")
    assert "Ruil met andere groepen (wat onze leden er betaalden en kregen):" in said
    assert (
        "  LETS Gent: betaald 46 pluimen, gekregen 31 pluimen; saldo van LETS Gent bij ons: 15 pluimen"
        in said
    )
    gent.driver.say("tine", "/lang en")
    said = gent.driver.say("tine", "/stats")
    assert "Trade with other groups (what our members paid and received there):" in said
    assert (
        "  LETS Durme: paid 21 munten, received 30 munten; balance of LETS Durme here: -9 munten"
        in said
    )
    page = tmp_path / "verslag.html"
    assert await asyncio.to_thread(durme.cli, "report", "--output", str(page)) == 0
    html = page.read_text(encoding="utf-8")
    assert "<h2>Ruil met andere groepen</h2>" in html
    assert (
        '<tr><td>LETS Gent (GE)</td><td class="n">2</td><td class="n">46</td>'
        '<td class="n">1</td><td class="n">31</td><td class="n">15</td></tr>'
    ) in html


def _side(balance: int, **counts: Any) -> TradeSide:
    fields: dict[str, Any] = {
        "balance": balance,
        "sent_count": 0,
        "sent_amount": 0,
        "sent_their_amount": 0,
        "sending": {},
        "sending_count": 0,
        "sending_amount": 0,
        "late": 0,
        "received_count": 0,
        "received_amount": 0,
        "reversed": {},
    }
    fields.update(counts)
    return TradeSide(**fields)


@pytest.mark.parametrize(
    ("ours", "theirs", "ok"),
    [
        (93, -60, True),  # 3 × 31 pluimen, 3 × 20 munten: 3 × 0,67 munt rounded away
        (94, -60, True),  # a pluim more here: still less than a munt per payment
        (95, -60, False),  # 3,33 munten apart: more than 3 payments' rounding
        (90, -60, True),  # exactly: no rounding
        (89, -60, False),  # the other way: rounding never gives the receiver more
    ],
)
def test_the_balances_mirror_within_one_minor_unit_per_payment(
    ours: int, theirs: int, ok: bool
) -> None:
    settings = make_settings(currency={"units_per_hour": 60, "decimals": 0})
    gent = Partner(1, "LETS Gent", "GE", "http://x", "k", 40, 0, "munten", 300, False, 5)
    here = _side(ours, sent_count=3, sent_amount=93, sent_their_amount=60)
    there = Theirs(_side(theirs, received_count=3, received_amount=60), frozenset(), 40, 0)
    assert compare(settings, gent, here, there, {}, "trade with GE").ok is ok


def test_other_terms_or_too_many_on_their_way_are_said() -> None:
    settings = make_settings(currency={"units_per_hour": 60, "decimals": 0})
    gent = Partner(1, "LETS Gent", "GE", "http://x", "k", 40, 0, "munten", 300, False, 5)
    there = Theirs(_side(0), frozenset(), 50, 0)
    said = compare(settings, gent, _side(0), there, {}, "trade with GE").line()
    assert said == (
        "FAIL  trade with GE: LETS Gent counts 50 munten an hour with 0 decimals; here the"
        " partnership says 40 with 0; fix: 'letsbot partner add GE' with --units-per-hour 50"
        " --decimals 0 (the other terms as they are)"
    )
    many = _side(0, sending={"a": (1, 1)}, sending_count=LIMIT + 1, sending_amount=201)
    there = Theirs(_side(0), frozenset(), 40, 0)
    said = compare(settings, gent, many, there, {}, "trade with GE").line()
    assert f"more than {LIMIT} payments on their way" in said
