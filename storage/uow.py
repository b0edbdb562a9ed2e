"""The unit of work: one transaction per incoming message, holding the write lock."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    Table,
    bindparam,
    func,
    insert,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError

from letsbot.domain import (
    Event,
    EventKind,
    EventStatus,
    Identity,
    Member,
    Pending,
    PendingAction,
    PendingStatus,
    Role,
    Status,
    Transfer,
    TransferKind,
)
from letsbot.errors import Busy
from storage.models import (
    EventRow,
    IdentityRow,
    MemberRow,
    PendingRow,
    ProcessedEventRow,
    ReminderRow,
    RsvpRow,
    TransferRow,
)

members = cast(Table, MemberRow.__table__)
identities = cast(Table, IdentityRow.__table__)
transfers = cast(Table, TransferRow.__table__)
pending = cast(Table, PendingRow.__table__)
processed = cast(Table, ProcessedEventRow.__table__)
events = cast(Table, EventRow.__table__)
rsvps = cast(Table, RsvpRow.__table__)
reminders = cast(Table, ReminderRow.__table__)

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
_MEMBER = select(members).where(members.c.id == bindparam("member_id"))
_MEMBER_BY_NUMBER = select(members).where(members.c.number == bindparam("number"))
_MEMBER_BY_IDENTITY = (
    select(members)
    .join(identities, identities.c.member_id == members.c.id)
    .where(
        identities.c.platform == bindparam("platform"),
        identities.c.user_id == bindparam("user_id"),
    )
)
_IDENTITIES = (
    select(identities.c.platform, identities.c.user_id)
    .where(identities.c.member_id == bindparam("member_id"))
    .order_by(identities.c.id.desc())
)
_LOCK_MEMBERS = (
    select(members)
    .where(members.c.id.in_(bindparam("member_ids", expanding=True)))
    .order_by(members.c.id)
    .with_for_update()
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
_ADD_PENDING = insert(pending).returning(pending.c.id)
# PostgreSQL's foreign-key checks lock the referenced members (FOR KEY SHARE)
# in column order; taking those locks first, in id order, keeps to the one
# lock order every transaction uses.
_KEY_SHARE_MEMBERS = (
    select(members.c.id)
    .where(members.c.id.in_(bindparam("member_ids", expanding=True)))
    .order_by(members.c.id)
    .with_for_update(read=True, key_share=True)
)
_LATEST_OPEN_PENDING = (
    select(pending)
    .where(
        pending.c.asked_id == bindparam("asked_id"),
        pending.c.status == PendingStatus.OPEN.value,
    )
    .order_by(pending.c.id.desc())
    .limit(1)
)
_SUPERSEDE_OPEN = (
    update(pending)
    .where(
        pending.c.asked_id == bindparam("asked"),
        pending.c.requested_by_id == bindparam("requested_by"),
        pending.c.status == PendingStatus.OPEN.value,
    )
    .values(status=PendingStatus.SUPERSEDED.value)
)
_CLOSE_PENDING = (
    update(pending)
    .where(pending.c.id == bindparam("pending_id"), pending.c.status == PendingStatus.OPEN.value)
    .values(status=bindparam("new_status"))
)


def _member(row: Row[Any]) -> Member:
    return Member(
        id=row.id,
        number=row.number,
        name=row.name,
        language=row.language,
        status=Status(row.status),
        role=Role(row.role),
        balance=row.balance,
        min_balance=row.min_balance,
        max_balance=row.max_balance,
        is_group_account=row.is_group_account,
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


def _event(row: Row[Any]) -> Event:
    return Event(
        id=row.id,
        series_id=row.series_id,
        kind=EventKind(row.kind),
        title=row.title,
        place=row.place,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        status=EventStatus(row.status),
        cancel_reason=row.cancel_reason,
        created_by_id=row.created_by_id,
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
    )


class SqlStore:
    """letsbot.ports.Store on one SQLAlchemy connection inside a transaction."""

    def __init__(self, connection: Connection) -> None:
        self.db = connection
        self._claim = (
            _CLAIM_POSTGRESQL if connection.dialect.name == "postgresql" else _CLAIM_SQLITE
        )

    def claim_event(self, key: str, at: datetime) -> bool:
        return self.db.execute(self._claim, {"key": key, "handled_at": at}).rowcount == 1

    # members
    def member(self, member_id: int) -> Member | None:
        row = self.db.execute(_MEMBER, {"member_id": member_id}).first()
        return _member(row) if row else None

    def member_by_number(self, number: int) -> Member | None:
        row = self.db.execute(_MEMBER_BY_NUMBER, {"number": number}).first()
        return _member(row) if row else None

    def member_by_identity(self, identity: Identity) -> Member | None:
        row = self.db.execute(
            _MEMBER_BY_IDENTITY, {"platform": identity.platform, "user_id": identity.user_id}
        ).first()
        return _member(row) if row else None

    def group_account(self) -> Member:
        row = self.db.execute(select(members).where(members.c.is_group_account)).one()
        return _member(row)

    def members(self, statuses: Iterable[Status]) -> list[Member]:
        rows = self.db.execute(
            select(members)
            .where(members.c.status.in_([s.value for s in statuses]))
            .order_by(members.c.number)
        )
        return [_member(row) for row in rows]

    def add_member(
        self, *, name: str, language: str | None, status: Status, role: Role, at: datetime
    ) -> Member:
        # The group account's row is the lock that serialises numbering on PostgreSQL.
        self.lock_members([self.group_account().id])
        number = self.db.execute(select(func.max(members.c.number))).scalar_one() + 1
        member_id = self.db.execute(
            insert(members)
            .values(
                number=number,
                name=name,
                language=language,
                status=status.value,
                role=role.value,
                is_group_account=False,
                balance=0,
                created_at=at,
            )
            .returning(members.c.id)
        ).scalar_one()
        found = self.member(member_id)
        assert found is not None
        return found

    def update_member(
        self,
        member_id: int,
        *,
        status: Status | None = None,
        role: Role | None = None,
        language: str | None = None,
        limits: tuple[int | None, int | None] | None = None,
    ) -> Member:
        values: dict[str, Any] = {}
        if status is not None:
            values["status"] = status.value
        if role is not None:
            values["role"] = role.value
        if language is not None:
            values["language"] = language
        if limits is not None:
            values["min_balance"], values["max_balance"] = limits
        if values:
            self.db.execute(update(members).where(members.c.id == member_id).values(**values))
        found = self.member(member_id)
        assert found is not None
        return found

    def add_identity(self, member_id: int, identity: Identity, display_name: str) -> None:
        self.db.execute(
            insert(identities).values(
                member_id=member_id,
                platform=identity.platform,
                user_id=identity.user_id,
                display_name=display_name[:200],
            )
        )

    def identities(self, member_id: int) -> list[Identity]:
        rows = self.db.execute(_IDENTITIES, {"member_id": member_id})
        return [Identity(row.platform, row.user_id) for row in rows]

    # ledger
    def lock_members(self, member_ids: Sequence[int]) -> dict[int, Member]:
        # A fixed order (by id) so that two transfers between the same accounts
        # can't each hold one lock and wait for the other (PostgreSQL).
        rows = self.db.execute(_LOCK_MEMBERS, {"member_ids": sorted(set(member_ids))})
        return {row.id: _member(row) for row in rows}

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

    # confirmations
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
        }
        referenced = sorted(
            {i for i in (asked_id, requested_by_id, payer_id, receiver_id) if i is not None}
        )
        self.db.execute(_KEY_SHARE_MEMBERS, {"member_ids": referenced}).all()
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
        )

    def supersede_open(self, asked_id: int, requested_by_id: int) -> int:
        result = self.db.execute(
            _SUPERSEDE_OPEN, {"asked": asked_id, "requested_by": requested_by_id}
        )
        return int(result.rowcount)

    def latest_open_pending(self, asked_id: int) -> Pending | None:
        row = self.db.execute(_LATEST_OPEN_PENDING, {"asked_id": asked_id}).first()
        return _pending(row) if row else None

    def close_pending(self, pending_id: int, status: PendingStatus) -> bool:
        result = self.db.execute(
            _CLOSE_PENDING, {"pending_id": pending_id, "new_status": status.value}
        )
        return result.rowcount == 1

    # events
    def add_event(
        self,
        *,
        series_id: int | None,
        kind: EventKind,
        title: str,
        place: str | None,
        starts_at: datetime,
        ends_at: datetime | None,
        created_by_id: int,
        at: datetime,
    ) -> Event:
        event_id = self.db.execute(
            insert(events)
            .values(
                series_id=series_id,
                kind=kind.value,
                title=title,
                place=place,
                starts_at=starts_at,
                ends_at=ends_at,
                status=EventStatus.SCHEDULED.value,
                created_by_id=created_by_id,
                created_at=at,
            )
            .returning(events.c.id)
        ).scalar_one()
        found = self.event(event_id)
        assert found is not None
        return found

    def event(self, event_id: int) -> Event | None:
        row = self.db.execute(select(events).where(events.c.id == event_id)).first()
        return _event(row) if row else None

    def events_between(self, start: datetime, end: datetime | None, limit: int) -> list[Event]:
        query = select(events).where(
            events.c.status == EventStatus.SCHEDULED.value, events.c.starts_at >= start
        )
        if end is not None:
            query = query.where(events.c.starts_at < end)
        rows = self.db.execute(query.order_by(events.c.starts_at, events.c.id).limit(limit))
        return [_event(row) for row in rows]

    def update_event(
        self,
        event_id: int,
        *,
        starts_at: datetime | None = None,
        ends_at: datetime | None = None,
        cancel_reason: str | None = None,
        cancelled: bool = False,
    ) -> Event:
        values: dict[str, Any] = {}
        if starts_at is not None:
            values["starts_at"] = starts_at
            values["ends_at"] = ends_at
        if cancelled:
            values["status"] = EventStatus.CANCELLED.value
            values["cancel_reason"] = cancel_reason
        if values:
            self.db.execute(update(events).where(events.c.id == event_id).values(**values))
        found = self.event(event_id)
        assert found is not None
        return found

    def set_rsvp(self, event_id: int, member_id: int, going: bool, at: datetime) -> None:
        dialect_insert = (
            postgresql.insert if self.db.dialect.name == "postgresql" else sqlite.insert
        )
        statement = dialect_insert(rsvps).values(
            event_id=event_id, member_id=member_id, going=going, at=at
        )
        self.db.execute(
            statement.on_conflict_do_update(
                index_elements=[rsvps.c.event_id, rsvps.c.member_id],
                set_={"going": going, "at": at},
            )
        )

    def rsvps(self, event_id: int) -> list[tuple[Member, bool]]:
        rows = self.db.execute(
            select(members, rsvps.c.going)
            .join(rsvps, rsvps.c.member_id == members.c.id)
            .where(rsvps.c.event_id == event_id)
            .order_by(members.c.number)
        )
        return [(_member(row), bool(row.going)) for row in rows]

    def going_counts(self, event_ids: Sequence[int]) -> dict[int, int]:
        if not event_ids:
            return {}
        rows = self.db.execute(
            select(rsvps.c.event_id, func.count())
            .where(rsvps.c.event_id.in_(list(event_ids)), rsvps.c.going)
            .group_by(rsvps.c.event_id)
        )
        return {row[0]: int(row[1]) for row in rows}

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


class SqlUnitOfWork:
    """letsbot.ports.UnitOfWork on an engine from storage.database.make_engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def transaction(self) -> Iterator[SqlStore]:
        try:
            with self.engine.begin() as connection:
                yield SqlStore(connection)
        except OperationalError as error:
            raise Busy(str(error.orig)) from error
        except DBAPIError as error:
            if error.connection_invalidated:
                raise Busy(str(error.orig)) from error
            raise
