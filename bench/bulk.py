"""A mass payment to 10,000 members: its preview and its booking, on SQLite and PostgreSQL.

Through the real dispatcher: a coordinator types ``/bulk group to everyone 1
...`` (the preview: parse, read every member, work out and check every line,
store the question) and then ``yes`` (lock every account, work the run out
again, book every line through ``letsbot.posting.post`` in one transaction,
one private line to each member in the outbox, the group's summary line).

The baseline, in the same run and on the same engine: 10,000 bare SQLAlchemy
Core bookings (an INSERT and two UPDATEs each) in one transaction. The ratio
is baseline time / booking time: 1.0 would be as fast as bare Core.
Each figure is the median of ``runs`` runs.

Then a contribution (``/contribution 1 per month on 1 ...``) is booked once by
the scheduler at its due time, as ``letsbot run``'s timer would: one round of
scheduled work that claims the period, books every member's line in one
transaction and queues the messages. Afterwards ``ledger_consistent`` must
hold. Run alone: ``python -m bench --only bulk``.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from bench.ledger import (
    PLATFORM,
    START,
    WIDE,
    drop_postgres_schema,
    fresh_engine,
    ledger_consistent,
    postgres_engine,
    seed_members,
)
from bench.report import Row
from letsbot.clock import VirtualClock
from letsbot.config import Settings
from letsbot.dispatcher import Bot
from letsbot.domain import Identity
from letsbot.markup import to_plain
from letsbot.messages import Chat, ChatKind, Incoming
from storage.tables import members, transfers
from storage.uow import SqlUnitOfWork

TARGET_SECONDS = 2.0
TARGET_RATIO = 0.3


def settings(url: str) -> Settings:
    return Settings(
        group={
            "name": "LETS Bench",
            "code_prefix": "DU",
            "language": "en",
            "coordinators": [f"{PLATFORM}:m1"],
        },
        limits={"min_balance": -WIDE, "max_balance": WIDE, "max_transfer": 100_000},
        storage={"url": url},
        contributions={"new_member_days": 0},  # the seeded members are new: all pay
    )


def baseline(engine: Engine, ids: list[int], group_id: int, run: int) -> float:
    """Seconds for ``len(ids)`` bare Core bookings from the group account, one transaction."""
    started = time.perf_counter()
    with engine.begin() as connection:
        for n, member_id in enumerate(ids):
            connection.execute(
                insert(transfers).values(
                    payer_id=group_id,
                    receiver_id=member_id,
                    amount=1,
                    description=f"base {run}",
                    kind="group",
                    created_at=START,
                    booked_by_id=group_id,
                    event_key=f"base:{run}:{n}",
                )
            )
            connection.execute(
                update(members)
                .where(members.c.id == group_id)
                .values(balance=members.c.balance - 1)
            )
            connection.execute(
                update(members)
                .where(members.c.id == member_id)
                .values(balance=members.c.balance + 1)
            )
    return time.perf_counter() - started


def one_backend(engine: Engine, url: str, count: int, runs: int) -> dict[str, Any]:
    seeded = seed_members(engine, count)
    ids = [member_id for member_id, _, _ in seeded]
    with engine.connect() as connection:
        group_id = connection.execute(
            select(members.c.id).where(members.c.is_group_account)
        ).scalar_one()
        connection.rollback()
    clock = VirtualClock(START)
    bot = Bot(settings(url), SqlUnitOfWork(engine), clock)
    serial = iter(range(10**9))

    def say(text: str) -> tuple[float, str]:
        incoming = Incoming(
            platform=PLATFORM,
            event_id=f"b{next(serial)}",
            chat=Chat(PLATFORM, "m1", ChatKind.DIRECT),
            sender=Identity(PLATFORM, "m1"),
            sender_name="m1",
            text=text,
        )
        started = time.perf_counter()
        result = bot.handle(incoming)
        elapsed = time.perf_counter() - started
        bot.delivered([o.outbox_id for o in result.replies if o.outbox_id is not None])
        return elapsed, to_plain(result.replies[0].text) if result.replies else ""

    previews, bookings, bases = [], [], []
    for run in range(runs):
        elapsed, said = say(f"/bulk group to everyone 1 bench run {run}")
        assert said.startswith("Preview of the mass payment"), said
        assert f"{count} bookings" in said, said[:300]
        previews.append(elapsed)
        elapsed, said = say("yes")
        assert said.startswith("Booked: mass payment"), said
        bookings.append(elapsed)
        bases.append(baseline(engine, ids, group_id, run))
    _, said = say("/contribution 1 per month on 1 bench contribution")
    assert said.startswith("Saved. Contribution #1"), said
    clock.set(datetime(2027, 1, 1, 8, 0, tzinfo=UTC))  # 1 January 09:00 in Brussels: due
    started = time.perf_counter()
    posted = bot.scheduled_work()
    contribution = time.perf_counter() - started
    bot.delivered([o.outbox_id for o in posted if o.outbox_id is not None])
    assert any(f"is booked: {count} members" in o.text for o in posted), posted[:1]
    with engine.connect() as connection:
        booked = connection.execute(
            select(func.count()).select_from(transfers).where(transfers.c.kind == "group")
        ).scalar_one()
        connection.rollback()
    assert booked == 2 * runs * count + count, booked
    consistent = ledger_consistent(engine)
    assert consistent
    return {
        "ledger_consistent": consistent,
        "preview_s": statistics.median(previews),
        "booking_s": statistics.median(bookings),
        "baseline_s": statistics.median(bases),
        "contribution_s": contribution,
        "previews": previews,
        "bookings": bookings,
        "baselines": bases,
    }


def measure(
    folder: Path, *, count: int, runs: int, postgres: str | None
) -> tuple[list[Row], dict[str, Any]]:
    rows: list[Row] = []
    details: dict[str, Any] = {"members": count, "runs": runs}
    backends: list[tuple[str, str]] = [("SQLite", "sqlite")]
    if postgres:
        backends.append(("PostgreSQL", "pg"))
    for where, key in backends:
        if key == "sqlite":
            engine = fresh_engine(folder, "bulk.db")
            url = str(engine.url)
        else:
            assert postgres is not None
            engine = postgres_engine(postgres)
            url = postgres
        try:
            found = one_backend(engine, url, count, runs)
        finally:
            if key == "pg":
                drop_postgres_schema(engine)
            engine.dispose()
        details[key] = found
        ratio = found["baseline_s"] / found["booking_s"]
        rows.append(
            Row(
                "7 bulk",
                f"bulk_{key}_preview_s",
                f"{where}: /bulk preview to {count:,} members",
                found["preview_s"],
                "s",
                target=f"< {TARGET_SECONDS:g} s",
                met=found["preview_s"] < TARGET_SECONDS,
            )
        )
        rows.append(
            Row(
                "7 bulk",
                f"bulk_{key}_booking_s",
                f"{where}: /bulk booked ({count:,} transfers, one transaction;"
                " vs bare Core in one transaction)",
                found["booking_s"],
                "s",
                found["baseline_s"],
                ratio,
                f"< {TARGET_SECONDS:g} s, ratio ≥ {TARGET_RATIO:g}",
                found["booking_s"] < TARGET_SECONDS and ratio >= TARGET_RATIO,
            )
        )
        rows.append(
            Row(
                "7 bulk",
                f"bulk_{key}_contribution_s",
                f"{where}: a contribution's run booked by the scheduler ({count:,} members)",
                found["contribution_s"],
                "s",
                target=f"< {TARGET_SECONDS:g} s",
                met=found["contribution_s"] < TARGET_SECONDS,
            )
        )
    return rows, details
