"""Contributions: every active member pays the group account, every year or every month.

A coordinator makes one with /bijdrage (/contribution), or a proposal carries
one and it starts only when the vote accepts it. The amount per member is a
mass payment's rule (letsbot.bulk: fixed, per-mille of the balance or of the
turnover, rounded to whole units); the many are the active members, less
those approved fewer than ``contributions.new_member_days`` days ago
(leaving members don't pay); members a hard limit refuses are skipped and
named to the coordinators.

As with event reminders, the rules are the schedule and a unique row
(contribution, period's due time, step) is the claim: the announcement
``announce_days`` before and the run itself are each claimed once, in the
transaction that books and queues the messages, so a restart, a clock jump or
a second process never books a period twice. A run missed while the bot was
down is booked when it comes back (the latest period only); periods due
at or before the moment a rule became active (made, accepted or resumed) are never
booked: the first run is the one its maker was told.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

from letsbot.bulk import (
    Base,
    Plan,
    Rule,
    make_plan,
    parse_rule,
    refused_text,
    rule_text,
    soft_line,
    soft_list,
)
from letsbot.config import Settings
from letsbot.context import Compose, Context
from letsbot.decisions import Verdict
from letsbot.domain import (
    Contribution,
    ContributionStatus,
    Every,
    Member,
    MemberCode,
    Pending,
    PendingAction,
    Role,
    Status,
    TransferKind,
)
from letsbot.errors import Busy, Refusal
from letsbot.i18n import Raw, Translator
from letsbot.jobs import Job
from letsbot.ledger import DESCRIPTION_LIMIT
from letsbot.markup import escape, to_plain
from letsbot.messages import Outgoing, ToAllGroups, ToPerson
from letsbot.ports import Store
from letsbot.posting import LimitRefused, post_many
from letsbot.registry import REGISTRY, Who
from letsbot.text import fold
from letsbot.when import month_number

log = logging.getLogger(__name__)

ANNOUNCE, RUN = "announce", "run"
SHOWN = 30  # members named in one message to the coordinators; the rest counted
_PER = frozenset({"per", "elk", "elke", "ieder", "iedere", "every", "each", "a", "an"})
_EVERY = {
    **dict.fromkeys(("jaar", "year", "jaarlijks", "yearly", "annually"), Every.YEAR),
    **dict.fromkeys(("maand", "month", "maandelijks", "monthly"), Every.MONTH),
}
_ON = frozenset({"op", "on", "de", "the", "vanaf", "from", "starting"})
_ORDINAL = re.compile(r"(?<=[0-9])(ste|de|e|st|nd|rd|th)$")
_PAUSE = frozenset({"pauze", "pauzeer", "pauzeren", "pause"})
_RESUME = frozenset({"hervat", "hervatten", "verder", "herstart", "herstarten", "resume"})
_END = frozenset(
    {"stop", "stoppen", "stopzetten", "einde", "beeindig", "beeindigen", "end"}
    | {"verwijder", "verwijderen", "annuleer", "annuleren", "delete", "remove", "cancel"}
)
_YEAR = re.compile(r"(19|20|21)[0-9]{2}")
_ORDINAL_WORDS = {
    **dict.fromkeys(("eerste", "first"), 1),
    **dict.fromkeys(("tweede", "second"), 2),
    **dict.fromkeys(("derde", "third"), 3),
    **dict.fromkeys(("vierde", "fourth"), 4),
    **dict.fromkeys(("vijfde", "fifth"), 5),
}
_MARKS = frozenset({"bijdrage:", "contribution:"})  # in /voorstel: the rule follows
_LIVE = (ContributionStatus.ACTIVE, ContributionStatus.PAUSED)
LISTED = (*_LIVE, ContributionStatus.PROPOSED)


def rule_of(contribution: Contribution) -> Rule:
    return Rule(
        contribution.fixed, contribution.per_mille, Base(contribution.base), contribution.days
    )


# when


def _on(settings: Settings, day: date) -> datetime:
    local = datetime.combine(day, settings.contributions.clock, tzinfo=settings.tz)
    return local.astimezone(UTC)


def dues_around(contribution: Contribution, now: datetime, settings: Settings) -> list[datetime]:
    """The due times of the periods around ``now``: the one before and the one after are in it."""
    today = now.astimezone(settings.tz).date()
    if contribution.every is Every.YEAR:
        days = [
            date(year, contribution.month, contribution.day)
            for year in range(today.year - 1, today.year + 2)
        ]
    else:
        months = [(today.year * 12 + today.month - 1 + shift) for shift in (-1, 0, 1)]
        days = [date(m // 12, m % 12 + 1, contribution.day) for m in months]
    return [_on(settings, day) for day in days]


def last_due(contribution: Contribution, now: datetime, settings: Settings) -> datetime:
    return max(at for at in dues_around(contribution, now, settings) if at <= now)


def next_due(contribution: Contribution, now: datetime, settings: Settings) -> datetime:
    return min(at for at in dues_around(contribution, now, settings) if at > now)


def announce_time(due: datetime, settings: Settings) -> datetime:
    """Whole local days before the run, so DST doesn't shift the hour."""
    local = due.astimezone(settings.tz).replace(tzinfo=None)
    earlier = local - timedelta(days=settings.contributions.announce_days)
    return earlier.replace(tzinfo=settings.tz).astimezone(UTC)


# describing


def period_text(t: Translator, contribution: Contribution) -> Raw:
    """``per jaar, op 15 januari`` / ``per maand, op de 1e``."""
    if contribution.every is Every.YEAR:
        day = t.day_month(contribution.month, contribution.day)
        return Raw(t("contribution.every_year", day=day))
    return Raw(t("contribution.every_month", day=contribution.day))


def amount_text(t: Translator, contribution: Contribution) -> Raw:
    return Raw(rule_text(t, rule_of(contribution)))


def line_text(t: Translator, contribution: Contribution) -> Raw:
    """``#1 jaarbijdrage: 12 pluimen per lid, per jaar, op 15 januari``."""
    return Raw(
        t(
            "contribution.line",
            id=contribution.id,
            description=contribution.description,
            amount=amount_text(t, contribution),
            period=period_text(t, contribution),
        )
    )


def not_paying(t: Translator, settings: Settings) -> str:
    days = settings.contributions.new_member_days
    if days:
        return t("contribution.not_paying", days=days)
    return t("contribution.not_paying_leaving")


def period_label(t: Translator, contribution: Contribution, due: datetime) -> str:
    """The period a run is for, as a booking's description names it: ``2027``, ``januari 2027``."""
    if contribution.every is Every.YEAR:
        return str(due.astimezone(t.timezone).year)
    return str(t.month(due))


# parsing


@dataclass(frozen=True, slots=True)
class Typed:
    """A contribution as typed, not yet stored."""

    rule: Rule
    every: Every
    month: int
    day: int
    description: str


def _word(word: str) -> str:
    """A word to compare, without the comma typed after it: "per jaar, op 1/7, lidgeld"."""
    return fold(word).rstrip(",")


def _read_day(ctx: Context, every: Every, word: str, typed: str) -> tuple[int, int]:
    """``15/01`` (a yearly one) or ``15`` (a monthly one): (month, day). ``typed``: the
    words as the member typed them, for a refusal."""
    text = word.strip(".,").replace("-", "/").replace(".", "/")
    if every is Every.MONTH:
        text = _ORDINAL.sub("", text)  # 1e, 1ste, 1st, 2nd, 3rd
        if text.isdigit() and len(text) <= 2 and 1 <= int(text) <= 28:
            return 0, int(text)
        raise Refusal("contribution.bad_month_day", text=typed[:40])
    day, _, month = text.partition("/")
    day = _ORDINAL.sub("", day)  # "de 15de januari"
    if month.count("/") == 1 and _YEAR.fullmatch(month.partition("/")[2]):
        raise Refusal("contribution.no_year", text=typed[:40])
    if day.isdigit() and month.isdigit() and len(day) <= 2 and len(month) <= 2:
        try:
            date(2001, int(month), int(day))  # a year without 29 February: every year has it
        except ValueError:
            pass
        else:
            return int(month), int(day)
    raise Refusal("contribution.bad_year_day", text=typed[:40])


def parse_contribution(ctx: Context, words: list[str], usage_of: str = "contribution") -> Typed:
    """``12 per jaar op 15/01 jaarbijdrage``, ``2 per maand op 1 werking``,
    ``5 promille saldo per year on 1/1 fee``. ``usage_of``: the command whose
    example a refusal shows (a proposal's, when one carries it)."""
    rule, rest = parse_rule(ctx, words, usage_of)
    if rest and _word(rest[0]) in _PER:
        rest = rest[1:]
    every = _EVERY.get(_word(rest[0])) if rest else None
    if every is None:
        raise Refusal("contribution.which_period", usage=ctx.usage(usage_of))
    rest = rest[1:]
    month, day = (1, 1) if every is Every.YEAR else (0, 1)
    if rest and _word(rest[0]) in _ON:
        rest = rest[1:]
        if rest and _word(rest[0]) in _ON:  # "op de 1e"
            rest = rest[1:]
        if rest and _word(rest[0]) in _ORDINAL_WORDS:  # "op de eerste"
            rest = [str(_ORDINAL_WORDS[_word(rest[0])]), *rest[1:]]
        if not rest:
            raise Refusal("contribution.which_period", usage=ctx.usage(usage_of))
        named = month_number(rest[1]) if len(rest) > 1 else None
        if named is not None:  # "op 15 januari", as the bot writes it
            if every is Every.MONTH:  # "per maand op 1 dec": which is it?
                raise Refusal("contribution.month_day_only", text=" ".join(rest[:2])[:40])
            month, day = _read_day(ctx, every, f"{rest[0]}/{named}", " ".join(rest[:2]))
            rest = rest[2:]
        else:
            month, day = _read_day(ctx, every, rest[0], rest[0])
            rest = rest[1:]
        if every is Every.YEAR and rest and _YEAR.fullmatch(rest[0].strip(".,")):
            raise Refusal("contribution.no_year", text=rest[0][:40])  # "op 1 februari 2027"
    folded = [fold(word) for word in rest]
    if any(a in _PER and b in _EVERY for a, b in pairwise(folded)):
        raise Refusal("contribution.two_periods", usage=ctx.usage(usage_of))
    description = ctx.text_argument(rest, usage_of=usage_of, limit=DESCRIPTION_LIMIT)
    return Typed(rule, every, month, day, description)


def add(
    ctx: Context, typed: Typed, status: ContributionStatus, proposal_id: int | None
) -> Contribution:
    """A new contribution (or one a proposal carries); the same rule on the same day as a
    live one is refused: members would pay twice. One a proposal only carries blocks
    nothing: if both are accepted, the second doesn't start (``decided``)."""
    existing = _same_live(ctx.store, typed)
    if existing is not None:  # typed twice, members would pay twice
        raise Refusal("contribution.same", id=existing.id, example=ctx.usage("contributions"))
    if status is ContributionStatus.ACTIVE:
        # A corrected one ("op 15 jan" forgotten, another amount) beside the first: both
        # would be booked. Stop the first, or name the second otherwise.
        wanted = " ".join(typed.description.casefold().split())
        for live in ctx.store.contributions.contributions(_LIVE):
            if " ".join(live.description.casefold().split()) == wanted:
                raise Refusal(
                    "contribution.same_name",
                    line=line_text(ctx.t, live),
                    id=live.id,
                )
    return ctx.store.contributions.add_contribution(
        fixed=typed.rule.fixed,
        per_mille=typed.rule.per_mille,
        base=typed.rule.base.value,
        days=typed.rule.days,
        every=typed.every.value,
        month=typed.month,
        day=typed.day,
        description=typed.description,
        status=status,
        proposal_id=proposal_id,
        created_by_id=ctx.member.id,
        at=ctx.now,
    )


def _same_live(store: Store, typed: Typed | Contribution) -> Contribution | None:
    """A running or paused contribution with the same rule on the same day, if any."""
    rule = typed.rule if isinstance(typed, Typed) else rule_of(typed)
    for existing in store.contributions.contributions(_LIVE):
        if rule_of(existing) == rule and (existing.every, existing.month, existing.day) == (
            typed.every,
            typed.month,
            typed.day,
        ):
            return existing
    return None


def _group_t(ctx: Context) -> Translator:
    return ctx.translators[ctx.settings.group.language]


# commands


@REGISTRY.command("contribution", nl="bijdrage", who=Who.COORDINATOR, private=True)
def contribution_command(ctx: Context, words: list[str]) -> None:
    changes = _PAUSE | _RESUME | _END
    if len(words) >= 2 and fold(words[0]) in changes and words[1].lstrip("#").isdigit():
        words = [words[1], words[0], *words[2:]]  # "/bijdrage stop 4"
    if len(words) >= 2 and fold(words[1]) in changes:
        change(ctx, words[0], fold(words[1]))
        return
    if len(words) == 1 and fold(words[0]) in changes:  # "/bijdrage stop": which one?
        raise Refusal(
            "contribution.which_one", word=words[0][:20], example=ctx.usage("contributions")
        )
    if len(words) == 1 and words[0].startswith("#"):  # "/bijdrage #2": and then?
        raise Refusal("contribution.what_with", id=words[0].lstrip("#")[:9])
    typed = parse_contribution(ctx, words)
    made = add(ctx, typed, ContributionStatus.ACTIVE, None)
    log.info("contribution made: id=%s every=%s", made.id, made.every.value)
    first = next_due(made, ctx.now, ctx.settings)
    days = ctx.settings.contributions.announce_days
    ctx.reply(
        ctx.t(
            "contribution.saved" if days else "contribution.saved_unannounced",
            line=line_text(ctx.t, made),
            first=ctx.t.moment(first),
            days=days,
            example=ctx.usage("contributions"),
        )
    )
    t = _group_t(ctx)
    text = t("contribution.announce_new", line=line_text(t, made), first=t.moment(first))
    ctx.replies.append(Outgoing(ToAllGroups(), text, language=t.language))


def change(ctx: Context, typed_id: str, word: str) -> None:
    number = typed_id.lstrip("#")
    found = (
        ctx.store.contributions.contribution(int(number))
        if number.isdigit() and len(number) <= 9
        else None
    )
    if found is None:
        raise Refusal("contribution.unknown", id=typed_id[:20], example=ctx.usage("contributions"))
    active, paused = ContributionStatus.ACTIVE, ContributionStatus.PAUSED
    if word in _END:
        if found.status not in (active, paused):
            raise _cannot(ctx, found)
        # Asked first: an ended rule can't be taken up again, only made anew.
        ctx.ask(
            PendingAction.CONTRIBUTION_END,
            ctx.member,
            lambda t: t(
                "contribution.end_ask",
                id=found.id,
                line=line_text(t, found),
                decided=Raw(_decided_by(t, found)),
            ),
            data=str(found.id),
        )
        return
    if word in _PAUSE:
        done = ctx.store.contributions.set_contribution_status(
            found.id, paused, ctx.now, was=[active]
        )
        key = "contribution.paused"
    else:
        done = ctx.store.contributions.set_contribution_status(
            found.id, active, ctx.now, was=[paused], active_since=ctx.now
        )
        key = "contribution.resumed"
    if not done:
        raise _cannot(ctx, found)
    log.info("contribution %s: id=%s", key.rpartition(".")[2], found.id)
    _tell_changed(ctx, key, found)


def _cannot(ctx: Context, found: Contribution) -> Refusal:
    state = Raw(ctx.t(f"contribution.status_{found.status.value}"))
    return Refusal("contribution.cannot", id=found.id, state=state)


def _decided_by(t: Translator, found: Contribution) -> str:
    if found.proposal_id is None:
        return ""
    return " " + t("contribution.decided_by", proposal=found.proposal_id)


def _tell_changed(ctx: Context, key: str, found: Contribution) -> None:
    """The coordinator reads what changed; the group reads it too, and who did it."""
    ctx.reply(ctx.t(key, line=line_text(ctx.t, found)))
    t = _group_t(ctx)
    text = t(
        "contribution.changed_by",
        what=Raw(t(key, line=line_text(t, found))),
        who=ctx.label(ctx.member, t),
        decided=Raw(_decided_by(t, found)),
    )
    ctx.replies.append(Outgoing(ToAllGroups(), text, language=t.language))


@REGISTRY.on_answer(PendingAction.CONTRIBUTION_END)
def end_answered(ctx: Context, question: Pending, yes: bool) -> None:
    if not yes:
        ctx.reply(ctx.t("contribution.end_cancelled"))
        return
    if not ctx.member.is_coordinator:
        raise Refusal("error.coordinators_only")
    found = ctx.store.contributions.contribution(int(question.data or "0"))
    assert found is not None
    active, paused = ContributionStatus.ACTIVE, ContributionStatus.PAUSED
    if not ctx.store.contributions.set_contribution_status(
        found.id, ContributionStatus.ENDED, ctx.now, was=[active, paused]
    ):
        raise _cannot(ctx, ctx.store.contributions.contribution(found.id) or found)
    log.info("contribution ended: id=%s", found.id)
    _tell_changed(ctx, "contribution.ended", found)


@REGISTRY.command("contributions", nl="bijdragen", who=Who.MEMBER, private=True)
def contributions_command(ctx: Context, words: list[str]) -> None:
    found = ctx.store.contributions.contributions(LISTED)
    if not found:
        key = "contribution.none_coordinator" if ctx.member.is_coordinator else "contribution.none"
        ctx.reply(ctx.t(key, example=ctx.usage("contribution")))
        return
    lines = [ctx.t("contribution.list_header")]
    for each in found:
        lines.append(line_text(ctx.t, each))
        if each.status is ContributionStatus.ACTIVE:
            at = next_due(each, ctx.now, ctx.settings)
            lines.append("  " + ctx.t("contribution.list_next", when=ctx.t.moment(at)))
        elif each.status is ContributionStatus.PAUSED:
            lines.append("  " + ctx.t("contribution.list_paused"))
        else:
            lines.append("  " + ctx.t("contribution.list_proposed", proposal=each.proposal_id))
    lines.append(not_paying(ctx.t, ctx.settings))
    ctx.reply("\n".join(lines))


# carried by a proposal


def cut_carried(ctx: Context, words: list[str]) -> tuple[list[str], Typed | None]:
    """``/voorstel Jaarbijdrage bijdrage: 12 per jaar op 15/01 jaarbijdrage``: the title's
    words, and the rule after ``bijdrage:`` (``contribution:``)."""
    words = _marks_apart(words)
    # Only before an amount: "Over de bijdrage: moet die omhoog?" is a title.
    at = next(
        (
            i
            for i, word in enumerate(words[:-1])
            if fold(word) in _MARKS and any(c.isdigit() for c in words[i + 1])
        ),
        None,
    )
    if at is None:
        return words, None
    if at == 0:
        raise Refusal("contribution.proposal_title", example=ctx.usage("propose_contribution"))
    return words[:at], parse_contribution(ctx, words[at + 1 :], usage_of="propose_contribution")


def _marks_apart(words: list[str]) -> list[str]:
    """``bijdrage:12`` and ``BIJDRAGE :`` as ``bijdrage: 12`` and ``bijdrage:``."""
    apart: list[str] = []
    for word in words:
        head, colon, tail = word.partition(":")
        if colon and fold(head + colon) in _MARKS and tail:
            apart += [head + colon, tail]
        elif word == ":" and apart and fold(apart[-1] + ":") in _MARKS:
            apart[-1] += ":"
        else:
            apart.append(word)
    return apart


def carry(ctx: Context, proposal_id: int, typed: Typed) -> Contribution:
    """Keep the rule with its proposal: it starts only if the vote accepts it."""
    return add(ctx, typed, ContributionStatus.PROPOSED, proposal_id)


def carried_line(t: Translator, contribution: Contribution) -> str:
    return t("contribution.carried", line=line_text(t, contribution))


def decided(
    store: Store,
    settings: Settings,
    t: Translator,
    proposal_id: int,
    verdict: Verdict | None,
    now: datetime,
) -> list[str]:
    """A proposal closed (or was withdrawn: ``verdict`` None): its rule starts or never will.
    The lines to add to the result."""
    carried = store.contributions.carried_by(proposal_id)
    if carried is None:
        return []
    proposed = [ContributionStatus.PROPOSED]
    twin = _same_live(store, carried) if verdict is Verdict.ACCEPTED else None
    if twin is not None:  # started meanwhile, by a coordinator or another proposal
        store.contributions.set_contribution_status(
            carried.id, ContributionStatus.REJECTED, now, was=proposed
        )
        log.info("contribution accepted but already live: id=%s as %s", carried.id, twin.id)
        return [t("contribution.accepted_twin", id=carried.id, twin=twin.id)]
    if verdict is Verdict.ACCEPTED:
        store.contributions.set_contribution_status(
            carried.id, ContributionStatus.ACTIVE, now, was=proposed, active_since=now
        )
        log.info("contribution accepted: id=%s proposal=%s", carried.id, proposal_id)
        first = next_due(carried, now, settings)
        return [t("contribution.accepted", line=line_text(t, carried), first=t.moment(first))]
    store.contributions.set_contribution_status(
        carried.id, ContributionStatus.REJECTED, now, was=proposed
    )
    log.info("contribution not accepted: id=%s proposal=%s", carried.id, proposal_id)
    return [t("contribution.not_accepted", id=carried.id)] if verdict is not None else []


# the schedule


class ContributionSchedule(Job):
    """Announces and books each active contribution's periods, each once."""

    @property
    def t(self) -> Translator:
        return self.translators[self.settings.group.language]

    def next_due(self, until: datetime) -> datetime | None:
        """The first announcement or run after now and up to ``until`` (for a virtual clock)."""
        now = self.clock.now()
        with self.uow.transaction() as store:
            active = store.contributions.contributions([ContributionStatus.ACTIVE])
        found: list[datetime] = []
        for each in active:
            due = next_due(each, now, self.settings)
            found.append(due)
            if self.settings.contributions.announce_days:
                told = announce_time(due, self.settings)
                if told > now:
                    found.append(told)
        first = min(found, default=None)
        return first if first is not None and first <= until else None

    def post_due(self) -> list[Outgoing]:
        """Claim every announcement and run that is due now; book the runs; say what to send."""
        now = self.clock.now()
        posts: list[Outgoing] = []
        with self.uow.transaction() as store:
            active = store.contributions.contributions([ContributionStatus.ACTIVE])
            handled = store.contributions.handled_steps([c.id for c in active])
        for each in active:
            try:
                posts += self._due(each, handled, now)
            except Busy:
                raise  # the database: the others would fail alike; the next round tries again
            except Exception:  # one rule's fault must not hold back the others
                log.exception("contribution %s failed; trying again next round", each.id)
        return posts

    def _due(
        self, each: Contribution, handled: set[tuple[int, datetime, str]], now: datetime
    ) -> list[Outgoing]:
        posts: list[Outgoing] = []
        since = each.active_since or each.created_at
        due = last_due(each, now, self.settings)
        if due > since and (each.id, due, RUN) not in handled:
            # One transaction per run: claimed, booked and its messages queued together.
            with self.uow.transaction() as store:
                posts += self.outbox.queue(store, self._run(store, each, due, now))
        coming = next_due(each, now, self.settings)
        if (
            self.settings.contributions.announce_days
            and coming > since  # a clock put back before the rule: that period is never booked
            and announce_time(coming, self.settings) <= now
            and (each.id, coming, ANNOUNCE) not in handled
            and (each.id, coming, RUN) not in handled  # booked already (a clock put back)
        ):
            with self.uow.transaction() as store:
                posts += self.outbox.queue(store, self._announce(store, each, coming, now))
        return posts

    def _announce(
        self, store: Store, each: Contribution, due: datetime, now: datetime
    ) -> list[Outgoing]:
        if not store.contributions.claim_step(each.id, due, ANNOUNCE, now, "posted"):
            return []
        log.info("contribution announced: id=%s due=%s", each.id, due.isoformat())
        t = self.t
        text = t(
            "contribution.announce",
            id=each.id,
            description=each.description,
            when=t.moment(due),
            amount=amount_text(t, each),
            who=Raw(not_paying(t, self.settings)),
        )
        return [Outgoing(ToAllGroups(), text, language=t.language)]

    def _run(
        self, store: Store, each: Contribution, due: datetime, now: datetime
    ) -> list[Outgoing]:
        newer = store.contributions.joined_since(
            now - timedelta(days=self.settings.contributions.new_member_days)
        )
        group = store.members.group_account()
        active = [m.id for m in store.members.members([Status.ACTIVE]) if not m.is_group_account]
        paying = [i for i in active if i not in newer]
        locked = store.members.lock_members(sorted([group.id, *paying]))
        rule = rule_of(each)
        turnover: dict[int, int] = {}
        if rule.base is Base.TURNOVER:
            turnover = store.figures.turnover(now - timedelta(days=rule.days))
        plan = make_plan(
            locked[group.id],
            False,
            [locked[i] for i in paying],
            rule,
            turnover,
            self.settings.group_limits,
            self.settings.currency_spec.scale,
        )
        refused = plan.one_hard is not None
        outcome = "refused" if refused else ("booked" if plan.lines else "empty")
        count, total = (0, 0) if refused else (len(plan.lines), plan.total)
        if not store.contributions.claim_step(
            each.id, due, RUN, now, outcome, count=count, total=total
        ):
            return []  # another process booked this period
        log.info(
            "contribution run %s: id=%s due=%s members=%s total=%s skipped=%s new=%s",
            outcome,
            each.id,
            due.isoformat(),
            count,
            total,
            len(plan.refused),
            len(active) - len(paying),
        )
        if refused:
            return self._to_coordinators(
                store, lambda t: t("contribution.refused_whole", id=each.id)
            )
        if not plan.lines:
            return self._report(store, each, plan, {}, now)
        description = to_plain(
            self.t(
                "contribution.description",
                description=each.description,
                id=each.id,
                period=period_label(self.t, each, due),
            )
        )
        lines = [
            (m.id, group.id, amount, f"contribution:{each.id}:{due.isoformat()}:{m.id}")
            for m, amount in plan.lines
        ]
        try:
            posted = post_many(
                store,
                lines,
                description=description,
                kind=TransferKind.GROUP,
                at=now,
                booked_by_id=None,
                limits=self.settings.group_limits,
                locked=locked,
            )
        except LimitRefused:  # the plan checked these same locked balances: never expected
            log.error("contribution run refused after its plan: id=%s", each.id)
            raise
        sent = self._report(store, each, plan, posted.after, now)
        soft = {breach.member.id: breach for breach in posted.soft}
        if soft:  # booked anyway: each member hears it, the coordinators get the list
            for member_id, breach in soft.items():
                member = posted.after[member_id]
                sent += self._tell_member(store, member, soft_line(breach, member.balance))
            sent += self._to_coordinators(
                store,
                lambda t: soft_list(
                    lambda m, mt: self._label(mt, m),
                    t,
                    "contribution.soft_notify",
                    each.id,
                    soft,
                    posted.after,
                ),
            )
        return sent

    def _label(self, t: Translator, member: Member) -> Raw:
        code = MemberCode.show(self.settings.group.code_prefix, member.number)
        name = t("group_account.name") if member.is_group_account else member.name
        return Raw(f"{escape(name)} ({code})")

    def _report(
        self, store: Store, each: Contribution, plan: Plan, after: dict[int, Member], now: datetime
    ) -> list[Outgoing]:
        t = self.t
        if plan.lines:
            summary = t.counted(
                "contribution.done",
                len(plan.lines),
                id=each.id,
                description=each.description,
                total=t.amount(plan.total),
                skipped=len(plan.refused),
            )
        else:  # no one could pay: say why, never "0 leden betaalden"
            if plan.refused:
                why = t.counted("contribution.nobody_skipped", len(plan.refused))
            elif plan.zero:
                why = t("contribution.nobody_zero")
            else:
                why = not_paying(t, self.settings)
            summary = t(
                "contribution.nobody", id=each.id, description=each.description, who=Raw(why)
            )
        sent = [Outgoing(ToAllGroups(), summary, language=t.language)]
        found = store.members.first_identities([m.id for m, _ in plan.lines])
        # Thousands of lines share a few amounts: each formatted once per language.
        shown: dict[tuple[str, int], Raw] = {}

        def amount_in(mt: Translator, value: int) -> Raw:
            if (mt.language, value) not in shown:
                shown[mt.language, value] = mt.amount(value)
            return shown[mt.language, value]

        for member, amount in plan.lines:
            identity = found.get(member.id)
            if identity is None:
                continue
            mt = self.translators[member.language or self.settings.group.language]
            text = mt(
                "contribution.told_paid",
                id=each.id,
                amount=amount_in(mt, amount),
                description=each.description,
                balance=amount_in(mt, after[member.id].balance),
            )
            sent.append(Outgoing(ToPerson(identity), text, language=mt.language))
        if plan.refused:
            refused = plan.refused

            def compose(ct: Translator) -> str:
                lines = [ct.counted("contribution.skipped", len(refused), id=each.id)]
                for member, breach in refused[:SHOWN]:
                    lines.append(
                        "  - " + refused_text(ct, self._label(ct, member), plan, member, breach)
                    )
                if len(refused) > SHOWN:
                    lines.append("  " + ct.counted("bulk.preview_more", len(refused) - SHOWN))
                return "\n".join(lines)

            sent += self._to_coordinators(store, compose)
            # Each skipped member hears it too: they owe it, and may want to settle it.
            skipped = store.members.first_identities([m.id for m, b in refused if b is not None])
            for member, breach in refused:
                identity = skipped.get(member.id)
                if identity is None or breach is None:
                    continue
                mt = self.translators[member.language or self.settings.group.language]
                amount = plan.refused_amounts.get(member.id, 0)
                text = mt(
                    "contribution.told_skipped",
                    id=each.id,
                    description=each.description,
                    amount=mt.amount(amount),
                    balance=mt.amount(member.balance),
                    after=mt.amount(member.balance - amount),
                    limit=mt.amount(breach.limit),
                )
                sent.append(Outgoing(ToPerson(identity), text, language=mt.language))
        return sent

    def _tell_member(self, store: Store, member: Member, compose: Compose) -> list[Outgoing]:
        found = store.members.first_identities([member.id]).get(member.id)
        if found is None:
            return []
        t = self.translators[member.language or self.settings.group.language]
        return [Outgoing(ToPerson(found), compose(t), language=t.language)]

    def _to_coordinators(self, store: Store, compose: Compose) -> list[Outgoing]:
        coordinators = [
            m for m in store.members.members([Status.ACTIVE]) if m.role is Role.COORDINATOR
        ]
        found = store.members.first_identities([m.id for m in coordinators])
        sent: list[Outgoing] = []
        for member in coordinators:
            identity = found.get(member.id)
            if identity is None:
                continue
            ct = self.translators[member.language or self.settings.group.language]
            sent.append(Outgoing(ToPerson(identity), compose(ct), language=ct.language))
        return sent
