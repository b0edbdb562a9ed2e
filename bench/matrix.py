"""What the Matrix benchmarks share: a Synapse on loopback, the two bots, and members.

The homeserver is tests/synapse.py's (rate limits raised). The real bot is
``letsbot run`` (a subprocess, Matrix adapter, an SQLite file); the baseline is
bench/echo.py, also a subprocess, on the same homeserver. Members are
matrix-nio clients: one code path measures both bots. A reply's time is taken
when the member's own sync loop hands it over, as a person's client would
show it.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nio import AsyncClient, AsyncClientConfig, LoginResponse, RoomCreateResponse, RoomPreset

from bench.process import BotProcess, base_sections, write_config
from tests.synapse import Synapse

PASSWORD = "correct horse battery"
BOT = "@letsbot:localhost"
ECHO = "@echo:localhost"
HOST = "@benchhost:localhost"  # makes the group rooms of the fan-out


class Homeserver:
    """A Synapse for the benchmarks, the bots' accounts and a room host's registered."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.synapse = Synapse(folder)
        self.url = self.synapse.url

    def __enter__(self) -> Homeserver:
        print("matrix: starting Synapse ...", flush=True)
        self.synapse.configure()
        self.synapse.start()
        self.register_many(["letsbot", "echo", HOST.split(":")[0][1:]])
        return self

    def __exit__(self, *exc: object) -> None:
        self.synapse.stop()

    def register_many(self, localparts: list[str]) -> list[str]:
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(lambda name: self.synapse.register(name, PASSWORD), localparts))

    def limit_messages(self, user_id: str, per_second: int, burst: int) -> None:
        """Synapse's per-user override of rc_message (admin API)."""
        self.synapse.limit_messages(user_id, per_second, burst)

    def unlimit_messages(self, user_id: str) -> None:
        self.synapse.unlimit_messages(user_id)


@dataclass
class Notice:
    at: float  # perf_counter when the member's sync handed it over
    body: str
    sender: str
    server_ts: int  # origin_server_ts, ms


class Member:
    """A person at a Matrix client: sends lines, sees the notices in their rooms."""

    def __init__(self, url: str, user_id: str, store: Path | None = None) -> None:
        """``store``: a folder for the client's keys, with encryption on (as Element has it)."""
        self.user_id = user_id
        if store is not None:
            store.mkdir(parents=True, exist_ok=True)
        self.client = AsyncClient(
            url,
            user_id,
            store_path=str(store or ""),
            config=AsyncClientConfig(
                encryption_enabled=store is not None,
                backoff_factor=0.02,
                max_timeout_retry_wait_time=0.3,
            ),
        )
        self.inbox: dict[str, list[Notice]] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.sync_errors = 0

    async def start(self) -> None:
        answer = await self.client.login(PASSWORD)
        if not isinstance(answer, LoginResponse):
            raise RuntimeError(f"{self.user_id} can't log in: {answer}")
        await self.client.sync(timeout=0)
        await self.chores()
        self._task = asyncio.create_task(self._sync())

    async def chores(self) -> None:
        """With encryption: what nio's sync_forever does between syncs (keys uploaded,
        members' devices queried, Olm sessions claimed, to-device messages sent)."""
        client = self.client
        if client.olm is None:
            return
        if client.should_upload_keys:
            await client.keys_upload()
        if client.should_query_keys:
            await client.keys_query()
        if client.should_claim_keys:
            await client.keys_claim(client.get_users_for_key_claiming())
        await client.send_to_device_messages()

    async def _sync(self) -> None:
        while True:
            try:
                response = await self.client.sync(timeout=30_000)
                await self.chores()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.sync_errors += 1
                await asyncio.sleep(0.05)
                continue
            now = time.perf_counter()
            rooms = getattr(response, "rooms", None)
            if rooms is None:
                self.sync_errors += 1
                await asyncio.sleep(0.05)
                continue
            for room_id, info in rooms.join.items():
                for event in info.timeline.events:
                    source = event.source
                    content = source.get("content", {})
                    if (
                        source.get("type") == "m.room.message"
                        and content.get("msgtype") == "m.notice"
                        and source.get("sender") != self.user_id
                    ):
                        self.inbox.setdefault(room_id, []).append(
                            Notice(
                                now,
                                str(content.get("body", "")),
                                source["sender"],
                                int(source.get("origin_server_ts", 0)),
                            )
                        )
            for room_id in rooms.invite:
                await self.client.join(room_id)
            self._changed.set()
            self._changed = asyncio.Event()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.client.close()

    async def wait(self, check: Callable[[], Any], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while not (value := check()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)
        return value

    async def dm(self, other: str, *, encrypted: bool = False) -> str:
        """A new direct chat with ``other``, once they joined; ``encrypted`` as Element
        makes one (``m.room.encryption`` in the initial state)."""
        state = [
            {
                "type": "m.room.encryption",
                "state_key": "",
                "content": {"algorithm": "m.megolm.v1.aes-sha2"},
            }
        ]
        created = await self.client.room_create(
            is_direct=True,
            invite=[other],
            preset=RoomPreset.trusted_private_chat,
            initial_state=state if encrypted else [],
        )
        if not isinstance(created, RoomCreateResponse):
            raise RuntimeError(f"{self.user_id} can't open a chat with {other}: {created}")
        room_id = str(created.room_id)

        def joined() -> bool:
            room = self.client.rooms.get(room_id)
            return room is not None and other in room.users

        if not await self.wait(joined, 30):
            raise RuntimeError(f"{other} did not join the direct chat of {self.user_id}")
        return room_id

    async def ask(
        self, room_id: str, line: str, expect: str, timeout: float = 15
    ) -> tuple[float | None, str]:
        """Send ``line``; (seconds until a notice containing ``expect`` arrived, its text).

        None and the notices seen instead when none came within ``timeout``.
        """
        seen = len(self.inbox.get(room_id, []))
        started = time.perf_counter()
        answer = await self.client.room_send(  # devices are trusted as first seen
            room_id,
            "m.room.message",
            {"msgtype": "m.text", "body": line},
            ignore_unverified_devices=True,
        )
        if not getattr(answer, "event_id", None):
            return None, f"send failed: {answer}"

        def found() -> Notice | None:
            for notice in self.inbox.get(room_id, [])[seen:]:
                if expect in notice.body:
                    return notice
            return None

        notice = await self.wait(found, timeout)
        if notice is None:
            others = [n.body[:80] for n in self.inbox.get(room_id, [])[seen:]]
            return None, f"no {expect!r} within {timeout:g} s; got {others}"
        return notice.at - started, notice.body


def bot_config(folder: Path, url: str, database: Path, rooms: list[str] | None = None) -> Path:
    sections = base_sections(database)
    sections["matrix"] = {
        "enabled": True,
        "homeserver": url,
        "user_id": BOT,
        "group_rooms": rooms or [],
    }
    return write_config(folder / "matrix-bot.toml", sections)


def start_bot(config: Path, timeout: float = 60) -> BotProcess:
    bot = BotProcess(config, {"LETSBOT_MATRIX__PASSWORD": PASSWORD})
    bot.start()
    try:
        bot.wait_for(r"matrix ready: ", timeout)
    except Exception:
        bot.stop()
        raise
    return bot


class EchoProcess:
    def __init__(self, url: str, user_id: str = ECHO, store: Path | None = None) -> None:
        """``store``: a folder for its keys, with encryption on."""
        extra = [] if store is None else [str(store)]
        if store is not None:
            store.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.echo", url, user_id, PASSWORD, *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # blocks until ready, or EOF if it failed
        if "echo ready" not in line:
            rest = line + self.process.stdout.read()
            self.process.wait()
            raise RuntimeError(f"the echo bot did not start:\n{rest[-2000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
