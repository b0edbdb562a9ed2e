"""Transfers and the cached balances they move."""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    bindparam,
    func,
    insert,
    select,
    union_all,
    update,
)

from letsbot.domain import (
    Transfer,
    TransferKind,
)
from storage.tables import (
    members,
    transfers,
)

_ADD_TRANSFER = insert(transfers).returning(transfers.c.id)


_DEBIT = (
    update(members)
    .where(members.c.id == bindparam("member_id"))
    .values(balance=members.c.balance - bindparam("amount"))
)


_CREDIT = (
    update(members)
    .where(members.c.id == bindparam("member_id"))
    .values(balance=members.c.balance + bindparam("amount"))
)


_TRANSFER = select(transfers).where(transfers.c.id == bindparam("transfer_id"))


_REVERSAL_OF = select(transfers).where(transfers.c.reverses_id == bindparam("transfer_id"))


def _transfer(row: Row[Any]) -> Transfer:
    return Transfer(
        id=row.id,
        payer_id=row.payer_id,
        receiver_id=row.receiver_id,
        amount=row.amount,
        description=row.description,
        kind=TransferKind(row.kind),
        created_at=row.created_at,
        booked_by_id=row.booked_by_id,
        reverses_id=row.reverses_id,
    )


class SqlLedger:
    """letsbot.ports.Ledger on a connection inside the unit of work's transaction."""

    def __init__(self, connection: Connection) -> None:
        self.db = connection

    def add_transfer(
        self,
        *,
        payer_id: int,
        receiver_id: int,
        amount: int,
        description: str,
        kind: TransferKind,
        at: datetime,
        booked_by_id: int | None,
        event_key: str,
        reverses_id: int | None = None,
    ) -> Transfer:
        transfer_id = self.db.execute(
            _ADD_TRANSFER,
            {
                "payer_id": payer_id,
                "receiver_id": receiver_id,
                "amount": amount,
                "description": description,
                "kind": kind.value,
                "created_at": at,
                "booked_by_id": booked_by_id,
                "reverses_id": reverses_id,
                "event_key": event_key,
            },
        ).scalar_one()
        self.db.execute(_DEBIT, {"member_id": payer_id, "amount": amount})
        self.db.execute(_CREDIT, {"member_id": receiver_id, "amount": amount})
        return Transfer(
            transfer_id,
            payer_id,
            receiver_id,
            amount,
            description,
            kind,
            at,
            booked_by_id,
            reverses_id,
        )

    def transfer(self, transfer_id: int) -> Transfer | None:
        row = self.db.execute(_TRANSFER, {"transfer_id": transfer_id}).first()
        return _transfer(row) if row else None

    def reversal_of(self, transfer_id: int) -> Transfer | None:
        row = self.db.execute(_REVERSAL_OF, {"transfer_id": transfer_id}).first()
        return _transfer(row) if row else None

    def history(self, member_id: int, offset: int, limit: int) -> list[Transfer]:
        # Two index range scans instead of one OR, so a page costs the same
        # however long the history is.
        wanted = offset + limit
        paid = (
            select(transfers)
            .where(transfers.c.payer_id == member_id)
            .order_by(transfers.c.id.desc())
            .limit(wanted)
        )
        received = (
            select(transfers)
            .where(transfers.c.receiver_id == member_id)
            .order_by(transfers.c.id.desc())
            .limit(wanted)
        )
        both = union_all(paid.subquery().select(), received.subquery().select()).subquery()
        rows = self.db.execute(select(both).order_by(both.c.id.desc()).offset(offset).limit(limit))
        return [_transfer(row) for row in rows]

    def count_transfers(self, member_id: int) -> int:
        paid = select(func.count()).where(transfers.c.payer_id == member_id)
        received = select(func.count()).where(transfers.c.receiver_id == member_id)
        return int(self.db.execute(paid).scalar_one() + self.db.execute(received).scalar_one())
