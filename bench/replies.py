"""Benchmarks 1-3: reply latency and group load of ``letsbot run`` on a real Synapse.

1. ``/balance`` in a direct chat: time from sending to the bot's reply, median
   and p95, against the same line sent to the echo bot (bench/echo.py), the
   two alternated in one run.
2. A confirmed payment: ``/pay`` and ``yes`` (two round trips) against two
   echo round trips.
3. Group load: many members, each a matrix-nio client with a direct chat with
   the bot, send a mix (balance, pay + confirm, post or search offers, vote)
   for a while, each waiting for the reply and a random pause before the next:
   commands handled per second, reply latency p50/p95/p99, errors (no reply
   within the timeout, or not the expected one). Afterwards ``letsbot check``
   runs, and the payments booked are compared with those the members saw.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.matrix import BOT, ECHO, PASSWORD, EchoProcess, Homeserver, Member, bot_config, start_bot
from bench.process import (
    CpuMeter,
    add_members,
    letsbot_command,
    migrated_database,
    settings_of,
)
from bench.report import Row, quantile
from letsbot.clock import SystemClock
from letsbot.dispatcher import Bot
from letsbot.domain import Identity
from letsbot.messages import Chat, ChatKind, Incoming
from storage.database import make_engine
from storage.tables import transfers
from storage.uow import SqlUnitOfWork

TARGET_RATIO = 1.3  # bot median / echo median
TARGET_LOAD_P95 = 3.0  # load p95 / echo median
OFFER_WORDS = ["bike", "soup", "garden", "lessons", "repair", "bread", "lift", "sewing"]


def propose(config: Path, database: Path, proposer: str) -> int:
    """A proposal open for votes, made through the real Bot; its number."""
    import tomllib

    sections = tomllib.loads(config.read_text(encoding="utf-8"))
    engine = make_engine(f"sqlite:///{database}")
    try:
        bot = Bot(settings_of(sections), SqlUnitOfWork(engine), SystemClock())
        result = bot.handle(
            Incoming(
                platform="matrix",
                event_id=f"bench-propose-{time.time_ns()}",
                chat=Chat("matrix", "!bench-setup", ChatKind.DIRECT),
                sender=Identity("matrix", proposer),
                sender_name="Bench",
                text="/propose Benchmark: a market every Saturday",
            )
        )
        if result.outcome != "applied":
            raise RuntimeError(f"/propose: {result.outcome}")
        # Its replies are not for the bot under test to send (as if shown): out of the outbox.
        bot.delivered([r.outbox_id for r in result.replies if r.outbox_id is not None])
    finally:
        engine.dispose()
    return 1


def payments(database: Path) -> int:
    engine = make_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            count = connection.execute(
                select(func.count()).select_from(transfers).where(transfers.c.kind == "payment")
            ).scalar_one()
            connection.rollback()
    finally:
        engine.dispose()
    return int(count)


class Recorder:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.handled = 0
        self.booked = 0
        self.kinds: dict[str, int] = {}
        self.handled_per_s = 0.0

    def note(self, who: str, what: str, result: tuple[float | None, str]) -> bool:
        seconds, text = result
        if seconds is None:
            self.errors.append(f"{who} {what}: {text}")
            return False
        self.latencies.append(seconds)
        self.handled += 1
        self.kinds[what] = self.kinds.get(what, 0) + 1
        return True


async def act(
    member: Member,
    room: str,
    codes: list[int],
    own: int,
    rng: random.Random,
    rec: Recorder,
    *,
    echo: bool = False,
) -> None:
    """One step of the mix, as a member would type it (to the echo bot: the same lines)."""
    who = member.user_id

    async def ask(what: str, line: str, expect: str) -> bool:
        return rec.note(who, what, await member.ask(room, line, line if echo else expect))

    kind = rng.choices(["balance", "pay", "offer", "search", "vote"], [4, 3, 1, 1, 1])[0]
    if kind == "balance":
        await ask(kind, "/balance", "Your balance")
    elif kind == "pay":
        other = rng.choice([c for c in codes if c != own])
        amount = rng.randint(1, 20)
        line = f"/pay DU-{other:03d} {amount} {rng.choice(OFFER_WORDS)}"
        if await ask("pay", line, f"Pay {amount}"):
            booked = await ask("confirm", "yes", "Booked:")
            rec.booked += booked  # added after the await: other members count too
    elif kind == "offer":
        line = f"/offer {rng.choice(OFFER_WORDS)} help #{rng.choice(OFFER_WORDS)}"
        await ask(kind, line, "Your offer #")
    elif kind == "search":
        await ask(kind, f"/offers {rng.choice(OFFER_WORDS)}", "ffers")
    else:
        await ask(kind, f"/vote 1 {rng.choice(['for', 'against', 'abstain'])}", "proposal #1")


async def latency(
    alice: Member, bot_room: str, echo_room: str, bob: int, samples: int, pay_samples: int
) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"bot": [], "echo": [], "bot_pay": [], "echo_pay": []}
    failures: list[str] = []

    def keep(result: tuple[float | None, str]) -> float:
        seconds, text = result
        if seconds is None:
            failures.append(text)
            return float("nan")
        return seconds

    for _ in range(3):  # warm up both paths
        await alice.ask(bot_room, "/balance", "Your balance")
        await alice.ask(echo_room, "/balance", "/balance")
    for n in range(samples):
        order = [("bot", bot_room, "Your balance"), ("echo", echo_room, "/balance")]
        for name, room, expect in order if n % 2 == 0 else order[::-1]:
            out[name].append(keep(await alice.ask(room, "/balance", expect)))
    for n in range(pay_samples):
        first = n % 2 == 0
        for name in ("bot_pay", "echo_pay") if first else ("echo_pay", "bot_pay"):
            line = f"/pay DU-{bob:03d} 1 bench {n}"
            if name == "bot_pay":
                a = keep(await alice.ask(bot_room, line, "Pay 1"))
                b = keep(await alice.ask(bot_room, "yes", "Booked:"))
            else:
                a = keep(await alice.ask(echo_room, line, line))
                b = keep(await alice.ask(echo_room, "yes", "yes"))
            out[name].append(a + b)
    if failures:
        raise RuntimeError("latency: no reply: " + "; ".join(failures[:5]))
    return out


async def load(
    members: list[tuple[Member, str, int]],
    seconds: float,
    think: tuple[float, float],
    seed: int,
    *,
    echo: bool = False,
) -> tuple[Recorder, float]:
    rec = Recorder()
    codes = [code for _, _, code in members]
    deadline = time.monotonic() + seconds

    async def person(index: int, member: Member, room: str, own: int) -> None:
        rng = random.Random(seed * 1000 + index)
        await asyncio.sleep(rng.uniform(0, think[1]))  # members start at different moments
        while time.monotonic() < deadline:
            await act(member, room, codes, own, rng, rec, echo=echo)
            await asyncio.sleep(rng.uniform(*think))

    started = time.perf_counter()
    await asyncio.gather(*(person(i, m, r, c) for i, (m, r, c) in enumerate(members)))
    return rec, time.perf_counter() - started


async def session(
    server: Homeserver,
    folder: Path,
    *,
    samples: int,
    pay_samples: int,
    load_members: int,
    load_seconds: float,
    think: tuple[float, float],
    run_latency: bool,
    run_load: bool,
    echo_seconds: float,
) -> tuple[list[Row], dict[str, Any]]:
    database = migrated_database(folder / "matrix.db")
    tag = datetime.now(UTC).strftime("%H%M%S")
    names = ["alice" + tag, "bob" + tag] + [f"m{n}x{tag}" for n in range(load_members)]
    print(f"matrix: registering {len(names)} members ...", flush=True)
    user_ids = server.register_many(names)
    numbers = add_members(database, "matrix", user_ids)
    config = bot_config(folder, server.url, database)
    propose(config, database, user_ids[0])
    bot = start_bot(config)
    echo = EchoProcess(server.url)
    people: list[Member] = []
    details: dict[str, Any] = {}
    rows: list[Row] = []
    try:
        alice = Member(server.url, user_ids[0])
        people.append(alice)
        await alice.start()
        bot_room = await alice.dm(BOT)
        echo_room = await alice.dm(ECHO)
        if run_latency:
            print(f"matrix: latency, {samples} x /balance and {pay_samples} payments ...")
            found = await latency(alice, bot_room, echo_room, numbers[1], samples, pay_samples)
        else:  # the load's target needs the echo median of this run
            found = await latency(alice, bot_room, echo_room, numbers[1], 20, 0)
        echo_median = statistics.median(found["echo"])
        details["latency_s"] = found
        if run_latency:
            rows += latency_rows(found)
        if run_load:
            print(f"matrix: load, {load_members} members for {load_seconds:g} s ...", flush=True)
            crowd = [Member(server.url, user_id) for user_id in user_ids[2:]]
            people += crowd
            await asyncio.gather(*(m.start() for m in crowd))
            rooms = [await m.dm(BOT) for m in crowd]  # the bot joins them one by one
            before = payments(database)
            assert bot.process is not None and server.synapse.process is not None
            pids: dict[str, int | None] = {
                "letsbot run": bot.process.pid,
                "Synapse": server.synapse.process.pid,
                "echo bot": echo.process.pid,
                "clients (bench)": None,
            }
            meter = CpuMeter(pids)
            crowd_rooms = list(zip(crowd, rooms, numbers[2:], strict=True))
            rec, elapsed = await load(crowd_rooms, load_seconds, think, seed=20261201)
            await asyncio.sleep(1.0)  # replies still under way are counted as handled
            cpu = meter.shares()
            booked_in_db = payments(database) - before
            details["load"] = load_details(rec, elapsed, think, cpu)
            details["load"]["payments_booked_in_db"] = booked_in_db
            details["load"]["sync_errors"] = sum(m.sync_errors for m in crowd)
            echo_rec = None
            if echo_seconds > 0:
                print(f"matrix: the same load on the echo bot, {echo_seconds:g} s ...", flush=True)
                echo_rooms = [await m.dm(ECHO) for m in crowd]
                meter = CpuMeter(pids)
                echo_crowd = list(zip(crowd, echo_rooms, numbers[2:], strict=True))
                echo_rec, echo_elapsed = await load(
                    echo_crowd, echo_seconds, think, seed=20261202, echo=True
                )
                await asyncio.sleep(1.0)
                details["echo_load"] = load_details(echo_rec, echo_elapsed, think, meter.shares())
                echo_rec.handled_per_s = echo_rec.handled / echo_elapsed
            rows += load_rows(rec, elapsed, echo_median, load_members, load_seconds, echo_rec, cpu)
    finally:
        for person in people:
            await person.close()
        echo.stop()
        code = bot.stop()
        details["bot_exit_status"] = code
        details["bot_errors"] = bot.errors()[:20]
    done = subprocess.run(
        [*letsbot_command(), "--config", str(config), "check"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "LETSBOT_MATRIX__PASSWORD": PASSWORD},
    )
    details["check"] = done.stdout.strip() or done.stderr.strip()
    if run_load:
        load_info = details["load"]
        sound = (
            done.returncode == 0
            and load_info["payments_seen_booked"] == load_info["payments_booked_in_db"]
            and not details["bot_errors"]
        )
        rows.append(
            Row(
                "3 load",
                "load_ledger_sound",
                "after the load: check passes, booked = seen booked, no bot errors",
                float(sound),
                "count",
                target="1",
                met=sound,
            )
        )
    return rows, details


def load_details(
    rec: Recorder, elapsed: float, think: tuple[float, float], cpu: dict[str, float]
) -> dict[str, Any]:
    return {
        "seconds": elapsed,
        "think_s": think,
        "handled": rec.handled,
        "handled_per_s": rec.handled / elapsed,
        "by_kind": rec.kinds,
        "errors": rec.errors[:50],
        "error_count": len(rec.errors),
        "payments_seen_booked": rec.booked,
        "latency_p50_s": quantile(rec.latencies, 0.5),
        "latency_p95_s": quantile(rec.latencies, 0.95),
        "latency_p99_s": quantile(rec.latencies, 0.99),
        "cpu_percent_of_one_core": cpu,
    }


def ms(seconds: float) -> float:
    return seconds * 1000


def latency_rows(found: dict[str, list[float]]) -> list[Row]:
    rows = []
    for bench, key, label, bot_key, echo_key in (
        ("1 latency", "balance", "/balance reply (vs echo bot)", "bot", "echo"),
        (
            "2 payment",
            "payment",
            "/pay + yes, two round trips (vs 2 echoes)",
            "bot_pay",
            "echo_pay",
        ),
    ):
        bot, echo = found[bot_key], found[echo_key]
        if not bot:
            continue
        median, base = statistics.median(bot), statistics.median(echo)
        rows.append(
            Row(
                bench,
                f"{key}_median_ms",
                f"{label}, median",
                ms(median),
                "ms",
                ms(base),
                median / base,
                f"ratio <= {TARGET_RATIO:g}",
                median / base <= TARGET_RATIO,
            )
        )
        p95, base95 = quantile(bot, 0.95), quantile(echo, 0.95)
        rows.append(
            Row(bench, f"{key}_p95_ms", f"{label}, p95", ms(p95), "ms", ms(base95), p95 / base95)
        )
    return rows


def load_rows(
    rec: Recorder,
    elapsed: float,
    echo_median: float,
    members: int,
    seconds: float,
    echo_rec: Recorder | None,
    cpu: dict[str, float],
) -> list[Row]:
    bench = "3 load"
    p50, p95, p99 = (quantile(rec.latencies, q) for q in (0.5, 0.95, 0.99))
    rate = rec.handled / elapsed
    echo_rate = echo_rec.handled_per_s if echo_rec else None
    rows = [
        Row(
            bench,
            "load_per_s",
            f"commands handled/s, {members} members, {seconds:g} s (vs echo bot, same load)",
            rate,
            "/s",
            echo_rate,
            rate / echo_rate if echo_rate else None,
        ),
        Row(
            bench,
            "load_p50_ms",
            "reply p50 (vs echo median)",
            ms(p50),
            "ms",
            ms(echo_median),
            p50 / echo_median,
        ),
        Row(
            bench,
            "load_p95_ms",
            "reply p95 (vs echo median)",
            ms(p95),
            "ms",
            ms(echo_median),
            p95 / echo_median,
            f"ratio <= {TARGET_LOAD_P95:g}",
            p95 / echo_median <= TARGET_LOAD_P95,
        ),
        Row(
            bench,
            "load_p99_ms",
            "reply p99 (vs echo median)",
            ms(p99),
            "ms",
            ms(echo_median),
            p99 / echo_median,
        ),
    ]
    if echo_rec is not None:
        echo_p95 = quantile(echo_rec.latencies, 0.95)
        rows.append(
            Row(
                bench,
                "load_echo_p95_ms",
                "echo bot under the same load: p95 (vs echo median)",
                ms(echo_p95),
                "ms",
                ms(echo_median),
                echo_p95 / echo_median,
            )
        )
    rows.append(
        Row(
            bench,
            "load_errors",
            "errors (no or wrong reply within 15 s)",
            float(len(rec.errors)),
            "count",
            target="0",
            met=not rec.errors,
        )
    )
    for name, share in cpu.items():
        rows.append(
            Row(
                bench,
                f"load_cpu_{name.split()[0].lower()}",
                f"CPU during the load: {name}",
                share,
                "%",
            )
        )
    return rows


def measure(
    folder: Path,
    server: Homeserver,
    *,
    samples: int = 100,
    pay_samples: int = 40,
    load_members: int = 50,
    load_seconds: float = 60,
    think: tuple[float, float] = (1.0, 3.0),
    run_latency: bool = True,
    run_load: bool = True,
    echo_seconds: float = 30,
) -> tuple[list[Row], dict[str, Any]]:
    return asyncio.run(
        session(
            server,
            folder,
            samples=samples,
            pay_samples=pay_samples,
            load_members=load_members if run_load else 0,
            load_seconds=load_seconds,
            think=think,
            run_latency=run_latency,
            run_load=run_load,
            echo_seconds=echo_seconds,
        )
    )
