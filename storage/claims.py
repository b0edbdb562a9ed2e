"""Claims of incoming events and of scheduled work: each done once, by one process."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import (
    Connection,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from storage.rows import dialect_insert
from storage.tables import (
    digests,
    listing_notices,
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


class SqlClaims:
    """letsbot.ports.Claims on a connection inside the unit of work's transaction."""

    def __init__(self, connection: Connection) -> None:
        self.db = connection
        self._claim = (
            _CLAIM_POSTGRESQL if connection.dialect.name == "postgresql" else _CLAIM_SQLITE
        )

    def claim_event(self, key: str, at: datetime) -> bool:
        return self.db.execute(self._claim, {"key": key, "handled_at": at}).rowcount == 1

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
