"""The system clock jumping forward an hour and back.

The bot reads the time from its clock only; every deadline is an absolute
moment in the tables and every post is claimed there. So a clock that jumps
ahead an hour and back posts each reminder once and closes a proposal only
when the clock passes the deadline that was announced: never before it, never
twice, never reopened. (A deadline inside the skipped hour is reached by the
clock, so that proposal closes at the jump: the bot cannot tell a jump from an
hour passing. The tests show that and that the jump back changes nothing.)

The core is driven on a virtual clock that jumps; the timer of ``letsbot run``
is checked in a real process whose wall clock jumps under libfaketime.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from adapters.console import render
from letsbot.domain import EventKind
from storage.database import make_engine
from storage.uow import SqlUnitOfWork
from tests.support import START, Driver
from tests.telegram_api import FakeTelegram
from tests.test_outage import GROUP, LetsbotRun, server

__all__ = ["server"]  # the fixture

T0 = START  # Tue 1 Dec 2026 08:00 UTC, 09:00 in Brussels


def scheduled(driver: Driver) -> str:
    """One round of the timer at the clock's current time, rendered."""
    return "\n".join(render(o) for o in driver.bot.scheduled_work())


def status(driver: Driver, proposal_id: int) -> str:
    with driver.engine.connect() as connection:
        value = connection.execute(
            text("SELECT status FROM proposals WHERE id = :id"), {"id": proposal_id}
        ).scalar_one()
        connection.rollback()
    return str(value)


def test_a_jump_ahead_and_back_posts_each_reminder_once_and_closes_nothing_early(
    driver: Driver,
) -> None:
    for name in ("an", "bo", "cas", "dirk"):
        driver.member(name)
    with SqlUnitOfWork(driver.engine).transaction() as store:
        store.events.add_event(
            series_id=None,
            kind=EventKind.MARKET,
            title="Ruilmarkt",
            place=None,
            starts_at=T0 + timedelta(hours=3),  # the 2-hour reminder is due at T0 + 1 h
            ends_at=None,
            created_by_id=store.members.group_account().id,
            at=T0,
        )
    assert "herinnering" in driver.say("cas", "/meldingen aan")
    # Closes tomorrow 09:30 local (T0 + 24 h 30 min): its reminder is due at T0 + 30 min.
    assert "tot 2 dec 2026 09:30" in driver.say("an", "/voorstel Markt op zaterdag tot 02/12 09:30")
    # Closes today 09:45 local (T0 + 45 min): inside the hour the clock skips.
    assert "tot 1 dec 2026 09:45" in driver.say("an", "/voorstel Nieuwe kas tot 01/12 09:45")
    assert scheduled(driver) == ""

    posts = [scheduled(driver)]
    driver.clock.set(T0 + timedelta(hours=1, minutes=1))  # the clock jumps an hour ahead
    ahead = scheduled(driver)
    posts.append(ahead)
    assert ahead.count("Herinnering: Markt #1") == 1
    assert ahead.count("[dm cas] Herinnering: de stemming over voorstel #1") == 1
    assert ahead.count("Uitslag voorstel #2") == 1  # its deadline is behind the clock now
    assert status(driver, 1) == "open"  # a day to go: the jump closes nothing else

    driver.clock.set(T0 + timedelta(minutes=1))  # and back
    for minutes in range(1, 24 * 60 + 29, 7):  # the real day up to a minute before P1 closes
        driver.clock.set(T0 + timedelta(minutes=minutes))
        posts.append(scheduled(driver))
    assert status(driver, 1) == "open"
    assert status(driver, 2) == "closed"  # the jump back reopens nothing
    assert "#2 is voorbij" in driver.say("bo", "/stem 2 voor")
    assert "Je stem op voorstel #1: Voor" in driver.say("bo", "/stem 1 voor")

    driver.clock.set(T0 + timedelta(hours=24, minutes=30))  # P1's deadline
    posts.append(scheduled(driver))
    driver.clock.set(T0 + timedelta(hours=23, minutes=30))  # another jump back
    posts.append(scheduled(driver))
    driver.clock.set(T0 + timedelta(hours=25, minutes=30))
    posts.append(scheduled(driver))

    everything = "\n".join(posts)
    assert everything.count("Herinnering: Markt #1") == 1
    assert everything.count("Herinnering: de stemming over voorstel #1") == 1
    assert everything.count("Uitslag voorstel #1") == 1
    assert everything.count("Uitslag voorstel #2") == 1
    assert status(driver, 1) == "closed"


def test_a_proposal_made_while_the_clock_is_ahead_closes_at_its_announced_deadline(
    driver: Driver,
) -> None:
    for name in ("an", "bo", "cas"):
        driver.member(name)
    driver.clock.set(T0 + timedelta(hours=1))  # an hour ahead: 10:00 local
    said = driver.say("an", "/voorstel Repaircafé op zondag")
    assert "staat open tot 8 dec 2026 10:00" in said  # a week from the clock's now
    driver.clock.set(T0)  # the clock is put right: 09:00 local

    # A week of real time later the deadline is an hour off still: open, votes count.
    driver.clock.set(T0 + timedelta(days=7, minutes=1))
    assert scheduled(driver) == ""
    assert "Je stem op voorstel #1: Voor" in driver.say("bo", "/stem 1 voor")
    driver.clock.set(T0 + timedelta(days=7, minutes=59))
    assert scheduled(driver) == ""
    assert status(driver, 1) == "open"
    driver.clock.set(T0 + timedelta(days=7, hours=1))  # the deadline members were told
    assert "Uitslag voorstel #1" in scheduled(driver)
    assert status(driver, 1) == "closed"


# the timer of a real process, under libfaketime --------------------------------------

LIBFAKETIME = [
    Path(os.environ.get("LETSBOT_TEST_LIBFAKETIME", "/nonexistent")),
    *sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1")),
    Path("/usr/lib/faketime/libfaketime.so.1"),
    Path("/usr/local/lib/faketime/libfaketime.so.1"),
]


def libfaketime() -> Path:
    found = next((path for path in LIBFAKETIME if path.is_file()), None)
    if found is None:
        pytest.skip("libfaketime is not installed (Debian: apt-get install faketime)")
    return found


def add_market(engine: Engine, title: str, starts_at: datetime) -> None:
    with SqlUnitOfWork(engine).transaction() as store:
        store.events.add_event(
            series_id=None,
            kind=EventKind.MARKET,
            title=title,
            place=None,
            starts_at=starts_at,
            ends_at=None,
            created_by_id=store.members.group_account().id,
            at=starts_at - timedelta(days=30),
        )


def posted(server: FakeTelegram, title: str) -> int:
    return len([s for s in server.sent_to(GROUP) if "Herinnering" in s.text and title in s.text])


@pytest.mark.slow  # about 35 s: the timer's own period is 30 s
async def test_the_timer_keeps_its_pace_when_the_wall_clock_jumps_back(
    server: FakeTelegram, sqlite_url: str, tmp_path: Path
) -> None:
    """APScheduler plans an interval job on the wall clock: put back an hour, it would
    wait an hour. The bot's timer runs every 30 s of real time whatever the clock does."""
    library = libfaketime()
    offset = tmp_path / "faketime"
    offset.write_text("+3600\n", encoding="utf-8")  # the clock starts an hour ahead
    engine = make_engine(sqlite_url)
    now = datetime.now(UTC)
    add_market(engine, "Vooruit", now + timedelta(hours=2, minutes=30))  # due in 30 min
    run = await LetsbotRun.start(
        server,
        sqlite_url,
        tmp_path,
        env={
            "LD_PRELOAD": str(library),
            "FAKETIME_TIMESTAMP_FILE": str(offset),
            "FAKETIME_NO_CACHE": "1",  # read the file at every call: the clock can jump
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",  # the event loop's time runs on
        },
    )
    try:
        await server.wait_for(lambda: posted(server, "Vooruit"), timeout=20)  # at start
        offset.write_text("+0\n", encoding="utf-8")  # the clock is put right: an hour back
        jumped = time.monotonic()
        add_market(engine, "Terug", datetime.now(UTC) + timedelta(hours=2))  # due now
        try:
            await server.wait_for(lambda: posted(server, "Terug"), timeout=45)
        except TimeoutError:
            raise AssertionError("no round of scheduled work in 45 s:\n" + run.output) from None
        waited = time.monotonic() - jumped
        assert run.process.returncode is None
    finally:
        status = await run.end()
        engine.dispose()
    assert status == 0, run.output
    assert waited < 40
    assert run.output.count("the wall clock went back") == 1
    assert posted(server, "Vooruit") == 1  # the round after the jump did not post it again


async def test_stopping_lets_the_round_under_way_finish() -> None:
    """A round that claimed reminders must hand them over even when the bot stops mid-round."""
    import asyncio

    from letsbot.timer import Timer

    started, release = asyncio.Event(), asyncio.Event()
    posted: list[str] = []

    async def round_of_work() -> None:
        started.set()
        await release.wait()  # as the database work in a thread: claimed, not yet posted
        posted.append("reminder")

    timer = Timer(round_of_work, timedelta(seconds=30))
    timer.start()
    await asyncio.wait_for(started.wait(), 5)
    # The round's database work takes a moment more; meanwhile stop() shuts the
    # scheduler down, which cancels its jobs.
    asyncio.get_running_loop().call_later(0.2, release.set)
    await timer.stop()
    assert posted == ["reminder"]
