"""The loopback Bot API of tests/telegram_api.py, served from a thread of the benchmark.

``LimitedTelegram`` adds Telegram's (approximate, undocumented) flood limits to
it: at most ``overall_rate`` messages per ``overall_period`` from the bot, and
``group_rate`` per ``group_period`` into one group, as sliding windows; a
message over a limit gets 429 with ``retry_after`` (whole seconds), like the
real server.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from tests.telegram_api import ApiError, FakeTelegram, Json

T = TypeVar("T")


class LimitedTelegram(FakeTelegram):
    def __init__(
        self,
        *,
        overall_rate: int = 30,
        overall_period: float = 1.0,
        group_rate: int = 20,
        group_period: float = 60.0,
    ) -> None:
        super().__init__()
        self.overall_rate = overall_rate
        self.overall_period = overall_period
        self.group_rate = group_rate
        self.group_period = group_period
        self._overall: deque[float] = deque()
        self._groups: dict[int, deque[float]] = {}
        self.limited = 0  # 429 answers given

    @staticmethod
    def _wait(window: deque[float], rate: int, period: float, now: float) -> float:
        while window and window[0] <= now - period:
            window.popleft()
        return window[0] + period - now if len(window) >= rate else 0.0

    async def api_sendMessage(self, params: Json) -> Json:
        now = time.monotonic()
        chat_id = int(params["chat_id"])
        wait = self._wait(self._overall, self.overall_rate, self.overall_period, now)
        group = self._groups.setdefault(chat_id, deque()) if chat_id < 0 else None
        if group is not None:
            wait = max(wait, self._wait(group, self.group_rate, self.group_period, now))
        if wait > 0:
            self.limited += 1
            seconds = max(1, math.ceil(wait))
            raise ApiError(
                429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds}
            )
        result = await super().api_sendMessage(params)
        self._overall.append(now)
        if group is not None:
            group.append(now)
        return result


class TelegramThread:
    """A fake Bot API running on its own event loop in a daemon thread."""

    def __init__(self, fake: FakeTelegram) -> None:
        self.fake = fake
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> TelegramThread:
        self._thread.start()
        self.run(self.fake.start())
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.run(self.fake.close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
            self.loop.close()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def call(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` on the server's loop (its state belongs to that thread)."""

        async def inside() -> T:
            return function(*args)

        return self.run(inside())
