"""Benchmark 6: one event reminder posted to 20 group channels at once.

The event is made through the real Bot (a coordinator's ``/event add`` and
``yes``) with a reminder offset chosen so that the reminder fell due half a
minute ago; ``letsbot run`` then posts it from its first scheduled run.

- Telegram: the bot serves 20 groups of the loopback Bot API, which enforces
  Telegram's flood limits (bench/telegram.py: 30 messages/s overall, 20 per
  minute per group; 429 with retry_after beyond). The bot's own limiter uses
  the same figures (adapters/telegram.py ``Tuning``). A lower
  ``telegram_rate`` makes the server stricter than the bot expects, so its
  429s must be waited out (the smoke test does that).
- Matrix: the bot serves 20 rooms on Synapse, and Synapse limits the bot's
  messages (its per-user rc_message override) to ``rate`` per second after a
  burst of ``burst``.

All delivered, each exactly once, and the time from the first to the last
delivery against the least time those limits allow.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.matrix import BOT, HOST, Homeserver, Member, start_bot
from bench.process import (
    BotProcess,
    base_sections,
    migrated_database,
    settings_of,
    write_config,
)
from bench.report import Row
from bench.telegram import LimitedTelegram, TelegramThread
from letsbot.clock import SystemClock
from letsbot.config import Settings
from letsbot.dispatcher import Bot
from letsbot.domain import Identity
from letsbot.messages import Chat, ChatKind, Incoming
from storage.database import make_engine
from storage.uow import SqlUnitOfWork
from tests.telegram_api import TOKEN

BENCH = "6 fan-out"
TITLE = "Bench fair"
TIMEZONE = "Europe/Brussels"


def schedule_event(config: Path, database: Path, platform: str, coordinator: str) -> None:
    """An event 20 minutes from now, made by a coordinator through the real Bot."""
    settings = settings_of(tomllib.loads(config.read_text(encoding="utf-8")))
    engine = make_engine(f"sqlite:///{database}")
    ids = itertools.count()
    try:
        bot = Bot(settings, SqlUnitOfWork(engine), SystemClock())
        starts = event_start(settings)
        lines = [
            "/start",
            # No end time: near midnight an hour later is the next day, which an
            # event's end may not be.
            f"/event add market {starts:%d/%m %H:%M} {TITLE} @ Hall",
            "yes",
        ]
        for line in lines:
            result = bot.handle(
                Incoming(
                    platform=platform,
                    event_id=f"bench-event-{time.time_ns()}-{next(ids)}",
                    chat=Chat(platform, coordinator, ChatKind.DIRECT),
                    sender=Identity(platform, coordinator),
                    sender_name="Coordinator",
                    text=line,
                )
            )
            if result.outcome != "applied":
                raise RuntimeError(f"{line}: {result.outcome}")
            # Its replies are not for the bot under test to send (as if shown).
            bot.delivered([r.outbox_id for r in result.replies if r.outbox_id is not None])
    finally:
        engine.dispose()


def event_start(settings: Settings) -> datetime:
    local = datetime.now(UTC).astimezone(settings.tz) + timedelta(minutes=20)
    return local.replace(second=0, microsecond=0) + timedelta(minutes=1)


def offset_due_now(settings: Settings) -> str:
    """A reminder offset that fell due 30 s ago for the event of ``event_start``."""
    starts = event_start(settings)
    seconds = int((starts - datetime.now(UTC)).total_seconds()) + 30
    return f"{seconds}s"


def sections_for(database: Path, coordinator: str) -> dict[str, dict[str, Any]]:
    sections = base_sections(database)
    sections["group"]["coordinators"] = [coordinator]
    sections["group"]["timezone"] = TIMEZONE
    settings = settings_of(sections)
    sections["reminders"] = {"offsets": [offset_due_now(settings)], "grace": "1h"}
    return sections


def telegram(
    folder: Path, groups: int, settle: float, rate: int
) -> tuple[list[Row], dict[str, Any]]:
    database = migrated_database(folder / "fanout-telegram.db")
    coordinator = 900
    sections = sections_for(database, f"telegram:{coordinator}")
    chat_ids = [-1001 - n for n in range(groups)]
    fake = LimitedTelegram(overall_rate=rate)
    with TelegramThread(fake) as server:
        for chat_id in chat_ids:
            server.call(fake.group, chat_id, f"Group {chat_id}")
        sections["telegram"] = {
            "enabled": True,
            "base_url": fake.base_url,
            "group_chat_ids": chat_ids,
        }
        config = write_config(folder / "fanout-telegram.toml", sections)
        schedule_event(config, database, "telegram", str(coordinator))
        bot = BotProcess(config, {"LETSBOT_TELEGRAM__TOKEN": TOKEN})
        bot.start()
        try:
            bot.wait_for(r"telegram ready: ")
            deadline = time.monotonic() + minimum(groups, rate, rate) + 60
            sent: list[tuple[int, float]] = []
            while time.monotonic() < deadline:
                sent = server.call(
                    lambda: [(s.chat_id, s.at) for s in fake.sent if TITLE in s.text]
                )
                if len({chat for chat, _ in sent}) >= groups:
                    break
                time.sleep(0.05)  # polling the server's record, bounded by the deadline
            time.sleep(settle)  # a duplicate would arrive now
            sent = server.call(lambda: [(s.chat_id, s.at) for s in fake.sent if TITLE in s.text])
            limited = server.call(lambda: fake.limited)
        finally:
            bot.stop()
    return rows_for(
        "Telegram",
        chat_ids,
        sent,
        minimum(groups, fake.overall_rate, fake.overall_rate / fake.overall_period),
        f"{fake.overall_rate}/s, {fake.group_rate}/min/group",
        {
            "answered_429": limited,
            "bot_errors": bot.errors()[:20],
            "bot_warnings": bot.warnings()[:20],
        },
    )


def minimum(count: int, burst: float, rate: float) -> float:
    """The least time from the first to the last of ``count`` sends under a leaky bucket."""
    return max(0.0, (count - burst) / rate)


def rows_for(
    name: str,
    channels: list[Any],
    sent: list[tuple[Any, float]],
    least: float,
    limits: str,
    extra: dict[str, Any],
) -> tuple[list[Row], dict[str, Any]]:
    wanted = set(channels)
    got = [chat for chat, _ in sent if chat in wanted]
    delivered = len(set(got))
    duplicates = len(got) - delivered
    span = max(at for _, at in sent) - min(at for _, at in sent) if sent else float("nan")
    complete = delivered == len(channels) and duplicates == 0
    rows = [
        Row(
            BENCH,
            f"fanout_{name.lower()}_delivered",
            f"{name}: reminder delivered to channels (each once)",
            float(delivered),
            "count",
            target=f"{len(channels)}, no duplicates",
            met=complete,
        ),
        Row(
            BENCH,
            f"fanout_{name.lower()}_s",
            f"{name}: first to last delivery (vs least the limits allow)",
            span,
            "s",
            least,
            span / least if least > 0 else None,
            f"limits: {limits}",
        ),
    ]
    details = {
        "channels": len(channels),
        "delivered": delivered,
        "duplicates": duplicates,
        "span_s": span,
        "least_s": least,
        "limits": limits,
        **extra,
    }
    return rows, details


async def matrix_rooms(
    server: Homeserver, folder: Path, rooms: int, rate: int, burst: int, settle: float
) -> tuple[list[Row], dict[str, Any]]:
    database = migrated_database(folder / "fanout-matrix.db")
    host = Member(server.url, HOST)  # a coordinator: makes the rooms and watches them
    await host.start()
    bot: BotProcess | None = None
    try:
        room_ids = []
        for _ in range(rooms):
            created = await host.client.room_create(invite=[BOT])
            room_ids.append(str(created.room_id))
        sections = sections_for(database, f"matrix:{HOST}")
        sections["matrix"] = {
            "enabled": True,
            "homeserver": server.url,
            "user_id": BOT,
            "group_rooms": room_ids,
        }
        config = write_config(folder / "fanout-matrix.toml", sections)
        start_bot(config).stop()  # joins the rooms, unlimited: a bot that served them before
        schedule_event(config, database, "matrix", HOST)
        server.limit_messages(BOT, rate, burst)
        bot = start_bot(config)

        def arrived() -> bool:
            return all(any(TITLE in n.body for n in host.inbox.get(room, [])) for room in room_ids)

        await host.wait(arrived, minimum(rooms, burst, rate) + 60)
        await asyncio.sleep(settle)  # a duplicate would arrive now
        sent = [
            (room, n.server_ts / 1000)
            for room in room_ids
            for n in host.inbox.get(room, [])
            if TITLE in n.body
        ]
    finally:
        if bot is not None:
            bot.stop()
        server.unlimit_messages(BOT)
        await host.close()
    return rows_for(
        "Matrix",
        room_ids,
        sent,
        minimum(rooms, burst, rate),
        f"{rate}/s after {burst} (rc_message)",
        {
            "bot_errors": bot.errors()[:20] if bot else [],
            "bot_warnings": bot.warnings()[:20] if bot else [],
        },
    )


def measure(
    folder: Path,
    server: Homeserver | None,
    *,
    channels: int = 20,
    telegram_rate: int = 30,
    matrix_rate: int = 2,
    matrix_burst: int = 10,
    settle: float = 1.0,
) -> tuple[list[Row], dict[str, Any]]:
    print(f"fan-out: a reminder to {channels} Telegram groups ...", flush=True)
    rows, tg = telegram(folder, channels, settle, telegram_rate)
    details: dict[str, Any] = {"telegram": tg}
    if server is not None:
        print(f"fan-out: a reminder to {channels} Matrix rooms ...", flush=True)
        more, mx = asyncio.run(
            matrix_rooms(server, folder, channels, matrix_rate, matrix_burst, settle)
        )
        rows += more
        details["matrix"] = mx
    return rows, details
