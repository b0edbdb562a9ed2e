"""Recurring contributions to the group account, and the claims of their runs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update

from letsbot.domain import Contribution, ContributionStatus, Every
from storage.rows import dialect_insert
from storage.tables import contribution_runs, contributions, members


def _contribution(row: Row[Any]) -> Contribution:
    return Contribution(
        id=row.id,
        fixed=row.fixed,
        per_mille=row.per_mille,
        base=row.base,
        days=row.days,
        every=Every(row.every),
        month=row.month,
        day=row.day,
        description=row.description,
        status=ContributionStatus(row.status),
        proposal_id=row.proposal_id,
        created_by_id=row.created_by_id,
        created_at=row.created_at,
        active_since=row.active_since,
    )


class SqlContributions:
    """letsbot.ports.Contributions on a connection inside the unit of work's transaction."""

    def __init__(self, connection: Connection) -> None:
        self.db = connection

    def add_contribution(
        self,
        *,
        fixed: int,
        per_mille: int,
        base: str,
        days: int,
        every: str,
        month: int,
        day: int,
        description: str,
        status: ContributionStatus,
        proposal_id: int | None,
        created_by_id: int,
        at: datetime,
    ) -> Contribution:
        row = self.db.execute(
            insert(contributions)
            .values(
                fixed=fixed,
                per_mille=per_mille,
                base=base,
                days=days,
                every=every,
                month=month,
                day=day,
                description=description,
                status=status.value,
                proposal_id=proposal_id,
                created_by_id=created_by_id,
                created_at=at,
                active_since=at if status is ContributionStatus.ACTIVE else None,
                changed_at=at,
            )
            .returning(*contributions.c)
        ).one()
        return _contribution(row)

    def contribution(self, contribution_id: int) -> Contribution | None:
        row = self.db.execute(
            select(contributions).where(contributions.c.id == contribution_id)
        ).first()
        return _contribution(row) if row is not None else None

    def contributions(self, statuses: Iterable[ContributionStatus]) -> list[Contribution]:
        wanted = [status.value for status in statuses]
        rows = self.db.execute(
            select(contributions)
            .where(contributions.c.status.in_(wanted))
            .order_by(contributions.c.id)
        )
        return [_contribution(row) for row in rows]

    def carried_by(self, proposal_id: int) -> Contribution | None:
        row = self.db.execute(
            select(contributions).where(contributions.c.proposal_id == proposal_id)
        ).first()
        return _contribution(row) if row is not None else None

    def set_contribution_status(
        self,
        contribution_id: int,
        status: ContributionStatus,
        at: datetime,
        *,
        was: Iterable[ContributionStatus],
        active_since: datetime | None = None,
    ) -> bool:
        values: dict[str, Any] = {"status": status.value, "changed_at": at}
        if active_since is not None:
            values["active_since"] = active_since
        result = self.db.execute(
            update(contributions)
            .where(
                contributions.c.id == contribution_id,
                contributions.c.status.in_([w.value for w in was]),
            )
            .values(**values)
        )
        return result.rowcount == 1

    def handled_steps(self, contribution_ids: Sequence[int]) -> set[tuple[int, datetime, str]]:
        if not contribution_ids:
            return set()
        rows = self.db.execute(
            select(
                contribution_runs.c.contribution_id,
                contribution_runs.c.due_at,
                contribution_runs.c.step,
            ).where(contribution_runs.c.contribution_id.in_(list(contribution_ids)))
        )
        return {(row[0], row[1], row[2]) for row in rows}

    def claim_step(
        self,
        contribution_id: int,
        due_at: datetime,
        step: str,
        at: datetime,
        outcome: str,
        *,
        count: int = 0,
        total: int = 0,
    ) -> bool:
        statement = (
            dialect_insert(self.db, contribution_runs)
            .values(
                contribution_id=contribution_id,
                due_at=due_at,
                step=step,
                handled_at=at,
                outcome=outcome,
                count=count,
                total=total,
            )
            .on_conflict_do_nothing()
            .execution_options(preserve_rowcount=True)
        )
        return self.db.execute(statement).rowcount == 1

    def joined_since(self, since: datetime) -> set[int]:
        joined = func.coalesce(members.c.active_since, members.c.created_at)
        rows = self.db.execute(select(members.c.id).where(joined > since))
        return {row[0] for row in rows}
