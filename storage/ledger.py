"""Transfers and the cached balances they move."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Row,
    bindparam,
    case,
    exists,
    func,
    insert,
    select,
    text,
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
# Both balances in one statement: the payer's down, the receiver's up.
_MOVE = (
    update(members)
    .where(members.c.id.in_([bindparam("debit_id"), bindparam("credit_id")]))
    .values(
        balance=members.c.balance
        + case(
            (members.c.id == bindparam("debit_id"), -bindparam("moved", type_=Integer)),
            else_=bindparam("moved", type_=Integer),
        )
    )
)
_TRANSFER_COLUMNS = (
    "payer_id",
    "receiver_id",
    "amount",
    "description",
    "kind",
    "created_at",
    "booked_by_id",
    "reverses_id",
    "event_key",
)
# PostgreSQL moves the balances inside the INSERT's statement (a data-modifying
# WITH): one round trip instead of two. SQLite runs both statements.
# Its INSERT takes its values by other names than the columns': a parameter named
# after a column of members (created_at) would be SET by the UPDATE too.
_ADD_AND_MOVE = (
    insert(transfers)
    .values({column: bindparam(f"new_{column}") for column in _TRANSFER_COLUMNS})
    .add_cte(_MOVE.cte("moved"))
    .returning(transfers.c.id)
)
# The same with the number given (an import keeping the source's numbers).
_ADD_AND_MOVE_AS = (
    insert(transfers)
    .values(
        {column: bindparam(f"new_{column}") for column in ("id", *_TRANSFER_COLUMNS)},
    )
    .add_cte(_MOVE.cte("moved"))
    .returning(transfers.c.id)
)
# Many at once (a mass payment): one executemany each, whatever their number.
_ADD_MANY = insert(transfers)
_MOVE_ONE = (
    update(members)
    .where(members.c.id == bindparam("member"))
    .values(balance=members.c.balance + bindparam("delta", type_=Integer))
)
# PostgreSQL: the same as two statements with arrays, whatever their number
# (an executemany of 10,000 rows costs the driver more than the server).
_ADD_MANY_PG = text(
    "INSERT INTO transfers"
    " (payer_id, receiver_id, amount, description, kind, created_at, booked_by_id, event_key)"
    " SELECT u.payer, u.receiver, u.amount, :description, :kind, :at, :booked_by, u.event_key"
    " FROM unnest(CAST(:payers AS integer[]), CAST(:receivers AS integer[]),"
    " CAST(:amounts AS bigint[]), CAST(:keys AS varchar[]))"
    " AS u(payer, receiver, amount, event_key)"
).bindparams(bindparam("at", type_=transfers.c.created_at.type))
_MOVE_MANY_PG = text(
    "UPDATE members SET balance = members.balance + d.delta"
    " FROM unnest(CAST(:ids AS integer[]), CAST(:deltas AS bigint[])) AS d(id, delta)"
    " WHERE members.id = d.id"
)
_TRANSFER = select(transfers).where(transfers.c.id == bindparam("transfer_id"))


def _history() -> Any:
    """A member's transfers, newest first: two index range scans instead of one OR,
    so a page costs the same however long the history is. Built once: building
    this union costs more than running it."""
    paid, received = (
        select(transfers)
        .where(side == bindparam("member_id"))
        .order_by(transfers.c.id.desc())
        .limit(bindparam("wanted", type_=Integer))
        for side in (transfers.c.payer_id, transfers.c.receiver_id)
    )
    both = union_all(paid.subquery().select(), received.subquery().select()).subquery()
    return (
        select(both)
        .order_by(both.c.id.desc())
        .offset(bindparam("skip", type_=Integer))
        .limit(bindparam("take", type_=Integer))
    )


_HISTORY = _history()
_REVERSAL_OF = select(transfers).where(transfers.c.reverses_id == bindparam("transfer_id"))
_BY_EVENT_KEY = select(transfers).where(transfers.c.event_key == bindparam("event_key"))
_REVERSAL = transfers.alias("reversal")
# Among the payer's newest transfers only (ix_transfers_payer, no sort): bounded
# however long their history.
_NEWEST_PAID = (
    select(transfers)
    .where(transfers.c.payer_id == bindparam("payer_id"))
    .order_by(transfers.c.id.desc())
    .limit(bindparam("lookback", type_=Integer))
    .subquery()
)
_STANDING_SINCE = (
    select(_NEWEST_PAID)
    .where(
        _NEWEST_PAID.c.receiver_id == bindparam("receiver_id"),
        _NEWEST_PAID.c.amount == bindparam("amount"),
        _NEWEST_PAID.c.kind.in_(bindparam("kinds", expanding=True)),
        _NEWEST_PAID.c.created_at >= bindparam("since"),
        ~exists().where(_REVERSAL.c.reverses_id == _NEWEST_PAID.c.id),
    )
    .order_by(_NEWEST_PAID.c.id.desc())
)


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
        transfer_id: int | None = None,
    ) -> Transfer:
        row: dict[str, object] = {
            "payer_id": payer_id,
            "receiver_id": receiver_id,
            "amount": amount,
            "description": description,
            "kind": kind.value,
            "created_at": at,
            "booked_by_id": booked_by_id,
            "reverses_id": reverses_id,
            "event_key": event_key,
        }
        if transfer_id is not None:
            row["id"] = transfer_id
        move = {"debit_id": payer_id, "credit_id": receiver_id, "moved": amount}
        if self.db.dialect.name == "postgresql":
            values = {f"new_{column}": value for column, value in row.items()}
            adding = _ADD_AND_MOVE if transfer_id is None else _ADD_AND_MOVE_AS
            transfer_id = self.db.execute(adding, {**values, **move}).scalar_one()
        else:
            transfer_id = self.db.execute(_ADD_TRANSFER, row).scalar_one()
            self.db.execute(_MOVE, move)
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

    def add_transfers(
        self,
        lines: Sequence[tuple[int, int, int, str]],
        *,
        description: str,
        kind: TransferKind,
        at: datetime,
        booked_by_id: int | None,
    ) -> None:
        if not lines:
            return
        if self.db.dialect.name == "postgresql":
            self._add_many_pg(lines, description, kind, at, booked_by_id)
            return
        rows = []
        delta: dict[int, int] = {}
        for payer_id, receiver_id, amount, event_key in lines:
            rows.append(
                {
                    "payer_id": payer_id,
                    "receiver_id": receiver_id,
                    "amount": amount,
                    "description": description,
                    "kind": kind.value,
                    "created_at": at,
                    "booked_by_id": booked_by_id,
                    "reverses_id": None,
                    "event_key": event_key,
                }
            )
            delta[payer_id] = delta.get(payer_id, 0) - amount
            delta[receiver_id] = delta.get(receiver_id, 0) + amount
        self.db.execute(_ADD_MANY, rows)
        moves = [{"member": m, "delta": d} for m, d in sorted(delta.items()) if d]
        if moves:
            self.db.execute(_MOVE_ONE, moves)

    def _add_many_pg(
        self,
        lines: Sequence[tuple[int, int, int, str]],
        description: str,
        kind: TransferKind,
        at: datetime,
        booked_by_id: int | None,
    ) -> None:
        payers, receivers, amounts, keys = (list(column) for column in zip(*lines, strict=True))
        self.db.execute(
            _ADD_MANY_PG,
            {
                "payers": payers,
                "receivers": receivers,
                "amounts": amounts,
                "keys": keys,
                "description": description,
                "kind": kind.value,
                "at": at,
                "booked_by": booked_by_id,
            },
        )
        delta: dict[int, int] = {}
        for payer_id, receiver_id, amount, _ in lines:
            delta[payer_id] = delta.get(payer_id, 0) - amount
            delta[receiver_id] = delta.get(receiver_id, 0) + amount
        moved = sorted((m, d) for m, d in delta.items() if d)
        if moved:
            ids, deltas = (list(column) for column in zip(*moved, strict=True))
            self.db.execute(_MOVE_MANY_PG, {"ids": ids, "deltas": deltas})

    def transfer(self, transfer_id: int) -> Transfer | None:
        row = self.db.execute(_TRANSFER, {"transfer_id": transfer_id}).first()
        return _transfer(row) if row else None

    def last_transfer_id(self) -> int | None:
        return self.db.execute(select(func.max(transfers.c.id))).scalar()

    def reversal_of(self, transfer_id: int) -> Transfer | None:
        row = self.db.execute(_REVERSAL_OF, {"transfer_id": transfer_id}).first()
        return _transfer(row) if row else None

    def transfer_by_event_key(self, event_key: str) -> Transfer | None:
        row = self.db.execute(_BY_EVENT_KEY, {"event_key": event_key}).first()
        return _transfer(row) if row else None

    def history(self, member_id: int, offset: int, limit: int) -> list[Transfer]:
        values = {"member_id": member_id, "wanted": offset + limit, "skip": offset, "take": limit}
        return [_transfer(row) for row in self.db.execute(_HISTORY, values)]

    def count_transfers(self, member_id: int) -> int:
        paid = select(func.count()).where(transfers.c.payer_id == member_id)
        received = select(func.count()).where(transfers.c.receiver_id == member_id)
        return int(self.db.execute(paid).scalar_one() + self.db.execute(received).scalar_one())

    def standing_since(
        self,
        payer_id: int,
        receiver_id: int,
        amount: int,
        kinds: Sequence[TransferKind],
        since: datetime,
        lookback: int,
    ) -> list[Transfer]:
        values = {
            "payer_id": payer_id,
            "receiver_id": receiver_id,
            "amount": amount,
            "kinds": [kind.value for kind in kinds],
            "since": since,
            "lookback": lookback,
        }
        return [_transfer(row) for row in self.db.execute(_STANDING_SINCE, values)]
