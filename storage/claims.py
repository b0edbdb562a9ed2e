"""Claims of incoming events and of scheduled work: each done once, by one process."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    func,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from letsbot.domain import Identity, Member
from storage.members import SqlMembers
from storage.rows import dialect_insert, member_row
from storage.tables import (
    digests,
    identities,
    listing_notices,
    members,
    processed,
    proposals,
    reminders,
)

# The statements of every message, built once. SQLAlchemy caches their compiled
# SQL either way, but building a statement and computing its cache key costs
# more than SQLite takes to run it; a statement object remembers its key.
# SQLAlchemy 2.1 keeps an INSERT's rowcount only when asked to (psycopg gave -1,
# so every message on PostgreSQL looked like a duplicate).
_CLAIM_SQLITE = (
    sqlite.insert(processed).on_conflict_do_nothing().execution_options(preserve_rowcount=True)
)


_CLAIM_POSTGRESQL = (
    postgresql.insert(processed).on_conflict_do_nothing().execution_options(preserve_rowcount=True)
)


def _claim_from() -> Any:
    """PostgreSQL: the claim of a message and its sender's member row in one round
    trip. One row: whether the claim took, and the member's columns (NULL if none)."""
    claim = (
        postgresql.insert(processed)
        .values(key=bindparam("key"), handled_at=bindparam("handled_at"))
        .on_conflict_do_nothing()
        .returning(processed.c.key)
        .cte("claim")
    )
    sender = (
        select(members)
        .join(identities, identities.c.member_id == members.c.id)
        .where(
            identities.c.platform == bindparam("platform"),
            identities.c.user_id == bindparam("user_id"),
        )
        .subquery("sender")
    )
    one = select(literal(1).label("one")).subquery("one")
    claimed = select(func.count()).select_from(claim).scalar_subquery().label("claimed")
    return select(claimed, *sender.c).select_from(one.outerjoin(sender, true())).add_cte(claim)


_CLAIM_FROM_POSTGRESQL = _claim_from()


class SqlClaims:
    """letsbot.ports.Claims on a connection inside the unit of work's transaction."""

    def __init__(self, connection: Connection) -> None:
        self.db = connection
        self._claim = (
            _CLAIM_POSTGRESQL if connection.dialect.name == "postgresql" else _CLAIM_SQLITE
        )

    def claim_event(self, key: str, at: datetime) -> bool:
        return self.db.execute(self._claim, {"key": key, "handled_at": at}).rowcount == 1

    def claim_event_from(
        self, key: str, at: datetime, identity: Identity
    ) -> tuple[bool, Member | None]:
        if self.db.dialect.name != "postgresql":
            return self.claim_event(key, at), SqlMembers(self.db).member_by_identity(identity)
        values = {
            "key": key,
            "handled_at": at,
            "platform": identity.platform,
            "user_id": identity.user_id,
        }
        row = self.db.execute(_CLAIM_FROM_POSTGRESQL, values).one()
        return bool(row.claimed), member_row(row) if row.id is not None else None

    def claim_reminder(
        self, event_id: int, offset_seconds: int, due_at: datetime, at: datetime, outcome: str
    ) -> bool:
        dialect_insert = (
            postgresql.insert if self.db.dialect.name == "postgresql" else sqlite.insert
        )
        statement = (
            dialect_insert(reminders)
            .values(
                event_id=event_id,
                offset_seconds=offset_seconds,
                due_at=due_at,
                handled_at=at,
                outcome=outcome,
            )
            .on_conflict_do_nothing()
            .execution_options(preserve_rowcount=True)
        )
        return self.db.execute(statement).rowcount == 1

    def handled_reminders(self, event_ids: Sequence[int]) -> set[tuple[int, int, datetime]]:
        if not event_ids:
            return set()
        rows = self.db.execute(
            select(reminders.c.event_id, reminders.c.offset_seconds, reminders.c.due_at).where(
                reminders.c.event_id.in_(list(event_ids))
            )
        )
        return {(row[0], row[1], row[2]) for row in rows}

    def claim_notice(
        self, listing_id: int, expires_at: datetime, at: datetime, outcome: str
    ) -> bool:
        statement = (
            dialect_insert(self.db, listing_notices)
            .values(listing_id=listing_id, expires_at=expires_at, handled_at=at, outcome=outcome)
            .on_conflict_do_nothing()
            .execution_options(preserve_rowcount=True)
        )
        return self.db.execute(statement).rowcount == 1

    def digest_handled(self, due_at: datetime) -> bool:
        found = self.db.execute(select(digests.c.id).where(digests.c.due_at == due_at)).first()
        return found is not None

    def claim_digest(self, due_at: datetime, at: datetime, outcome: str, listings: int) -> bool:
        statement = (
            dialect_insert(self.db, digests)
            .values(due_at=due_at, handled_at=at, outcome=outcome, listings=listings)
            .on_conflict_do_nothing()
            .execution_options(preserve_rowcount=True)
        )
        return self.db.execute(statement).rowcount == 1

    def claim_proposal_reminder(self, proposal_id: int, at: datetime) -> bool:
        result = self.db.execute(
            update(proposals)
            .where(proposals.c.id == proposal_id, proposals.c.reminded_at.is_(None))
            .values(reminded_at=at)
        )
        return result.rowcount == 1
