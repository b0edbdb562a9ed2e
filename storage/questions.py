"""Open questions (a payment to confirm, a request to accept ...)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    bindparam,
    insert,
    select,
    update,
)

from letsbot.domain import (
    Pending,
    PendingAction,
    PendingStatus,
)
from storage.tables import (
    pending,
)

_ADD_PENDING = insert(pending).returning(pending.c.id)


_OPEN_PENDING = (
    select(pending)
    .where(
        pending.c.asked_id == bindparam("asked_id"),
        pending.c.status == PendingStatus.OPEN.value,
    )
    .order_by(pending.c.id)
)


_PENDING = select(pending).where(pending.c.id == bindparam("pending_id"))


_NEWEST_IN_GROUP = (
    select(pending)
    .where(
        pending.c.asked_id == bindparam("asked_id"),
        pending.c.platform == bindparam("platform"),
        pending.c.chat_id == bindparam("chat_id"),
    )
    .order_by(pending.c.id.desc())
    .limit(1)
)
_NEWEST_DIRECT = (
    select(pending)
    .where(pending.c.asked_id == bindparam("asked_id"), pending.c.chat_id.is_(None))
    .order_by(pending.c.id.desc())
    .limit(1)
)


_ANSWERED_SINCE = (
    select(pending)
    .where(
        pending.c.action == bindparam("action"),
        pending.c.status == PendingStatus.ACCEPTED.value,
        pending.c.created_at >= bindparam("since"),
    )
    .order_by(pending.c.id.desc())
    .limit(bindparam("limit"))
)


# The text is kept only to show an open question again; it names people.
_CLOSE_PENDING = (
    update(pending)
    .where(pending.c.id == bindparam("pending_id"), pending.c.status == PendingStatus.OPEN.value)
    .values(status=bindparam("new_status"), text=None)
)


def _pending(row: Row[Any]) -> Pending:
    return Pending(
        id=row.id,
        action=PendingAction(row.action),
        asked_id=row.asked_id,
        requested_by_id=row.requested_by_id,
        payer_id=row.payer_id,
        receiver_id=row.receiver_id,
        amount=row.amount,
        transfer_id=row.transfer_id,
        description=row.description,
        created_at=row.created_at,
        expires_at=row.expires_at,
        status=PendingStatus(row.status),
        data=row.data,
        platform=row.platform,
        chat_id=row.chat_id,
        text=row.text,
    )


class SqlQuestions:
    """letsbot.ports.Questions on a connection inside the unit of work's transaction."""

    def __init__(self, connection: Connection) -> None:
        self.db = connection

    def add_pending(
        self,
        *,
        action: PendingAction,
        asked_id: int,
        requested_by_id: int,
        payer_id: int | None,
        receiver_id: int | None,
        amount: int | None,
        transfer_id: int | None = None,
        description: str,
        at: datetime,
        expires_at: datetime,
        data: str | None = None,
        platform: str | None = None,
        chat_id: str | None = None,
        text: str | None = None,
    ) -> Pending:
        values = {
            "action": action.value,
            "asked_id": asked_id,
            "requested_by_id": requested_by_id,
            "payer_id": payer_id,
            "receiver_id": receiver_id,
            "amount": amount,
            "transfer_id": transfer_id,
            "description": description,
            "created_at": at,
            "expires_at": expires_at,
            "status": PendingStatus.OPEN.value,
            "data": data,
            "platform": platform,
            "chat_id": chat_id,
            "text": text,
        }
        pending_id = self.db.execute(_ADD_PENDING, values).scalar_one()
        return Pending(
            pending_id,
            action,
            asked_id,
            requested_by_id,
            payer_id,
            receiver_id,
            amount,
            transfer_id,
            description,
            at,
            expires_at,
            PendingStatus.OPEN,
            data,
            platform,
            chat_id,
            text,
        )

    def open_pending(self, asked_id: int) -> list[Pending]:
        rows = self.db.execute(_OPEN_PENDING, {"asked_id": asked_id}).all()
        return [_pending(row) for row in rows]

    def newest_asked(self, asked_id: int, platform: str, chat_id: str | None) -> Pending | None:
        if chat_id is None:
            row = self.db.execute(_NEWEST_DIRECT, {"asked_id": asked_id}).first()
        else:
            values = {"asked_id": asked_id, "platform": platform, "chat_id": chat_id}
            row = self.db.execute(_NEWEST_IN_GROUP, values).first()
        return _pending(row) if row else None

    def answered_since(self, action: PendingAction, since: datetime, limit: int) -> list[Pending]:
        values = {"action": action.value, "since": since, "limit": limit}
        return [_pending(row) for row in self.db.execute(_ANSWERED_SINCE, values)]

    def pending(self, pending_id: int) -> Pending | None:
        row = self.db.execute(_PENDING, {"pending_id": pending_id}).first()
        return _pending(row) if row else None

    def close_pending(self, pending_id: int, status: PendingStatus) -> bool:
        result = self.db.execute(
            _CLOSE_PENDING, {"pending_id": pending_id, "new_status": status.value}
        )
        return result.rowcount == 1
