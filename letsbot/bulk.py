"""Mass payments (/massa, /bulk): one account pays many, or many pay one account.

A coordinator names the one account (the group account, ``kas``, or a member),
the many (everyone active, a status, those who said they come to an event, or
a list of members) and the amount: a fixed amount, a per-mille of each
member's balance or of their turnover over a number of days, or both added.
The amount follows eLAND's mass transaction: the per-mille part of a negative
balance is 0, every part is rounded half up to whole units, and a member whose
amount comes to 0 is not booked.

The coordinator first sees a preview, privately: how many, the total, the
smallest and largest amount, and who a hard limit refuses (those are skipped,
the rest is booked). When the one account's own limit can't carry the total,
the whole run is refused. Ja books every line in one transaction through
``letsbot.posting.post``; at Ja the run is worked out again on the locked
balances, and when it no longer matches the preview nothing is booked and
the new preview is asked instead.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from difflib import get_close_matches
from typing import Any

from letsbot.context import Compose, Context
from letsbot.domain import (
    GROUP_ACCOUNT_WORDS,
    Breach,
    BreachKind,
    EventStatus,
    GroupLimits,
    Member,
    Pending,
    PendingAction,
    Role,
    Status,
    TransferKind,
    blocking,
    transfer_breaches,
)
from letsbot.errors import Refusal
from letsbot.events import describe as describe_event
from letsbot.i18n import Raw, Translator
from letsbot.ledger import DESCRIPTION_LIMIT, close_if_settled, parse_amount
from letsbot.markup import escape, to_plain
from letsbot.messages import Outgoing, ToAllGroups
from letsbot.posting import LimitRefused, post_many
from letsbot.registry import REGISTRY, Who
from letsbot.text import fold

_FROM = frozenset({"van", "from"})
_TO = frozenset({"aan", "naar", "to"})
_AND = frozenset({"en", "and", ",", "&"})
_PLUS = frozenset({"+", "plus"})
_PER_MILLE = frozenset({"promille", "permille", "‰", "pm"})
_BALANCE = frozenset({"saldo", "stand", "balance"})
_TURNOVER = frozenset({"omzet", "turnover"})
_DAYS = frozenset({"dag", "dagen", "day", "days"})
_EVENT = frozenset({"activiteit", "event", "markt", "market", "repaircafe"})
MAX_DAYS = 3660
SHOWN_REFUSED = 15  # refused members named in a preview; the rest counted
SHOWN_NAMES = 40  # members named by /markt; the rest counted
REPEAT_WITHIN = timedelta(days=1)  # the same run booked this recently is pointed out


class Many(enum.StrEnum):
    """Which members the other side is, as a word names them."""

    EVERYONE = "everyone"  # every active member
    LEAVING = "leaving"
    COORDINATORS = "coordinators"
    EVENT = "event"  # those who said they come to an event
    LIST = "list"


_ARTICLES = frozenset({"de", "het", "the"})
_OF = frozenset({"van", "het", "de", "of", "the"})
_ALL = frozenset({"alle", "all"})
_MEMBERS = frozenset({"leden", "members", "actieve"})
_SETS = {
    **dict.fromkeys(("iedereen", "allen", "alle", "allemaal", "everyone", "all"), Many.EVERYONE),
    **dict.fromkeys(("actief", "actieve", "active"), Many.EVERYONE),
    **dict.fromkeys(("vertrekkers", "vertrekkend", "vertrekkende", "leaving"), Many.LEAVING),
    **dict.fromkeys(("kernleden", "coordinatoren", "coordinators"), Many.COORDINATORS),
}


class Base(enum.StrEnum):
    NONE = "none"
    BALANCE = "balance"
    TURNOVER = "turnover"


@dataclass(frozen=True, slots=True)
class Rule:
    """How much each member's line is: ``fixed`` plus ``per_mille`` of a base."""

    fixed: int = 0
    per_mille: int = 0
    base: Base = Base.NONE
    days: int = 0  # the turnover's period, back from now


def round_units(value: int, per_mille: int, scale: int) -> int:
    """``per_mille`` of ``value`` (minor units), rounded half up to whole units; never below 0."""
    if value <= 0:
        return 0
    whole = (value * per_mille + 500 * scale) // (1000 * scale)
    return int(whole * scale)


def line_amount(rule: Rule, member: Member, turnover: dict[int, int], scale: int) -> int:
    part = 0
    if rule.base is Base.BALANCE:
        part = round_units(member.balance, rule.per_mille, scale)
    elif rule.base is Base.TURNOVER:
        part = round_units(turnover.get(member.id, 0), rule.per_mille, scale)
    return rule.fixed + part


@dataclass(frozen=True, slots=True)
class Plan:
    """A run worked out on given balances: what is booked, who is skipped and why."""

    lines: list[tuple[Member, int]]  # (member, amount), in id order
    refused: list[tuple[Member, Breach | None]]  # None: no longer active
    zero: int  # members whose amount is 0: nothing booked for them
    soft: list[Breach]  # soft limits the many pass: booked anyway
    one_soft: Breach | None  # the one account passes a soft limit
    one_hard: Breach | None  # the one account can't carry the total: nothing is booked
    refused_amounts: dict[int, int] = dataclasses.field(default_factory=dict)  # by member id

    @property
    def total(self) -> int:
        return sum(amount for _, amount in self.lines)

    def fingerprint(self) -> str:
        lines = [(m.id, a) for m, a in self.lines]
        refused = [m.id for m, _ in self.refused]
        text = json.dumps([lines, refused, self.one_hard is not None])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _exempt(member: Member) -> Member:
    """A stand-in for the other side, exempt from limits: only one side is checked."""
    return dataclasses.replace(member, id=-1, is_group_account=True)


def make_plan(
    one: Member,
    pays: bool,
    many: list[Member],
    rule: Rule,
    turnover: dict[int, int],
    limits: GroupLimits,
    scale: int,
) -> Plan:
    """The run on these balances. ``pays``: the one account pays the many."""
    lines: list[tuple[Member, int]] = []
    refused: list[tuple[Member, Breach | None]] = []
    refused_amounts: dict[int, int] = {}
    soft: list[Breach] = []
    zero = 0
    for member in sorted(many, key=lambda m: m.id):
        if not member.can_trade:
            refused.append((member, None))
            continue
        amount = line_amount(rule, member, turnover, scale)
        if amount <= 0:
            zero += 1
            continue
        if pays:
            breaches = transfer_breaches(_exempt(one), member, amount, limits)
        else:
            breaches = transfer_breaches(member, _exempt(one), amount, limits)
        hard = blocking(breaches, limits)
        if hard:
            refused.append((member, hard[0]))
            refused_amounts[member.id] = amount
            continue
        soft += breaches
        lines.append((member, amount))
    total = sum(amount for _, amount in lines)
    one_soft = one_hard = None
    if total:
        if pays:
            own = transfer_breaches(one, _exempt(one), total, limits)
        else:
            own = transfer_breaches(_exempt(one), one, total, limits)
        if own:
            if blocking(own, limits):
                one_hard = own[0]
            else:
                one_soft = own[0]
    return Plan(lines, refused, zero, soft, one_soft, one_hard, refused_amounts)


# Parsing what the coordinator typed


def _is_amount(word: str) -> bool:
    """A word that starts the amount: digits (``30``, ``1.000``, ``€30``), not a code."""
    bare = word.lstrip("€")
    return bare[:1].isdigit() or (fold(word).startswith("eur") and word[3:4].isdigit())


def _side(ctx: Context, words: list[str], *, until_amount: bool) -> tuple[Any, list[str]]:
    """One side: a Member, or (Many, members, label); the words after it."""
    if not words:
        raise Refusal("bulk.usage", usage=ctx.usage("bulk"))
    if len(words) > 1 and fold(words[0]) in _ARTICLES:  # "de kas", "the group"
        words = words[1:]
    first = fold(words[0]).strip(",.:")
    if first in _ALL and len(words) > 1 and fold(words[1]) in _MEMBERS:  # "alle leden"
        words = ["iedereen", *words[2:]]
        first = "iedereen"
    if first in GROUP_ACCOUNT_WORDS:
        return ctx.store.members.group_account(), words[1:]
    if first in _SETS:
        many = _SETS[first]
        label = f"set:{many.value}"
        found = _members_of(ctx, label)
        assert found is not None
        return (many, found, label), words[1:]
    if first in _EVENT:
        if len(words) < 2 or not words[1].lstrip("#").isdigit() or len(words[1]) > 9:
            raise Refusal("bulk.event_number", usage=ctx.usage("bulk"))
        number = int(words[1].lstrip("#"))
        event = ctx.store.events.event(number)
        if event is None:
            raise Refusal("bulk.no_event", id=number)
        if event.status is EventStatus.CANCELLED:
            raise Refusal("bulk.event_cancelled", event=describe_event(ctx.t, event))
        label = f"event:{number}"
        going = _members_of(ctx, label)
        assert going is not None
        return (Many.EVENT, going, label), words[2:]
    chosen: list[Member] = []
    # "an,lies,jan" as "an, lies, jan"; never an amount's decimal comma ("2,50").
    rest = [part for word in words for part in re.split(r",(?=[^\d\s,])", word)]
    while rest:
        word = rest[0].strip(",")
        if not word or fold(word) in _AND:
            rest = rest[1:]
            continue
        if until_amount and _is_amount(word):
            break
        try:
            member, rest = ctx.find_member_in([word, *rest[1:]])
        except Refusal:
            meant = _misspelt_word(word)
            if meant is None:
                raise
            raise Refusal(
                "bulk.did_you_mean", typed=word[:40], meant=meant, usage=ctx.usage("bulk")
            ) from None
        if member not in chosen:
            chosen.append(member)
    if not chosen:
        raise Refusal("bulk.usage", usage=ctx.usage("bulk"))
    if len(chosen) == 1:
        return chosen[0], rest
    return (Many.LIST, chosen, _list_label(ctx, chosen)), rest


def _misspelt_word(word: str) -> str | None:
    """``iedreen`` → ``iedereen``: a side's word typed wrong, not a member's name."""
    known = [*_SETS, *GROUP_ACCOUNT_WORDS, *_EVENT]
    close = get_close_matches(fold(word), known, n=1, cutoff=0.75)
    return close[0] if close and len(word) >= 4 else None


def _one_to_one(ctx: Context, payer: Member, receiver: Member, rest: list[str]) -> Refusal:
    """One to one is /boeken: the same words, ready to send."""
    book = REGISTRY.find("book")
    assert book is not None
    typed = " ".join([f"/{book.name_in(ctx.language)}", ctx.code(payer), ctx.code(receiver), *rest])
    return Refusal("bulk.both_one", usage=Raw(escape(typed)))


def _list_label(ctx: Context, chosen: list[Member]) -> str:
    return ", ".join(ctx.label(m) for m in chosen[:3]) + (", …" if len(chosen) > 3 else "")


def _members_of(ctx: Context, label: str) -> list[Member] | None:
    """Who a named set is now (``set:everyone``, ``event:12``); None for a list of names."""
    kind, _, which = label.partition(":")
    if kind == "set":
        if which == Many.EVERYONE.value:
            found = ctx.store.members.members([Status.ACTIVE])
        elif which == Many.LEAVING.value:
            found = ctx.store.members.members([Status.LEAVING])
        else:
            active = ctx.store.members.members([Status.ACTIVE])
            found = [m for m in active if m.role is Role.COORDINATOR]
    elif kind == "event" and which.isdigit():  # a closed account came, but is paid no more
        rsvps = ctx.store.events.rsvps(int(which))
        found = [m for m, yes in rsvps if yes and m.status is not Status.INACTIVE]
    else:
        return None
    return [m for m in found if not m.is_group_account]


def parse_rule(ctx: Context, words: list[str], usage_of: str = "bulk") -> tuple[Rule, list[str]]:
    """``10``, ``10 pluimen``, ``5 promille saldo``, ``2 promille omzet 365 dagen``,
    ``10 + 5 promille saldo``; the words after it. ``usage_of``: the command whose
    example a refusal shows."""
    if not words:
        raise Refusal("error.missing_amount", usage=ctx.usage(usage_of))
    fixed = 0
    if len(words) >= 2 and fold(words[1]) in _PER_MILLE:
        rest = words
    else:
        fixed, rest = parse_amount(ctx, words, usage_of)
        if not rest or fold(rest[0]) not in _PLUS:
            return Rule(fixed), rest
        rest = rest[1:]
    if len(rest) < 2 or fold(rest[1]) not in _PER_MILLE:
        if not rest:  # "10 +"
            raise Refusal("bulk.plus_what")
        raise Refusal("bulk.bad_per_mille", text=" ".join(rest[:2])[:40])
    typed = rest[0]
    if not typed.isdigit() or len(typed) > 4 or not 1 <= int(typed) <= 1000:
        raise Refusal("bulk.bad_per_mille", text=typed[:40])
    per_mille, rest = int(typed), rest[2:]
    while len(rest) > 1 and fold(rest[0]) in _OF:  # "5 promille van het saldo"
        rest = rest[1:]
    base = fold(rest[0]) if rest else ""
    if base in _BALANCE:
        return Rule(fixed, per_mille, Base.BALANCE), _no_second_part(ctx, rest[1:], usage_of)
    if base not in _TURNOVER:
        raise Refusal("bulk.bad_base")
    rest = rest[1:]
    days = rest[0] if rest else ""
    if (
        len(rest) < 2
        or not days.isdigit()
        or len(days) > 5
        or not 1 <= int(days) <= MAX_DAYS
        or fold(rest[1]) not in _DAYS
    ):
        raise Refusal("bulk.bad_days", maximum=MAX_DAYS)
    rule = Rule(fixed, per_mille, Base.TURNOVER, int(days))
    return rule, _no_second_part(ctx, rest[2:], usage_of)


def _no_second_part(ctx: Context, rest: list[str], usage_of: str) -> list[str]:
    """``… saldo + 3 promille omzet …``: one per-mille part only, never a description."""
    if rest and (fold(rest[0]) in _PLUS or any(fold(w) in _PER_MILLE for w in rest[:3])):
        raise Refusal("bulk.one_per_mille", usage=ctx.usage(usage_of))
    return rest


@dataclass(frozen=True, slots=True)
class Run:
    """What the coordinator asked for, as kept with the question until Ja."""

    one_id: int
    pays: bool
    many_ids: list[int]
    label: str  # the many: ``set:everyone``, ``event:12``, or the first names (markup)
    rule: Rule
    description: str

    def dump(self, fingerprint: str) -> str:
        rule = dataclasses.asdict(self.rule)
        return json.dumps(
            {
                "one": self.one_id,
                "pays": self.pays,
                "many": self.many_ids,
                "label": self.label,
                "rule": {**rule, "base": self.rule.base.value},
                "description": self.description,
                "print": fingerprint,
            }
        )

    @classmethod
    def load(cls, data: str) -> tuple[Run, str]:
        raw = json.loads(data)
        rule = raw["rule"]
        return (
            cls(
                raw["one"],
                raw["pays"],
                list(raw["many"]),
                raw["label"],
                Rule(rule["fixed"], rule["per_mille"], Base(rule["base"]), rule["days"]),
                raw["description"],
            ),
            raw["print"],
        )


def parse_run(ctx: Context, words: list[str]) -> tuple[Run, dict[int, Member]]:
    """The run typed, and its members as read (the one account and the many) by id."""
    if words and fold(words[0]) in _FROM:
        words = words[1:]
    to_at = next((i for i, w in enumerate(words) if fold(w) in _TO), None)
    if to_at is None or to_at == 0:
        raise Refusal("bulk.usage", usage=ctx.usage("bulk"))
    left, after = _side(ctx, words[:to_at], until_amount=False)
    if after:
        raise Refusal("bulk.usage", usage=ctx.usage("bulk"))
    right, rest = _side(ctx, words[to_at + 1 :], until_amount=True)
    left_one, right_one = isinstance(left, Member), isinstance(right, Member)
    if left_one and right_one:
        if left.id == right.id:
            raise Refusal("bulk.same_account", who=ctx.label(left))
        raise _one_to_one(ctx, left, right, rest)
    if not left_one and not right_one:
        raise Refusal("bulk.both_many", usage=ctx.usage("bulk"))
    one: Member = left if left_one else right
    kind, listed, label = right if left_one else left
    many = [m for m in listed if m.id != one.id]
    if kind is Many.LIST and len(many) == 1:  # "an aan an en lies": one to one after all
        left, right = (one, many[0]) if left_one else (many[0], one)
        raise _one_to_one(ctx, left, right, rest)
    if kind is Many.LIST and len(many) != len(listed):  # "kas aan DU-000, An en Bo"
        label = _list_label(ctx, many)
    if not many:
        raise _empty(ctx, label)
    if not one.can_trade:
        raise Refusal("pay.not_active", who=ctx.label(one))
    rule, rest = parse_rule(ctx, rest)
    description = ctx.text_argument(rest, usage_of="bulk", limit=DESCRIPTION_LIMIT)
    run = Run(one.id, left_one, [m.id for m in many], label, rule, description)
    return run, {m.id: m for m in [one, *many]}


# The preview and the booking


def _plan(ctx: Context, run: Run, members: dict[int, Member]) -> Plan:
    turnover: dict[int, int] = {}
    if run.rule.base is Base.TURNOVER:
        turnover = ctx.store.figures.turnover(ctx.now - timedelta(days=run.rule.days))
    many = [members[i] for i in run.many_ids if i in members]
    return make_plan(
        members[run.one_id],
        run.pays,
        many,
        run.rule,
        turnover,
        ctx.settings.group_limits,
        ctx.settings.currency_spec.scale,
    )


def rule_text(t: Translator, rule: Rule) -> str:
    if rule.base is Base.NONE:
        return t("bulk.rule_fixed", amount=t.amount(rule.fixed))
    key = "bulk.rule_balance" if rule.base is Base.BALANCE else "bulk.rule_turnover"
    text = t(key, per_mille=rule.per_mille, days=rule.days)
    if rule.fixed:
        text = t("bulk.rule_plus", amount=t.amount(rule.fixed), rule=Raw(text))
    return text


def _empty(ctx: Context, label: str) -> Refusal:
    kind, _, value = label.partition(":")
    if kind == "event":
        return Refusal("bulk.empty_event", id=value)
    return Refusal("bulk.empty", who=many_label(ctx.t, label))


def many_label(t: Translator, label: str) -> Raw:
    """The many as the reader's language names them."""
    kind, _, value = label.partition(":")
    if kind == "set":
        return Raw(t(f"bulk.set_{value}"))
    if kind == "event":
        return Raw(t("bulk.set_event", id=value))
    return Raw(label)


def refused_text(t: Translator, who: Raw, plan: Plan, member: Member, breach: Breach | None) -> str:
    """Why ``member`` is skipped: ``An (DU-002): 150 pluimen zou het saldo van 20 op -130
    brengen, en het mag niet lager dan -100``."""
    if breach is None:
        return t("bulk.refused_inactive", who=who)
    amount = plan.refused_amounts.get(member.id, 0)
    after = member.balance + (amount if breach.kind is BreachKind.RECEIVER_MAX else -amount)
    return t(
        f"bulk.refused_{breach.kind.value}",
        who=who,
        amount=t.amount(amount),
        limit=t.amount(breach.limit),
        balance=t.amount(member.balance),
        after=t.amount(after),
    )


def _refused_line(
    ctx: Context, t: Translator, plan: Plan, member: Member, breach: Breach | None
) -> str:
    return refused_text(t, ctx.label(member, t), plan, member, breach)


def _sides(ctx: Context, t: Translator, run: Run, one: Member) -> tuple[Raw, Raw]:
    many = Raw(t.counted("bulk.many", len(run.many_ids), label=many_label(t, run.label)))
    return (ctx.label(one, t), many) if run.pays else (many, ctx.label(one, t))


def preview(ctx: Context, t: Translator, run: Run, plan: Plan, one: Member) -> str:
    payer, receiver = _sides(ctx, t, run, one)
    lines = [t("bulk.preview_header", payer=payer, receiver=receiver)]
    lines.append(t("bulk.preview_rule", rule=Raw(rule_text(t, run.rule))))
    lines.append(t("bulk.preview_description", description=run.description))
    amounts = [amount for _, amount in plan.lines]
    if amounts:
        lines.append(
            t.counted(
                "bulk.preview_count",
                len(amounts),
                total=t.amount(plan.total),
                smallest=t.amount(min(amounts)),
                largest=t.amount(max(amounts)),
            )
        )
    if plan.zero:
        lines.append(t.counted("bulk.preview_zero", plan.zero))
    if plan.refused:
        lines.append(t("bulk.preview_refused", count=len(plan.refused)))
        for member, breach in plan.refused[:SHOWN_REFUSED]:
            lines.append("  - " + _refused_line(ctx, t, plan, member, breach))
        if len(plan.refused) > SHOWN_REFUSED:
            lines.append("  " + t.counted("bulk.preview_more", len(plan.refused) - SHOWN_REFUSED))
    if plan.soft:
        softly = list({b.member.id: b.member for b in plan.soft}.values())
        lines.append(t.counted("bulk.preview_soft", len(softly)))
        lines += ["  - " + ctx.label(m, t) for m in softly[:SHOWN_REFUSED]]
        if len(softly) > SHOWN_REFUSED:
            lines.append("  " + t.counted("bulk.preview_more", len(softly) - SHOWN_REFUSED))
    if plan.one_soft is not None:
        lines.append(t("bulk.preview_one_soft", who=ctx.label(one, t)))
    kind, _, which = run.label.partition(":")
    event = ctx.store.events.event(int(which)) if kind == "event" else None
    if event is not None and event.starts_at > ctx.now:  # paid before it was held
        lines.append(t("bulk.preview_not_yet", id=event.id, when=t.moment(event.starts_at)))
    lines.append(t.counted("bulk.preview_ask", len(amounts)))
    return "\n".join(lines)


def _refuse_nothing(ctx: Context, plan: Plan) -> Refusal:
    """Nothing to book: why, with the members a limit refuses named as in a preview."""
    if not plan.refused:
        return Refusal("bulk.nothing")
    shown = plan.refused[:SHOWN_REFUSED]
    lines = [_refused_line(ctx, ctx.t, plan, m, breach) for m, breach in shown]
    if len(plan.refused) > SHOWN_REFUSED:
        lines.append(ctx.t.counted("bulk.preview_more", len(plan.refused) - SHOWN_REFUSED))
    return Refusal("bulk.nothing_refused", members=Raw("\n".join(f"  - {x}" for x in lines)))


def _refuse_whole(ctx: Context, plan: Plan, one: Member) -> Refusal:
    breach = plan.one_hard
    assert breach is not None
    return Refusal(
        "bulk.one_limit",
        who=ctx.label(one),
        total=ctx.t.amount(plan.total),
        room=ctx.t.amount(breach.room),
    )


def booked_runs(ctx: Context, since: datetime, wanted: Callable[[Run], bool]) -> list[Pending]:
    """Mass payments booked since ``since`` that ``wanted`` picks; newest first."""
    # A run is booked at most confirmation_timeout after it was asked.
    asked_since = since - ctx.settings.group.confirmation_timeout
    found = []
    for question in ctx.store.questions.answered_since(PendingAction.BULK, asked_since, 50):
        if question.data is None:
            continue
        run, _ = Run.load(question.data)
        if not wanted(run):
            continue
        for i in run.many_ids[:20]:  # the first ones not skipped by a limit, as a rule
            booked = ctx.store.ledger.transfer_by_event_key(f"bulk:{question.id}:{i}")
            if booked is not None:
                if booked.created_at >= since:
                    found.append(question)
                break
    return found


def _same(run: Run) -> Callable[[Run], bool]:
    """The same run: the same accounts (in any order), rule and description."""

    def key(of: Run) -> tuple[object, ...]:
        many = of.label if of.label.startswith(("set:", "event:")) else sorted(of.many_ids)
        return (of.one_id, of.pays, many, of.rule, of.description.casefold().strip())

    return lambda other: key(other) == key(run)


def _same_booked(ctx: Context, run: Run, since: datetime) -> list[Pending]:
    """The same run booked since ``since``; a run to an event's comers: whenever."""
    if run.label.startswith("event:"):
        since = min(since, ctx.now - timedelta(days=366))
    return booked_runs(ctx, since, _same(run))


def _ask(ctx: Context, run: Run, members: dict[int, Member]) -> None:
    plan = _plan(ctx, run, members)
    one = members[run.one_id]
    if plan.one_hard is not None:
        raise _refuse_whole(ctx, plan, one)
    if not plan.lines:
        raise _refuse_nothing(ctx, plan)
    # One tapping twice, a coordinator after another: the same run booked is pointed out.
    again = _same_booked(ctx, run, ctx.now - REPEAT_WITHIN)[:1]

    def question(t: Translator) -> str:
        shown = preview(ctx, t, run, plan, one)
        if not again:
            return shown
        before = t("bulk.again", run=again[0].id, when=t.moment(again[0].created_at))
        return f"{before}\n{shown}"

    ctx.ask(
        PendingAction.BULK,
        ctx.member,
        question,
        data=run.dump(plan.fingerprint()),
        description=run.description,
    )


@REGISTRY.command("bulk", nl="massa", who=Who.COORDINATOR, private=True, also=("massabetaling",))
def bulk(ctx: Context, words: list[str]) -> None:
    try:
        run, members = parse_run(ctx, words)  # as they stand: the preview books nothing
        _ask(ctx, run, members)
    except Refusal as refused:
        # A new /massa, even one refused, lets the open preview go: a "ja" afterwards
        # must not book the older run unseen.
        open_ones = ctx.store.questions.open_pending(ctx.member.id)
        previews = [q.id for q in open_ones if q.action is PendingAction.BULK]
        if previews and refused.closes is None:
            refused.closes = previews[-1]
        raise


def _locks(ctx: Context, question: Pending) -> list[int]:
    if question.data is None:
        return []
    run, _ = Run.load(question.data)
    return [run.one_id, *run.many_ids]


@REGISTRY.on_answer(PendingAction.BULK, locks=_locks)
def bulk_answered(ctx: Context, question: Pending, yes: bool) -> None:
    if not yes:
        ctx.reply(ctx.t("bulk.declined"))
        return
    assert question.data is not None
    run, fingerprint = Run.load(question.data)
    # Two coordinators, each with a preview of the same run: the second Ja books nothing.
    meanwhile = [q for q in _same_booked(ctx, run, question.created_at) if q.id != question.id]
    if meanwhile:
        raise Refusal(
            "bulk.booked_meanwhile",
            run=meanwhile[0].id,
            when=ctx.t.moment(meanwhile[0].created_at),
        )
    locked = dict(ctx.locked)  # every account of the run, locked by the answer's claim
    one = locked[run.one_id]
    now = _members_of(ctx, run.label)
    if now is not None and {m.id for m in now} - {one.id} != set(run.many_ids):
        # "iedereen" is who is active now: someone approved or leaving since the preview.
        ctx.reply(ctx.t("bulk.changed"))
        many = [m for m in now if m.id != one.id]
        if not many:
            raise _empty(ctx, run.label)
        again = dataclasses.replace(run, many_ids=[m.id for m in many])
        _ask(ctx, again, {m.id: m for m in [one, *many]})
        return
    plan = _plan(ctx, run, locked)
    if plan.one_hard is not None:
        raise _refuse_whole(ctx, plan, one)
    if plan.fingerprint() != fingerprint:
        # Balances or members changed since the preview: ask again on what holds now.
        ctx.reply(ctx.t("bulk.changed"))
        if not plan.lines:
            raise _refuse_nothing(ctx, plan)
        _ask(ctx, run, locked)
        return
    group_t = ctx.translators[ctx.settings.group.language]
    description = to_plain(
        group_t("bulk.description", description=run.description, run=question.id)
    )
    lines = [
        ((one.id, m.id) if run.pays else (m.id, one.id)) + (amount, f"bulk:{question.id}:{m.id}")
        for m, amount in plan.lines
    ]
    try:
        posted = post_many(
            ctx.store,
            lines,
            description=description,
            kind=TransferKind.GROUP,
            at=ctx.now,
            booked_by_id=ctx.member.id,
            limits=ctx.settings.group_limits,
            locked=locked,
        )
    except LimitRefused:  # the plan checked these same balances: never expected
        raise Refusal("bulk.changed") from None
    locked.update(posted.after)
    soft = {breach.member.id: breach for breach in posted.soft}
    _tell(ctx, run, plan, one, question.id, locked)
    # Soft limits: each member is told; the coordinator read who in the preview, the
    # other coordinators get one list (``warn_soft`` would tell them once per member).
    ctx.tell_many([(b.member, soft_line(b, locked[i].balance)) for i, b in soft.items()])
    if soft:
        ctx.tell_coordinators(
            lambda t: soft_list(ctx.label, t, "bulk.soft_notify", question.id, soft, locked)
        )
    for member, _ in [*plan.lines, (one, 0)]:
        close_if_settled(ctx, member, locked[member.id].balance)


def soft_list(
    label: Callable[[Member, Translator], Raw],
    t: Translator,
    key: str,
    run: int | str,
    soft: dict[int, Breach],
    after: dict[int, Member],
) -> str:
    """For the coordinators: who a run took past a soft limit, and where they stand."""
    lines = [t.counted(key, len(soft), run=run)]
    for member_id, breach in list(soft.items())[:SHOWN_REFUSED]:
        lines.append(
            "  - "
            + t(
                "soft.notify_line",
                who=label(breach.member, t),
                balance=t.amount(after[member_id].balance),
                limit=t.amount(breach.limit),
            )
        )
    if len(soft) > SHOWN_REFUSED:
        lines.append("  " + t.counted("bulk.preview_more", len(soft) - SHOWN_REFUSED))
    return "\n".join(lines)


def soft_line(breach: Breach, after: int) -> Compose:
    key = f"soft.{breach.kind.value}"
    return lambda t: t(key, limit=t.amount(breach.limit), balance=t.amount(after))


def _tell(
    ctx: Context, run: Run, plan: Plan, one: Member, run_id: int, after: dict[int, Member]
) -> None:
    t = ctx.t
    ctx.reply(
        t.counted(
            "bulk.done",
            len(plan.lines),
            run=run_id,
            total=t.amount(plan.total),
            skipped=len(plan.refused),
        )
    )
    description = run.description
    key = "bulk.told_received" if run.pays else "bulk.told_paid"

    # Thousands of lines share a few amounts: each formatted once per language.
    shown: dict[tuple[str, int], Raw] = {}
    who: dict[str, Raw] = {}

    def amount_in(tt: Translator, value: int) -> Raw:
        key = (tt.language, value)
        if key not in shown:
            shown[key] = tt.amount(value)
        return shown[key]

    def line(amount: int, balance: int) -> Compose:
        def compose(tt: Translator) -> str:
            if tt.language not in who:
                who[tt.language] = ctx.label(one, tt)
            return tt(
                key,
                amount=amount_in(tt, amount),
                who=who[tt.language],
                description=description,
                run=run_id,
                balance=amount_in(tt, balance),
            )

        return compose

    ctx.tell_many([(m, line(amount, after[m.id].balance)) for m, amount in plan.lines])
    if not one.is_group_account and one.id != ctx.member.id:
        ctx.tell(
            one,
            lambda tt: tt.counted(
                "bulk.told_one_paid" if run.pays else "bulk.told_one_received",
                len(plan.lines),
                total=tt.amount(plan.total),
                description=description,
                run=run_id,
                by=ctx.label(ctx.member, tt),
                balance=tt.amount(after[one.id].balance),
            ),
        )
    group_t = ctx.translators[ctx.settings.group.language]
    payer, receiver = _sides(ctx, group_t, run, one)
    summary = group_t.counted(
        "bulk.group",
        len(plan.lines),
        run=run_id,
        payer=payer,
        receiver=receiver,
        total=group_t.amount(plan.total),
        description=description,
    )
    ctx.replies.append(Outgoing(ToAllGroups(), summary, language=group_t.language))


# Market days: who came to an event, and the mass payment to them ready to copy


@REGISTRY.command("market", nl="markt", who=Who.COORDINATOR, private=True)
def market_day(ctx: Context, words: list[str]) -> None:
    typed = words[0].lstrip("#") if words else ""
    if not typed.isdigit() or len(typed) > 9:
        raise Refusal("marketday.which", usage=ctx.usage("market"))
    event = ctx.store.events.event(int(typed))
    if event is None:
        raise Refusal("bulk.no_event", id=typed)
    answers = ctx.store.events.rsvps(event.id)
    came = [
        m
        for m, yes in answers
        if yes and not m.is_group_account and m.status is not Status.INACTIVE
    ]
    away = sum(1 for _, yes in answers if not yes)
    t = ctx.t
    past = event.starts_at <= ctx.now
    lines = [
        describe_event(t, event),
        t("marketday.came" if past else "marketday.come", count=len(came), away=away),
    ]
    if event.status is EventStatus.CANCELLED:
        lines.append(t("marketday.cancelled"))
        ctx.reply("\n".join(lines))
        return
    label = f"event:{event.id}"
    for paid in booked_runs(
        ctx, event.starts_at - timedelta(days=366), lambda run: run.label == label
    )[:3]:
        lines.append(
            t(
                "marketday.paid",
                run=paid.id,
                when=t.moment(paid.created_at),
                description=paid.description,
            )
        )
    if came:
        names = ", ".join(ctx.label(m) for m in came[:SHOWN_NAMES])
        if len(came) > SHOWN_NAMES:
            names += ", " + t.counted("bulk.preview_more", len(came) - SHOWN_NAMES)
        lines.append(t("marketday.names_past" if past else "marketday.names", names=Raw(names)))
        word = REGISTRY.find("bulk")
        assert word is not None
        lines.append(
            t(
                "marketday.pay_them",
                command=f"/{word.name_in(t.language)}",
                id=event.id,
                title=event.title[:60],
            )
        )
    ctx.reply("\n".join(lines))
