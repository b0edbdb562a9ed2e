"""How long /stats and ``letsbot report`` take on a large ledger.

Run with ``python -m bench.stats [--postgres URL] [--sizes 1000,100000]``. A
fresh SQLite file (and, with ``--postgres``, that database, emptied first) is
filled in bulk with 150 members and N transfers spread over three years, 2% of
them reversed, and 2,000 listings. Then, each the median of several runs:

- the statistics queries of the Store (twelve months, active traders, balances);
- ``/stats`` through the real dispatcher, for a member (text only) and for a
  coordinator (text and two charts, matplotlib already loaded);
- the HTML report of one year.

A report, not a test: the exit status is 0.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, update

from bench.seed import add_member
from letsbot.clock import VirtualClock
from letsbot.config import Settings
from letsbot.dispatcher import Bot
from letsbot.domain import Identity
from letsbot.figures import month_bounds, months_back
from letsbot.messages import Chat, ChatKind, Incoming
from letsbot.report import build_report
from storage.database import make_engine, upgrade
from storage.tables import listings, members, transfers
from storage.uow import SqlUnitOfWork
from tests.support import reset_postgres

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
MEMBERS = 150
SPAN = timedelta(days=3 * 365)
PLATFORM = "bench"


def settings() -> Settings:
    return Settings(
        group={"name": "LETS Bench", "code_prefix": "DU", "coordinators": ["bench:m1"]},
        limits={"min_balance": -(10**9), "max_balance": 10**9},
    )


def fill(engine: Engine, count: int, rng: random.Random) -> None:
    """Members, ``count`` transfers over three years (2% reversed), listings; balances kept."""
    with engine.begin() as connection:
        ids = []
        for number in range(1, MEMBERS + 1):
            member_id = add_member(
                connection,
                number,
                platform=PLATFORM,
                user_id=f"m{number}",
                language="nl",
                created_at=NOW - SPAN * rng.random(),
                role="coordinator" if number == 1 else "member",
            )
            ids.append(member_id)
        delta = dict.fromkeys(ids, 0)
        rows: list[dict[str, Any]] = []
        for n in range(1, count + 1):
            payer, receiver = rng.sample(ids, 2)
            amount = rng.randint(1, 200)
            reversed_one = rng.random() < 0.02 and rows and rows[-1]["reverses_id"] is None
            if reversed_one:  # the counter-booking of the transfer just before
                last = rows[-1]
                payer, receiver, amount = last["receiver_id"], last["payer_id"], last["amount"]
            delta[payer] -= amount
            delta[receiver] += amount
            rows.append(
                {
                    "id": n,
                    "payer_id": payer,
                    "receiver_id": receiver,
                    "amount": amount,
                    "description": f"bulk {n}",
                    "kind": "reversal" if reversed_one else "payment",
                    "created_at": NOW - SPAN * (1 - n / count),
                    "booked_by_id": payer,
                    "reverses_id": n - 1 if reversed_one else None,
                    "event_key": f"bulk:{n}",
                }
            )
        for start in range(0, len(rows), 10_000):
            connection.execute(insert(transfers), rows[start : start + 10_000])
        for member_id, moved in delta.items():
            connection.execute(
                update(members).where(members.c.id == member_id).values(balance=moved)
            )
        connection.execute(
            insert(listings),
            [
                {
                    "kind": "offer" if n % 3 else "want",
                    "owner_id": rng.choice(ids),
                    "text": f"listing {n}",
                    "price": None,
                    "search_text": f"listing {n}",
                    "created_at": (made := NOW - SPAN * rng.random()),
                    "expires_at": made + timedelta(days=90),
                    "notice_at": None,
                    "withdrawn_at": None,
                }
                for n in range(2000)
            ],
        )


def median_ms(work: Callable[[], object], times: int) -> float:
    work()  # warm up (and load matplotlib, once)
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        work()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def measure(engine: Engine, label: str, count: int, times: int) -> None:
    fill(engine, count, random.Random(8))
    uow = SqlUnitOfWork(engine)
    conf = settings()
    tz = conf.tz
    today = NOW.astimezone(tz).date()
    bounds = month_bounds(months_back(today, 12), today, tz)

    def queries() -> None:
        with uow.transaction() as store:
            store.figures.month_figures(bounds)
            store.figures.open_listings(NOW)
            store.figures.balances()

    def balances_then() -> None:
        with uow.transaction() as store:
            store.figures.balances(NOW - timedelta(days=30))

    bot = Bot(conf, uow, VirtualClock(NOW))
    serial = iter(range(10**9))

    def stats(user: str) -> Callable[[], object]:
        def ask() -> object:
            incoming = Incoming(
                platform=PLATFORM,
                event_id=f"s{next(serial)}",
                chat=Chat(PLATFORM, user, ChatKind.DIRECT),
                sender=Identity(PLATFORM, user),
                sender_name=user,
                text="/stats",
            )
            result = bot.handle(incoming)
            assert result.outcome == "applied", result
            return result

        return ask

    t = bot.translators["nl"]
    figures = {
        "store queries of /stats (12 months)": median_ms(queries, times),
        "balances at a past moment (report)": median_ms(balances_then, times),
        "/stats of a member (text)": median_ms(stats("m2"), times),
        "/stats of a coordinator (text + 2 charts)": median_ms(stats("m1"), times),
        "letsbot report, one year": median_ms(
            lambda: build_report(uow, conf, t, date(2025, 12, 1), date(2026, 11, 30), NOW),
            max(3, times // 3),
        ),
    }
    for name, value in figures.items():
        print(f"{label:10} {count:>9,} transfers  {name:42} {value:8.1f} ms")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stats")
    parser.add_argument(
        "--postgres", metavar="URL", help="also measure on this database (emptied first!)"
    )
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--times", type=int, default=9)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        for size in sizes:
            engine = make_engine(f"sqlite:///{Path(folder) / f'stats-{size}.db'}")
            upgrade(engine)
            try:
                measure(engine, "SQLite", size, args.times)
            finally:
                engine.dispose()
    if args.postgres:
        for size in sizes:
            engine = reset_postgres(args.postgres)
            try:
                measure(engine, "PostgreSQL", size, args.times)
            finally:
                engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
