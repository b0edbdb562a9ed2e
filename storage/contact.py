"""Private messages between members, and who blocks whom."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Connection,
    bindparam,
    delete,
    insert,
    select,
)

from letsbot.domain import (
    Member,
)
from storage.rows import dialect_insert, member_row
from storage.tables import (
    blocks,
    direct_messages,
    members,
)

_IS_BLOCKED = select(blocks.c.at).where(
    blocks.c.member_id == bindparam("member_id"), blocks.c.blocked_id == bindparam("blocked_id")
)


class SqlContact:
    """letsbot.ports.Contact on a connection inside the unit of work's transaction."""

    def __init__(self, connection: Connection) -> None:
        self.db = connection

    def add_message(
        self, *, sender_id: int, receiver_id: int, listing_id: int | None, at: datetime
    ) -> None:
        self.db.execute(
            insert(direct_messages).values(
                sender_id=sender_id, receiver_id=receiver_id, listing_id=listing_id, sent_at=at
            )
        )

    def messages_since(self, sender_id: int, since: datetime) -> list[datetime]:
        rows = self.db.execute(
            select(direct_messages.c.sent_at)
            .where(direct_messages.c.sender_id == sender_id, direct_messages.c.sent_at > since)
            .order_by(direct_messages.c.sent_at)
        )
        return list(rows.scalars())

    def is_blocked(self, member_id: int, blocked_id: int) -> bool:
        values = {"member_id": member_id, "blocked_id": blocked_id}
        return self.db.execute(_IS_BLOCKED, values).first() is not None

    def set_block(self, member_id: int, blocked_id: int, blocked: bool, at: datetime) -> bool:
        if not blocked:
            result = self.db.execute(
                delete(blocks).where(
                    blocks.c.member_id == member_id, blocks.c.blocked_id == blocked_id
                )
            )
            return result.rowcount == 1
        statement = (
            dialect_insert(self.db, blocks)
            .values(member_id=member_id, blocked_id=blocked_id, at=at)
            .on_conflict_do_nothing()
            .execution_options(preserve_rowcount=True)
        )
        return self.db.execute(statement).rowcount == 1

    def blocked_by(self, member_id: int) -> list[Member]:
        rows = self.db.execute(
            select(members)
            .join(blocks, blocks.c.blocked_id == members.c.id)
            .where(blocks.c.member_id == member_id)
            .order_by(members.c.number)
        )
        return [member_row(row) for row in rows]
