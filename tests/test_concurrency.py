"""Several bot processes on one database: every payment is booked exactly once.

Four OS processes (multiprocessing, "spawn") each build their own engine and
Bot on the same database (one SQLite file, or one PostgreSQL database) and
make 200 random payments (``/pay`` then ``ja``) between eight members with
tight limits, so that many are refused. A barrier starts each payment in all
processes at once, so their transactions interleave. Afterwards ``letsbot
check`` (a real subprocess) must find the ledger sound, and the transfers
table must hold exactly the bookings the processes were told about.

Also: one message delivered twice (same event id) has its effect once.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from letsbot.markup import to_plain
from letsbot.messages import Result
from storage.database import make_engine
from tests.support import Driver, make_settings, run_processes

PROCESSES = 4
PAYMENTS = 200  # per process
NAMES = tuple(f"lid{n}" for n in range(8))
LIMITS = {"min_balance": -300, "max_balance": 300, "start_credit": 0}
ROOT = Path(__file__).resolve().parents[1]


def settings() -> Any:
    return make_settings(limits=LIMITS)


def booked(reply_text: str) -> bool:
    return to_plain(reply_text).startswith(("Geboekt: ", "Booked: "))


def refusal(result: Result) -> str:
    """Why a payment was refused, from the reply (the members chose Dutch by joining)."""
    said = to_plain(result.replies[0].text) if result.replies else ""
    if (
        "mag niet lager worden" in said
        or "mag niet hoger worden" in said
        or "nu niets meer" in said
    ):
        return "limit"
    if said.startswith(("Die vraag is net al beantwoord", "Er staat geen vraag voor je open")) or (
        "geldt niet meer" in said or "is al beantwoord met" in said
    ):
        # The same payer in another process answered it first, or asked anew
        # (a new question replaces the payer's open one).
        return "no-question"
    return "other"


# --- the child processes --------------------------------------------------------------


def pay_at_random(
    url: str,
    index: int,
    numbers: dict[str, int],
    barrier: Any,
    result_file: str,
) -> None:
    """One bot process: PAYMENTS random /pay + ja; writes what it saw to ``result_file``."""
    engine = make_engine(url)
    try:
        driver = Driver(engine, settings())
        rng = random.Random(1000 + index)
        outcomes: Counter[str] = Counter()
        confirmed = 0
        slowest = 0.0
        barrier.wait(timeout=120)  # every process is ready
        started = time.monotonic()
        for k in range(PAYMENTS):
            # Each payment starts in all processes at once. Without this, SQLite's
            # busy handler (it polls with growing sleeps) often lets one process
            # make all its payments while the others wait: no interleaving at all.
            barrier.wait(timeout=60)
            payer, receiver = rng.sample(NAMES, 2)
            sent = time.monotonic()
            amount = rng.randint(1, 250)
            ask = driver.send(
                driver.incoming(
                    payer,
                    f"/pay DU-{numbers[receiver]:03d} {amount} x",
                    event_id=f"p{index}-{k}-pay",
                )
            )
            outcomes[f"pay:{ask.outcome}"] += 1
            if ask.outcome == "refused":
                outcomes[f"pay:refused:{refusal(ask)}"] += 1
            if ask.outcome != "applied":
                continue
            # As a button answers: exactly this question (another process's may wait beside it).
            asked = next(r.question for r in ask.replies if r.question is not None)
            yes = driver.incoming(payer, f"/ja {asked}", event_id=f"p{index}-{k}-ja")
            answer = driver.send(yes)
            outcomes[f"ja:{answer.outcome}"] += 1
            if answer.outcome == "refused":
                outcomes[f"ja:refused:{refusal(answer)}"] += 1
            if answer.outcome == "applied":
                if answer.replies and booked(answer.replies[0].text):
                    confirmed += 1
                else:
                    outcomes["ja:applied-without-booking"] += 1
            slowest = max(slowest, time.monotonic() - sent)
        finished = time.monotonic()
        report = {
            "confirmed": confirmed,
            "outcomes": dict(outcomes),
            "started": started,
            "finished": finished,
            "slowest": slowest,
        }
    except BaseException:
        report = {"error": traceback.format_exc()}
    finally:
        engine.dispose()
    Path(result_file).write_text(json.dumps(report), encoding="utf-8")


# --- the parent -------------------------------------------------------------------------


def members_with_limits(url: str) -> tuple[Driver, dict[str, int]]:
    engine = make_engine(url)
    driver = Driver(engine, settings())
    driver.say("admin", "/start")
    for name in NAMES:
        driver.member(name)
    numbers = {name: driver.number(name) for name in NAMES}
    assert len(set(numbers.values())) == len(NAMES)
    return driver, numbers


def pay_in_processes(url: str, numbers: dict[str, int], folder: Path) -> list[dict[str, Any]]:
    return run_processes(
        pay_at_random, lambda i, barrier, file: (url, i, numbers, barrier, file), PROCESSES, folder
    )


def scalar(engine: Engine, sql: str) -> int:
    with engine.connect() as connection:
        value = connection.execute(text(sql)).scalar_one()
        connection.rollback()
    return int(value)


def letsbot_check(url: str, folder: Path) -> subprocess.CompletedProcess[str]:
    config = folder / "bot.toml"
    config.write_text(
        "[group]\n"
        'name = "LETS Durme"\n'
        'code_prefix = "DU"\n'
        'coordinators = ["console:admin"]\n'
        "\n[limits]\n"
        + "".join(f"{key} = {value}\n" for key, value in LIMITS.items())
        + f"\n[storage]\nurl = {json.dumps(url)}\n",
        encoding="utf-8",
    )
    # The file alone decides: no LETSBOT_* variable of this shell may override it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("LETSBOT_")}
    return subprocess.run(
        [sys.executable, "-m", "app", "--config", str(config), "check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )


def contended_payments(url: str, folder: Path) -> None:
    driver, numbers = members_with_limits(url)
    engine = driver.engine
    try:
        before = driver.count("transfers")
        assert before == 0  # start_credit = 0: no start-credit transfers
        reports = pay_in_processes(url, numbers, folder)

        outcomes: Counter[str] = Counter()
        for report in reports:
            outcomes.update(report["outcomes"])
        confirmed = sum(r["confirmed"] for r in reports)
        summary = f"confirmed={confirmed} outcomes={dict(sorted(outcomes.items()))}"
        slowest = max(r["slowest"] for r in reports)
        print(f"{engine.dialect.name}: {summary}; slowest payment {slowest:.3f}s")

        # Every payment asked got an answer the member can act on.
        assert outcomes["ja:applied-without-booking"] == 0, summary
        assert outcomes["pay:failed"] == outcomes["ja:failed"] == 0, summary
        asked = sum(v for k, v in outcomes.items() if k.startswith("pay:") and k.count(":") == 1)
        assert asked == PROCESSES * PAYMENTS, summary

        # Exactly the bookings the processes confirmed are in the table.
        assert driver.count("transfers") == confirmed, summary
        accepted = scalar(engine, "SELECT count(*) FROM pending WHERE status = 'accepted'")
        assert accepted == confirmed, summary
        assert scalar(engine, "SELECT count(DISTINCT event_key) FROM transfers") == confirmed

        # They really competed: they ran at the same time, many payments were
        # booked, and the limits refused some (when asked, or when confirmed).
        assert max(r["started"] for r in reports) < min(r["finished"] for r in reports)
        with engine.connect() as connection:
            keys = connection.execute(text("SELECT event_key FROM transfers ORDER BY id")).scalars()
            writers = [key.split(":")[1].split("-")[0] for key in keys]  # console:p2-17-ja
            connection.rollback()
        switches = sum(1 for a, b in itertools.pairwise(writers) if a != b)
        print(f"{engine.dialect.name}: bookings changed process {switches} times")
        assert len(set(writers)) == PROCESSES
        assert switches >= 2 * PROCESSES, f"the processes took turns only {switches} times"
        assert confirmed > PROCESSES * PAYMENTS // 4, summary
        assert outcomes["pay:refused:limit"] > 0, summary
        assert outcomes["pay:refused:other"] == outcomes["ja:refused:other"] == 0, summary

        # No "busy": SQLite waits up to busy_timeout=30s for the write lock, and
        # on PostgreSQL every transaction keeps to one lock order (no deadlock).
        assert outcomes["pay:busy"] == outcomes["ja:busy"] == 0, summary

        check = letsbot_check(url, folder)
        assert check.returncode == 0, check.stdout + check.stderr
        assert check.stdout.startswith("OK"), check.stdout
        assert f"{confirmed} transfers" in check.stdout, check.stdout
    finally:
        engine.dispose()


def test_processes_on_one_sqlite_file(sqlite_url: str, tmp_path: Path) -> None:
    contended_payments(sqlite_url, tmp_path)


@pytest.mark.postgres
def test_processes_on_one_postgresql_database(pg_url: str, tmp_path: Path) -> None:
    contended_payments(pg_url, tmp_path)


# --- redelivery ---------------------------------------------------------------------------


def test_same_event_twice_books_once(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        driver = Driver(engine, settings())
        driver.say("admin", "/start")
        driver.member("alice")
        driver.member("bob")
        bob = driver.number("bob")
        pay = driver.incoming("alice", f"/pay DU-{bob:03d} 30 soep", event_id="same-pay")
        yes = driver.incoming("alice", "ja", event_id="same-ja")

        assert driver.send(pay).outcome == "applied"
        asked = driver.snapshot()
        assert len(asked["pending"]) == 1
        assert driver.send(pay).outcome == "duplicate"
        assert driver.snapshot() == asked  # no second question

        answer = driver.send(yes)
        assert answer.outcome == "applied"
        assert booked(answer.replies[0].text)
        paid = driver.snapshot()
        assert driver.send(yes).outcome == "duplicate"
        assert driver.send(pay).outcome == "duplicate"
        assert driver.snapshot() == paid
        assert driver.count("transfers") == 1
        assert (driver.balance("alice"), driver.balance("bob")) == (-30, 30)

        # A new question is open now; the old "ja" delivered again must not answer it.
        driver.say("alice", f"/pay DU-{bob:03d} 20 brood")
        assert driver.last is not None and driver.last.outcome == "applied"
        waiting = driver.snapshot()
        assert driver.send(yes).outcome == "duplicate"
        assert driver.snapshot() == waiting
        assert driver.count("transfers") == 1
        assert (driver.balance("alice"), driver.balance("bob")) == (-30, 30)
    finally:
        engine.dispose()
