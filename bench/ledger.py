"""Throughput and latency of the ledger on SQLite, through the real dispatcher.

Run with ``python -m bench.ledger`` (``make bench``). Every database is a fresh
temporary file made with ``storage.database.make_engine`` + ``upgrade``, the
way the application makes its own (same PRAGMAs, ``BEGIN IMMEDIATE``).

1. Confirmed payments per second: ``/pay <code> <amount> <desc>`` then ``ja``
   from the payer, through ``Bot.handle``; a payment counts when the answer
   books it.
2. A bare SQLAlchemy Core baseline on the same engine settings: per payment
   one transaction with one INSERT into transfers and two balance UPDATEs.
   The ratio payments/baseline is checked against this inline-written Core;
   the same baseline with its statements built once is shown for information.
   App and baselines run in alternating rounds; each figure is the median round.
3. ``/balance`` latency (and ``/history``, for information) at 1,000 and at
   100,000 stored transfers, filled with bulk inserts.
4. Statements per confirmed payment, counted on the engine (``before_cursor_execute``)
   apart from the timed rounds: the question's, the answer's, and the baseline's.
5. With ``--postgres URL`` (default: ``$LETSBOT_TEST_POSTGRES_URL``) the payments
   and their baseline are measured on PostgreSQL too, in a schema of their own.

The figures are printed as a table and written to ``bench/results.json``. The
exit status is 0 even when a target is missed: this is a report, not a test.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import Engine, bindparam, event, func, insert, select, update

from bench.seed import add_member
from letsbot.clock import VirtualClock
from letsbot.config import Settings
from letsbot.dispatcher import Bot
from letsbot.domain import Identity
from letsbot.messages import Chat, ChatKind, Incoming
from storage.database import make_engine, upgrade
from storage.tables import members, transfers
from storage.uow import SqlUnitOfWork

PLATFORM = "bench"
START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
MEMBERS = 12
WIDE = 10**9  # limits wide enough that no benchmark payment is refused
RESULTS = Path(__file__).resolve().parent / "results.json"
POSTGRES_ENV = "LETSBOT_TEST_POSTGRES_URL"
PG_SCHEMA = "letsbot_bench"

TARGET_PAYMENTS = 500.0  # confirmed payments per second
# Payments per second / baseline payments per second. A confirmed payment is two
# transactions (the question, then the answer), the baseline's one: 0.5 is the ceiling.
TARGET_RATIO = 0.45
TARGET_BALANCE_GROWTH = 1.5  # /balance median at 100k / at 1k transfers
SMALL, LARGE = 1_000, 100_000


@dataclass
class Figure:
    key: str
    label: str
    value: float
    unit: str
    target: str = ""
    passed: bool | None = None  # None: for information only


# ---------------------------------------------------------------- setup


def bench_settings(url: str) -> Settings:
    return Settings(
        group={"name": "LETS Bench", "code_prefix": "DU", "language": "en"},
        limits={"min_balance": -WIDE, "max_balance": WIDE, "max_transfer": 100_000},
        storage={"url": url},
    )


def fresh_engine(folder: Path, name: str) -> Engine:
    engine = make_engine(f"sqlite:///{folder / name}")
    upgrade(engine)
    return engine


def seed_members(engine: Engine, count: int, first: int = 1) -> list[tuple[int, int, str]]:
    """Active members with an identity each: [(id, number, user_id)]."""
    made = []
    with engine.begin() as connection:
        for number in range(first, first + count):
            user_id = f"m{number}"
            member_id = add_member(
                connection,
                number,
                platform=PLATFORM,
                user_id=user_id,
                language="en",
                created_at=START,
            )
            made.append((member_id, number, user_id))
    return made


class Talker:
    """Builds the Incoming messages a chat adapter would hand the bot."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self._ids = itertools.count()

    def send(self, user_id: str, text: str) -> str:
        incoming = Incoming(
            platform=PLATFORM,
            event_id=f"e{next(self._ids)}",
            chat=Chat(PLATFORM, user_id, ChatKind.DIRECT),
            sender=Identity(PLATFORM, user_id),
            sender_name=user_id,
            text=text,
        )
        return self.bot.handle(incoming).outcome


# ---------------------------------------------------------------- 1 + 2: payments


def pay_round(
    talker: Talker, people: list[tuple[int, int, str]], rng: random.Random, seconds: float
) -> tuple[int, int, float]:
    """(booked, not booked, elapsed) for as many payments as fit in ``seconds``."""
    booked = missed = 0
    started = time.perf_counter()
    while True:
        payer, receiver = rng.sample(people, 2)
        amount = rng.randint(1, 100)
        asked = talker.send(payer[2], f"/pay DU-{receiver[1]:03d} {amount} soup {booked}")
        answered = talker.send(payer[2], "ja") if asked == "applied" else asked
        if answered == "applied":
            booked += 1
        else:
            missed += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return booked, missed, elapsed


_BASE_INSERT = insert(transfers)
_BASE_MOVE = (
    update(members)
    .where(members.c.id == bindparam("member"))
    .values(balance=members.c.balance + bindparam("delta"))
)


def baseline_round(
    engine: Engine,
    ids: list[int],
    rng: random.Random,
    seconds: float,
    keys: itertools.count[int],
    *,
    prebuilt: bool = False,
) -> tuple[int, float]:
    """Bare Core: one INSERT + two UPDATEs in one transaction per payment.

    The statements are written inline as usual Core code does, or (``prebuilt``)
    built once and executed with parameters.
    """
    done = 0
    started = time.perf_counter()
    while True:
        payer, receiver = rng.sample(ids, 2)
        amount = rng.randint(1, 100)
        row = {
            "payer_id": payer,
            "receiver_id": receiver,
            "amount": amount,
            "description": f"soup {done}",
            "kind": "payment",
            "created_at": START,
            "booked_by_id": payer,
            "event_key": f"base:{next(keys)}",
        }
        with engine.begin() as connection:
            if prebuilt:
                connection.execute(_BASE_INSERT, row)
                connection.execute(_BASE_MOVE, {"member": payer, "delta": -amount})
                connection.execute(_BASE_MOVE, {"member": receiver, "delta": amount})
            else:
                connection.execute(insert(transfers).values(**row))
                connection.execute(
                    update(members)
                    .where(members.c.id == payer)
                    .values(balance=members.c.balance - amount)
                )
                connection.execute(
                    update(members)
                    .where(members.c.id == receiver)
                    .values(balance=members.c.balance + amount)
                )
        done += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return done, elapsed


class Statements:
    """Counts the statements an engine sends to its database while open."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.count = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_: Any) -> None:
        self.count += 1

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


def statements_per_payment(
    talker: Talker,
    app_engine: Engine,
    people: list[tuple[int, int, str]],
    base_engine: Engine,
    base_ids: list[int],
    rng: random.Random,
    keys: itertools.count[int],
    samples: int = 20,
) -> tuple[float, float, float]:
    """(question, answer, baseline): the median statements of one confirmed payment."""
    asked, answered, base = [], [], []
    counted = Statements(app_engine)
    try:
        for n in range(samples):
            payer, receiver = rng.sample(people, 2)
            before = counted.count
            said = talker.send(payer[2], f"/pay DU-{receiver[1]:03d} {n + 1} counted {n}")
            middle = counted.count
            if said == "applied" and talker.send(payer[2], "ja") == "applied":
                asked.append(middle - before)
                answered.append(counted.count - middle)
    finally:
        counted.close()
    counted = Statements(base_engine)
    try:
        for _ in range(samples):
            before = counted.count
            baseline_round(base_engine, base_ids, rng, 0.0, keys)  # one payment
            base.append(counted.count - before)
    finally:
        counted.close()
    return statistics.median(asked), statistics.median(answered), statistics.median(base)


def ledger_consistent(engine: Engine) -> bool:
    """Balances sum to zero and each equals the sum of its transfers."""
    with engine.connect() as connection:
        total = connection.execute(select(func.sum(members.c.balance))).scalar_one()
        received = dict(
            connection.execute(
                select(transfers.c.receiver_id, func.sum(transfers.c.amount)).group_by(
                    transfers.c.receiver_id
                )
            ).all()
        )
        paid = dict(
            connection.execute(
                select(transfers.c.payer_id, func.sum(transfers.c.amount)).group_by(
                    transfers.c.payer_id
                )
            ).all()
        )
        rows = connection.execute(select(members.c.id, members.c.balance)).all()
        connection.rollback()
    return total == 0 and all(
        balance == received.get(member_id, 0) - paid.get(member_id, 0)
        for member_id, balance in rows
    )


def postgres_engine(url: str) -> Engine:
    """An engine on a schema of its own (``letsbot_bench``), emptied and migrated.

    The schema keeps the benchmark away from any tables already in that database.
    """
    plain = make_engine(url)
    with plain.begin() as connection:
        connection.execute(sqlalchemy.text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
        connection.execute(sqlalchemy.text(f"CREATE SCHEMA {PG_SCHEMA}"))
    plain.dispose()
    engine = sqlalchemy.create_engine(
        url, pool_pre_ping=True, connect_args={"options": f"-csearch_path={PG_SCHEMA}"}
    )
    upgrade(engine)
    return engine


def drop_postgres_schema(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))


def bench_payments(
    folder: Path, rounds: int, seconds: float, postgres: str | None = None
) -> tuple[list[Figure], dict[str, Any]]:
    """On SQLite: two fresh files. On PostgreSQL (``postgres`` is a URL): one schema,
    the baseline's members numbered from 1001."""
    if postgres is None:
        app_engine = fresh_engine(folder, "payments.db")
        base_engine = fresh_engine(folder, "baseline.db")
        base_first = 1
    else:
        app_engine = base_engine = postgres_engine(postgres)
        base_first = 1001
    try:
        people = seed_members(app_engine, MEMBERS)
        base_ids = [member_id for member_id, _, _ in seed_members(base_engine, MEMBERS, base_first)]
        bot = Bot(
            bench_settings(str(app_engine.url)), SqlUnitOfWork(app_engine), VirtualClock(START)
        )
        talker = Talker(bot)
        rng = random.Random(20261201)
        keys = itertools.count()
        # Warm up: caches of compiled statements, translations, the pool.
        pay_round(talker, people, rng, 0.3)
        baseline_round(base_engine, base_ids, rng, 0.2, keys)
        baseline_round(base_engine, base_ids, rng, 0.2, keys, prebuilt=True)
        app_rates, base_rates, prebuilt_rates = [], [], []
        booked_total = missed_total = 0
        with app_engine.connect() as connection:
            before = connection.execute(select(func.count()).select_from(transfers)).scalar_one()
            connection.rollback()
        for _ in range(rounds):
            booked, missed, elapsed = pay_round(talker, people, rng, seconds)
            app_rates.append(booked / elapsed)
            booked_total += booked
            missed_total += missed
            done, elapsed = baseline_round(base_engine, base_ids, rng, seconds / 2, keys)
            base_rates.append(done / elapsed)
            done, elapsed = baseline_round(
                base_engine, base_ids, rng, seconds / 2, keys, prebuilt=True
            )
            prebuilt_rates.append(done / elapsed)
        with app_engine.connect() as connection:
            after = connection.execute(select(func.count()).select_from(transfers)).scalar_one()
            connection.rollback()
        asked, answered, base_statements = statements_per_payment(
            talker, app_engine, people, base_engine, base_ids, rng, keys
        )
        consistent = ledger_consistent(app_engine) and ledger_consistent(base_engine)
    finally:
        if postgres is not None:
            drop_postgres_schema(app_engine)
        app_engine.dispose()
        base_engine.dispose()
    rate = statistics.median(app_rates)
    base = statistics.median(base_rates)
    prebuilt = statistics.median(prebuilt_rates)
    ratio = rate / base
    figures = [
        Figure(
            "payments_per_s",
            "confirmed payments/s (full dispatcher)",
            rate,
            "/s",
            f">= {TARGET_PAYMENTS:g}",
            rate >= TARGET_PAYMENTS,
        ),
        Figure("baseline_per_s", "bare Core baseline payments/s", base, "/s"),
        Figure(
            "ratio",
            "ratio payments / baseline",
            ratio,
            "",
            f">= {TARGET_RATIO:g}",
            ratio >= TARGET_RATIO,
        ),
        Figure(
            "baseline_prebuilt_per_s",
            "baseline, statements built once",
            prebuilt,
            "/s",
        ),
        Figure("ratio_prebuilt", "ratio payments / that baseline", rate / prebuilt, ""),
        Figure("statements_question", "statements of a payment's question", asked, "count"),
        Figure("statements_answer", "statements of a payment's answer", answered, "count"),
        Figure(
            "statements_per_payment",
            "statements per confirmed payment",
            asked + answered,
            "count",
        ),
        Figure("baseline_statements", "statements per baseline payment", base_statements, "count"),
    ]
    details = {
        "rounds": rounds,
        "round_seconds": seconds,
        "payment_rounds_per_s": app_rates,
        "baseline_rounds_per_s": base_rates,
        "baseline_prebuilt_rounds_per_s": prebuilt_rates,
        "booked": booked_total,
        "not_booked": missed_total,
        "transfers_stored_in_measured_rounds": after - before,
        "ledgers_consistent": consistent,
    }
    return figures, details


# ---------------------------------------------------------------- 3: /balance, /history


def fill_transfers(
    engine: Engine, ids: list[int], count: int, rng: random.Random, first: int
) -> None:
    """``count`` more transfers in bulk, and the cached balances moved to match."""
    delta = dict.fromkeys(ids, 0)
    chunk = 10_000
    with engine.begin() as connection:
        for offset in range(0, count, chunk):
            rows = []
            for n in range(first + offset, first + min(offset + chunk, count)):
                payer, receiver = rng.sample(ids, 2)
                amount = rng.randint(1, 100)
                delta[payer] -= amount
                delta[receiver] += amount
                rows.append(
                    {
                        "payer_id": payer,
                        "receiver_id": receiver,
                        "amount": amount,
                        "description": f"bulk {n}",
                        "kind": "payment",
                        "created_at": START - timedelta(minutes=1_000_000 - n),
                        "booked_by_id": payer,
                        "reverses_id": None,
                        "event_key": f"bulk:{n}",
                    }
                )
            connection.execute(insert(transfers), rows)
        for member_id, moved in delta.items():
            connection.execute(
                update(members)
                .where(members.c.id == member_id)
                .values(balance=members.c.balance + moved)
            )


def latencies_ms(talker: Talker, user_ids: list[str], text: str, times: int) -> list[float]:
    for user_id in user_ids[:3]:
        talker.send(user_id, text)  # warm up
    samples = []
    for n in range(times):
        user_id = user_ids[n % len(user_ids)]
        started = time.perf_counter()
        outcome = talker.send(user_id, text)
        samples.append((time.perf_counter() - started) * 1000)
        if outcome != "applied":
            raise RuntimeError(f"{text} from {user_id}: {outcome}")
    return samples


def bench_reads(
    folder: Path,
    balance_calls: int,
    history_calls: int,
    sizes: tuple[int, int] = (SMALL, LARGE),
) -> tuple[list[Figure], dict[str, Any]]:
    small, large = sizes
    engine = fresh_engine(folder, "history.db")
    figures: list[Figure] = []
    details: dict[str, Any] = {}
    try:
        people = seed_members(engine, MEMBERS)
        ids = [member_id for member_id, _, _ in people]
        users = [user_id for _, _, user_id in people]
        bot = Bot(bench_settings(str(engine.url)), SqlUnitOfWork(engine), VirtualClock(START))
        talker = Talker(bot)
        rng = random.Random(7)
        medians: dict[tuple[str, int], float] = {}
        stored = 0
        for size in (small, large):
            started = time.perf_counter()
            fill_transfers(engine, ids, size - stored, rng, stored)
            details[f"fill_{size}_s"] = time.perf_counter() - started
            stored = size
            for command, times in (("/balance", balance_calls), ("/history", history_calls)):
                samples = latencies_ms(talker, users, command, times)
                medians[command, size] = statistics.median(samples)
                details[f"{command[1:]}_{size}_p90_ms"] = statistics.quantiles(samples, n=10)[-1]
        details["ledger_consistent"] = ledger_consistent(engine)
    finally:
        engine.dispose()
    growth = medians["/balance", large] / medians["/balance", small]
    for command, passed in (("/balance", None), ("/history", None)):
        for size in (small, large):
            figures.append(
                Figure(
                    f"{command[1:]}_{size}_median_ms",
                    f"{command} median at {size:,} transfers",
                    medians[command, size],
                    "ms",
                    passed=passed,
                )
            )
        if command == "/balance":
            figures.append(
                Figure(
                    "balance_growth",
                    f"/balance ratio {large:,} / {small:,}",
                    growth,
                    "",
                    f"<= {TARGET_BALANCE_GROWTH:g}",
                    growth <= TARGET_BALANCE_GROWTH,
                )
            )
    figures.append(
        Figure(
            "history_growth",
            f"/history ratio {large:,} / {small:,}",
            medians["/history", large] / medians["/history", small],
            "",
        )
    )
    return figures, details


# ---------------------------------------------------------------- report


def show(value: float, unit: str) -> str:
    if unit == "/s":
        return f"{value:,.0f} /s"
    if unit == "ms":
        return f"{value:.3f} ms"
    if unit == "count":
        return f"{value:g}"
    return f"{value:.2f}"


def table(figures: list[Figure]) -> str:
    rows = [("measure", "value", "target", "result")]
    for figure in figures:
        verdict = "info" if figure.passed is None else ("PASS" if figure.passed else "MISS")
        rows.append((figure.label, show(figure.value, figure.unit), figure.target or "-", verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for n, row in enumerate(rows):
        lines.append(
            "  ".join(
                cell.rjust(widths[i]) if i == 1 else cell.ljust(widths[i])
                for i, cell in enumerate(row)
            ).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def measure(
    folder: Path,
    *,
    rounds: int = 5,
    seconds: float = 3.0,
    balance_calls: int = 400,
    history_calls: int = 200,
    sizes: tuple[int, int] = (SMALL, LARGE),
    postgres: str | None = None,
) -> tuple[list[Figure], dict[str, Any]]:
    """Payments and reads on SQLite; payments on PostgreSQL too when ``postgres`` is a URL."""
    print(f"ledger: payments, {rounds} rounds of {seconds:g} s (+ baseline) ...", flush=True)
    pay_figures, pay_details = bench_payments(folder, rounds, seconds)
    print(f"ledger: reads, filling {sizes[0]:,} then {sizes[1]:,} transfers ...", flush=True)
    read_figures, read_details = bench_reads(folder, balance_calls, history_calls, sizes)
    figures = pay_figures + read_figures
    details: dict[str, Any] = {"payments": pay_details, "reads": read_details}
    consistent = pay_details["ledgers_consistent"] and read_details["ledger_consistent"]
    if postgres:
        print("ledger: payments on PostgreSQL ...", flush=True)
        pg_figures, pg_details = bench_payments(folder, rounds, seconds, postgres)
        for figure in pg_figures:
            figure.key = f"pg_{figure.key}"
            figure.label = f"{figure.label} [PostgreSQL]"
        figures += pg_figures
        details["postgres_payments"] = pg_details
        consistent = consistent and pg_details["ledgers_consistent"]
    details["ledgers_consistent"] = consistent
    return figures, details


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ledger", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rounds", type=int, default=5, help="alternating payment rounds")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of a payment round")
    parser.add_argument("--balance-calls", type=int, default=400)
    parser.add_argument("--history-calls", type=int, default=200)
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default=os.environ.get(POSTGRES_ENV) or None,
        help=f"also measure payments on PostgreSQL, in a schema {PG_SCHEMA} of its own"
        f" (default: ${POSTGRES_ENV})",
    )
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write the results")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="letsbot-bench-") as name:
        figures, details = measure(
            Path(name),
            rounds=args.rounds,
            seconds=args.seconds,
            balance_calls=args.balance_calls,
            history_calls=args.history_calls,
            postgres=args.postgres,
        )
    total = time.perf_counter() - started

    print()
    print(table(figures))
    checked = [f for f in figures if f.passed is not None]
    missed = [f.label for f in checked if not f.passed]
    pay_details = details["payments"]
    print()
    print(
        f"booked {pay_details['booked']} payments in measured rounds "
        f"({pay_details['not_booked']} not booked); ledgers consistent: "
        f"{details['ledgers_consistent']}"
    )
    if missed:
        print(f"MISSED {len(missed)} of {len(checked)} targets: " + "; ".join(missed))
    else:
        print(f"all {len(checked)} targets PASS")
    print(f"total {total:.1f} s")

    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "sqlalchemy": sqlalchemy.__version__,
        "sqlite": __import__("sqlite3").sqlite_version,
        "machine": platform.machine(),
        "total_seconds": total,
        "figures": [asdict(f) for f in figures],
        **details,
        "all_targets_pass": not missed,
    }
    args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
