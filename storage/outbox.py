"""The outbox: messages to send, written in the transaction of their effect."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    delete,
    insert,
    or_,
    select,
    text,
    update,
)

from storage.tables import (
    outbox,
)

# Several rows in one statement (insertmanyvalues). Its RETURNING rows come in
# no promised order: each id is matched to its message by the body (the same
# body twice is the same message, whichever id each copy gets).
_ADD_OUTGOING = insert(outbox).returning(outbox.c.id, outbox.c.body)
# PostgreSQL, for many (a mass payment tells each member): one statement with
# arrays costs the driver far less than a statement of many VALUES rows.
_ADD_MANY_PG = text(
    "INSERT INTO outbox (platform, body, created_at, owner, lease_until, attempts)"
    " SELECT u.platform, u.body, :at, :owner, :lease_until, 1"
    " FROM unnest(CAST(:platforms AS varchar[]), CAST(:bodies AS text[])) AS u(platform, body)"
    " RETURNING id, body"
).bindparams(
    bindparam("at", type_=outbox.c.created_at.type),
    bindparam("lease_until", type_=outbox.c.lease_until.type),
)
MANY = 100  # from this many messages on, PostgreSQL takes them as arrays


class SqlOutbox:
    """letsbot.ports.Outbox on a connection inside the unit of work's transaction."""

    def __init__(self, connection: Connection) -> None:
        self.db = connection

    def add_outgoing(
        self,
        *,
        messages: Sequence[tuple[str | None, str]],
        owner: str,
        at: datetime,
        lease_until: datetime,
    ) -> list[int]:
        if not messages:
            return []
        ids: dict[str, list[int]] = {}
        if self.db.dialect.name == "postgresql" and len(messages) >= MANY:
            values = {
                "platforms": [platform for platform, _ in messages],
                "bodies": [body for _, body in messages],
                "at": at,
                "owner": owner,
                "lease_until": lease_until,
            }
            for row in self.db.execute(_ADD_MANY_PG, values):
                ids.setdefault(row.body, []).append(int(row.id))
            return [ids[body].pop() for _, body in messages]
        rows = [
            {
                "platform": platform,
                "body": body,
                "created_at": at,
                "owner": owner,
                "lease_until": lease_until,
                "attempts": 1,
            }
            for platform, body in messages
        ]
        for row in self.db.execute(_ADD_OUTGOING, rows):
            ids.setdefault(row.body, []).append(int(row.id))
        return [ids[body].pop() for _, body in messages]

    def claim_outgoing(
        self,
        *,
        owner: str,
        platforms: Sequence[str],
        now: datetime,
        lease_until: datetime,
        since: datetime,
        max_attempts: int,
        limit: int,
    ) -> list[tuple[int, str]]:
        unsent = and_(outbox.c.sent_at.is_(None), outbox.c.lease_until < now)
        candidates = (
            select(outbox.c.id)
            .where(
                unsent,
                outbox.c.created_at >= since,
                outbox.c.attempts < max_attempts,
                or_(outbox.c.platform.is_(None), outbox.c.platform.in_(list(platforms))),
            )
            .order_by(outbox.c.id)
            .limit(limit)
        )
        ids = [row[0] for row in self.db.execute(candidates)]
        if not ids:
            return []
        # The lease is checked again on the row itself: of two processes that saw
        # the same row, the second finds it leased and leaves it.
        claimed = self.db.execute(
            update(outbox)
            .where(outbox.c.id.in_(ids), unsent)
            .values(owner=owner, lease_until=lease_until, attempts=outbox.c.attempts + 1)
            .returning(outbox.c.id, outbox.c.body)
        )
        return sorted((int(row.id), str(row.body)) for row in claimed)

    def renew_outgoing(self, owner: str, ids: Sequence[int], lease_until: datetime) -> None:
        self.db.execute(
            update(outbox)
            .where(outbox.c.id.in_(list(ids)), outbox.c.owner == owner, outbox.c.sent_at.is_(None))
            .values(lease_until=lease_until)
        )

    def mark_outgoing_sent(self, ids: Sequence[int], at: datetime) -> None:
        self.db.execute(
            update(outbox)
            .where(outbox.c.id.in_(list(ids)), outbox.c.sent_at.is_(None))
            .values(sent_at=at, body="")  # what was said is not kept: it names people
        )

    def give_up_outgoing(self, *, now: datetime, since: datetime, max_attempts: int) -> int:
        stale = or_(outbox.c.created_at < since, outbox.c.attempts >= max_attempts)
        return int(
            self.db.execute(
                update(outbox)
                .where(outbox.c.sent_at.is_(None), outbox.c.lease_until < now, stale)
                .values(sent_at=now, body="")
            ).rowcount
        )

    def purge_outgoing(self, before: datetime) -> int:
        return int(self.db.execute(delete(outbox).where(outbox.c.created_at < before)).rowcount)
