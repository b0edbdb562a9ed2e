"""Proposals, votes and who wants reminders of them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    delete,
    exists,
    func,
    insert,
    select,
    update,
)

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
    Member,
)
from storage.rows import TRADING, dialect_insert, member_row
from storage.tables import (
    members,
    notify_optins,
    proposal_voters,
    proposals,
    votes,
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


class SqlGovernance:
    """letsbot.ports.Governance on a connection inside the unit of work's transaction."""

    def __init__(self, connection: Connection) -> None:
        self.db = connection

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
        statement = dialect_insert(self.db, votes).values(
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
            (member_row(row), Vote(row.id, row.choice, row.objection, row.voted_at)) for row in rows
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
                members.c.status.in_(TRADING),
                ~exists().where(
                    votes.c.proposal_id == proposal_id, votes.c.member_id == members.c.id
                ),
            )
            .order_by(members.c.number)
        )
        return [member_row(row) for row in rows]

    def set_notify(self, member_id: int, on: bool, at: datetime) -> bool:
        if not on:
            result = self.db.execute(
                delete(notify_optins).where(notify_optins.c.member_id == member_id)
            )
            return result.rowcount == 1
        statement = (
            dialect_insert(self.db, notify_optins)
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
