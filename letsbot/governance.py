"""Collective decisions in the chat: proposals, votes, results, reminders opt-in.

The rules live in ``letsbot.decisions``; this module reads commands, stores
votes and tells the group. A secret ballot's choices are never put in a reply
or a log line, not even to the voter: every reply is the same whatever they
chose, and only the tallies are announced at the close.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

from letsbot.config import Settings
from letsbot.context import Context
from letsbot.contributions import carried_line, carry, cut_carried, decided
from letsbot.decisions import (
    ABSTAIN,
    AGAINST,
    FOR,
    Ballot,
    Policy,
    Proposal,
    ProposalStatus,
    Rule,
    Verdict,
    Vote,
    share,
    tally,
)
from letsbot.domain import Member, MemberCode, Status
from letsbot.errors import Refusal
from letsbot.i18n import Raw, Translator
from letsbot.markup import escape
from letsbot.messages import Choice, Outgoing, ToAllGroups
from letsbot.ports import Store
from letsbot.registry import REGISTRY, Who
from letsbot.text import fold
from letsbot.when import WhenError, parse_when

log = logging.getLogger(__name__)

TITLE_LIMIT = 300
OPTION_LIMIT = 80
MAX_OPTIONS = 10
LIST_LIMIT = 20
REMIND_BEFORE = timedelta(hours=24)
_ID = re.compile(r"#?([0-9]{1,9})", re.ASCII)
UNTIL_WORDS = {"until", "till", "tot"}

DEFAULT_LABELS = ("proposal.for", "proposal.against", "proposal.abstain")
CHOICE_WORDS = {
    FOR: {"voor", "for", "ja", "j", "yes", "y", "pro"},
    AGAINST: {"tegen", "against", "nee", "neen", "n", "no", "bezwaar", "objection"},
    ABSTAIN: {"onthouding", "onthoud", "abstain", "abstention", "blanco", "blank"},
}
RULE_TEXT = {
    Rule.MAJORITY: "proposal.rule_majority",
    Rule.SUPERMAJORITY: "proposal.rule_supermajority",
    Rule.CONSENT: "proposal.rule_consent",
}
BALLOT_TEXT = {Ballot.OPEN: "proposal.ballot_open", Ballot.SECRET: "proposal.ballot_secret"}
VERDICT_TEXT = {
    Verdict.ACCEPTED: "proposal.verdict_accepted",
    Verdict.REJECTED: "proposal.verdict_rejected",
    Verdict.CHOSEN: "proposal.verdict_chosen",
    Verdict.TIE: "proposal.verdict_tie",
    Verdict.NOT_DECIDED: "proposal.verdict_not_decided",
}
# Per-proposal overrides a coordinator may write in /propose: regel:consent, quorum:30%.
RULE_KEYS = {"rule", "regel"}
BALLOT_KEYS = {"ballot", "stemming"}
QUORUM_KEYS = {"quorum"}
RULE_WORDS = {
    "majority": Rule.MAJORITY,
    "meerderheid": Rule.MAJORITY,
    "supermajority": Rule.SUPERMAJORITY,
    "supermeerderheid": Rule.SUPERMAJORITY,
    "tweederde": Rule.SUPERMAJORITY,
    "consent": Rule.CONSENT,
}
BALLOT_WORDS = {"open": Ballot.OPEN, "secret": Ballot.SECRET, "geheim": Ballot.SECRET}
_SHARE = re.compile(r"([0-9]{1,3}(?:[.,][0-9]{1,4})?)(%?)", re.ASCII)


def group_t(settings: Settings, translators: dict[str, Translator]) -> Translator:
    return translators[settings.group.language]


def label(settings: Settings, member: Member, t: Translator) -> Raw:
    code = MemberCode.show(settings.group.code_prefix, member.number)
    name = t("privacy.forgotten_name") if member.forgotten else member.name
    return Raw(f"{escape(name)} ({code})")


# describing a proposal


def choice_labels(t: Translator, proposal: Proposal) -> list[str]:
    return list(proposal.options) or [t(key) for key in DEFAULT_LABELS]


def choices_text(t: Translator, proposal: Proposal) -> Raw:
    """``1 Voor, 2 Tegen, 3 Onthouding``."""
    labels = choice_labels(t, proposal)
    return Raw(", ".join(f"{n} {escape(text)}" for n, text in enumerate(labels, 1)))


def percent(t: Translator, value: Fraction) -> str:
    return f"{float(value * 100):.4g}%".replace(".", "," if t.language == "nl" else ".")


def rule_text(t: Translator, proposal: Proposal) -> Raw:
    if proposal.options:
        return Raw(t("proposal.rule_plurality"))
    policy = proposal.policy
    return Raw(t(RULE_TEXT[policy.rule], share=percent(t, policy.supermajority)))


def terms_text(t: Translator, proposal: Proposal, eligible: int) -> Raw:
    """``meer Voor dan Tegen; quorum 25%: 2 van 8 stemmen; open stemming``."""
    return Raw(
        t(
            "proposal.terms",
            rule=rule_text(t, proposal),
            quorum=percent(t, proposal.policy.quorum),
            needed=proposal.policy.quorum_needed(eligible),
            eligible=eligible,
            ballot=Raw(t(BALLOT_TEXT[proposal.ballot])),
        )
    )


def tally_text(t: Translator, proposal: Proposal, counts: list[int]) -> Raw:
    labels = choice_labels(t, proposal)
    return Raw(
        ", ".join(f"{escape(text)}: {count}" for text, count in zip(labels, counts, strict=True))
    )


def vote_choices(t: Translator, proposal: Proposal) -> tuple[Choice, ...]:
    """Buttons that vote: whoever presses one runs ``/stem <id> <n>`` as themselves."""
    command = REGISTRY.find("vote")
    assert command is not None
    word = command.name_in(t.language)
    return tuple(
        Choice(text, f"/{word} {proposal.id} {n}")
        for n, text in enumerate(choice_labels(t, proposal), 1)
    )


def vote_example(t: Translator, proposal: Proposal) -> Raw:
    key = "proposal.vote_example_option" if proposal.options else "proposal.vote_example"
    return Raw(t(key, id=proposal.id))


def verdict_text(
    t: Translator, proposal: Proposal, verdict: Verdict, winners: tuple[int, ...]
) -> Raw:
    labels = choice_labels(t, proposal)
    options = ", ".join(labels[i] for i in winners)
    return Raw(t(VERDICT_TEXT[verdict], options=options))


# closing: shared with the scheduler


def close(
    store: Store,
    settings: Settings,
    translators: dict[str, Translator],
    proposal: Proposal,
    now: datetime,
    *,
    early: bool,
) -> list[Outgoing]:
    """Close an open proposal and say its result in every group channel; [] if closed before."""
    eligible = store.governance.eligible_count(proposal.id)
    cast = store.governance.votes(proposal.id)
    counts = tally([vote for _, vote in cast], proposal.choices)
    outcome = proposal.decide(counts, eligible)
    if not store.governance.close_proposal(
        proposal.id, ProposalStatus.CLOSED, now, outcome.verdict
    ):
        return []
    log.info(
        "proposal closed: id=%s verdict=%s turnout=%s/%s early=%s",
        proposal.id,
        outcome.verdict.value,
        outcome.cast,
        eligible,
        early,
    )
    t = group_t(settings, translators)
    lines = [t("proposal.result_header", id=proposal.id, title=proposal.title)]
    if early:
        lines.append(t("proposal.result_early"))
    lines.append(verdict_text(t, proposal, outcome.verdict, outcome.winners))
    lines.append(t("proposal.result_tally", tally=tally_text(t, proposal, counts)))
    lines.append(
        t(
            "proposal.result_turnout",
            turnout=outcome.cast,
            eligible=eligible,
            needed=outcome.needed,
            met=Raw(t("proposal.quorum_met" if outcome.quorum_met else "proposal.quorum_missed")),
        )
    )
    lines.append(t("proposal.result_rule", terms=terms_text(t, proposal, eligible)))
    lines += objection_lines(t, settings, proposal, cast, after_close=True)
    lines += decided(store, settings, t, proposal.id, outcome.verdict, now)
    return [Outgoing(ToAllGroups(), "\n".join(lines))]


def objection_lines(
    t: Translator,
    settings: Settings,
    proposal: Proposal,
    cast: list[tuple[Member, Vote]],
    *,
    after_close: bool,
) -> list[str]:
    """Consent: the objections with their reasons; named only on an open ballot."""
    if proposal.options or proposal.policy.rule is not Rule.CONSENT:
        return []
    if proposal.secret and not after_close:
        return []
    found = [(member, vote) for member, vote in cast if vote.choice == AGAINST]
    if not found:
        return []
    lines = [t("proposal.objections")]
    for member, vote in found:
        reason = vote.objection or "-"
        if proposal.secret:
            lines.append(t("proposal.objection_secret", reason=reason))
        else:
            lines.append(t("proposal.objection", who=label(settings, member, t), reason=reason))
    return lines


# reading commands


def find_proposal(ctx: Context, words: list[str], usage_of: str) -> tuple[Proposal, list[str]]:
    match = _ID.fullmatch(words[0]) if words else None
    if match is None:
        raise Refusal("proposal.which", example=ctx.usage(usage_of))
    proposal = ctx.store.governance.proposal(int(match.group(1)), lock=True)
    if proposal is None:
        raise Refusal("proposal.unknown", id=match.group(1))
    return proposal, words[1:]


def _share(text: str) -> Fraction | None:
    match = _SHARE.fullmatch(text)
    if match is None:
        return None
    value = share(match.group(1).replace(",", "."))
    if match.group(2):
        value /= 100
    elif value > 1:
        value /= 100  # quorum:30 means 30%
    return value if 0 <= value <= 1 else None


@dataclass
class Overrides:
    """What a coordinator changed for one proposal; None: the group's setting."""

    rule: Rule | None = None
    ballot: Ballot | None = None
    quorum: Fraction | None = None


def cut_overrides(ctx: Context, words: list[str]) -> tuple[list[str], Overrides]:
    """Take ``regel:consent``, ``stemming:geheim``, ``quorum:30%`` out of the words."""
    keys = RULE_KEYS | BALLOT_KEYS | QUORUM_KEYS
    rest: list[str] = []
    found = Overrides()
    i = 0
    while i < len(words):
        key, colon, value = words[i].partition(":")
        if not colon or fold(key) not in keys:
            rest.append(words[i])
            i += 1
            continue
        typed = words[i]
        if not value and i + 1 < len(words):
            value = words[i + 1]
            typed += " " + value
            i += 1
        i += 1
        word, folded = fold(value), fold(key)
        if folded in RULE_KEYS and word in RULE_WORDS:
            found.rule = RULE_WORDS[word]
        elif folded in BALLOT_KEYS and word in BALLOT_WORDS:
            found.ballot = BALLOT_WORDS[word]
        elif folded in QUORUM_KEYS and (quorum := _share(word)) is not None:
            found.quorum = quorum
        else:
            raise Refusal("proposal.bad_override", text=typed[:40])
    if found != Overrides() and not ctx.member.is_coordinator:
        raise Refusal("proposal.override_coordinators")
    return rest, found


def cut_deadline(ctx: Context, words: list[str]) -> tuple[list[str], datetime | None]:
    """``until 12/12 20:00`` at the end: the deadline; anything else is text."""
    marks = [i for i, word in enumerate(words[:-1]) if fold(word) in UNTIL_WORDS]
    if not marks:
        return words, None
    at = marks[-1]
    try:
        when, rest = parse_when(words[at + 1 :], now=ctx.now, tz=ctx.settings.tz)
    except WhenError as error:
        if error.reason == "no_date":
            return words, None
        raise Refusal(
            f"when.{error.reason}", text=error.text[:40], example=ctx.usage("propose")
        ) from None
    if rest:
        return words, None
    return words[:at], when.start


def split_options(ctx: Context, words: list[str]) -> tuple[str, list[str]]:
    parts = [part.strip() for part in " ".join(words).split("|")]
    title = ctx.text_argument(parts[0].split(), usage_of="propose", limit=TITLE_LIMIT)
    options = [part for part in parts[1:] if part]
    if len(parts) > 1 and len(options) < 2:
        raise Refusal("proposal.two_options", example=Raw(ctx.t("proposal.options_example")))
    if len(options) > MAX_OPTIONS:
        raise Refusal("proposal.too_many_options", limit=MAX_OPTIONS)
    for option in options:
        if len(option) > OPTION_LIMIT:
            raise Refusal("proposal.option_too_long", limit=OPTION_LIMIT)
    folded = [fold(option) for option in options]
    if len(set(folded)) < len(folded):
        raise Refusal("proposal.same_option")
    return title, options


# commands


@REGISTRY.command("propose", nl="voorstel", who=Who.MEMBER, private=True)
def propose(ctx: Context, words: list[str]) -> None:
    if len(words) == 1 and _ID.fullmatch(words[0]):
        details(ctx, words)  # /voorstel 3: show it
        return
    if ctx.member.status is not Status.ACTIVE:
        raise Refusal("error.inactive", group=ctx.settings.group.name)
    words = " ".join(words).replace("|", " | ").split()
    words, overrides = cut_overrides(ctx, words)
    words, closes_at = cut_deadline(ctx, words)
    words, carried = cut_carried(ctx, words)  # a contribution rule the vote would start
    if carried is not None and closes_at is None:  # "… tot 20/12 bijdrage: 12 per jaar …"
        words, closes_at = cut_deadline(ctx, words)
    title, options = split_options(ctx, words)
    if carried is not None and options:
        raise Refusal("contribution.proposal_options")
    config = ctx.settings.governance
    policy = Policy(
        overrides.rule or Rule(config.rule),
        share(config.quorum) if overrides.quorum is None else overrides.quorum,
        share(config.supermajority),
    )
    closes_at = closes_at or ctx.now + config.default_duration
    remind_at = closes_at - REMIND_BEFORE
    voters = [m.id for m in ctx.store.members.members([Status.ACTIVE]) if not m.is_group_account]
    proposal = ctx.store.governance.add_proposal(
        title=title,
        options=options,
        policy=policy,
        ballot=overrides.ballot or Ballot(config.ballot),
        early_close=config.early_close,
        proposer_id=ctx.member.id,
        at=ctx.now,
        closes_at=closes_at,
        remind_at=remind_at if remind_at > ctx.now else None,
        voter_ids=voters,
    )
    log.info("proposal made: id=%s eligible=%s", proposal.id, len(voters))
    saved = ctx.t("proposal.saved", id=proposal.id, deadline=ctx.t.moment(closes_at))
    t = group_t(ctx.settings, ctx.translators)
    rule = carry(ctx, proposal.id, carried) if carried is not None else None
    ctx.reply(saved if rule is None else saved + "\n" + carried_line(ctx.t, rule))
    text = t(
        "proposal.announce",
        id=proposal.id,
        who=label(ctx.settings, ctx.member, t),
        title=title,
        choices=choices_text(t, proposal),
        deadline=t.moment(closes_at),
        terms=terms_text(t, proposal, len(voters)),
        example=vote_example(t, proposal),
    )
    if rule is not None:
        text += "\n" + carried_line(t, rule)
    choices = vote_choices(t, proposal)
    ctx.replies.append(Outgoing(ToAllGroups(), text, choices, secret=proposal.secret))


def read_choice(ctx: Context, proposal: Proposal, words: list[str]) -> tuple[int, str | None]:
    """The chosen index, and the objection's reason for a consent Against."""
    example = vote_example(ctx.t, proposal)
    if not words:
        raise Refusal("vote.which_choice", example=example, choices=choices_text(ctx.t, proposal))
    if proposal.options:
        typed = fold(" ".join(words))
        if typed.isdigit() and 1 <= int(typed) <= len(proposal.options):
            return int(typed) - 1, None
        folded = [fold(option) for option in proposal.options]
        exact = [i for i, option in enumerate(folded) if option == typed]
        starts = [i for i, option in enumerate(folded) if option.startswith(typed)]
        if exact or len(starts) == 1:
            return (exact or starts)[0], None
    else:
        first = fold(words[0]).rstrip(".!")
        for index, accepted in CHOICE_WORDS.items():
            if (
                first in accepted
                or first == str(index + 1)
                or first == fold(ctx.t(DEFAULT_LABELS[index]))
            ):
                reason = " ".join(words[1:]).strip()[:300] or None
                if proposal.policy.rule is Rule.CONSENT and index == AGAINST:
                    if reason is None:
                        raise Refusal(
                            "vote.objection_needed",
                            example=Raw(ctx.t("proposal.objection_example", id=proposal.id)),
                        )
                    return index, reason
                return index, None
    raise Refusal(
        "vote.unknown_choice", text=" ".join(words)[:40], choices=choices_text(ctx.t, proposal)
    )


@REGISTRY.command("vote", nl="stem", who=Who.MEMBER, also=("stemmen",))
def vote(ctx: Context, words: list[str]) -> None:
    proposal, rest = find_proposal(ctx, words, "vote")
    if proposal.status is not ProposalStatus.OPEN or ctx.now >= proposal.closes_at:
        raise Refusal("vote.closed", id=proposal.id)
    if not ctx.store.governance.is_eligible(proposal.id, ctx.member.id):
        raise Refusal("vote.not_eligible", id=proposal.id)
    choice, objection = read_choice(ctx, proposal, rest)
    first = ctx.store.governance.set_vote(proposal.id, ctx.member.id, choice, objection, ctx.now)
    deadline = ctx.t.moment(proposal.closes_at)
    if proposal.secret:
        key = "vote.done_secret" if first else "vote.changed_secret"
        ctx.reply(ctx.t(key, id=proposal.id, deadline=deadline))
    else:
        key = "vote.done" if first else "vote.changed"
        picked = choice_labels(ctx.t, proposal)[choice]
        ctx.reply(ctx.t(key, id=proposal.id, choice=picked, deadline=deadline))
    if proposal.early_close:
        counts = tally([v for _, v in ctx.store.governance.votes(proposal.id)], proposal.choices)
        if proposal.certain(counts, ctx.store.governance.eligible_count(proposal.id)):
            ctx.replies += close(
                ctx.store, ctx.settings, ctx.translators, proposal, ctx.now, early=True
            )


@REGISTRY.command("proposals", nl="voorstellen", who=Who.MEMBER, private=True)
def proposals(ctx: Context, words: list[str]) -> None:
    found = ctx.store.governance.open_proposals(LIST_LIMIT)
    if not found:
        ctx.reply(ctx.t("proposals.none", example=ctx.usage("propose")))
        return
    turnouts = ctx.store.governance.turnouts([p.id for p in found])
    lines = [ctx.t("proposals.header")]
    for proposal in found:
        lines.append(
            ctx.t(
                "proposals.line",
                id=proposal.id,
                title=proposal.title,
                deadline=ctx.t.moment(proposal.closes_at),
                turnout=turnouts.get(proposal.id, 0),
                eligible=ctx.store.governance.eligible_count(proposal.id),
            )
        )
    lines.append(ctx.t("proposals.footer"))
    ctx.reply("\n".join(lines))


@REGISTRY.command("proposal", nl="stemming", who=Who.MEMBER, private=True)
def proposal_command(ctx: Context, words: list[str]) -> None:
    details(ctx, words)


def details(ctx: Context, words: list[str]) -> None:
    proposal, _ = find_proposal(ctx, words, "proposal")
    t = ctx.t
    eligible = ctx.store.governance.eligible_count(proposal.id)
    cast = ctx.store.governance.votes(proposal.id)
    counts = tally([v for _, v in cast], proposal.choices)
    proposer = ctx.store.members.member(proposal.proposer_id)
    assert proposer is not None
    lines = [
        t(
            "proposal.details",
            id=proposal.id,
            who=label(ctx.settings, proposer, t),
            title=proposal.title,
        ),
        t("proposal.details_choices", choices=choices_text(t, proposal)),
        t("proposal.result_rule", terms=terms_text(t, proposal, eligible)),
    ]
    carried = ctx.store.contributions.carried_by(proposal.id)
    if carried is not None:
        lines.append(carried_line(t, carried))
    is_open = proposal.status is ProposalStatus.OPEN
    if is_open:
        lines.append(t("proposal.open_until", deadline=t.moment(proposal.closes_at)))
    elif proposal.status is ProposalStatus.WITHDRAWN:
        lines.append(t("proposal.is_withdrawn", when=t.moment(proposal.closed_at or ctx.now)))
    else:
        outcome = proposal.decide(counts, eligible)
        lines.append(t("proposal.is_closed", when=t.moment(proposal.closed_at or ctx.now)))
        lines.append(verdict_text(t, proposal, outcome.verdict, outcome.winners))
    if proposal.secret and proposal.status is not ProposalStatus.CLOSED:
        lines.append(t("proposal.turnout", turnout=len(cast), eligible=eligible))
    else:
        lines.append(t("proposal.result_tally", tally=tally_text(t, proposal, counts)))
        lines.append(t("proposal.turnout", turnout=len(cast), eligible=eligible))
    lines += objection_lines(
        t, ctx.settings, proposal, cast, after_close=proposal.status is ProposalStatus.CLOSED
    )
    mine = next((v for m, v in cast if m.id == ctx.member.id), None)
    may_vote = is_open and ctx.store.governance.is_eligible(proposal.id, ctx.member.id)
    if mine is not None and proposal.secret:
        lines.append(t("proposal.you_voted_secret"))
    elif mine is not None:
        lines.append(t("proposal.you_voted", choice=choice_labels(t, proposal)[mine.choice]))
    elif may_vote:
        lines.append(t("proposal.you_not_yet", example=vote_example(t, proposal)))
    ctx.reply("\n".join(lines), choices=vote_choices(t, proposal) if may_vote else ())


@REGISTRY.command("withdraw_proposal", nl="voorstel_intrekken", who=Who.MEMBER)
def withdraw(ctx: Context, words: list[str]) -> None:
    proposal, rest = find_proposal(ctx, words, "withdraw_proposal")
    if proposal.status is not ProposalStatus.OPEN:
        raise Refusal("proposal.not_open", id=proposal.id)
    reason = " ".join(rest).strip()[:300] or None
    own_and_unvoted = proposal.proposer_id == ctx.member.id and not ctx.store.governance.turnouts(
        [proposal.id]
    )
    if not own_and_unvoted:
        if not ctx.member.is_coordinator:
            key = (
                "proposal.has_votes"
                if proposal.proposer_id == ctx.member.id
                else "proposal.not_yours"
            )
            raise Refusal(key, id=proposal.id)
        if reason is None:
            raise Refusal("proposal.reason_needed", example=ctx.usage("withdraw_proposal"))
    ctx.store.governance.close_proposal(
        proposal.id, ProposalStatus.WITHDRAWN, ctx.now, reason=reason
    )
    decided(ctx.store, ctx.settings, ctx.t, proposal.id, None, ctx.now)  # its rule never starts
    log.info("proposal withdrawn: id=%s", proposal.id)
    ctx.reply(ctx.t("proposal.withdrawn_done", id=proposal.id))
    t = group_t(ctx.settings, ctx.translators)
    if reason:
        text = t("proposal.withdrawn_reason", id=proposal.id, title=proposal.title, reason=reason)
    else:
        text = t("proposal.withdrawn", id=proposal.id, title=proposal.title)
    ctx.replies.append(Outgoing(ToAllGroups(), text))


ON = {"on", "aan", "ja", "yes"}
OFF = {"off", "uit", "nee", "no"}


@REGISTRY.command("notify", nl="meldingen", who=Who.MEMBER, private=True)
def notify(ctx: Context, words: list[str]) -> None:
    word = fold(words[0]) if words else ""
    if word not in ON | OFF:
        on = ctx.store.governance.notify_on(ctx.member.id)
        raise Refusal(
            "notify.which",
            now=Raw(ctx.t("notify.is_on" if on else "notify.is_off")),
            example=ctx.usage("notify"),
        )
    on = word in ON
    ctx.store.governance.set_notify(ctx.member.id, on, ctx.now)
    ctx.reply(ctx.t("notify.on" if on else "notify.off"))
