"""Two partner bots killed (SIGKILL) at random moments while their members pay each other.

Two real ``letsbot run`` processes (bench/partners.py ``pair``), each on its own
database and its own loopback Bot API, pay each other over HTTP on 127.0.0.1.
Their members type ``/betaal`` and ``ja`` in Telegram; either bot is killed
right after a ``ja`` or when the payer is told what became of the payment, and
started again. Afterwards every payment is booked on both sides or on neither,
never twice, both ``letsbot check``s pass and the two databases mirror each other.
And the connection a bot keeps to its partner survives the partner's restart.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy import text

from app.partner_http import http_send
from bench.partners import Side, asked, mirror_problems, pair, rows_of
from letsbot.partners import PATH
from storage.database import make_engine
from tests.telegram_api import Person

PAYMENTS = 100
KILLS = 10  # half of them of each bot
REFUSED_EVERY = 9  # a payment to a member at their limit there: refused, booked back


@dataclass(frozen=True)
class Kill:
    victim: str  # "DU" or "GE"
    moment: str  # "ja": right after it is typed; "told": when the payer is told


@pytest.fixture(params=["sqlite", pytest.param("gent-postgresql", marks=pytest.mark.postgres)])
def gent_url(request: pytest.FixtureRequest) -> str | None:
    """Gent on SQLite too, or on PostgreSQL (skipped without a server)."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("pg_url"))


def plan(rng: random.Random) -> dict[int, Kill]:
    """Which payments a bot is killed at, and which bot and when; each bot as often."""
    chosen = sorted(rng.sample(range(3, PAYMENTS - 10), KILLS))
    victims = ["DU", "GE"] * (KILLS // 2)
    rng.shuffle(victims)
    return {
        n: Kill(victim, rng.choice(("ja", "told")))
        for n, victim in zip(chosen, victims, strict=True)
    }


def news(side: Side, payer: Person, before: int) -> bool:
    """Whether ``payer`` was told what became of their payment since ``before`` (read
    on the loopback Bot API's own thread, as ``Side.wait`` calls it)."""
    return any(
        word in sent.text
        for sent in side.fake.sent_to(payer.id)[before:]
        for word in ("onderweg", "Aangekomen", "teruggeboekt")
    )


def outgoing(side: Side) -> list[tuple[str, str]]:
    return [
        (str(description), str(state))
        for description, state in rows_of(
            side.url, "SELECT description, state FROM partner_outgoing"
        )
    ]


@pytest.mark.slow  # about 50 s: 100 payments and ten bots started again
def test_killed_at_random_moments_each_payment_is_booked_on_both_sides_or_neither(
    tmp_path: Path, gent_url: str | None
) -> None:
    rng = random.Random(20261204)
    kills = plan(rng)
    typed_ja: set[str] = set()  # "ja" typed: may be booked
    told: set[str] = set()  # the payer saw it booked (on its way, or arrived): must be
    with pair(tmp_path, members=5, gent_url=gent_url) as (durme, gent):
        sides = {"DU": durme, "GE": gent}
        for side in sides.values():  # the last member of each group can receive nothing
            engine = make_engine(side.url)
            with engine.begin() as connection:
                connection.execute(text("UPDATE members SET max_balance = 0 WHERE number = 5"))
            engine.dispose()
        for n in range(PAYMENTS):
            payer_side, receiver_side = (durme, gent) if n % 2 == 0 else (gent, durme)
            payer = rng.choice(payer_side.people)
            receiver = rng.choice(receiver_side.people[:-1])
            if n % REFUSED_EVERY == 0:
                receiver = receiver_side.people[-1]
            code = receiver_side.code(receiver)
            # Whole hours' worth each way, so both sides book exact amounts.
            amount = rng.randint(1, 5) * (3 if payer_side is durme else 2)
            description = f"p{n}"
            before = len(payer_side.sent_to(payer))
            payer_side.say(payer, f"/betaal {code} {amount} {description}")
            # This payment's question: after a kill, an earlier one may come again.
            payer_side.wait_for_text(payer, asked(description), before)
            before = len(payer_side.sent_to(payer))
            payer_side.say(payer, "ja")
            typed_ja.add(description)
            kill = kills.get(n)
            if kill is None or kill.moment == "told":
                # "on its way" (when no answer came at once), "arrived" or "booked back"
                payer_side.wait(functools.partial(news, payer_side, payer, before))
                told.add(description)
            if kill is not None:
                victim = sides[kill.victim]
                victim.kill()
                victim.start()

        # A payment whose sender was killed while sending waits out its lease (15 s).
        deadline = time.monotonic() + 60
        while any(state == "sending" for side in (durme, gent) for _, state in outgoing(side)):
            assert time.monotonic() < deadline, "payments still on their way"
            time.sleep(0.2)  # looking again at the databases, until the deadline
        retried = [
            tries
            for side in (durme, gent)
            for (tries,) in rows_of(side.url, "SELECT tries FROM partner_outgoing WHERE tries > 1")
        ]
        problems = mirror_problems(durme, gent)
        checks = {side.spec.prefix: side.check() for side in (durme, gent)}
        logged = durme.errors() + gent.errors()
        killed = sum(len(side.bots) - 1 for side in (durme, gent))
    assert problems == []
    assert checks == {"DU": 0, "GE": 0}  # letsbot check on each database
    assert logged == []
    assert killed == KILLS
    sent = outgoing(durme) + outgoing(gent)
    descriptions = [description for description, _ in sent]
    assert len(descriptions) == len(set(descriptions)), "a payment was booked twice"
    assert told <= set(descriptions), "a payment the payer was told about is missing"
    assert set(descriptions) <= typed_ja, "a payment nobody confirmed was booked"
    states = {state for _, state in sent}
    assert states == {"booked", "reversed"}  # both outcomes happened
    assert len(told) >= PAYMENTS - KILLS
    assert retried, "no kill interrupted a payment on its way"


async def test_the_connection_to_a_partner_is_kept_and_opened_again_after_its_restart() -> None:
    connections: list[object] = []  # the sender's (address, port) of each request

    async def echo(request: web.Request) -> web.Response:
        assert request.transport is not None
        connections.append(request.transport.get_extra_info("peername"))
        return web.Response(body=await request.read())

    async def serve(port: int = 0) -> web.AppRunner:
        app = web.Application()
        app.router.add_post(PATH, echo)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner

    runner = await serve()
    port = int(runner.addresses[0][1])
    url = f"http://127.0.0.1:{port}{PATH}"
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=1) as sender:  # one thread keeps one connection

        async def send(body: bytes) -> tuple[int, bytes]:
            return await loop.run_in_executor(sender, http_send, url, body)

        assert await send(b"1") == (200, b"1")
        assert await send(b"2") == (200, b"2")
        assert len(set(connections)) == 1  # the second on the first's connection
        await runner.cleanup()  # the partner's bot stops, closing it, and starts again
        runner = await serve(port)
        assert await send(b"3") == (200, b"3")  # sent again on a new connection
        await runner.cleanup()
    assert len(set(connections)) == 2
