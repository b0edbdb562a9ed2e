"""The timer that wakes the bot for scheduled work.

The timer only says "look now"; what is due, and whether it was already
posted, lives in our tables (see letsbot.reminders). So a restart, a second
process or a round run late or twice changes nothing.

One task runs a round, then sleeps on the event loop's own clock (monotonic,
blind to wall-clock jumps) until a period after the round began. A wall
clock put back an hour (NTP, an operator) therefore never holds the rounds
back, and one put ahead never makes them run in a burst. Rounds never
overlap: one that outlasts the period is followed at once by the next.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

log = logging.getLogger(__name__)

CHECK_EVERY = timedelta(seconds=30)


class Timer:
    def __init__(self, work: Callable[[], Awaitable[None]], every: timedelta = CHECK_EVERY) -> None:
        self.work = work
        self.every = every
        self._rounds: asyncio.Task[None] | None = None
        self._round: asyncio.Task[None] | None = None

    def start(self) -> None:
        """The first round at once (catching up on what fell due while down), then every period."""
        self._rounds = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        period = self.every.total_seconds()
        previous: tuple[float, float] | None = None
        while True:
            began, wall = loop.time(), time.time()
            if previous is not None:
                self._tell_a_clock_put_back(began - previous[0], wall - previous[1])
            previous = began, wall
            # The round is a task of its own: stop() cancels this loop, never a round
            # under way, for a round cancelled after it claimed reminders in the
            # database would never post them.
            self._round = loop.create_task(self._one_round())
            await asyncio.shield(self._round)
            await asyncio.sleep(max(0.0, began + period - loop.time()))

    async def _one_round(self) -> None:
        try:
            await self.work()
        except Exception:
            log.exception("scheduled work failed; trying again in %s", self.every)
        else:
            log.info("scheduled work executed successfully")

    def _tell_a_clock_put_back(self, real: float, wall: float) -> None:
        """Deadlines are moments on the wall clock: put back, they come that much later."""
        if wall < real - self.every.total_seconds():
            log.warning(
                "the wall clock went back %s; scheduled work runs on, every %s",
                timedelta(seconds=round(real - wall)),
                self.every,
            )

    async def stop(self, timeout: float = 30.0) -> None:
        """No new rounds; the round under way finishes (up to ``timeout``) so what it
        claimed is also handed over to be sent."""
        if self._rounds is not None:
            self._rounds.cancel()
            await asyncio.wait({self._rounds})
        if self._round is not None and not self._round.done():
            done, _ = await asyncio.wait({self._round}, timeout=timeout)
            if not done:
                log.warning("scheduled work still busy after %.0f s; stopping without it", timeout)
