"""The unit of work: one transaction per incoming message, holding the write lock."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from functools import cache
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    Row,
    Table,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError

from letsbot.decisions import (
    Ballot,
    Policy,
    Proposal,
    ProposalStatus,
    Rule,
    Verdict,
    Vote,
    share,
)
from letsbot.domain import (
    AccessCode,
    CodePurpose,
    Event,
    EventKind,
    EventStatus,
    Footprint,
    Identity,
    Listing,
    ListingKind,
    Member,
    Pending,
    PendingAction,
    PendingStatus,
    Role,
    Status,
    Transfer,
    TransferKind,
)
from letsbot.errors import Busy, Unsure
from letsbot.figures import TRADE_KINDS, MonthFigures, PeriodFigures
from letsbot.text import strip_controls
from storage import privacy
from storage.tables import (
    access_codes,
    blocks,
    code_attempts,
    digests,
    direct_messages,
    events,
    identities,
    listing_notices,
    listing_tags,
    listings,
    members,
    notify_optins,
    outbox,
    pending,
    processed,
    proposal_voters,
    proposals,
    reminders,
    rsvps,
    transfers,
    votes,
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
_MEMBER = select(members).where(members.c.id == bindparam("member_id"))


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
# The lock order of every transaction that writes (PostgreSQL; SQLite's BEGIN
# IMMEDIATE takes the one write lock first). After the claim of the message
# (processed_events, which only the same message can wait for):
# 1. the member rows it changes or whose balances it checks, in one call of
#    lock_members: FOR NO KEY UPDATE, in id order;
# 2. then pending rows (context.ask locks the asker and the asked before it replaces one),
#    then everything else.
# NO KEY UPDATE, not UPDATE: a foreign-key check of a row that names a member
# (pending, transfers, listings ...) takes FOR KEY SHARE on the member, which
# NO KEY UPDATE lets through; FOR UPDATE would make an insert wait for a
# booking that waits for a row the insert's transaction holds. Nothing takes
# FOR UPDATE on members: no path deletes a member or changes its id or number.
_LOCK_MEMBERS = (
    select(members)
    .where(members.c.id.in_(bindparam("member_ids", expanding=True)))
    .order_by(members.c.id)
    .with_for_update(key_share=True)
)
_HOLD_MEMBERS = (
    select(members.c.id)
    .where(members.c.id.in_(bindparam("member_ids", expanding=True)))
    .order_by(members.c.id)
    .with_for_update(key_share=True)
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
_ADD_PENDING = insert(pending).returning(pending.c.id)
# Several rows in one statement (insertmanyvalues). Its RETURNING rows come in
# no promised order: each id is matched to its message by the body (the same
# body twice is the same message, whichever id each copy gets).
_ADD_OUTGOING = insert(outbox).returning(outbox.c.id, outbox.c.body)
_OPEN_PENDING = (
    select(pending)
    .where(
        pending.c.asked_id == bindparam("asked_id"),
        pending.c.status == PendingStatus.OPEN.value,
    )
    .order_by(pending.c.id)
)
_PENDING = select(pending).where(pending.c.id == bindparam("pending_id"))
_IS_BLOCKED = select(blocks.c.at).where(
    blocks.c.member_id == bindparam("member_id"), blocks.c.blocked_id == bindparam("blocked_id")
)
# The text is kept only to show an open question again; it names people.
_CLOSE_PENDING = (
    update(pending)
    .where(pending.c.id == bindparam("pending_id"), pending.c.status == PendingStatus.OPEN.value)
    .values(status=bindparam("new_status"), text=None)
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
        forgotten=row.forgotten_at is not None,
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
        platform=row.platform,
        chat_id=row.chat_id,
        text=row.text,
    )


def _listing(row: Row[Any]) -> Listing:
    return Listing(
        id=row.id,
        kind=ListingKind(row.kind),
        owner_id=row.owner_id,
        text=row.text,
        price=row.price,
        created_at=row.created_at,
        expires_at=row.expires_at,
        notice_at=row.notice_at,
        withdrawn_at=row.withdrawn_at,
    )


def _proposal(row: Row[Any]) -> Proposal:
    return Proposal(
        id=row.id,
        title=row.title,
        options=tuple(json.loads(row.options)) if row.options else (),
        policy=Policy(Rule(row.rule), share(row.quorum), share(row.supermajority)),
        ballot=Ballot(row.ballot),
        early_close=row.early_close,
        proposer_id=row.proposer_id,
        created_at=row.created_at,
        closes_at=row.closes_at,
        remind_at=row.remind_at,
        status=ProposalStatus(row.status),
        closed_at=row.closed_at,
        verdict=Verdict(row.verdict) if row.verdict else None,
        withdraw_reason=row.withdraw_reason,
    )


def _decimal(value: Fraction) -> str:
    """A share as decimal text that reads back as the same fraction (0.667, 2/3 as 0.6667)."""
    text = str(Decimal(value.numerator) / Decimal(value.denominator))
    return text[:16]


def _vote(row: Row[Any]) -> Vote:
    return Vote(row.member_id, row.choice, row.objection, row.voted_at)


def _aware(moment: datetime | None) -> datetime | None:
    """An aggregate (min) comes back without the column's type: naive on SQLite."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# Expired codes and old attempts are of no use after a while.
_KEEP_CODES = timedelta(days=30)
_KEEP_ATTEMPTS = timedelta(days=1)

# A listing with its owner in one row: the owner's columns carry a prefix.
_OWNER_COLUMNS = [column.label(f"owner__{column.name}") for column in members.c]
_TRADING = (Status.ACTIVE.value, Status.LEAVING.value)


def _owner(row: Row[Any]) -> Member:
    values = row._mapping
    return Member(
        id=values["owner__id"],
        number=values["owner__number"],
        name=values["owner__name"],
        language=values["owner__language"],
        status=Status(values["owner__status"]),
        role=Role(values["owner__role"]),
        balance=values["owner__balance"],
        min_balance=values["owner__min_balance"],
        max_balance=values["owner__max_balance"],
        is_group_account=values["owner__is_group_account"],
        forgotten=values["owner__forgotten_at"] is not None,
    )


def _live(now: datetime) -> Any:
    """Shown: not withdrawn, not expired, and the owner still trades."""
    return and_(
        listings.c.withdrawn_at.is_(None),
        listings.c.expires_at > now,
        members.c.status.in_(_TRADING),
    )


def _with_owner() -> Any:
    return select(listings, *_OWNER_COLUMNS).join(members, members.c.id == listings.c.owner_id)


_REVERSAL = transfers.alias("reversal")
_STANDING_TRADE = and_(
    transfers.c.kind.in_([kind.value for kind in TRADE_KINDS]),
    ~exists().where(_REVERSAL.c.reverses_id == transfers.c.id),
)


def _period(column: Any, size: int) -> tuple[Any, Any]:
    """Which of ``size`` periods a moment falls in (0, 1, ...), and the range condition.

    The bounds are parameters ``b0`` .. ``b<size>``. Portable SQL (a CASE over
    the bounds): SQLite and PostgreSQL share no date functions.
    """
    bound = [bindparam(f"b{number}", type_=column.type) for number in range(size + 1)]
    index = case(*[(column < bound[n + 1], n) for n in range(size)], else_=None)
    return index, and_(column >= bound[0], column < bound[size])


@cache
def _month_statements(size: int) -> tuple[Any, Any, Any, Any]:
    """The statements of ``month_figures`` for ``size`` periods, built once per size.

    Grouped in an outer query: PostgreSQL won't match a CASE with bound
    parameters in GROUP BY to the same CASE in the select list.
    """
    index, within = _period(transfers.c.created_at, size)
    by_side = []
    for side in (transfers.c.payer_id, transfers.c.receiver_id):
        trades = (
            select(index.label("period"), side.label("member_id"), transfers.c.amount)
            .where(within, _STANDING_TRADE)
            .subquery()
        )
        by_side.append(
            select(trades.c.period, trades.c.member_id, func.count(), func.sum(trades.c.amount))
            .where(trades.c.period.is_not(None))
            .group_by(trades.c.period, trades.c.member_id)
        )
    index, within = _period(members.c.created_at, size)
    has_transfers = or_(
        exists().where(transfers.c.payer_id == members.c.id),
        exists().where(transfers.c.receiver_id == members.c.id),
    )
    joined = (
        select(index.label("period"))
        .where(
            within,
            ~members.c.is_group_account,
            members.c.status != Status.CANDIDATE.value,
            # a rejected candidate (inactive, never a transfer) never was a member
            or_(members.c.status != Status.INACTIVE.value, has_transfers),
        )
        .subquery()
    )
    new_members = select(joined.c.period, func.count()).group_by(joined.c.period)
    index, within = _period(listings.c.created_at, size)
    placed = select(index.label("period")).where(within).subquery()
    new_listings = select(placed.c.period, func.count()).group_by(placed.c.period)
    return by_side[0], by_side[1], new_members, new_listings


def _counted(rows: Iterable[Sequence[Any]], size: int) -> list[int]:
    """(period, value) pairs as one value per period; a period without rows is 0."""
    counts = [0] * size
    for period, value in rows:
        if period is not None:
            counts[int(period)] = int(value)
    return counts


class SqlStore:
    """letsbot.ports.Store on one SQLAlchemy connection inside a transaction."""

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
            return self.claim_event(key, at), self.member_by_identity(identity)
        values = {
            "key": key,
            "handled_at": at,
            "platform": identity.platform,
            "user_id": identity.user_id,
        }
        row = self.db.execute(_CLAIM_FROM_POSTGRESQL, values).one()
        return bool(row.claimed), _member(row) if row.id is not None else None

    # outbox
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
        ids: dict[str, list[int]] = {}
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
                # A platform's name the member can't retype: cleaned, not refused.
                display_name=strip_controls(display_name)[:200],
            )
        )

    def identities(self, member_id: int) -> list[Identity]:
        rows = self.db.execute(_IDENTITIES, {"member_id": member_id})
        return [Identity(row.platform, row.user_id) for row in rows]

    def move_identity(self, identity: Identity, member_id: int) -> None:
        self.db.execute(
            update(identities)
            .where(
                identities.c.platform == identity.platform,
                identities.c.user_id == identity.user_id,
            )
            .values(member_id=member_id)
        )

    def remove_identity(self, identity: Identity) -> bool:
        result = self.db.execute(
            delete(identities).where(
                identities.c.platform == identity.platform,
                identities.c.user_id == identity.user_id,
            )
        )
        return result.rowcount == 1

    def has_footprint(self, member_id: int) -> bool:
        traces = [
            select(transfers.c.id).where(
                (transfers.c.payer_id == member_id) | (transfers.c.receiver_id == member_id)
            ),
            select(listings.c.id).where(listings.c.owner_id == member_id),
            select(votes.c.member_id).where(votes.c.member_id == member_id),
            select(proposals.c.id).where(proposals.c.proposer_id == member_id),
            select(pending.c.id).where(
                (pending.c.asked_id == member_id) | (pending.c.requested_by_id == member_id)
            ),
            select(direct_messages.c.id).where(
                (direct_messages.c.sender_id == member_id)
                | (direct_messages.c.receiver_id == member_id)
            ),
            select(rsvps.c.member_id).where(rsvps.c.member_id == member_id),
            select(blocks.c.member_id).where(
                (blocks.c.member_id == member_id) | (blocks.c.blocked_id == member_id)
            ),
        ]
        return any(self.db.execute(trace.limit(1)).first() is not None for trace in traces)

    # one-time codes
    def add_access_code(
        self,
        *,
        purpose: CodePurpose,
        member_id: int,
        code_hash: str,
        created_by_id: int | None,
        at: datetime,
        expires_at: datetime,
    ) -> None:
        self.db.execute(
            delete(access_codes).where(
                (
                    (access_codes.c.member_id == member_id)
                    & (access_codes.c.purpose == purpose.value)
                )
                | (access_codes.c.expires_at < at - _KEEP_CODES)
            )
        )
        self.db.execute(
            insert(access_codes).values(
                purpose=purpose.value,
                member_id=member_id,
                code_hash=code_hash,
                created_by_id=created_by_id,
                created_at=at,
                expires_at=expires_at,
                used_at=None,
            )
        )

    def access_code(self, code_hash: str) -> AccessCode | None:
        row = self.db.execute(
            select(access_codes).where(access_codes.c.code_hash == code_hash)
        ).first()
        if row is None:
            return None
        return AccessCode(
            id=row.id,
            purpose=CodePurpose(row.purpose),
            member_id=row.member_id,
            created_at=row.created_at,
            expires_at=row.expires_at,
            used_at=row.used_at,
        )

    def use_access_code(self, code_id: int, at: datetime) -> bool:
        result = self.db.execute(
            update(access_codes)
            .where(access_codes.c.id == code_id, access_codes.c.used_at.is_(None))
            .values(used_at=at)
        )
        return result.rowcount == 1

    def add_code_attempt(self, sender: str, at: datetime) -> None:
        self.db.execute(delete(code_attempts).where(code_attempts.c.at < at - _KEEP_ATTEMPTS))
        self.db.execute(insert(code_attempts).values(sender=sender[:300], at=at))

    def code_attempts_since(self, sender: str | None, since: datetime) -> int:
        query = select(func.count()).select_from(code_attempts).where(code_attempts.c.at > since)
        if sender is not None:
            query = query.where(code_attempts.c.sender == sender[:300])
        return int(self.db.execute(query).scalar_one())

    # ledger
    def lock_members(self, member_ids: Sequence[int]) -> dict[int, Member]:
        # Step 1 of the lock order (see _LOCK_MEMBERS): all of them in one call.
        rows = self.db.execute(_LOCK_MEMBERS, {"member_ids": sorted(set(member_ids))})
        return {row.id: _member(row) for row in rows}

    def hold_members(self, member_ids: Sequence[int]) -> None:
        # SQLite's BEGIN IMMEDIATE holds the one write lock already: nothing to send.
        if self.db.dialect.name != "sqlite":
            self.db.execute(_HOLD_MEMBERS, {"member_ids": sorted(set(member_ids))})

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
        row = {
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
        move = {"debit_id": payer_id, "credit_id": receiver_id, "moved": amount}
        if self.db.dialect.name == "postgresql":
            values = {f"new_{column}": value for column, value in row.items()}
            transfer_id = self.db.execute(_ADD_AND_MOVE, {**values, **move}).scalar_one()
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

    def transfer(self, transfer_id: int) -> Transfer | None:
        row = self.db.execute(_TRANSFER, {"transfer_id": transfer_id}).first()
        return _transfer(row) if row else None

    def reversal_of(self, transfer_id: int) -> Transfer | None:
        row = self.db.execute(_REVERSAL_OF, {"transfer_id": transfer_id}).first()
        return _transfer(row) if row else None

    def history(self, member_id: int, offset: int, limit: int) -> list[Transfer]:
        values = {"member_id": member_id, "wanted": offset + limit, "skip": offset, "take": limit}
        return [_transfer(row) for row in self.db.execute(_HISTORY, values)]

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

    def pending(self, pending_id: int) -> Pending | None:
        row = self.db.execute(_PENDING, {"pending_id": pending_id}).first()
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

    # market
    def _insert(self, table: Table) -> Any:
        dialect_insert = (
            postgresql.insert if self.db.dialect.name == "postgresql" else sqlite.insert
        )
        return dialect_insert(table)

    def add_listing(
        self,
        *,
        kind: ListingKind,
        owner_id: int,
        text: str,
        price: str | None,
        search_text: str,
        tags: Sequence[tuple[str, str]],
        at: datetime,
        expires_at: datetime,
        notice_at: datetime | None,
    ) -> Listing:
        listing_id = self.db.execute(
            insert(listings)
            .values(
                kind=kind.value,
                owner_id=owner_id,
                text=text,
                price=price,
                search_text=search_text,
                created_at=at,
                expires_at=expires_at,
                notice_at=notice_at,
                withdrawn_at=None,
            )
            .returning(listings.c.id)
        ).scalar_one()
        if tags:
            self.db.execute(
                insert(listing_tags),
                [{"listing_id": listing_id, "tag": tag, "label": label} for tag, label in tags],
            )
        found = self.listing(listing_id)
        assert found is not None
        return found

    def listing(self, listing_id: int) -> Listing | None:
        row = self.db.execute(select(listings).where(listings.c.id == listing_id)).first()
        return _listing(row) if row else None

    def set_listing_expiry(
        self, listing_id: int, expires_at: datetime, notice_at: datetime | None
    ) -> Listing:
        self.db.execute(
            update(listings)
            .where(listings.c.id == listing_id)
            .values(expires_at=expires_at, notice_at=notice_at)
        )
        found = self.listing(listing_id)
        assert found is not None
        return found

    def withdraw_listing(self, listing_id: int, at: datetime) -> bool:
        result = self.db.execute(
            update(listings)
            .where(listings.c.id == listing_id, listings.c.withdrawn_at.is_(None))
            .values(withdrawn_at=at)
        )
        return result.rowcount == 1

    def withdraw_listings_of(self, owner_id: int, at: datetime) -> int:
        result = self.db.execute(
            update(listings)
            .where(listings.c.owner_id == owner_id, listings.c.withdrawn_at.is_(None))
            .values(withdrawn_at=at)
        )
        return int(result.rowcount)

    def search_listings(
        self,
        kind: ListingKind,
        *,
        words: Sequence[str],
        tags: Sequence[str],
        now: datetime,
        offset: int,
        limit: int,
    ) -> tuple[list[tuple[Listing, Member]], int]:
        conditions = [listings.c.kind == kind.value, _live(now)]
        conditions += [listings.c.search_text.contains(word, autoescape=True) for word in words]
        conditions += [
            exists().where(listing_tags.c.listing_id == listings.c.id, listing_tags.c.tag == tag)
            for tag in tags
        ]
        total = self.db.execute(
            select(func.count())
            .select_from(listings)
            .join(members, members.c.id == listings.c.owner_id)
            .where(*conditions)
        ).scalar_one()
        rows = self.db.execute(
            _with_owner()
            .where(*conditions)
            .order_by(listings.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return [(_listing(row), _owner(row)) for row in rows], int(total)

    def listings_of(self, owner_id: int, since: datetime) -> list[Listing]:
        rows = self.db.execute(
            select(listings)
            .where(
                listings.c.owner_id == owner_id,
                listings.c.withdrawn_at.is_(None),
                listings.c.expires_at > since,
            )
            .order_by(listings.c.id.desc())
        )
        return [_listing(row) for row in rows]

    def count_live_listings(self, owner_id: int, now: datetime) -> int:
        return int(
            self.db.execute(
                select(func.count()).where(
                    listings.c.owner_id == owner_id,
                    listings.c.withdrawn_at.is_(None),
                    listings.c.expires_at > now,
                )
            ).scalar_one()
        )

    def tag_counts(self, now: datetime, limit: int) -> list[tuple[str, int, int]]:
        offers = func.sum(case((listings.c.kind == ListingKind.OFFER.value, 1), else_=0))
        wants = func.sum(case((listings.c.kind == ListingKind.WANT.value, 1), else_=0))
        rows = self.db.execute(
            select(func.min(listing_tags.c.label), offers, wants)
            .select_from(listing_tags)
            .join(listings, listings.c.id == listing_tags.c.listing_id)
            .join(members, members.c.id == listings.c.owner_id)
            .where(_live(now))
            .group_by(listing_tags.c.tag)
            .order_by(func.count().desc(), listing_tags.c.tag)
            .limit(limit)
        )
        return [(row[0], int(row[1]), int(row[2])) for row in rows]

    def new_listings(
        self, start: datetime, end: datetime, now: datetime
    ) -> list[tuple[Listing, Member]]:
        rows = self.db.execute(
            _with_owner()
            .where(listings.c.created_at >= start, listings.c.created_at < end, _live(now))
            .order_by(listings.c.id)
        )
        return [(_listing(row), _owner(row)) for row in rows]

    def _unclaimed_notice(self) -> Any:
        return ~exists().where(
            listing_notices.c.listing_id == listings.c.id,
            listing_notices.c.expires_at == listings.c.expires_at,
        )

    def notices_due(self, now: datetime) -> list[tuple[Listing, Member]]:
        rows = self.db.execute(
            _with_owner()
            .where(listings.c.notice_at <= now, _live(now), self._unclaimed_notice())
            .order_by(listings.c.notice_at, listings.c.id)
        )
        return [(_listing(row), _owner(row)) for row in rows]

    def next_notice(self, after: datetime, until: datetime) -> datetime | None:
        found: datetime | None = self.db.execute(
            select(func.min(listings.c.notice_at))
            .join(members, members.c.id == listings.c.owner_id)
            .where(
                listings.c.notice_at > after,
                listings.c.notice_at <= until,
                _live(after),
                self._unclaimed_notice(),
            )
        ).scalar_one()
        if found is None:
            return None
        return found.replace(tzinfo=UTC) if found.tzinfo is None else found.astimezone(UTC)

    def claim_notice(
        self, listing_id: int, expires_at: datetime, at: datetime, outcome: str
    ) -> bool:
        statement = (
            self._insert(listing_notices)
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
            self._insert(digests)
            .values(due_at=due_at, handled_at=at, outcome=outcome, listings=listings)
            .on_conflict_do_nothing()
            .execution_options(preserve_rowcount=True)
        )
        return self.db.execute(statement).rowcount == 1

    # private messages between members
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
            self._insert(blocks)
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
        return [_member(row) for row in rows]

    # governance
    def add_proposal(
        self,
        *,
        title: str,
        options: Sequence[str],
        policy: Policy,
        ballot: Ballot,
        early_close: bool,
        proposer_id: int,
        at: datetime,
        closes_at: datetime,
        remind_at: datetime | None,
        voter_ids: Sequence[int],
    ) -> Proposal:
        proposal_id = self.db.execute(
            insert(proposals)
            .values(
                title=title,
                options=json.dumps(list(options)) if options else None,
                rule=policy.rule.value,
                quorum=_decimal(policy.quorum),
                supermajority=_decimal(policy.supermajority),
                ballot=ballot.value,
                early_close=early_close,
                proposer_id=proposer_id,
                created_at=at,
                closes_at=closes_at,
                remind_at=remind_at,
                status=ProposalStatus.OPEN.value,
            )
            .returning(proposals.c.id)
        ).scalar_one()
        if voter_ids:
            self.db.execute(
                insert(proposal_voters),
                [{"proposal_id": proposal_id, "member_id": m} for m in sorted(set(voter_ids))],
            )
        found = self.proposal(proposal_id)
        assert found is not None
        return found

    def proposal(self, proposal_id: int, *, lock: bool = False) -> Proposal | None:
        query = select(proposals).where(proposals.c.id == proposal_id)
        row = self.db.execute(query.with_for_update() if lock else query).first()
        return _proposal(row) if row else None

    def open_proposals(self, limit: int) -> list[Proposal]:
        rows = self.db.execute(
            select(proposals)
            .where(proposals.c.status == ProposalStatus.OPEN.value)
            .order_by(proposals.c.closes_at, proposals.c.id)
            .limit(limit)
        )
        return [_proposal(row) for row in rows]

    def eligible_count(self, proposal_id: int) -> int:
        return int(
            self.db.execute(
                select(func.count()).where(proposal_voters.c.proposal_id == proposal_id)
            ).scalar_one()
        )

    def is_eligible(self, proposal_id: int, member_id: int) -> bool:
        found = self.db.execute(
            select(proposal_voters.c.member_id).where(
                proposal_voters.c.proposal_id == proposal_id,
                proposal_voters.c.member_id == member_id,
            )
        ).first()
        return found is not None

    def set_vote(
        self, proposal_id: int, member_id: int, choice: int, objection: str | None, at: datetime
    ) -> bool:
        first = self.vote_of(proposal_id, member_id) is None
        statement = self._insert(votes).values(
            proposal_id=proposal_id,
            member_id=member_id,
            choice=choice,
            objection=objection,
            voted_at=at,
        )
        self.db.execute(
            statement.on_conflict_do_update(
                index_elements=[votes.c.proposal_id, votes.c.member_id],
                set_={"choice": choice, "objection": objection, "voted_at": at},
            )
        )
        return first

    def vote_of(self, proposal_id: int, member_id: int) -> Vote | None:
        row = self.db.execute(
            select(votes).where(votes.c.proposal_id == proposal_id, votes.c.member_id == member_id)
        ).first()
        return _vote(row) if row else None

    def votes(self, proposal_id: int) -> list[tuple[Member, Vote]]:
        rows = self.db.execute(
            select(members, votes.c.choice, votes.c.objection, votes.c.voted_at)
            .join(votes, votes.c.member_id == members.c.id)
            .where(votes.c.proposal_id == proposal_id)
            .order_by(members.c.number)
        )
        return [
            (_member(row), Vote(row.id, row.choice, row.objection, row.voted_at)) for row in rows
        ]

    def turnouts(self, proposal_ids: Sequence[int]) -> dict[int, int]:
        if not proposal_ids:
            return {}
        rows = self.db.execute(
            select(votes.c.proposal_id, func.count())
            .where(votes.c.proposal_id.in_(list(proposal_ids)))
            .group_by(votes.c.proposal_id)
        )
        return {row[0]: int(row[1]) for row in rows}

    def close_proposal(
        self,
        proposal_id: int,
        status: ProposalStatus,
        at: datetime,
        verdict: Verdict | None = None,
        reason: str | None = None,
    ) -> bool:
        result = self.db.execute(
            update(proposals)
            .where(
                proposals.c.id == proposal_id,
                proposals.c.status == ProposalStatus.OPEN.value,
            )
            .values(
                status=status.value,
                closed_at=at,
                verdict=verdict.value if verdict else None,
                withdraw_reason=reason,
            )
        )
        return result.rowcount == 1

    def proposals_due(self, now: datetime) -> list[Proposal]:
        rows = self.db.execute(
            select(proposals)
            .where(
                proposals.c.status == ProposalStatus.OPEN.value,
                proposals.c.closes_at <= now,
            )
            .order_by(proposals.c.closes_at, proposals.c.id)
        )
        return [_proposal(row) for row in rows]

    def proposal_reminders_due(self, now: datetime) -> list[Proposal]:
        rows = self.db.execute(
            select(proposals)
            .where(
                proposals.c.status == ProposalStatus.OPEN.value,
                proposals.c.remind_at <= now,
                proposals.c.reminded_at.is_(None),
            )
            .order_by(proposals.c.remind_at, proposals.c.id)
        )
        return [_proposal(row) for row in rows]

    def claim_proposal_reminder(self, proposal_id: int, at: datetime) -> bool:
        result = self.db.execute(
            update(proposals)
            .where(proposals.c.id == proposal_id, proposals.c.reminded_at.is_(None))
            .values(reminded_at=at)
        )
        return result.rowcount == 1

    def next_proposal_due(self, after: datetime, until: datetime) -> datetime | None:
        is_open = proposals.c.status == ProposalStatus.OPEN.value
        deadline = self.db.execute(
            select(func.min(proposals.c.closes_at)).where(
                is_open, proposals.c.closes_at > after, proposals.c.closes_at <= until
            )
        ).scalar_one()
        reminder = self.db.execute(
            select(func.min(proposals.c.remind_at)).where(
                is_open,
                proposals.c.reminded_at.is_(None),
                proposals.c.remind_at > after,
                proposals.c.remind_at <= until,
            )
        ).scalar_one()
        found = [moment for moment in (_aware(deadline), _aware(reminder)) if moment is not None]
        return min(found, default=None)

    def silent_voters(self, proposal_id: int) -> list[Member]:
        rows = self.db.execute(
            select(members)
            .join(proposal_voters, proposal_voters.c.member_id == members.c.id)
            .join(notify_optins, notify_optins.c.member_id == members.c.id)
            .where(
                proposal_voters.c.proposal_id == proposal_id,
                members.c.status.in_(_TRADING),
                ~exists().where(
                    votes.c.proposal_id == proposal_id, votes.c.member_id == members.c.id
                ),
            )
            .order_by(members.c.number)
        )
        return [_member(row) for row in rows]

    def set_notify(self, member_id: int, on: bool, at: datetime) -> bool:
        if not on:
            result = self.db.execute(
                delete(notify_optins).where(notify_optins.c.member_id == member_id)
            )
            return result.rowcount == 1
        statement = (
            self._insert(notify_optins)
            .values(member_id=member_id, at=at)
            .on_conflict_do_nothing()
            .execution_options(preserve_rowcount=True)
        )
        return self.db.execute(statement).rowcount == 1

    def notify_on(self, member_id: int) -> bool:
        found = self.db.execute(
            select(notify_optins.c.member_id).where(notify_optins.c.member_id == member_id)
        ).first()
        return found is not None

    # privacy
    def footprint(self, member_id: int) -> Footprint:
        return privacy.footprint(self.db, member_id)

    def forget_member(self, member_id: int, placeholder: str, at: datetime) -> None:
        privacy.forget_member(self.db, member_id, placeholder, at)

    # statistics
    def month_figures(self, bounds: Sequence[datetime]) -> PeriodFigures:
        size = len(bounds) - 1
        if size < 1:
            return PeriodFigures([], 0)
        kas = self.group_account().id
        by_payer, by_receiver, joined, placed = _month_statements(size)
        params = {f"b{number}": bound for number, bound in enumerate(bounds)}
        # Two grouped scans, by payer and by receiver: at most members x months
        # rows come back, and they give each month's count, volume and traders.
        counts, volumes = [0] * size, [0] * size
        seen: list[set[int]] = [set() for _ in range(size)]
        for period, member_id, count, volume in self.db.execute(by_payer, params):
            counts[int(period)] += int(count)  # each trade has one payer: counted once
            volumes[int(period)] += int(volume)
            seen[int(period)].add(member_id)
        for period, member_id, _, _ in self.db.execute(by_receiver, params):
            seen[int(period)].add(member_id)
        for members_of in seen:
            members_of.discard(kas)
        traders = [len(members_of) for members_of in seen]
        everyone = len(set().union(*seen))
        new_members = _counted(self.db.execute(joined, params), size)
        new_listings = _counted(self.db.execute(placed, params), size)
        months = [
            MonthFigures(
                bounds[i], counts[i], volumes[i], traders[i], new_members[i], new_listings[i]
            )
            for i in range(size)
        ]
        return PeriodFigures(months, everyone)

    def open_listings(self, at: datetime) -> tuple[int, int]:
        rows = self.db.execute(
            select(listings.c.kind, func.count())
            .where(
                listings.c.created_at <= at,
                listings.c.expires_at > at,
                or_(listings.c.withdrawn_at.is_(None), listings.c.withdrawn_at > at),
            )
            .group_by(listings.c.kind)
        )
        found = {row[0]: int(row[1]) for row in rows}
        return found.get(ListingKind.OFFER.value, 0), found.get(ListingKind.WANT.value, 0)

    def balances(self, at: datetime | None = None) -> list[int]:
        members_now = and_(members.c.status.in_(_TRADING), ~members.c.is_group_account)
        if at is None:
            rows = self.db.execute(
                select(members.c.balance).where(members_now).order_by(members.c.balance)
            )
            return [int(row[0]) for row in rows]
        # The balance then is the balance now minus what moved since: that reads
        # only the transfers after ``at`` (cached balances equal their transfers,
        # which ``letsbot check`` verifies).
        since = transfers.c.created_at >= at
        moves = union_all(
            select(transfers.c.receiver_id.label("member_id"), transfers.c.amount).where(since),
            select(transfers.c.payer_id, (-transfers.c.amount).label("amount")).where(since),
        ).subquery()
        totals = (
            select(moves.c.member_id, func.sum(moves.c.amount).label("total"))
            .group_by(moves.c.member_id)
            .subquery()
        )
        rows = self.db.execute(
            select(members.c.balance - func.coalesce(totals.c.total, 0))
            .select_from(members.outerjoin(totals, totals.c.member_id == members.c.id))
            .where(members_now, members.c.created_at < at)
        )
        return sorted(int(row[0]) for row in rows)


class SqlUnitOfWork:
    """letsbot.ports.UnitOfWork on an engine from storage.database.make_engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def transaction(self) -> Iterator[SqlStore]:
        with (
            busy_when_unreachable(),
            self.engine.connect() as connection,
            connection.begin() as transaction,
        ):
            yield SqlStore(connection)
            try:
                transaction.commit()
            except DBAPIError as error:
                # Lost at the COMMIT itself (PostgreSQL gone mid-commit): the server
                # may have stored it. Say so rather than "nothing was changed".
                if isinstance(error, OperationalError) or error.connection_invalidated:
                    raise Unsure(str(error.orig)) from error
                raise


@contextmanager
def busy_when_unreachable() -> Iterator[None]:
    """A database that is locked, down or restarting raises Busy: "try again in a moment".

    OperationalError covers SQLite's "database is locked" and PostgreSQL
    refusing connections, shutting down (57P01, 57P03) or dropping one mid-query;
    a connection SQLAlchemy found dead is the same outage in other clothes.
    """
    try:
        yield
    except OperationalError as error:
        raise Busy(str(error.orig)) from error
    except DBAPIError as error:
        if error.connection_invalidated:
            raise Busy(str(error.orig)) from error
        raise
