"""``letsbot check``: the ledger's invariants, verified on the stored data."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from letsbot.domain import GroupLimits, Status
from storage.models import MemberRow, TransferRow


def ledger_problems(engine: Engine, limits: GroupLimits) -> list[str]:
    """Every breach found; an empty list means the ledger is sound.

    Balances sum to zero; each cached balance equals the sum of its
    transfers; no member is outside a hard limit.
    """
    problems: list[str] = []
    members = MemberRow.__table__
    transfers = TransferRow.__table__
    received = (
        select(transfers.c.receiver_id.label("id"), func.sum(transfers.c.amount).label("total"))
        .group_by(transfers.c.receiver_id)
        .subquery()
    )
    paid = (
        select(transfers.c.payer_id.label("id"), func.sum(transfers.c.amount).label("total"))
        .group_by(transfers.c.payer_id)
        .subquery()
    )
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                members,
                func.coalesce(received.c.total, 0).label("received"),
                func.coalesce(paid.c.total, 0).label("paid"),
            )
            .outerjoin(received, received.c.id == members.c.id)
            .outerjoin(paid, paid.c.id == members.c.id)
            .order_by(members.c.number)
        ).all()
        connection.rollback()
    total = sum(row.balance for row in rows)
    if total != 0:
        problems.append(f"balances sum to {total}, not 0")
    for row in rows:
        summed = row.received - row.paid
        if row.balance != summed:
            problems.append(
                f"member #{row.number}: cached balance {row.balance},"
                f" but its transfers sum to {summed}"
            )
        if row.is_group_account or limits.soft or row.status == Status.INACTIVE.value:
            continue
        low = limits.min_balance if row.min_balance is None else row.min_balance
        high = limits.max_balance if row.max_balance is None else row.max_balance
        if not low <= row.balance <= high:
            problems.append(
                f"member #{row.number}: balance {row.balance} outside its limits {low}..{high}"
            )
    return problems


def ledger_size(engine: Engine) -> tuple[int, int]:
    """(members without the group account, transfers)."""
    with engine.connect() as connection:
        members = connection.execute(
            select(func.count()).select_from(MemberRow).where(~MemberRow.is_group_account)
        ).scalar_one()
        count = connection.execute(select(func.count()).select_from(TransferRow)).scalar_one()
        connection.rollback()
    return int(members), int(count)
