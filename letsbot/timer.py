"""The timer that wakes the bot for scheduled work.

APScheduler only says "look now"; what is due, and whether it was already
posted, lives in our tables (see letsbot.reminders). Nothing is pickled and
no job store is shared, so a restart or a second process changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger(__name__)

CHECK_EVERY = timedelta(seconds=30)


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

    def start(self) -> None:
        self.scheduler.add_job(
            self._run,
            IntervalTrigger(seconds=self.every.total_seconds(), timezone=UTC),
            next_run_time=datetime.now(UTC),  # catch up on what fell due while down
            id="scheduled-work",
        )
        self.scheduler.start()

    async def _run(self) -> None:
        try:
            await self.work()
        except Exception:
            log.exception("scheduled work failed; trying again in %s", self.every)

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
