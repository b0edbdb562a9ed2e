"""Test helpers: real databases, real bot, console-rendered replies."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from adapters.console import PLATFORM, render
from letsbot.clock import VirtualClock
from letsbot.config import Settings
from letsbot.dispatcher import Bot
from letsbot.domain import Identity
from letsbot.messages import Chat, ChatKind, Incoming, Mention, Outgoing, Result
from storage.database import make_engine, upgrade
from storage.uow import SqlUnitOfWork

POSTGRES_ENV = "LETSBOT_TEST_POSTGRES_URL"
START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def make_settings(**sections: dict[str, Any]) -> Settings:
    data: dict[str, dict[str, Any]] = {
        "group": {"name": "LETS Durme", "code_prefix": "DU", "coordinators": ["console:admin"]},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return Settings(**data)


def postgres_url() -> str | None:
    return os.environ.get(POSTGRES_ENV) or None


def reset_postgres(url: str) -> Engine:
    """An empty schema at the newest revision."""
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    upgrade(engine)
    return engine


@dataclass
class Driver:
    """The real bot on a real database, spoken to as console people."""

    engine: Engine
    settings: Settings
    clock: VirtualClock = field(default_factory=lambda: VirtualClock(START))
    bot: Bot = field(init=False)
    last: Result | None = None
    _admin_spoke: bool = False
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.bot = Bot(self.settings, SqlUnitOfWork(self.engine), self.clock)

    def incoming(
        self,
        name: str,
        text: str,
        *,
        group: bool = False,
        event_id: str | None = None,
        reply_to: str | None = None,
        pressed: bool = False,
        platform: str = PLATFORM,
    ) -> Incoming:
        """``platform``: another chat platform's person of that name (``telegram:an``)."""
        chat = (
            Chat(platform, "group", ChatKind.GROUP)
            if group
            else Chat(platform, name, ChatKind.DIRECT)
        )
        mentions = tuple(
            Mention(word, Identity(platform, word[1:]))
            for word in text.split()
            if word.startswith("@") and len(word) > 1
        )
        return Incoming(
            platform=platform,
            event_id=event_id or f"t{next(self._ids)}",
            chat=chat,
            sender=Identity(platform, name),
            sender_name=name,
            text=text,
            mentions=mentions,
            reply_to=Identity(platform, reply_to) if reply_to else None,
            pressed=pressed,
        )

    def send(self, incoming: Incoming) -> Result:
        self.last = self.bot.handle(incoming)
        self.shown(self.last.replies)
        return self.last

    def shown(self, replies: list[Outgoing]) -> None:
        """As the console does: what was shown leaves nothing in the outbox."""
        ids = [o.outbox_id for o in replies if o.outbox_id is not None]
        if ids:
            self.bot.delivered(ids)

    def advance(self, moment: datetime) -> str:
        """Move the clock as the console does; everything posted on the way, rendered."""
        posts = self.bot.catch_up(moment, self.clock.set)
        self.shown(posts)
        return "\n".join(render(o) for o in posts)

    def say(self, name: str, text: str, **kwargs: Any) -> str:
        """Every reply, rendered as the console prints it."""
        result = self.send(self.incoming(name, text, **kwargs))
        return "\n".join(render(o) for o in result.replies)

    def member(self, name: str, full_name: str | None = None, *, language: str = "nl") -> None:
        """Make ``name`` an approved member (via /aanmelden or /join, then /approve)."""
        if not self._admin_spoke:  # so that admin is DU-001 and members follow
            self.say("admin", "/start")
            self._admin_spoke = True
        word = "join" if language == "en" else "aanmelden"
        self.say(name, f"/{word} {full_name or name.title()}")
        number = self.number(name)
        self.say("admin", f"/approve {number}")
        if language != "nl":  # a member's language is the one they choose
            self.say(name, f"/lang {language}")

    def number(self, name: str) -> int:
        with self.engine.connect() as connection:
            value = connection.execute(
                text(
                    "SELECT m.number FROM members m JOIN identities i ON i.member_id = m.id"
                    " WHERE i.platform = 'console' AND i.user_id = :name"
                ),
                {"name": name},
            ).scalar_one()
            connection.rollback()
        return int(value)

    def balance(self, name: str) -> int:
        with self.engine.connect() as connection:
            value = connection.execute(
                text(
                    "SELECT m.balance FROM members m JOIN identities i ON i.member_id = m.id"
                    " WHERE i.platform = 'console' AND i.user_id = :name"
                ),
                {"name": name},
            ).scalar_one()
            connection.rollback()
        return int(value)

    def count(self, table: str) -> int:
        with self.engine.connect() as connection:
            value = connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            connection.rollback()
        return int(value)

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Everything the ledger holds, to prove a refused command changed nothing."""
        tables = ("members", "identities", "transfers", "pending")
        with self.engine.connect() as connection:
            state = {
                table: [
                    tuple(row)
                    for row in connection.execute(text(f"SELECT * FROM {table} ORDER BY id"))
                ]
                for table in tables
            }
            connection.rollback()
        return state


def run_processes(
    target: Callable[..., None],
    args: Callable[[int, Any, str], tuple[Any, ...]],
    count: int,
    folder: Path,
) -> list[dict[str, Any]]:
    """Run ``count`` spawned processes sharing a barrier; the JSON report each writes.

    ``args(index, barrier, result_file)`` gives each process its arguments; a
    process reports a failure as ``{"error": traceback}``.
    """
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(count)
    files = [folder / f"result-{i}.json" for i in range(count)]
    processes = [
        context.Process(target=target, args=args(i, barrier, str(files[i])), name=f"letsbot-{i}")
        for i in range(count)
    ]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join(timeout=240)
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()
    assert [p.exitcode for p in processes] == [0] * count
    reports = [json.loads(f.read_text(encoding="utf-8")) for f in files]
    errors = [r["error"] for r in reports if "error" in r]
    assert not errors, "\n".join(errors)
    return reports
