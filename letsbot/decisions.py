"""Collective decisions: tallies, quorum, outcome, and when an outcome is certain. Pure.

A proposal is either a yes/no question (choices For, Against, Abstain, in that
order) decided by its rule, or a choice among options decided by plurality.
Shares (quorum, supermajority) are read as exact fractions of their decimal
text, so 0.25 of 8 members is exactly 2 and "quorum exactly met" means it.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

FOR, AGAINST, ABSTAIN = 0, 1, 2
DEFAULT_CHOICES = 3


class Rule(enum.StrEnum):
    MAJORITY = "majority"  # more For than Against
    SUPERMAJORITY = "supermajority"  # For at least a share of For + Against
    CONSENT = "consent"  # accepted unless someone objects (votes Against)


class Ballot(enum.StrEnum):
    OPEN = "open"
    SECRET = "secret"


class Verdict(enum.StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    CHOSEN = "chosen"  # an option won by plurality
    TIE = "tie"  # options share the most votes
    NOT_DECIDED = "not_decided"  # quorum missed, or nobody voted: never "rejected"


class ProposalStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"


def share(value: float | str) -> Fraction:
    """0.667 -> 667/1000, not the nearest binary float."""
    return Fraction(str(value))


@dataclass(frozen=True, slots=True)
class Policy:
    rule: Rule
    quorum: Fraction  # of the eligible voters, abstentions included
    supermajority: Fraction

    def quorum_needed(self, eligible: int) -> int:
        return math.ceil(self.quorum * eligible)


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: Verdict
    winners: tuple[int, ...]  # the chosen option, or the tied ones
    cast: int
    needed: int  # votes for quorum

    @property
    def quorum_met(self) -> bool:
        return self.cast >= self.needed


def decide(policy: Policy, counts: Sequence[int], eligible: int, *, options: bool) -> Outcome:
    """The result of ``counts`` (votes per choice); ``options``: plurality among options."""
    cast = sum(counts)
    needed = policy.quorum_needed(eligible)
    if cast == 0 or cast < needed:
        return Outcome(Verdict.NOT_DECIDED, (), cast, needed)
    if options:
        top = max(counts)
        leaders = tuple(i for i, count in enumerate(counts) if count == top)
        verdict = Verdict.CHOSEN if len(leaders) == 1 else Verdict.TIE
        return Outcome(verdict, leaders, cast, needed)
    accepted = _accepted(policy, counts[FOR], counts[AGAINST])
    return Outcome(Verdict.ACCEPTED if accepted else Verdict.REJECTED, (), cast, needed)


def _accepted(policy: Policy, yes: int, no: int) -> bool:
    if policy.rule is Rule.CONSENT:
        return no == 0
    if policy.rule is Rule.SUPERMAJORITY:
        return yes + no > 0 and yes >= policy.supermajority * (yes + no)
    return yes > no


def certain(policy: Policy, counts: Sequence[int], eligible: int, *, options: bool) -> bool:
    """Whether the result stands whatever the members who haven't voted yet do.

    Every remaining member may vote any choice or not vote at all. Votes
    already cast count as final (an early close ends the chance to change).
    """
    remaining = eligible - sum(counts)
    if remaining <= 0:
        return True
    now = decide(policy, counts, eligible, options=options)
    if now.verdict is Verdict.NOT_DECIDED:
        # Not voting keeps it undecided; everyone voting reaches quorum (it is at most 1).
        return False
    if options:
        if now.verdict is Verdict.TIE:
            return False  # one more vote breaks it
        (leader,) = now.winners
        return all(
            count + remaining < counts[leader] for i, count in enumerate(counts) if i != leader
        )
    # The rules are monotone: more For only helps, more Against only hurts,
    # abstaining changes neither. The extremes decide.
    yes, no = counts[FOR], counts[AGAINST]
    if now.verdict is Verdict.ACCEPTED:
        return _accepted(policy, yes, no + remaining)
    return not _accepted(policy, yes + remaining, no)


@dataclass(frozen=True, slots=True)
class Proposal:
    id: int
    title: str
    options: tuple[str, ...]  # empty: the choices are For, Against, Abstain
    policy: Policy
    ballot: Ballot
    early_close: bool
    proposer_id: int
    created_at: datetime
    closes_at: datetime
    remind_at: datetime | None
    status: ProposalStatus
    closed_at: datetime | None
    verdict: Verdict | None
    withdraw_reason: str | None

    @property
    def choices(self) -> int:
        return len(self.options) or DEFAULT_CHOICES

    @property
    def secret(self) -> bool:
        return self.ballot is Ballot.SECRET

    def decide(self, counts: Sequence[int], eligible: int) -> Outcome:
        return decide(self.policy, counts, eligible, options=bool(self.options))

    def certain(self, counts: Sequence[int], eligible: int) -> bool:
        return certain(self.policy, counts, eligible, options=bool(self.options))


@dataclass(frozen=True, slots=True)
class Vote:
    member_id: int
    choice: int
    objection: str | None  # consent: why the member votes Against
    voted_at: datetime


def tally(votes: Sequence[Vote], choices: int) -> list[int]:
    counts = [0] * choices
    for vote in votes:
        counts[vote.choice] += 1
    return counts
