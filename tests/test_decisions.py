"""The decision rules: tallies, quorum, outcome, and certainty for an early close."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from letsbot.decisions import Outcome, Policy, Rule, Verdict, certain, decide, share

MAJORITY = Policy(Rule.MAJORITY, share(0.25), share(0.667))
SUPER = Policy(Rule.SUPERMAJORITY, share(0.25), share(0.667))
CONSENT = Policy(Rule.CONSENT, share(0.25), share(0.667))


def verdict(policy: Policy, counts: tuple[int, ...], eligible: int, options: bool = False) -> str:
    return decide(policy, counts, eligible, options=options).verdict.value


# majority


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ((3, 2, 0), "accepted"),
        ((2, 2, 0), "rejected"),  # a tie is not more For than Against
        ((2, 3, 5), "rejected"),
        ((1, 0, 9), "accepted"),  # abstentions don't count against
        ((0, 0, 4), "rejected"),  # only abstentions: nothing for it
    ],
)
def test_majority(counts: tuple[int, int, int], expected: str) -> None:
    assert verdict(MAJORITY, counts, 10) == expected


def test_quorum_exactly_met_decides_and_one_less_does_not() -> None:
    # 25% of 8 members is exactly 2 votes; abstentions count for quorum.
    assert decide(MAJORITY, (1, 0, 1), 8, options=False) == Outcome(Verdict.ACCEPTED, (), 2, 2)
    assert decide(MAJORITY, (1, 0, 0), 8, options=False) == Outcome(Verdict.NOT_DECIDED, (), 1, 2)
    # 25% of 9 is 2.25: three votes are needed.
    assert decide(MAJORITY, (2, 0, 0), 9, options=False).verdict is Verdict.NOT_DECIDED
    assert decide(MAJORITY, (0, 3, 0), 9, options=False).verdict is Verdict.REJECTED


def test_missing_quorum_is_never_rejected() -> None:
    assert verdict(MAJORITY, (0, 2, 0), 100) == "not_decided"
    assert verdict(CONSENT, (0, 1, 0), 100) == "not_decided"


def test_nobody_voting_is_not_decided_even_without_quorum() -> None:
    zero = Policy(Rule.CONSENT, Fraction(0), share(0.667))
    assert verdict(zero, (0, 0, 0), 10) == "not_decided"
    assert verdict(zero, (0, 0, 1), 10) == "accepted"


def test_quorum_is_exact_arithmetic() -> None:
    # 0.667 * 3 in binary floats is 2.0010000000000003; as a fraction it is 2.001.
    assert Policy(Rule.MAJORITY, share(0.667), share(0.5)).quorum_needed(3) == 3
    assert Policy(Rule.MAJORITY, share(0.1), share(0.5)).quorum_needed(30) == 3  # not 4


# supermajority


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ((667, 333, 0), "accepted"),  # exactly the share
        ((666, 334, 0), "rejected"),
        ((2, 1, 0), "rejected"),  # 2/3 = 0.6666... < 0.667
        ((3, 1, 4), "accepted"),
        ((0, 0, 5), "rejected"),
    ],
)
def test_supermajority(counts: tuple[int, int, int], expected: str) -> None:
    assert verdict(SUPER, counts, sum(counts)) == expected


def test_two_thirds_as_a_fraction() -> None:
    two_thirds = Policy(Rule.SUPERMAJORITY, Fraction(0), Fraction(2, 3))
    assert verdict(two_thirds, (2, 1, 0), 3) == "accepted"


# consent


def test_consent_one_objection_rejects() -> None:
    assert verdict(CONSENT, (9, 1, 0), 10) == "rejected"
    assert verdict(CONSENT, (9, 0, 1), 10) == "accepted"
    assert verdict(CONSENT, (0, 0, 3), 10) == "accepted"  # no objection


# options


def test_plurality_and_ties() -> None:
    assert decide(MAJORITY, (3, 5, 1), 20, options=True) == Outcome(Verdict.CHOSEN, (1,), 9, 5)
    assert decide(MAJORITY, (4, 4, 1), 20, options=True) == Outcome(Verdict.TIE, (0, 1), 9, 5)
    assert decide(MAJORITY, (2, 2, 2), 8, options=True).winners == (0, 1, 2)
    assert verdict(MAJORITY, (2, 0), 20, options=True) == "not_decided"


# certainty


def test_early_close_by_certainty() -> None:
    # 10 eligible, 6 For, 0 Against: the 4 others can at most tie it.
    assert not certain(MAJORITY, (5, 0, 0), 10, options=False)
    assert certain(MAJORITY, (6, 0, 0), 10, options=False)
    assert certain(MAJORITY, (0, 5, 0), 10, options=False)  # 5 more For would only tie
    assert not certain(MAJORITY, (1, 0, 0), 10, options=False)  # quorum not met yet
    assert certain(MAJORITY, (1, 1, 1), 3, options=False)  # everyone voted


def test_consent_closes_at_an_objection_once_quorum_is_met() -> None:
    assert certain(CONSENT, (2, 1, 0), 10, options=False)
    assert not certain(CONSENT, (0, 1, 0), 10, options=False)  # quorum not met
    assert not certain(CONSENT, (9, 0, 0), 10, options=False)  # the last could object
    assert certain(CONSENT, (10, 0, 0), 10, options=False)


def test_options_certain_only_with_an_unreachable_lead() -> None:
    assert certain(MAJORITY, (5, 1, 0), 9, options=True)  # 1 + 3 < 5
    assert not certain(MAJORITY, (4, 2, 0), 9, options=True)  # 2 + 3 could pass it
    assert not certain(MAJORITY, (3, 3, 0), 9, options=True)


def completions(choices: int, remaining: int) -> list[tuple[int, ...]]:
    """Every way the remaining members could add votes (or stay away)."""
    return [
        extra
        for extra in itertools.product(range(remaining + 1), repeat=choices)
        if sum(extra) <= remaining
    ]


policies = st.builds(
    Policy,
    st.sampled_from(list(Rule)),
    st.sampled_from([Fraction(0), share(0.25), share(0.5), share(0.667), Fraction(1)]),
    st.sampled_from([share(0.5), share(0.6), share(0.667), Fraction(3, 4), Fraction(1)]),
)


@settings(max_examples=400, deadline=None)
@given(
    policy=policies,
    options=st.booleans(),
    choices=st.integers(2, 4),
    eligible=st.integers(0, 7),
    data=st.data(),
)
def test_certain_exactly_when_no_remaining_voters_can_change_it(
    policy: Policy, options: bool, choices: int, eligible: int, data: st.DataObject
) -> None:
    choices = choices if options else 3
    cast = data.draw(st.integers(0, eligible))
    cuts = sorted(
        data.draw(st.lists(st.integers(0, cast), min_size=choices - 1, max_size=choices - 1))
    )
    counts = tuple(b - a for a, b in zip([0, *cuts], [*cuts, cast], strict=True))
    now = decide(policy, counts, eligible, options=options)
    finals = {
        _result(policy, counts, extra, eligible, options)
        for extra in completions(choices, eligible - cast)
    }
    # Early close never contradicts the final result, and closes whenever it may.
    assert certain(policy, counts, eligible, options=options) == (
        finals == {(now.verdict, now.winners)}
    )


def _result(
    policy: Policy, counts: tuple[int, ...], extra: tuple[int, ...], eligible: int, options: bool
) -> tuple[Verdict, tuple[int, ...]]:
    final = decide(
        policy, tuple(c + e for c, e in zip(counts, extra, strict=True)), eligible, options=options
    )
    return final.verdict, final.winners
