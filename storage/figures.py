"""The read side of reports and statistics: aggregated by the database."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    case,
    exists,
    func,
    or_,
    select,
    union_all,
)

from letsbot.domain import (
    ListingKind,
    Status,
    TransferKind,
)
from letsbot.figures import TRADE_KINDS, MonthFigures, PartnerTrade, PeriodFigures
from storage.members import SqlMembers
from storage.rows import TRADING
from storage.tables import (
    listings,
    members,
    partners,
    transfers,
)

_REVERSAL = transfers.alias("reversal")


_GROUP_ACCOUNT = select(members.c.id).where(members.c.is_group_account).scalar_subquery()
# Trade is between members: what the group account pays or is paid (a gift, a fee a
# coordinator books) is the group's, as mass payments are, not trade.
_STANDING_TRADE = and_(
    transfers.c.kind.in_([kind.value for kind in TRADE_KINDS]),
    transfers.c.payer_id != _GROUP_ACCOUNT,
    transfers.c.receiver_id != _GROUP_ACCOUNT,
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
            # candidates are no members yet; another group's account never is one
            members.c.status.notin_([Status.CANDIDATE.value, Status.EXTERNAL.value]),
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


_EXTERNAL = select(members.c.id).where(members.c.status == Status.EXTERNAL.value)


class SqlFigures:
    """letsbot.ports.Figures on a connection inside the unit of work's transaction."""

    def __init__(self, connection: Connection) -> None:
        self.db = connection

    def month_figures(self, bounds: Sequence[datetime]) -> PeriodFigures:
        size = len(bounds) - 1
        if size < 1:
            return PeriodFigures([], 0)
        kas = SqlMembers(self.db).group_account().id
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
        # Traders are members: neither the group account nor another group's accounts.
        outside = {kas, *self.db.execute(_EXTERNAL).scalars()}
        for members_of in seen:
            members_of -= outside
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

    def group_bookings(self, since: datetime) -> tuple[int, int]:
        standing = and_(
            transfers.c.kind == TransferKind.GROUP.value,
            transfers.c.created_at >= since,
            ~exists().where(_REVERSAL.c.reverses_id == transfers.c.id),
        )
        row = self.db.execute(
            select(func.count(), func.coalesce(func.sum(transfers.c.amount), 0)).where(standing)
        ).one()
        return int(row[0]), int(row[1])

    def turnover(self, since: datetime) -> dict[int, int]:
        within = and_(transfers.c.created_at >= since, _STANDING_TRADE)
        sides = union_all(
            select(transfers.c.payer_id.label("member_id"), transfers.c.amount).where(within),
            select(transfers.c.receiver_id, transfers.c.amount).where(within),
        ).subquery()
        rows = self.db.execute(
            select(sides.c.member_id, func.sum(sides.c.amount)).group_by(sides.c.member_id)
        )
        return {int(row[0]): int(row[1]) for row in rows}

    def balances(self, at: datetime | None = None) -> list[int]:
        members_now = and_(members.c.status.in_(TRADING), ~members.c.is_group_account)
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

    def partner_trade(self, start: datetime, end: datetime) -> list[PartnerTrade]:
        found: list[PartnerTrade] = []
        within = and_(
            transfers.c.created_at >= start,
            transfers.c.created_at < end,
            transfers.c.kind == TransferKind.PAYMENT.value,
            ~exists().where(_REVERSAL.c.reverses_id == transfers.c.id),
        )
        for partner in self.db.execute(select(partners).order_by(partners.c.prefix)):
            account = partner.account_id
            paid, received = (
                self.db.execute(
                    select(func.count(), func.coalesce(func.sum(transfers.c.amount), 0)).where(
                        within, side == account
                    )
                ).one()
                for side in (transfers.c.receiver_id, transfers.c.payer_id)
            )
            if partner.removed_at is not None and not (paid[0] or received[0]):
                continue
            # The balance then: now, less what moved since.
            since = self.db.execute(
                select(
                    func.coalesce(
                        func.sum(
                            case((transfers.c.receiver_id == account, transfers.c.amount), else_=0)
                            - case((transfers.c.payer_id == account, transfers.c.amount), else_=0)
                        ),
                        0,
                    )
                ).where(
                    transfers.c.created_at >= end,
                    or_(transfers.c.payer_id == account, transfers.c.receiver_id == account),
                )
            ).scalar_one()
            balance = self.db.execute(
                select(members.c.balance).where(members.c.id == account)
            ).scalar_one()
            found.append(
                PartnerTrade(
                    name=partner.name,
                    prefix=partner.prefix,
                    paid_count=int(paid[0]),
                    paid=int(paid[1]),
                    received_count=int(received[0]),
                    received=int(received[1]),
                    balance=int(balance) - int(since),
                )
            )
        return found
