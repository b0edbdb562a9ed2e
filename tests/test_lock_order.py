"""Four bot processes sharing members on one PostgreSQL database never deadlock.

Each OS process ("spawn") builds its own engine and Bot on the same database
and, round after round, has members it shares with the other processes pay
(/betaal + ja), ask for payment (/vraagbetaling + ja from the payer), and its
own coordinator book between them (/boeken + ja); now and then a member
posts an offer (/aanbod). The processes start together and run freely, so the
same members' questions and bookings race: one process replaces a member's
open question (UPDATE pending, then the foreign-key checks of INSERT INTO
pending on the member rows) while another books for that member (member rows
locked, then the question closed). Before one lock order held for both, such a
pair deadlocked every few dozen operations.

PostgreSQL counts every deadlock it breaks in pg_stat_database.deadlocks; the
count for this database must not move, no message may be answered "busy",
``letsbot check`` must find the ledger sound, and the transfers table must hold
exactly the bookings the processes were told about.

Also: a member's new question waits for their other new question in flight,
so that it replaces it instead of leaving two open.
"""

from __future__ import annotations

import json
import random
import traceback
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from letsbot.domain import PendingAction, PendingStatus
from letsbot.errors import Busy
from letsbot.markup import to_plain
from letsbot.messages import Result
from storage.check import ledger_problems
from storage.database import make_engine
from storage.uow import SqlStore, SqlUnitOfWork
from tests.support import START, Driver, make_settings, run_processes

PROCESSES = 4
ROUNDS = 80  # per process; each round is one question and its answer
NAMES = tuple(f"lid{n}" for n in range(4))
COORDINATORS = tuple(f"coord{n}" for n in range(PROCESSES))
LIMITS = {"min_balance": -500, "max_balance": 500, "start_credit": 0}


def settings() -> Any:
    coordinators = ["console:admin", *(f"console:{name}" for name in COORDINATORS)]
    return make_settings(group={"coordinators": coordinators}, limits=LIMITS)


def booked(result: Result) -> bool:
    said = to_plain(result.replies[0].text) if result.replies else ""
    return result.outcome == "applied" and said.startswith("Geboekt: ")


def scalar(engine: Engine, sql: str) -> int:
    with engine.connect() as connection:
        value = connection.execute(text(sql)).scalar_one()
        connection.rollback()
    return int(value)


def deadlocks(engine: Engine) -> int:
    return scalar(
        engine, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
    )


def flush_statistics(engine: Engine) -> None:
    """Have this process's server backend publish its counters (deadlocks) now.

    A backend reports its statistics when idle, at most once a second, or when
    it exits, which happens after the client has gone. Asked to flush at its next
    idle moment, it has done so before it answers the statement after.
    """
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_stat_force_next_flush()"))
        connection.execute(text("SELECT 1"))
        connection.rollback()


# --- the child processes --------------------------------------------------------------


def trade_at_random(
    url: str, index: int, numbers: dict[str, int], barrier: Any, result_file: str
) -> None:
    """One bot process: ROUNDS random questions, each answered "ja" by whoever was asked."""
    engine = make_engine(url)
    try:
        driver = Driver(engine, settings())
        rng = random.Random(3000 + index)
        coordinator = COORDINATORS[index]
        outcomes: Counter[str] = Counter()
        confirmed = 0
        barrier.wait(timeout=120)  # every process is ready
        for k in range(ROUNDS):
            payer, receiver = rng.sample(NAMES, 2)
            amount = rng.randint(1, 120)
            kind = rng.choice(("pay", "pay", "request", "book", "offer"))
            if kind == "offer":  # a row naming its owner, no question
                offer = driver.send(
                    driver.incoming(payer, f"/aanbod soep {k}", event_id=f"o{index}-{k}")
                )
                outcomes[f"offer:{offer.outcome}"] += 1
                continue
            if kind == "pay":
                asker, asked = payer, payer
                question = f"/betaal DU-{numbers[receiver]:03d} {amount} x"
            elif kind == "request":
                asker, asked = receiver, payer
                question = f"/vraagbetaling DU-{numbers[payer]:03d} {amount} x"
            else:
                asker, asked = coordinator, coordinator
                question = f"/boeken DU-{numbers[payer]:03d} DU-{numbers[receiver]:03d} {amount} x"
            ask = driver.send(driver.incoming(asker, question, event_id=f"q{index}-{k}"))
            outcomes[f"{kind}:{ask.outcome}"] += 1
            if ask.outcome != "applied":
                continue
            # Answered as a button is: exactly this question (others may wait in that chat).
            asked_id = next(r.question for r in ask.replies if r.question is not None)
            answer = driver.send(
                driver.incoming(asked, f"/ja {asked_id}", event_id=f"a{index}-{k}")
            )
            outcomes[f"ja:{answer.outcome}"] += 1
            if booked(answer):
                confirmed += 1
        flush_statistics(engine)
        report: dict[str, Any] = {"confirmed": confirmed, "outcomes": dict(outcomes)}
    except BaseException:
        report = {"error": traceback.format_exc()}
    finally:
        engine.dispose()
    Path(result_file).write_text(json.dumps(report), encoding="utf-8")


# --- the parent -------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.slow
def test_four_processes_sharing_members_never_deadlock(pg_url: str, tmp_path: Path) -> None:
    engine = make_engine(pg_url)
    try:
        driver = Driver(engine, settings())
        if scalar(engine, "SHOW server_version_num") < 150000:
            pytest.skip("pg_stat_force_next_flush() needs PostgreSQL 15")
        for name in NAMES:
            driver.member(name)
        for name in COORDINATORS:
            driver.say(name, "/start")
        numbers = {name: driver.number(name) for name in NAMES}
        before = deadlocks(engine)

        reports = run_processes(
            trade_at_random,
            lambda i, barrier, file: (pg_url, i, numbers, barrier, file),
            PROCESSES,
            tmp_path,
        )

        outcomes: Counter[str] = Counter()
        for report in reports:
            outcomes.update(report["outcomes"])
        confirmed = sum(r["confirmed"] for r in reports)
        found = deadlocks(engine) - before
        summary = f"deadlocks={found} confirmed={confirmed} {dict(sorted(outcomes.items()))}"
        print(summary)

        busy = sum(count for key, count in outcomes.items() if key.endswith(":busy"))
        assert found == 0, summary
        assert busy == 0, summary
        assert not any(key.endswith(":failed") for key in outcomes), summary
        assert outcomes["offer:applied"] > 0, summary
        # They competed for real: most questions were answered with a booking.
        assert confirmed > PROCESSES * ROUNDS // 3, summary

        assert ledger_problems(engine, driver.settings.group_limits) == []
        assert scalar(engine, "SELECT sum(balance) FROM members") == 0
        assert driver.count("transfers") == confirmed, summary
    finally:
        engine.dispose()


# --- two new questions from one asker at once ---------------------------------------------


def ask_to_pay(store: SqlStore, payer: int, receiver: int, amount: int) -> None:
    """What ctx.ask does for /betaal: the payer's row, then replace their open question."""
    store.members.lock_members([payer])
    for old in store.questions.open_pending(payer):
        store.questions.close_pending(old.id, PendingStatus.SUPERSEDED)
    store.questions.add_pending(
        action=PendingAction.PAY,
        asked_id=payer,
        requested_by_id=payer,
        payer_id=payer,
        receiver_id=receiver,
        amount=amount,
        description="soep",
        at=START,
        expires_at=START + timedelta(hours=1),
    )


@pytest.mark.postgres
def test_a_new_question_waits_for_the_same_askers_question_in_flight(pg_url: str) -> None:
    """The asker's row is locked before their open questions are replaced.

    Else two /betaal from one member handled at once in two processes each find
    no open question to replace, and both stay open: one "ja" would leave the
    other waiting for a second "ja".
    """
    engine = make_engine(pg_url)
    try:
        driver = Driver(engine, settings())
        driver.member("lid0")
        driver.member("lid1")
        payer = scalar(engine, "SELECT id FROM members WHERE name = 'Lid0'")
        receiver = scalar(engine, "SELECT id FROM members WHERE name = 'Lid1'")
        uow = SqlUnitOfWork(engine)
        with uow.transaction() as first:
            ask_to_pay(first, payer, receiver, 10)
            # The second waits for the first (a short lock_timeout turns the wait into Busy).
            with pytest.raises(Busy), uow.transaction() as second:
                second.db.execute(text("SET LOCAL lock_timeout = '200ms'"))
                ask_to_pay(second, payer, receiver, 20)
        with uow.transaction() as second:  # after the first committed: it replaces it
            ask_to_pay(second, payer, receiver, 20)
        assert scalar(engine, "SELECT count(*) FROM pending WHERE status = 'open'") == 1
        assert scalar(engine, "SELECT amount FROM pending WHERE status = 'open'") == 20
    finally:
        engine.dispose()
