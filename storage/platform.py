"""What a chat adapter keeps across restarts: state, @handles and held direct messages.

letsbot.hub.PlatformStore on SQLAlchemy Core. Every call is one short
transaction of its own, apart from the core's (adapters call these from a
worker thread, never inside Bot.handle). A database that can't be reached
raises letsbot.errors.Busy, as in the core.
"""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, delete, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from letsbot.clock import Clock
from letsbot.hub import Profile
from storage.tables import (
    handles,
    held_messages,
    identities,
    members,
)
from storage.tables import (
    platform_state as state,
)
from storage.uow import busy_when_unreachable


class SqlPlatformStore:
    """letsbot.hub.PlatformStore for one platform (``telegram``)."""

    def __init__(self, engine: Engine, platform: str, clock: Clock) -> None:
        self.engine = engine
        self.platform = platform
        self.clock = clock
        self._insert: Any = (
            postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        )
        self._leases: dict[str, Callable[[], None]] = {}  # name -> how to let it go

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        with busy_when_unreachable(), self.engine.begin() as db:
            yield db

    # state
    def state(self, key: str) -> str | None:
        with self._begin() as db:
            value = db.execute(
                select(state.c.value).where(state.c.platform == self.platform, state.c.key == key)
            ).scalar_one_or_none()
        return None if value is None else str(value)

    def states(self, prefix: str) -> dict[str, str]:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        with self._begin() as db:
            rows = db.execute(
                select(state.c.key, state.c.value).where(
                    state.c.platform == self.platform,
                    state.c.key.like(escaped + "%", escape="\\"),
                )
            ).all()
        return {row.key[len(prefix) :]: row.value for row in rows}

    def set_state(self, key: str, value: str | None) -> None:
        with self._begin() as db:
            if value is None:
                db.execute(
                    delete(state).where(state.c.platform == self.platform, state.c.key == key)
                )
                return
            now = self.clock.now()
            statement = self._insert(state).values(
                platform=self.platform, key=key, value=value, updated_at=now
            )
            db.execute(
                statement.on_conflict_do_update(
                    index_elements=[state.c.platform, state.c.key],
                    set_={"value": value, "updated_at": now},
                )
            )

    # @handles
    def remember_handle(self, handle: str, user_id: str) -> None:
        now = self.clock.now()
        statement = self._insert(handles).values(
            platform=self.platform, handle=handle.lower(), user_id=user_id, seen_at=now
        )
        with self._begin() as db:
            db.execute(
                statement.on_conflict_do_update(
                    index_elements=[handles.c.platform, handles.c.handle],
                    set_={"user_id": user_id, "seen_at": now},
                )
            )

    def user_for_handle(self, handle: str) -> str | None:
        with self._begin() as db:
            value = db.execute(
                select(handles.c.user_id).where(
                    handles.c.platform == self.platform, handles.c.handle == handle.lower()
                )
            ).scalar_one_or_none()
        return None if value is None else str(value)

    # held direct messages
    def hold(self, user_id: str, body: str) -> int:
        with self._begin() as db:
            held_id = db.execute(
                held_messages.insert()
                .values(
                    platform=self.platform,
                    user_id=user_id,
                    body=body,
                    created_at=self.clock.now(),
                    delivered_at=None,
                )
                .returning(held_messages.c.id)
            ).scalar_one()
        return int(held_id)

    def held(self, user_id: str) -> list[tuple[int, str]]:
        with self._begin() as db:
            rows = db.execute(
                select(held_messages.c.id, held_messages.c.body)
                .where(
                    held_messages.c.platform == self.platform,
                    held_messages.c.user_id == user_id,
                    held_messages.c.delivered_at.is_(None),
                )
                .order_by(held_messages.c.id)
            ).all()
        return [(row.id, row.body) for row in rows]

    def holding(self) -> set[str]:
        with self._begin() as db:
            rows = db.execute(
                select(held_messages.c.user_id)
                .where(
                    held_messages.c.platform == self.platform,
                    held_messages.c.delivered_at.is_(None),
                )
                .distinct()
            ).scalars()
            return {str(user_id) for user_id in rows}

    def delivered(self, held_id: int) -> None:
        with self._begin() as db:
            db.execute(
                update(held_messages)
                .where(held_messages.c.id == held_id)
                .values(delivered_at=self.clock.now())
            )

    # one process at a time
    def take_lease(self, name: str) -> bool:
        """PostgreSQL: a session advisory lock on a connection kept for it; SQLite: an
        exclusive ``flock`` on a file beside the database. Either ends with the process."""
        if name in self._leases:
            return True
        key = f"letsbot:{self.platform}:{name}"
        if self.engine.dialect.name == "postgresql":
            number = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
            with busy_when_unreachable():
                connection = self.engine.connect()
                try:
                    got = connection.execute(
                        text("SELECT pg_try_advisory_lock(:n)"), {"n": number}
                    ).scalar_one()
                    connection.commit()
                except BaseException:
                    connection.invalidate()
                    connection.close()
                    raise
            if not got:
                connection.close()
                return False

            def unlock() -> None:
                try:
                    connection.execute(text("SELECT pg_advisory_unlock(:n)"), {"n": number})
                    connection.commit()
                    connection.close()
                except Exception:  # the server went away: the lock went with it
                    connection.invalidate()
                    connection.close()

            self._leases[name] = unlock
            return True
        database = self.engine.url.database
        if not database or database == ":memory:":
            self._leases[name] = lambda: None  # one process by definition
            return True
        handle = open(f"{database}.{self.platform}-{name}.lock", "a")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._leases[name] = handle.close
        return True

    def drop_lease(self, name: str) -> None:
        release = self._leases.pop(name, None)
        if release is not None:
            release()

    # the core's view of a person
    def profile(self, user_id: str) -> Profile | None:
        with self._begin() as db:
            row = db.execute(
                select(identities.c.display_name, members.c.name, members.c.language)
                .join(members, members.c.id == identities.c.member_id)
                .where(identities.c.platform == self.platform, identities.c.user_id == user_id)
            ).first()
        if row is None:
            return None
        return Profile(row.name or row.display_name, row.language)
