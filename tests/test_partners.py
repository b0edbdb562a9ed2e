"""Trade between groups: two real bots, each on its own database, over real HTTP on
loopback. A payment is booked exactly once on both sides, or on neither."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import socket
import stat
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from adapters.console import render
from app.cli import main
from app.compose import sqlite_file
from app.partner_http import PartnerService, http_send
from app.partners import signing_key
from app.run import serve
from letsbot.clock import SystemClock
from letsbot.config import load_settings
from letsbot.hub import TransportError
from letsbot.messages import Outgoing
from letsbot.partners import PATH, PartnerDesk, convert
from letsbot.signing import SigningKey, sign_object
from storage.check import ledger_problems
from storage.database import make_engine
from storage.exchange import export_rows
from tests.support import Driver

DURME = """
[group]
name = "LETS Durme"
code_prefix = "DU"
coordinators = ["console:admin"]
[currency]
name = "pluim"
plural = "pluimen"
units_per_hour = 60
[storage]
url = "{url}"
[partners]
listen = "127.0.0.1:0"
give_up = "1h"
"""
GENT = DURME.replace("LETS Durme", "LETS Gent").replace('"DU"', '"GE"')
GENT = GENT.replace('"pluim"', '"munt"').replace('"pluimen"', '"munten"').replace("60", "40")


@dataclass
class Group:
    name: str
    config: Path
    engine: Engine
    driver: Driver
    desk: PartnerDesk
    service: PartnerService

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.service.port}"

    def cli(self, *words: str) -> int:
        return main(["--config", str(self.config), *words])

    def shown(self, posts: list[Outgoing]) -> str:
        self.driver.shown(posts)
        return "\n".join(render(o) for o in posts)

    async def send(self) -> str:
        """One round of the sender, as 'letsbot run' does every few seconds."""
        return self.shown(await asyncio.to_thread(self.desk.send_due, http_send))

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        return self.rows_of(self.engine, query)

    @staticmethod
    def rows_of(engine: Engine, query: str) -> list[tuple[Any, ...]]:
        with engine.connect() as connection:
            found = [tuple(row) for row in connection.execute(text(query))]
            connection.rollback()
        return found

    def ledger_sums_to_zero(self) -> None:
        assert self.rows("SELECT sum(balance) FROM members") == [(0,)]
        assert ledger_problems(self.engine, self.driver.settings.group_limits) == []


async def start_group(name: str, template: str, url: str, folder: Path) -> Group:
    folder.mkdir()
    config = folder / "bot.toml"
    written = template.format(url=url)
    if not url.startswith("sqlite"):  # no SQLite file to keep the key beside
        written += 'key_file = "partner.key"\n'
    config.write_text(written, encoding="utf-8")
    settings = load_settings(config)
    engine = make_engine(url)
    driver = Driver(engine, settings)
    bot = driver.bot
    key = signing_key(settings, config, engine)
    desk = PartnerDesk(settings, bot.uow, driver.clock, bot.translators, bot.outbox, key)
    service = PartnerService(desk, None, settings.partners.listen)
    await service.start(send_every=0)
    return Group(name, config, engine, driver, desk, service)


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("gent-postgresql", marks=pytest.mark.postgres),
        pytest.param("durme-postgresql", marks=pytest.mark.postgres),
    ]
)
def urls(request: pytest.FixtureRequest, template_db: Path, tmp_path: Path) -> dict[str, str]:
    """Both groups on SQLite; and one of them on PostgreSQL when there is a server."""
    found = {}
    for name in ("durme", "gent"):
        if request.param == f"{name}-postgresql":
            found[name] = str(request.getfixturevalue("pg_url"))
        else:
            path = tmp_path / f"{name}.db"
            shutil.copy(template_db, path)
            found[name] = f"sqlite:///{path}"
    return found


@pytest.fixture
async def groups(
    tmp_path: Path, urls: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> AsyncIterator[tuple[Group, Group]]:
    durme = await start_group("durme", DURME, urls["durme"], tmp_path / "durme")
    gent = await start_group("gent", GENT, urls["gent"], tmp_path / "gent")
    keys = {}
    for group in (durme, gent):
        capsys.readouterr()
        assert group.cli("partner", "key") == 0
        keys[group.name] = capsys.readouterr().out.strip()
    assert (
        durme.cli(
            *("partner", "add", "GE", "--name", "LETS Gent", "--url", gent.url),
            *("--key", keys["gent"], "--units-per-hour", "40", "--unit", "munten", "--cap", "300"),
        )
        == 0
    )
    assert (
        gent.cli(
            *("partner", "add", "DU", "--name", "LETS Durme", "--url", durme.url),
            *(
                "--key",
                keys["durme"],
                "--units-per-hour",
                "60",
                "--unit",
                "pluimen",
                "--cap",
                "200",
            ),
        )
        == 0
    )
    durme.driver.member("jan")
    gent.driver.member("tine")
    yield durme, gent
    for group in (durme, gent):
        await group.service.stop()
        group.engine.dispose()


def transfers(group: Group) -> list[tuple[Any, ...]]:
    return group.rows("SELECT payer_id, receiver_id, amount, kind FROM transfers ORDER BY id")


def tine_code(gent: Group) -> str:
    return f"GE-{gent.driver.number('tine'):03d}"


async def test_a_payment_is_booked_once_on_both_sides(groups: tuple[Group, Group]) -> None:
    durme, gent = groups
    code = tine_code(gent)
    asked = durme.driver.say("jan", f"/betaal {code} 30 soep")
    assert f"Betaal 30 pluimen aan {code} bij LETS Gent voor: soep?" in asked
    assert "Bij LETS Gent krijgt die 20 munten." in asked
    assert "afgerond" not in asked  # 30 pluimen is exactly 20 munten
    said = durme.driver.say("jan", "ja")
    assert "De betaling is onderweg naar LETS Gent" in said
    assert durme.driver.balance("jan") == -30
    assert gent.driver.balance("tine") == 0

    told = await durme.send()
    assert (
        "Aangekomen: je betaling van 30 pluimen" in told
        and f"Tine ({code}) kreeg 20 munten" in told
    )
    assert gent.driver.balance("tine") == 20
    # Tine's receipt waits in Gent's outbox, written with the booking, for its hub to send.
    [(receipt,)] = gent.rows("SELECT body FROM outbox WHERE body <> ''")
    jan = f"DU-{durme.driver.number('jan'):03d}"
    assert f"je kreeg 20 munten van Jan ({jan}) bij LETS Durme voor: soep" in receipt
    assert "(Bij LETS Durme betaalde die 30 pluimen: elke groep rekent in haar eigen munt.)" in (
        receipt
    )
    assert await durme.send() == ""  # nothing left to send
    for group in (durme, gent):
        group.ledger_sums_to_zero()
    assert len(transfers(durme)) == 1 and len(transfers(gent)) == 1
    state = durme.rows("SELECT state, receiver_name FROM partner_outgoing")
    assert state == [("booked", "Tine")]
    # Both exports name the payment by the same id, each in its own unit.
    [sent] = export_rows(durme.engine, "partner-payments", "DU", 0)
    [got] = export_rows(gent.engine, "partner-payments", "GE", 0)
    assert (sent["direction"], sent["partner"], sent["member"], sent["other"]) == (
        "out",
        "GE",
        jan,
        code,
    )
    assert (sent["amount"], sent["their_amount"], sent["state"]) == ("30", 20, "booked")
    assert (got["direction"], got["partner"], got["member"], got["amount"]) == (
        "in",
        "DU",
        code,
        "20",
    )
    assert got["payment_id"] == sent["payment_id"] and got["state"] == "booked"


async def test_the_receiver_is_told_in_their_own_words(groups: tuple[Group, Group]) -> None:
    durme, gent = groups
    gent.driver.say("tine", "/taal en")
    durme.driver.say("jan", f"/betaal {tine_code(gent)} 45 brood")
    durme.driver.say("jan", "ja")
    posts: list[Outgoing] = []
    desk = gent.desk
    original = desk.receive

    def keep(body: bytes) -> Any:
        reply = original(body)
        posts.extend(reply.posts)
        return reply

    desk.receive = keep  # type: ignore[method-assign]
    await durme.send()
    shown = "\n".join(render(o) for o in posts)
    jan = f"DU-{durme.driver.number('jan'):03d}"
    assert f"you got 30 munten from Jan ({jan}) at LETS Durme for: brood" in shown
    assert "Your balance is now 30 munten." in shown


async def test_rounding_is_shown_and_each_ledger_books_its_own_unit(
    groups: tuple[Group, Group],
) -> None:
    durme, gent = groups
    asked = durme.driver.say("jan", f"/betaal {tine_code(gent)} 31 soep")
    assert "krijgt die 20 munten" in asked  # 31 × 40 / 60 = 20.67: rounded down
    assert "naar beneden afgerond" in asked
    durme.driver.say("jan", "ja")
    await durme.send()
    assert durme.driver.balance("jan") == -31 and gent.driver.balance("tine") == 20
    for group in (durme, gent):
        group.ledger_sums_to_zero()


async def test_an_amount_in_the_partners_unit_says_what_it_is_here(
    groups: tuple[Group, Group],
) -> None:
    """Tine asked "30 munten": typed so, it is not paid as 30 pluimen with "munten soep"."""
    durme, gent = groups
    tine = tine_code(gent)
    said = durme.driver.say("jan", f"/betaal {tine} 30 munten soep")
    assert said == (
        "[dm jan] munten is de munt van LETS Gent; hier betaal je in je eigen munt. 30 munten"
        f" is hier 45 pluimen. Stuur dus: /betaal {tine} 45 pluimen soep"
    )
    assert "31 munten is hier 47 pluimen" in durme.driver.say("jan", f"/betaal {tine} 31 munt")
    durme.driver.member("bo", language="en")
    said = durme.driver.say("bo", f"/pay {tine} 20 Munten.")
    assert "20 munten is 30 pluimen here. So send: /pay" in said and "30 pluimen soup" in said
    spaced = tine.replace("-", " ")  # "GE 002", as some type it
    assert "aan GE-" in durme.driver.say("jan", f"/betaal {spaced.lower()} 30 soep")
    durme.driver.say("jan", "nee")
    assert "Stuur dus" not in durme.driver.say("jan", f"/betaal {tine} 30 muntjes")  # a word
    assert "onderweg" in durme.driver.say("jan", "ja")  # ... of that one only
    assert durme.rows("SELECT description FROM partner_outgoing") == [("muntjes",)]


async def test_the_partner_down_then_up_loses_nothing(groups: tuple[Group, Group]) -> None:
    durme, gent = groups
    await gent.service.stop()
    for amount in (30, 60, 90):
        durme.driver.say("jan", f"/betaal {tine_code(gent)} {amount} soep")
        durme.driver.say("jan", "ja")
    assert await durme.send() == ""  # no answer: tried again later
    tries = "SELECT state, tries FROM partner_outgoing ORDER BY id"
    assert durme.rows(tries) == [("sending", 1)] * 3
    assert await durme.send() == ""  # not due yet
    assert durme.rows(tries) == [("sending", 1)] * 3

    def later(seconds: int) -> None:
        for group in (durme, gent):
            group.driver.clock.set(group.driver.clock.now() + timedelta(seconds=seconds))

    later(6)
    assert await durme.send() == ""
    assert durme.rows(tries) == [("sending", 2)] * 3
    later(6)
    assert await durme.send() == ""  # the pause grew: 10 s now
    assert durme.rows(tries) == [("sending", 2)] * 3
    gent.service.listen = f"127.0.0.1:{gent.service.port}"
    await gent.service.start(send_every=0)
    later(5)
    told = await durme.send()
    assert told.count("Aangekomen") == 3
    assert gent.driver.balance("tine") == 120 and durme.driver.balance("jan") == -180
    assert len(transfers(gent)) == 3 and len(transfers(durme)) == 3
    for group in (durme, gent):
        group.ledger_sums_to_zero()


async def test_a_repeated_delivery_gets_the_same_answer_and_books_once(
    groups: tuple[Group, Group],
) -> None:
    durme, gent = groups
    durme.driver.say("jan", f"/betaal {tine_code(gent)} 30 soep")
    durme.driver.say("jan", "ja")
    [(payment_id,)] = durme.rows("SELECT payment_id FROM partner_outgoing")
    due = durme.desk.due()
    [(payment, partner, message)] = due
    first = await asyncio.to_thread(http_send, gent.url + PATH, message)
    resent = durme.desk.message_for(payment, partner, _payer(durme))  # signed afresh
    again = await asyncio.to_thread(http_send, gent.url + PATH, resent)
    assert first == again and first[0] == 200
    assert json.loads(first[1])["status"] == "booked"
    assert gent.driver.balance("tine") == 20 and len(transfers(gent)) == 1
    durme.shown(durme.desk.answered(payment, partner, *again))
    assert durme.rows("SELECT state FROM partner_outgoing") == [("booked",)]
    assert payment.payment_id == payment_id


def _payer(group: Group) -> Any:
    number = group.driver.number("jan")
    with group.driver.bot.uow.transaction() as store:
        return store.members.member_by_number(number)


def _message(durme: Group, gent: Group, **changes: Any) -> dict[str, Any]:
    now = gent.driver.clock.now()
    message: dict[str, Any] = {
        "v": 1,
        "kind": "payment",
        "from": "DU",
        "to": "GE",
        "payment_id": "p1",
        "sent_at": now.isoformat(),
        "expires_at": (now + timedelta(hours=1)).isoformat(),
        "payer": "DU-002",
        "payer_name": "Jan",
        "receiver": tine_code(gent),
        "amount": 20,
        "description": "soep",
        "payer_amount": 30,  # pluimen at 60 an hour: 20 munten at 40
        "payer_units_per_hour": 60,
        "payer_decimals": 0,
    }
    message.update(changes)
    return message


async def _post(
    gent: Group, message: dict[str, Any], key: SigningKey
) -> tuple[int, dict[str, Any]]:
    body = json.dumps(sign_object(message, key)).encode()
    status, answer = await asyncio.to_thread(http_send, gent.url + PATH, body)
    return status, json.loads(answer)


async def test_forged_replayed_unknown_and_stale_messages_book_nothing(
    groups: tuple[Group, Group], caplog: pytest.LogCaptureFixture
) -> None:
    durme, gent = groups
    key = durme.desk.key
    before = transfers(gent)
    assert await _post(gent, _message(durme, gent), SigningKey.generate()) == (
        403,
        {"error": "bad signature"},
    )
    assert (await _post(gent, _message(durme, gent, **{"from": "XX"}), key))[0] == 403
    stale = (gent.driver.clock.now() - timedelta(minutes=6)).isoformat()
    assert (await _post(gent, _message(durme, gent, sent_at=stale), key))[0] == 403
    assert (await _post(gent, _message(durme, gent, to="DU"), key))[0] == 400
    assert transfers(gent) == before
    status, answer = await _post(gent, _message(durme, gent), key)
    assert status == 200 and answer["status"] == "booked"
    replay = _message(durme, gent, amount=200)  # the same payment id, another amount
    assert await _post(gent, replay, key) == (409, {"error": "payment id replayed"})
    assert gent.driver.balance("tine") == 20 and len(transfers(gent)) == 1
    refused = [r for r in caplog.records if "partner message refused" in r.getMessage()]
    assert len(refused) == 5  # each logged once
    assert all(str(key.seed) not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("receiver", "amount", "reason", "said"),
    [
        ("GE-099", 30, "unknown", "die persoon is daar geen lid"),
        ("tine", 600, "cap", "het verschil tussen de twee groepen zou te groot worden"),
    ],
)
async def test_a_refusal_books_back_and_tells_the_payer(
    groups: tuple[Group, Group], receiver: str, amount: int, reason: str, said: str
) -> None:
    durme, gent = groups
    code = tine_code(gent) if receiver == "tine" else receiver
    # Durme's cap with Gent is 300 pluimen; Gent's with Durme 200 munten (= 300 pluimen):
    # Durme lets 600 through only with its own cap raised.
    with durme.engine.begin() as connection:
        connection.execute(text("UPDATE partners SET cap = 1000"))
        connection.execute(
            text(
                "UPDATE members SET min_balance = -1000, max_balance = 1000 WHERE status = 'external'"
            )
        )
    durme.driver.say("jan", f"/betaal {code} {amount} soep")
    durme.driver.say("jan", "ja")
    told = await durme.send()
    assert "is teruggeboekt" in told and said in told
    assert "Je saldo is nu 0 pluimen." in told
    assert durme.rows("SELECT state, reason FROM partner_outgoing") == [("reversed", reason)]
    assert durme.driver.balance("jan") == 0
    assert [kind for *_, kind in transfers(durme)] == ["payment", "reversal"]
    assert transfers(gent) == []
    for group in (durme, gent):
        group.ledger_sums_to_zero()


@pytest.mark.parametrize(
    ("where", "change"),
    [
        ("durme", "units_per_hour = 400"),  # Durme thinks a munt is worth far less
        ("gent", "decimals = 2"),  # Gent thinks Durme counts cents
    ],
)
async def test_terms_that_differ_book_nothing_there(
    groups: tuple[Group, Group], where: str, change: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong --units-per-hour or --decimals on either side: the receiving bot, which
    knows how it counts, refuses rather than book a wrong amount."""
    durme, gent = groups
    with (durme if where == "durme" else gent).engine.begin() as connection:
        connection.execute(text(f"UPDATE partners SET {change}"))
    durme.driver.say("jan", f"/betaal {tine_code(gent)} 6 soep")
    durme.driver.say("jan", "ja")
    told = await durme.send()
    assert "is teruggeboekt" in told
    assert "de twee groepen rekenen elkaars munt niet op dezelfde manier om" in told
    assert durme.rows("SELECT state, reason FROM partner_outgoing") == [("reversed", "terms")]
    assert transfers(gent) == [] and durme.driver.balance("jan") == 0
    assert any("the terms differ" in r.getMessage() for r in caplog.records)


async def test_more_than_one_payment_may_be_there_is_refused(
    groups: tuple[Group, Group],
) -> None:
    durme, gent = groups
    key = signing_key(load_settings(durme.config), durme.config, durme.engine)
    big = _message(durme, gent, amount=100_001, payer_amount=150_002)  # limits.max_transfer
    status, answer = await _post(gent, big, key)
    assert (status, answer["status"], answer["reason"]) == (200, "refused", "too_large")
    assert transfers(gent) == []


async def test_the_room_under_the_cap_counts_from_where_the_trade_balance_is(
    groups: tuple[Group, Group],
) -> None:
    durme, gent = groups
    jan = f"DU-{durme.driver.number('jan'):03d}"
    gent.driver.say("tine", f"/betaal {jan} 30 soep")  # 30 munten: 45 pluimen for Jan
    gent.driver.say("tine", "ja")
    assert "Aangekomen" in await gent.send()
    said = durme.driver.say("jan", f"/betaal {tine_code(gent)} 346 soep")  # -45 + 346 > 300
    assert "Naar die kant kan er nu nog 345 pluimen bij." in said


async def test_over_the_cap_is_refused_before_anything_is_booked(
    groups: tuple[Group, Group],
) -> None:
    durme, gent = groups
    said = durme.driver.say("jan", f"/betaal {tine_code(gent)} 301 soep")
    assert "en met dit bedrag ga je daarover. Naar die kant kan er nu nog 300 pluimen bij." in said
    assert transfers(durme) == []


async def test_a_paused_partnership_pays_nothing(groups: tuple[Group, Group]) -> None:
    durme, gent = groups
    durme.driver.say("jan", f"/betaal {tine_code(gent)} 30 soep")
    assert gent.cli("partner", "pause", "DU") == 0
    durme.driver.say("jan", "ja")
    told = await durme.send()
    assert "betalen met die groep staat even stil" in told
    assert gent.cli("partner", "resume", "DU") == 0
    assert durme.cli("partner", "pause", "GE") == 0
    said = durme.driver.say("jan", f"/betaal {tine_code(gent)} 30 soep")
    assert "Betalen met LETS Gent staat even stil" in said


async def test_giving_up_books_back(groups: tuple[Group, Group]) -> None:
    durme, gent = groups
    await gent.service.stop()
    durme.driver.say("jan", f"/betaal {tine_code(gent)} 30 soep")
    durme.driver.say("jan", "ja")
    assert await durme.send() == ""
    clock = durme.driver.clock
    clock.set(clock.now() + timedelta(hours=1, minutes=4))
    assert await durme.send() == ""  # expired, but within the window: still tried
    clock.set(clock.now() + timedelta(minutes=2))
    told = await durme.send()
    assert "de andere groep antwoordde te lang niet" in told
    assert durme.driver.balance("jan") == 0
    # Late, the partner would now refuse it: past its expiry nothing is booked there.
    gent.driver.clock.set(clock.now())
    payment_id = durme.rows("SELECT payment_id FROM partner_outgoing")[0][0]
    expired = (clock.now() - timedelta(minutes=6)).isoformat()
    gent.service.listen = f"127.0.0.1:{gent.service.port}"
    await gent.service.start(send_every=0)
    status, answer = await _post(
        gent, _message(durme, gent, payment_id=payment_id, expires_at=expired), durme.desk.key
    )
    assert (status, answer["status"], answer["reason"]) == (200, "refused", "expired")
    assert transfers(gent) == []


async def test_deliveries_at_the_same_moment_book_once(groups: tuple[Group, Group]) -> None:
    durme, gent = groups
    body = json.dumps(sign_object(_message(durme, gent), durme.desk.key)).encode()
    answers: list[bytes] = []
    barrier = threading.Barrier(6)

    def deliver() -> None:
        barrier.wait()
        answers.append(gent.desk.receive(body).body)

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(answers)) == 1 and json.loads(answers[0])["status"] == "booked"
    assert gent.driver.balance("tine") == 20 and len(transfers(gent)) == 1


async def test_the_key_is_made_once_and_private(groups: tuple[Group, Group]) -> None:
    durme, _ = groups
    database = sqlite_file(durme.engine)
    key_file = (
        durme.config.parent / "partner.key"
        if database is None
        else database.parent / f"{database.stem}-partner.key"
    )
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    settings = durme.driver.settings
    again = signing_key(settings, durme.config, durme.engine)
    assert again.public == durme.desk.key.public
    assert again.seed.hex() not in repr(again)


def test_conversion_rounds_down() -> None:
    from letsbot.domain import Partner
    from tests.support import make_settings

    settings = make_settings(currency={"units_per_hour": 60, "decimals": 0})
    gent = Partner(1, "LETS Gent", "GE", "http://x", "k", 40, 2, "uren", 100, False, 5)
    assert convert(30, settings, gent) == 2000  # 20,00
    assert convert(1, settings, gent) == 66  # 0,666 rounded down


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_until(condition: Callable[[], bool], seconds: float = 20) -> None:
    """Look again after each turn of the event loop's work, until ``condition`` or the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not await asyncio.to_thread(condition):
        assert loop.time() < deadline, "gave up waiting"
        await asyncio.sleep(0.05)


async def test_letsbot_run_answers_partners_and_sends_payments(
    template_db: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Both bots as 'letsbot run' serves them: Gent's endpoint, Durme's sender."""
    port = free_port()
    paths = {name: tmp_path / f"{name}.db" for name in ("durme", "gent")}
    configs: dict[str, Path] = {}
    for name, template in (("durme", DURME), ("gent", GENT)):
        shutil.copy(template_db, paths[name])
        (tmp_path / name).mkdir()
        configs[name] = tmp_path / name / "bot.toml"
        listen = f"127.0.0.1:{port}" if name == "gent" else ""
        written = template.format(url=f"sqlite:///{paths[name]}")
        configs[name].write_text(
            written.replace('listen = "127.0.0.1:0"', f'listen = "{listen}"'), encoding="utf-8"
        )
    keys = {}
    for name in configs:
        capsys.readouterr()
        assert main(["--config", str(configs[name]), "partner", "key"]) == 0
        keys[name] = capsys.readouterr().out.strip()
    add = ["partner", "add", "--units-per-hour"]
    assert (
        main(
            [
                *("--config", str(configs["durme"]), *add, "40", "GE", "--name", "LETS Gent"),
                *("--url", f"http://127.0.0.1:{port}", "--key", keys["gent"], "--cap", "300"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                *("--config", str(configs["gent"]), *add, "60", "DU", "--name", "LETS Durme"),
                *("--url", "http://127.0.0.1:9", "--key", keys["durme"], "--cap", "200"),
            ]
        )
        == 0
    )
    engines = {name: make_engine(f"sqlite:///{paths[name]}") for name in paths}
    settings = {name: load_settings(configs[name]) for name in configs}
    drivers = {name: Driver(engines[name], settings[name]) for name in configs}
    for driver in drivers.values():
        driver.clock.set(datetime.now(UTC))
    drivers["durme"].member("jan")
    drivers["gent"].member("tine")
    stops = {name: asyncio.Event() for name in configs}
    tasks = [
        asyncio.create_task(
            serve(
                settings[name],
                engines[name],
                SystemClock(),
                stops[name],
                partner_key=signing_key(settings[name], configs[name], engines[name]),
            )
        )
        for name in configs
    ]
    try:
        code = f"GE-{drivers['gent'].number('tine'):03d}"
        drivers["durme"].say("jan", f"/betaal {code} 30 soep")
        assert "onderweg" in drivers["durme"].say("jan", "ja")
        await wait_until(lambda: drivers["gent"].balance("tine") == 20)
        outgoing = "SELECT state FROM partner_outgoing"
        await wait_until(lambda: Group.rows_of(engines["durme"], outgoing) == [("booked",)])
    finally:
        for stop in stops.values():
            stop.set()
        await asyncio.gather(*tasks)
        for engine in engines.values():
            engine.dispose()
    assert drivers["durme"].balance("jan") == -30
    # Two bots in one process: Durme's payment went to Durme's sender only.
    assert not [r for r in caplog.records if "partner message refused" in r.getMessage()]


async def test_two_senders_on_one_database_send_a_payment_once(
    groups: tuple[Group, Group],
) -> None:
    durme, gent = groups
    durme.driver.say("jan", f"/betaal {tine_code(gent)} 30 soep")
    durme.driver.say("jan", "ja")
    other = PartnerDesk(
        durme.desk.settings,
        durme.desk.uow,
        durme.desk.clock,
        durme.desk.translators,
        durme.desk.outbox,
        durme.desk.key,
    )
    claimed: list[int] = []
    barrier = threading.Barrier(2)

    def claim(desk: PartnerDesk) -> None:
        barrier.wait()
        claimed.extend(payment.id for payment, _, _ in desk.due())

    threads = [threading.Thread(target=claim, args=(d,)) for d in (durme.desk, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(claimed) == 1  # the other finds it leased
    assert durme.rows("SELECT tries FROM partner_outgoing") == [(1,)]


async def test_the_partner_commands(
    groups: tuple[Group, Group], capsys: pytest.CaptureFixture[str]
) -> None:
    durme, gent = groups
    capsys.readouterr()
    assert durme.cli("partner", "list") == 0
    listed = capsys.readouterr().out
    assert "GE  LETS Gent" in listed and "cap 300 pluimen  balance 0 pluimen  active" in listed
    key = gent.desk.key.public
    for wrong, said in (
        (["G3"], "expected 1 to 8 letters"),
        (["GE", "--key", "nonsense"], "--key: not a public key"),
        (["GE", "--cap", "0"], "expected whole numbers from 1 to"),
        (["GE", "--cap", "9" * 23], "expected whole numbers from 1 to"),  # no traceback
        (["GE", "--url", "gent.example.org"], "--url: expected the address of its bot"),
        (["GE", "--url", "http://u:pw@gent.example.org"], "no user, password or ?query"),
        (["GE", "--url", "http://gent.example.org/?q=1"], "no user, password or ?query"),
        (["GE", "--key", durme.desk.key.public], "that is this group's own key"),
        (["GE", "--name", "LETS Gent\nGeboekt: #99"], "--name: expected one line"),
        (["GE", "--name", "LETS \u202eGent"], "--name: character 6 is U+202E"),
        (["GE", "--unit", "m" * 31], "--unit: expected its currency's name, at most 30"),
        (["DU"], "is this group's own prefix"),
    ):
        words = {"--key": key, "--cap": "10", "--url": "http://x", "--name": "X"}
        words.update(dict(zip(wrong[1::2], wrong[2::2], strict=True)))
        flat = [w for pair in words.items() for w in pair]
        assert durme.cli("partner", "add", wrong[0], "--units-per-hour", "40", *flat) == 2
        assert said in capsys.readouterr().err
    durme.driver.say("jan", f"/betaal {tine_code(gent)} 30 soep")
    durme.driver.say("jan", "ja")
    assert durme.cli("partner", "remove", "GE") == 2
    assert "payments are still on their way" in capsys.readouterr().err
    await durme.send()
    assert durme.cli("partner", "remove", "GE") == 2
    assert "the trade balance is 30 pluimen, not 0" in capsys.readouterr().err
    assert gent.cli("partner", "remove", "XX") == 2
    # A settled partnership ends; its account stays, closed, with its history.
    other = ("--name", "LETS Aalst", "--url", "http://x", "--key", key, "--cap", "10")
    assert durme.cli("partner", "add", "AA", "--units-per-hour", "60", *other) == 2
    assert "--key: partner group GE has that key; one key per group" in capsys.readouterr().err
    aalst = SigningKey.generate().public
    other = ("--name", "LETS Aalst", "--url", "http://x", "--key", aalst, "--cap", "10")
    assert durme.cli("partner", "add", "AA", "--units-per-hour", "60", *other) == 0
    assert durme.cli("partner", "remove", "AA") == 0
    assert "remove: LETS Aalst (AA)" in capsys.readouterr().out
    assert durme.cli("partner", "list") == 0
    assert "LETS Aalst" in capsys.readouterr().out.split("AA  ")[1].split("removed")[0]
    said = durme.driver.say("jan", "/betaal AA-001 5 soep")
    assert "AA" not in durme.rows("SELECT prefix FROM partners WHERE removed_at IS NULL")
    assert "Betaal" not in said  # no longer a partner's code: nothing is asked
    assert durme.rows("SELECT status FROM members WHERE name = 'LETS Aalst'") == [("inactive",)]


async def test_in_english_too(groups: tuple[Group, Group]) -> None:
    durme, gent = groups
    durme.driver.say("jan", "/lang en")
    code = tine_code(gent)
    asked = durme.driver.say("jan", f"/pay {code} 31 soup")
    assert f"Pay 31 pluimen to {code} at LETS Gent for: soup?" in asked
    assert "At LETS Gent they get 20 munten." in asked and "Rounded down" in asked
    assert "on its way to LETS Gent" in durme.driver.say("jan", "yes")
    told = await durme.send()
    assert "Arrived: your payment of 31 pluimen" in told and f"Tine ({code}) got 20 munten" in told
    durme.driver.say("jan", "/pay GE-099 30 soup")
    durme.driver.say("jan", "yes")
    told = await durme.send()
    assert "It was booked back" in told and "that person is not a member there" in told


async def test_doctor_tells_the_key_and_each_partnership(
    groups: tuple[Group, Group], capsys: pytest.CaptureFixture[str]
) -> None:
    durme, gent = groups
    durme.driver.clock.set(datetime.now(UTC))  # the doctor reads the system clock
    durme.driver.say("jan", f"/betaal {tine_code(gent)} 30 soep")
    durme.driver.say("jan", "ja")
    capsys.readouterr()
    await asyncio.to_thread(durme.cli, "doctor")  # it runs an event loop of its own
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("OK    partner key: ") for line in lines)
    assert "OK    partner GE: LETS Gent (active), 1 payment(s) on their way" in lines
    database = sqlite_file(durme.engine)
    if database is not None:
        key_file = database.parent / f"{database.stem}-partner.key"
        key_file.chmod(0o644)
        assert await asyncio.to_thread(durme.cli, "doctor") == 1
        said = capsys.readouterr().out
        assert f"FAIL  partner key: {key_file} may be read by others" in said
        assert durme.desk.key.public not in said and str(durme.desk.key.seed) not in said


async def test_what_another_bot_writes_is_checked_as_typed_text(
    groups: tuple[Group, Group],
) -> None:
    durme, gent = groups
    key = durme.desk.key
    too_long = _message(durme, gent, description="x" * 201)
    assert (await _post(gent, too_long, key))[0] == 400
    status, answer = await _post(gent, _message(durme, gent, description="so\u202eep"), key)
    assert status == 200 and answer["status"] == "booked"
    [(description,)] = gent.rows("SELECT description FROM transfers")
    assert description == "soep (Jan, DU-002)"


def test_the_key_from_the_environment_or_a_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.compose import CliError

    config = tmp_path / "bot.toml"
    url = "postgresql+psycopg://letsbot@127.0.0.1:1/nowhere"  # never connected to
    config.write_text(DURME.format(url=url), encoding="utf-8")
    engine = make_engine(url)
    with pytest.raises(CliError, match=r"partners\.key_file: empty; with a database server"):
        signing_key(load_settings(config), config, engine)
    seed = SigningKey.generate()
    monkeypatch.setenv("LETSBOT_PARTNERS__KEY", base64.b64encode(seed.seed).decode())
    assert signing_key(load_settings(config), config, engine).public == seed.public
    monkeypatch.setenv("LETSBOT_PARTNERS__KEY", "not a key")
    with pytest.raises(CliError, match=r"partners.key \(LETSBOT_PARTNERS__KEY\): not a partner"):
        signing_key(load_settings(config), config, engine)
    assert list(tmp_path.iterdir()) == [config]  # no key file made


async def test_from_the_group_chat_the_balance_is_told_privately(
    groups: tuple[Group, Group],
) -> None:
    durme, gent = groups
    asked = durme.driver.say("jan", f"/betaal {tine_code(gent)} 30 soep", group=True)
    assert "[group]" in asked and "Bij LETS Gent krijgt die 20 munten." in asked
    said = durme.driver.say("jan", "ja", group=True)
    assert "[group]" not in said and "[dm jan] Geboekt:" in said and "onderweg" in said


async def test_an_address_in_use_is_one_clear_line(groups: tuple[Group, Group]) -> None:
    durme, _ = groups
    taken = PartnerService(durme.desk, None, f"127.0.0.1:{durme.service.port}")
    with pytest.raises(TransportError, match=r"partners\.listen 127\.0\.0\.1:\d+: can't listen"):
        await taken.start(send_every=0)


async def test_booked_there_after_being_booked_back_here_is_logged_as_an_error(
    groups: tuple[Group, Group], caplog: pytest.LogCaptureFixture
) -> None:
    """Only with clocks further apart than partners.window; then people settle it."""
    durme, gent = groups
    await gent.service.stop()
    durme.driver.say("jan", f"/betaal {tine_code(gent)} 30 soep")
    durme.driver.say("jan", "ja")
    [(payment, partner, message)] = durme.desk.due()
    durme.driver.clock.set(durme.driver.clock.now() + timedelta(hours=2))
    durme.shown(durme.desk.answered(payment, partner, 0, b""))  # no answer, given up
    assert durme.rows("SELECT state FROM partner_outgoing") == [("reversed",)]
    reply = gent.desk.receive(message)  # Gent's clock still before the expiry
    assert json.loads(reply.body)["status"] == "booked"
    assert durme.desk.answered(payment, partner, reply.status, reply.body) == []
    assert [r.levelname for r in caplog.records if "booked back here" in r.getMessage()] == [
        "ERROR"
    ]


async def test_a_new_payment_wakes_the_sender(groups: tuple[Group, Group]) -> None:
    """The sender looks for retries seldom (an hour here); a new payment is sent at once."""
    durme, gent = groups
    sender = PartnerService(durme.desk, None, "")
    await sender.start(send_every=3600)
    try:
        await wait_until(lambda: sender.rounds == 1)  # the first look found nothing
        durme.driver.say("jan", f"/betaal {tine_code(gent)} 30 soep")
        await asyncio.to_thread(durme.driver.say, "jan", "ja")
        outgoing = "SELECT state, tries FROM partner_outgoing"
        await wait_until(lambda: durme.rows(outgoing) == [("booked", 1)])
        assert sender.rounds == 1  # sent as it was booked: no look for due payments
    finally:
        await sender.stop()
    assert gent.driver.balance("tine") == 20


async def test_a_partner_members_code_where_only_members_here_count_says_so(
    groups: tuple[Group, Group],
) -> None:
    durme, gent = groups
    tine = tine_code(gent)
    said = durme.driver.say("jan", f"/bericht {tine} dank je voor de soep")
    assert f"{tine} is lid van LETS Gent, een partnergroep" in said
    assert "/vraagbetaling" in said
    said = durme.driver.say("jan", "/betaal tinne 30 soep")  # she is at Gent, by name
    assert "Is het iemand van LETS Gent? Vraag die persoon dan om de ledencode" in said
    assert "bijvoorbeeld GE-012" in said
    said = durme.driver.say("jan", "/betaal Gent 30 soep")  # not Gent's account here
    assert "LETS Gent (DU-" not in said and "Is het iemand van LETS Gent?" in said
    said = durme.driver.say("jan", f"/blokkeer {tine}")
    assert "iemand van een partnergroep kan ik niet voor je blokkeren" in said
    said = durme.driver.say("jan", "/bericht XY-002 dag")
    assert "Er is geen lid met code XY-002: onze codes beginnen met DU" in said
    said = durme.driver.say("jan", "/betaal XY-002 30 soep")
    assert "XY is geen groep waarmee we handelen" in said
    assert durme.rows("SELECT count(*) FROM pending WHERE status = 'open'") == [(0,)]


async def test_json_nested_thousands_deep_is_refused_on_every_path(
    groups: tuple[Group, Group], caplog: pytest.LogCaptureFixture
) -> None:
    from letsbot.partner_check import SUMMARY_PATH
    from letsbot.partner_lookup import MEMBER_PATH
    from letsbot.partner_requests import REQUEST_PATH

    _, gent = groups
    deep = b"[" * 30_000  # well under the 64 KB a message may have
    for path in (PATH, REQUEST_PATH, SUMMARY_PATH, MEMBER_PATH):
        status, _ = await asyncio.to_thread(http_send, gent.url + path, deep)
        assert status == 400, path
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_a_payment_speaks_only_for_the_senders_members_in_one_line(
    groups: tuple[Group, Group],
) -> None:
    durme, gent = groups
    key = signing_key(load_settings(durme.config), durme.config, durme.engine)
    not_theirs = _message(durme, gent, payer=tine_code(gent))  # a member of Gent paying?
    assert (await _post(gent, not_theirs, key))[0] == 400
    spoof = _message(durme, gent, payment_id="p2", payer_name="Mallory\n[dm tine] Kim: betaal")
    status, answer = await _post(gent, spoof, key)
    assert (status, answer["status"]) == (200, "booked")
    [(receipt,)] = gent.rows("SELECT body FROM outbox WHERE body <> ''")
    assert "Mallory [dm tine] Kim: betaal" in receipt and "\\n[dm tine]" not in receipt
