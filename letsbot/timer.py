"""The timer that wakes the bot for scheduled work.

APScheduler only says "look now"; what is due, and whether it was already
posted, lives in our tables (see letsbot.reminders). Nothing is pickled and
no job store is shared, so a restart or a second process changes nothing.

APScheduler 3 plans an interval job on the wall clock: after each run the
next one is "previous run + interval", and it sleeps until the wall clock
says so. Put the clock back an hour (NTP, an operator) and the job waits an
hour: no reminders, no results. So a watchdog on the event loop's own clock
(monotonic, blind to wall-clock jumps) brings the run forward when a round is
overdue. A clock jumping ahead needs nothing: the overdue run happens at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger(__name__)

CHECK_EVERY = timedelta(seconds=30)
JOB = "scheduled-work"


class Timer:
    def __init__(self, work: Callable[[], Awaitable[None]], every: timedelta = CHECK_EVERY) -> None:
        self.work = work
        self.every = every
        # One run at a time; runs missed while busy fold into one; never dropped
        # for lateness (the tables decide what is too late, not the timer).
        self.scheduler = AsyncIOScheduler(
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=UTC,
        )
        self._watchdog: asyncio.TimerHandle | None = None
        self._round: asyncio.Task[None] | None = None
        self._stopped = False

    def start(self) -> None:
        self.scheduler.add_job(
            self._run,
            IntervalTrigger(seconds=self.every.total_seconds(), timezone=UTC),
            next_run_time=datetime.now(UTC),  # catch up on what fell due while down
            id=JOB,
        )
        self.scheduler.start()

    async def _run(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        # The round is a task of its own, shielded: APScheduler cancels its jobs at
        # shutdown, and a round cancelled after it claimed reminders in the database
        # would never post them. stop() lets it finish instead.
        self._round = asyncio.ensure_future(self.work())
        try:
            await asyncio.shield(self._round)
        except Exception:
            log.exception("scheduled work failed; trying again in %s", self.every)
        finally:
            if not self._stopped:
                self._arm()

    def _arm(self) -> None:
        # The next run normally comes first and disarms this; a quarter period
        # of slack lets a busy event loop be late without a second round.
        overdue = self.every.total_seconds() * 1.25
        self._watchdog = asyncio.get_running_loop().call_later(overdue, self._overdue)

    def _overdue(self) -> None:
        """No round for a period of real time: if the wall clock went back, run now."""
        self._watchdog = None
        job = self.scheduler.get_job(JOB) if self.scheduler.running else None
        if job is None or job.next_run_time is None:
            return
        now = datetime.now(UTC)
        if job.next_run_time - now <= self.every:
            self._arm()  # merely late (a busy loop): it comes by itself
            return
        log.warning("the wall clock went back; scheduled work runs now, then every %s", self.every)
        job.modify(next_run_time=now)

    async def stop(self, timeout: float = 30.0) -> None:
        """No new rounds; the round under way finishes (up to ``timeout``) so what it
        claimed is also handed over to be sent."""
        self._stopped = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self._round is not None and not self._round.done():
            done, _ = await asyncio.wait({self._round}, timeout=timeout)
            if not done:
                log.warning("scheduled work still busy after %.0f s; stopping without it", timeout)
            for finished in done:  # its _run was cancelled, so it can't report a failure
                if finished.exception() is not None:
                    log.error("scheduled work failed", exc_info=finished.exception())
