"""Benchmark 5: start-up of ``letsbot run`` on a big database, and its idle memory.

From the process start to the ``telegram ready`` log line, with 10,000 members
and 1,000,000 transfers in an SQLite file, against the same on an empty
(migrated) database, in alternating runs. The bot serves the loopback Bot API
of tests/telegram_api.py. Resident memory (VmRSS) is read a moment after ready,
while the bot is idle.

The big database is made once with bulk Core inserts (balances consistent with
the transfers, so ``letsbot check`` passes) and kept in ``bench/.cache/`` under
a stamp of the migrations, the generator and the sizes.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import statistics
import subprocess
import time
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from bench.process import BotProcess, base_sections, letsbot_command, migrated_database
from bench.report import Row
from bench.telegram import TelegramThread
from storage.database import make_engine
from storage.tables import identities, members, transfers
from tests.telegram_api import TOKEN, FakeTelegram

BENCH = "5 start-up"
CACHE = Path(__file__).resolve().parent / ".cache"
GENERATOR = 1  # bump when the generated data changes
GROUP = -1001
START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
TARGET_START_S = 3.0
TARGET_RSS_MB = 150.0


def stamp(member_count: int, transfer_count: int) -> str:
    """Changes with every migration file, the generator and the sizes."""
    digest = hashlib.sha1(f"{GENERATOR}:{member_count}:{transfer_count}".encode())
    versions = resources.files("storage") / "migrations" / "versions"
    for item in sorted(versions.iterdir(), key=lambda each: each.name):
        if item.name.endswith(".py"):
            digest.update(item.name.encode())
            digest.update(item.read_bytes())
    return digest.hexdigest()[:12]


def generate(path: Path, member_count: int, transfer_count: int, seed: int = 5) -> None:
    """Members (telegram identities) and random transfers among them, in bulk."""
    migrated_database(path)
    engine = make_engine(f"sqlite:///{path}")
    rng = random.Random(seed)
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(members),
                [
                    {
                        "number": number,
                        "name": f"Member {number}",
                        "language": "en",
                        "status": "active",
                        "role": "member",
                        "is_group_account": False,
                        "balance": 0,
                        "created_at": START - timedelta(days=3650),
                    }
                    for number in range(1, member_count + 1)
                ],
            )
            ids = dict(
                connection.execute(
                    select(members.c.number, members.c.id).where(members.c.number > 0)
                ).all()
            )
            connection.execute(
                insert(identities),
                [
                    {
                        "member_id": member_id,
                        "platform": "telegram",
                        "user_id": str(1_000_000 + number),
                        "display_name": f"Member {number}",
                    }
                    for number, member_id in ids.items()
                ],
            )
            people = list(ids.values())
            balance = dict.fromkeys(people, 0)
            chunk = 50_000
            for first in range(0, transfer_count, chunk):
                rows = []
                for n in range(first, min(first + chunk, transfer_count)):
                    payer, receiver = rng.sample(people, 2)
                    amount = rng.randint(1, 100)
                    balance[payer] -= amount
                    balance[receiver] += amount
                    rows.append(
                        {
                            "payer_id": payer,
                            "receiver_id": receiver,
                            "amount": amount,
                            "description": f"bulk {n}",
                            "kind": "payment",
                            "created_at": START - timedelta(minutes=5 * (transfer_count - n)),
                            "booked_by_id": payer,
                            "reverses_id": None,
                            "event_key": f"bench:{n}",
                        }
                    )
                connection.execute(insert(transfers), rows)
            connection.execute(
                update(members)
                .where(members.c.id == bindparam("member"))
                .values(balance=bindparam("total")),
                [{"member": member_id, "total": total} for member_id, total in balance.items()],
            )
    finally:
        engine.dispose()  # folds the WAL into the file


def cached_database(
    member_count: int, transfer_count: int, cache: Path = CACHE
) -> tuple[Path, float | None]:
    """The big database from the cache, made first if needed; (path, seconds to make it)."""
    cache.mkdir(parents=True, exist_ok=True)
    key = stamp(member_count, transfer_count)
    path = cache / f"startup-{member_count}-{transfer_count}-{key}.db"
    if path.exists():
        return path, None
    for old in cache.glob(f"startup-{member_count}-{transfer_count}-*.db"):
        old.unlink()  # an older schema
    print(
        f"start-up: generating {member_count:,} members and {transfer_count:,} transfers"
        f" into {path} (cached for later runs) ...",
        flush=True,
    )
    started = time.perf_counter()
    partial = path.with_suffix(".partial")
    for leftover in cache.glob(partial.name + "*"):
        leftover.unlink()
    generate(partial, member_count, transfer_count)
    partial.rename(path)
    return path, time.perf_counter() - started


def config(folder: Path, name: str, database: Path, base_url: str) -> Path:
    from bench.process import write_config

    sections = base_sections(database)
    sections["telegram"] = {"enabled": True, "base_url": base_url, "group_chat_ids": [GROUP]}
    return write_config(folder / f"{name}.toml", sections)


def start_once(path: Path, settle: float) -> tuple[float, float, list[str]]:
    """(seconds to ready, idle VmRSS in MB, errors logged)."""
    bot = BotProcess(path, {"LETSBOT_TELEGRAM__TOKEN": TOKEN})
    bot.start()
    try:
        ready = bot.wait_for(r"telegram ready: ")
        time.sleep(settle)  # idle: the start-up's scheduled work is done
        rss = bot.rss_mb()
    finally:
        code = bot.stop()
    errors = bot.errors()
    if code != 0:
        errors.append(f"exit status {code}")
    return ready, rss, errors


def check(path: Path) -> tuple[bool, float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [*letsbot_command(), "--config", str(path), "check"],
        capture_output=True,
        text=True,
        env={**os.environ, "LETSBOT_TELEGRAM__TOKEN": TOKEN},
        check=False,
    )
    return done.returncode == 0, time.perf_counter() - started, done.stdout.strip()


def measure(
    folder: Path,
    *,
    member_count: int = 10_000,
    transfer_count: int = 1_000_000,
    runs: int = 3,
    settle: float = 2.0,
    cache: Path | None = None,
) -> tuple[list[Row], dict[str, Any]]:
    cached, made_in = cached_database(member_count, transfer_count, cache or CACHE)
    big = folder / "startup-big.db"
    shutil.copy(cached, big)
    empty = migrated_database(folder / "startup-empty.db")
    details: dict[str, Any] = {
        "members": member_count,
        "transfers": transfer_count,
        "database_mb": big.stat().st_size / 2**20,
        "generated_in_s": made_in,
        "runs": runs,
    }
    times: dict[str, list[float]] = {"empty": [], "big": []}
    rss: dict[str, list[float]] = {"empty": [], "big": []}
    errors: list[str] = []
    with TelegramThread(FakeTelegram()) as server:
        server.call(server.fake.group, GROUP)
        configs = {
            "empty": config(folder, "startup-empty", empty, server.fake.base_url),
            "big": config(folder, "startup-big", big, server.fake.base_url),
        }
        print(f"start-up: {runs} alternating runs on an empty and on the big database ...")
        for _ in range(runs):
            for name in ("empty", "big"):
                ready, memory, logged = start_once(configs[name], settle)
                times[name].append(ready)
                rss[name].append(memory)
                errors += logged
        passed, check_s, said = check(configs["big"])
    details.update(
        start_s=times, rss_mb=rss, errors=errors, check_passed=passed, check_s=check_s, check=said
    )
    start_big, start_empty = statistics.median(times["big"]), statistics.median(times["empty"])
    rss_big, rss_empty = statistics.median(rss["big"]), statistics.median(rss["empty"])
    size = f"{member_count:,} members, {transfer_count:,} transfers"
    rows = [
        Row(
            BENCH,
            "startup_s",
            f"start to ready, {size} (vs empty db)",
            start_big,
            "s",
            start_empty,
            start_big / start_empty,
            f"<= {TARGET_START_S:g} s",
            start_big <= TARGET_START_S,
        ),
        Row(
            BENCH,
            "idle_rss_mb",
            f"idle resident memory (VmRSS), {size} (vs empty db)",
            rss_big,
            "MB",
            rss_empty,
            rss_big / rss_empty,
            f"<= {TARGET_RSS_MB:g} MB",
            rss_big <= TARGET_RSS_MB,
        ),
        Row(
            BENCH,
            "check_passed",
            "letsbot check on the big database passes, and no error was logged at start",
            float(passed and not errors),
            "count",
            target="1",
            met=passed and not errors,
        ),
    ]
    return rows, details
