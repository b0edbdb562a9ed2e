"""Benchmark 8: Matrix with end-to-end encryption, as members' clients use it.

- ``/balance`` in an encrypted direct chat (made as Element makes one): from
  sending to the bot's reply, against the same line to an echo bot with
  encryption on (bench/echo.py with a key store) on the same homeserver, and
  against ``/balance`` in an unencrypted chat with the same bot. The member is
  one matrix-nio client with encryption on; the three rooms are alternated.
- Start-up with an existing encryption store (the bot's second and later
  starts, its device, keys and session kept): seconds to "matrix ready" and
  idle resident memory, on the start-up benchmark's big database when given.

The bot and the echo bot have accounts of their own here, so their keys don't
meet those of the other Matrix benchmarks on the same homeserver.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.matrix import PASSWORD, EchoProcess, Homeserver, Member, start_bot
from bench.process import BotProcess, add_members, base_sections, migrated_database, write_config
from bench.report import Row, quantile

BENCH = "8 e2ee"
TARGET_RATIO = 1.3  # encrypted bot median / encrypted echo median; and / unencrypted bot
TARGET_START_S = 3.0
TARGET_RSS_MB = 150.0


def config(folder: Path, name: str, url: str, bot: str, database: Path) -> Path:
    sections = base_sections(database)
    sections["matrix"] = {
        "enabled": True,
        "homeserver": url,
        "user_id": bot,
        "store_path": str(folder / f"{name}-store"),
    }
    return write_config(folder / f"{name}.toml", sections)


async def round_trips(
    carol: Member, rooms: dict[str, tuple[str, str]], samples: int
) -> dict[str, list[float]]:
    """``samples`` /balance round trips per room, the rooms taken in turn (order rotated)."""
    out: dict[str, list[float]] = {name: [] for name in rooms}
    failures: list[str] = []
    names = list(rooms)
    for n in range(samples + 3):  # the first three warm the paths up
        for name in names[n % len(names) :] + names[: n % len(names)]:
            room, expect = rooms[name]
            seconds, text = await carol.ask(room, "/balance", expect)
            if seconds is None:
                failures.append(f"{name}: {text}")
            elif n >= 3:
                out[name].append(seconds)
    if failures:
        raise RuntimeError("e2ee: no reply: " + "; ".join(failures[:5]))
    return out


def start_once(path: Path, settle: float) -> tuple[float, float, list[str]]:
    """(seconds to ready, idle VmRSS in MB, errors logged) of one start on a kept store."""
    bot = BotProcess(path, {"LETSBOT_MATRIX__PASSWORD": PASSWORD})
    bot.start()
    try:
        ready = bot.wait_for(r"matrix ready: ", 60)
        time.sleep(settle)  # idle: the start-up's first sync and scheduled work are done
        rss = bot.rss_mb()
    finally:
        code = bot.stop()
    errors = bot.errors()
    if code != 0:
        errors.append(f"exit status {code}")
    return ready, rss, errors


async def session(
    server: Homeserver,
    folder: Path,
    *,
    samples: int,
    big: Path | None,
    big_members: int,
    runs: int,
    settle: float,
) -> tuple[list[Row], dict[str, Any]]:
    tag = datetime.now(UTC).strftime("%H%M%S")
    bot_id, echo_id, carol_id = server.register_many(
        [f"e2eebot{tag}", f"e2eeecho{tag}", f"carol{tag}"]
    )
    database = migrated_database(folder / "e2ee.db")
    add_members(database, "matrix", [carol_id])
    small = config(folder, "e2ee", server.url, bot_id, database)
    details: dict[str, Any] = {}
    print(f"e2ee: {samples} x /balance in encrypted and plain chats ...", flush=True)
    bot = start_bot(small)
    echo = None
    carol = Member(server.url, carol_id, store=folder / "carol-store")
    try:  # the bot is stopped whatever fails here
        echo = EchoProcess(server.url, echo_id, store=folder / "echo-store")
        await carol.start()
        rooms = {
            "bot_encrypted": (await carol.dm(bot_id, encrypted=True), "Your balance"),
            "echo_encrypted": (await carol.dm(echo_id, encrypted=True), "/balance"),
            "bot_plain": (await carol.dm(bot_id), "Your balance"),
        }
        found = await round_trips(carol, rooms, samples)
    finally:
        await carol.close()
        if echo is not None:
            echo.stop()
        details["bot_exit_status"] = bot.stop()
        details["bot_errors"] = bot.errors()[:20]
    details["latency_s"] = found

    # Start-up on a kept store: the first start made the device and its keys.
    target = small
    if big is not None:
        copy = folder / "e2ee-big.db"
        shutil.copy(big, copy)
        target = config(folder, "e2ee-big", server.url, bot_id, copy)
        first = start_bot(target)  # its store made, its device signed; not measured
        first.stop()
    print(f"e2ee: {runs} starts with the encryption store kept ...", flush=True)
    times, rss, errors = [], [], []
    for _ in range(runs):
        ready, memory, logged = start_once(target, settle)
        times.append(ready)
        rss.append(memory)
        errors += logged
    details.update(start_s=times, rss_mb=rss, start_errors=errors, big_database=big is not None)
    where = f"{big_members:,}-member database" if big is not None else "small database"
    return rows_of(found, times, rss, errors, where), details


def rows_of(
    found: dict[str, list[float]],
    times: list[float],
    rss: list[float],
    errors: list[str],
    where: str,
) -> list[Row]:
    bot, echo, plain = found["bot_encrypted"], found["echo_encrypted"], found["bot_plain"]
    median, base, unencrypted = (statistics.median(x) for x in (bot, echo, plain))
    start, memory = statistics.median(times), statistics.median(rss)
    return [
        Row(
            BENCH,
            "e2ee_balance_median_ms",
            "/balance in an encrypted DM (vs encrypted echo bot), median",
            median * 1000,
            "ms",
            base * 1000,
            median / base,
            f"ratio <= {TARGET_RATIO:g}",
            median / base <= TARGET_RATIO,
        ),
        Row(
            BENCH,
            "e2ee_balance_p95_ms",
            "/balance in an encrypted DM (vs encrypted echo bot), p95",
            quantile(bot, 0.95) * 1000,
            "ms",
            quantile(echo, 0.95) * 1000,
            quantile(bot, 0.95) / quantile(echo, 0.95),
        ),
        Row(
            BENCH,
            "e2ee_vs_plain_median_ms",
            "/balance encrypted (vs the same bot in an unencrypted DM), median",
            median * 1000,
            "ms",
            unencrypted * 1000,
            median / unencrypted,
            f"ratio <= {TARGET_RATIO:g}",
            median / unencrypted <= TARGET_RATIO,
        ),
        Row(
            BENCH,
            "e2ee_startup_s",
            f"start to ready with the encryption store kept, {where}",
            start,
            "s",
            target=f"<= {TARGET_START_S:g} s",
            met=start <= TARGET_START_S and not errors,
        ),
        Row(
            BENCH,
            "e2ee_idle_rss_mb",
            f"idle resident memory (VmRSS) with encryption on, {where}",
            memory,
            "MB",
            target=f"<= {TARGET_RSS_MB:g} MB",
            met=memory <= TARGET_RSS_MB,
        ),
    ]


def measure(
    folder: Path,
    server: Homeserver,
    *,
    samples: int = 60,
    big: Path | None = None,
    big_members: int = 0,
    runs: int = 3,
    settle: float = 2.0,
) -> tuple[list[Row], dict[str, Any]]:
    return asyncio.run(
        session(
            server,
            folder,
            samples=samples,
            big=big,
            big_members=big_members,
            runs=runs,
            settle=settle,
        )
    )
