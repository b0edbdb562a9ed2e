"""Payments, requests, corrections, balances and limits."""

from __future__ import annotations

import re
from datetime import timedelta
from functools import partial

from letsbot.amounts import AmountError, Currency
from letsbot.context import Compose, Context
from letsbot.domain import (
    Breach,
    BreachKind,
    Member,
    Pending,
    PendingAction,
    Status,
    Transfer,
    TransferKind,
    blocking,
    transfer_breaches,
)
from letsbot.errors import Refusal
from letsbot.i18n import Raw, Translator
from letsbot.market import pass_message
from letsbot.markup import to_plain
from letsbot.posting import LimitRefused, post
from letsbot.registry import REGISTRY, Who
from letsbot.text import fold

DESCRIPTION_LIMIT = 200
# The same payment again within this while is asked about first: long enough for
# a member who saw no confirmation (a lost reply, a slow restart) to try again,
# short enough not to question the next week's bread.
AGAIN_WITHIN = timedelta(minutes=10)
AGAIN_LOOKBACK = 20  # the payer's newest transfers looked at
_PAYS = (TransferKind.PAYMENT, TransferKind.REQUEST, TransferKind.BOOKING)
HISTORY_PAGE = 10
_PAGE = re.compile(r"[0-9]{1,6}", re.ASCII)


def parse_amount(ctx: Context, words: list[str], usage_of: str) -> tuple[int, list[str]]:
    """The amount first in ``words`` as people write it (``30``, ``€30``, ``30 pluimen``,
    ``1.000``), and the words after it, the unit word left out."""
    if not words:
        raise Refusal("error.missing_amount", usage=ctx.usage(usage_of))
    word, rest = words[0], words[1:]
    currency = ctx.settings.currency_spec
    units = {fold(currency.name), fold(currency.plural)}
    euro = word in _EURO_WORDS and bool(rest)
    if euro:  # "€ 30"
        word, rest = rest[0], rest[1:]
    for sign in ("€", "eur", "euro", "$"):
        if fold(word).startswith(sign) and word[len(sign) :][:1].isdigit():
            word, euro = word[len(sign) :], True
        elif fold(word).endswith(sign) and word[: -len(sign)][-1:].isdigit():
            word, euro = word[: -len(sign)], True
    for unit in units:  # "30pluimen"
        if fold(word).endswith(unit) and word[: -len(unit)][-1:].isdigit():
            word = word[: -len(unit)]
    hours = _hours_word(word, rest)
    if hours is not None:  # "2 uur", "1,5 uur", "2u": hours at the group's rate
        return _hours(ctx, hours, rest[1:] if hours == word else rest, usage_of)
    if rest and fold(rest[0]).strip(".,") in units | _EURO_WORDS:  # "30 pluimen", "30 euro"
        euro = euro or fold(rest[0]).strip(".,") in _EURO_WORDS
        rest = rest[1:]
    if rest and re.fullmatch(r"[0-9]{3}", rest[0]) and re.fullmatch(r"[0-9]{1,3}", word):
        # "1 000": a thousand with a space in it, never 1 with "000" as its reason.
        raise Refusal(
            "amount.spaced", text=f"{word} {rest[0]}", joined=f"{word}.{rest[0]}", word=word
        )
    maximum = ctx.settings.minor(ctx.settings.limits.max_transfer)
    try:
        amount = currency.parse(word, maximum)
    except AmountError as error:
        raise Refusal(
            f"amount.{error.reason}",
            text=word[:40],  # the number itself, not a "€" before it
            decimals=ctx.settings.currency.decimals,
            maximum=ctx.t.amount(maximum),
            usage=ctx.usage(usage_of),
        ) from None
    if euro:
        ctx.reply(ctx.t("amount.not_euro", unit=currency.plural, amount=ctx.t.amount(amount)))
    if len(rest) > 1 and fold(rest[0]) in _FOR_WORDS:  # "30 voor soep": the reason is "soep"
        rest = rest[1:]
    return amount, rest


_EURO_WORDS = frozenset({"€", "eur", "euro", "euros", "$", "dollar", "dollars", "usd"})
_HOUR_WORDS = ("uur", "uren", "hour", "hours", "u", "h")
_HOURS = re.compile(r"[0-9]{1,4}(?:[.,][0-9]{1,2})?", re.ASCII)


def _hours_word(word: str, rest: list[str]) -> str | None:
    """The number of hours typed, when the amount is in hours ("2 uur", "2u")."""
    if rest and fold(rest[0]).strip(".,") in _HOUR_WORDS and word[:1].isdigit():
        return word  # "2 uur", "2 u", and "1.000 uur" (refused as too much, not a 1.000)
    for unit in _HOUR_WORDS:
        if fold(word).endswith(unit) and _HOURS.fullmatch(word[: -len(unit)]):
            return word[: -len(unit)]
    return None


def _hours(ctx: Context, hours: str, rest: list[str], usage_of: str) -> tuple[int, list[str]]:
    """Hours in the group's unit (``currency.units_per_hour``), to the nearest whole minor unit."""
    currency = ctx.settings.currency
    if _HOURS.fullmatch(hours):
        whole, _, frac = hours.replace(",", ".").partition(".")
        hundredths = int(whole) * 100 + int(frac.ljust(2, "0") or "0")
    else:  # "1.000 uur": as many hours as the bot would read pluimen
        try:
            hundredths = Currency("", "", 0).parse(hours, 10**12) * 100
        except AmountError as error:
            raise Refusal(
                f"amount.{error.reason}",
                text=hours[:40],
                decimals=currency.decimals,
                maximum=ctx.t.amount(ctx.settings.minor(ctx.settings.limits.max_transfer)),
                usage=ctx.usage(usage_of),
            ) from None
    exact = hundredths * ctx.settings.minor(currency.units_per_hour)
    amount = (exact + 50) // 100
    maximum = ctx.settings.minor(ctx.settings.limits.max_transfer)
    if amount == 0 or amount > maximum:
        reason = "zero" if amount == 0 else "too_large"
        raise Refusal(
            f"amount.{reason}",
            text=hours,
            maximum=ctx.t.amount(maximum),
            usage=ctx.usage(usage_of),
        )
    key = "amount.hours" if exact % 100 == 0 else "amount.hours_rounded"
    ctx.reply(
        ctx.t(
            "amount.one_hour" if hundredths == 100 else key,  # not "(een uur is …)" again
            hours=hours,
            amount=ctx.t.amount(amount),
            per_hour=ctx.t.amount(ctx.settings.minor(currency.units_per_hour)),
        )
    )
    if len(rest) > 1 and fold(rest[0]) in _FOR_WORDS:
        rest = rest[1:]
    return amount, rest


_FOR_WORDS = frozenset({"voor", "for"})
_TO_WORDS = frozenset({"aan", "to", "naar"})


def ensure_can_trade(ctx: Context, member: Member) -> None:
    if not member.can_trade:
        raise Refusal("pay.not_active", who=ctx.label(member))


def may_see_numbers(ctx: Context, member: Member) -> bool:
    """Whether a reply to the sender may show ``member``'s balance, limits and room left.

    Under open bookkeeping anyone may. Otherwise only the member themselves and
    coordinators (who see every balance with /saldo anyway), and only in a reply that
    no one else reads: in a group the whole group would see it.
    """
    if ctx.settings.group.open_bookkeeping:
        return True
    incoming = ctx.incoming
    if incoming.chat.is_group and not incoming.pressed:  # a pressed button is answered privately
        return False
    sender = ctx.sender
    return sender is not None and (sender.id == member.id or sender.is_coordinator)


_PAYER_SIDE = (BreachKind.PAYER_MIN, BreachKind.PAYER_LEAVING)


def refuse_breach(ctx: Context, breach: Breach) -> Refusal:
    who = ctx.label(breach.member)
    if not may_see_numbers(ctx, breach.member):
        # That it can't be done, never why in someone's numbers (closed bookkeeping).
        own = ctx.sender is not None and ctx.sender.id == breach.member.id
        payer_side = breach.kind in _PAYER_SIDE
        if own:
            return Refusal("limit.hidden_own_payer" if payer_side else "limit.hidden_own_receiver")
        return Refusal("limit.hidden_payer" if payer_side else "limit.hidden_receiver", who=who)
    own = ctx.sender is not None and ctx.sender.id == breach.member.id
    side = (
        ("pay" if own else "paid")
        if breach.kind in _PAYER_SIDE
        else ("receive" if own else "received")
    )
    room = ctx.t(
        f"limit.room_{side}" if breach.room > 0 else f"limit.room_{side}_none",
        room=ctx.t.amount(breach.room),
    )
    return Refusal(
        f"limit.own_{breach.kind.value}" if own else f"limit.{breach.kind.value}",
        who=who,
        room=Raw(room),
        limit=ctx.t.amount(breach.limit),
        balance=ctx.t.amount(breach.member.balance),
    )


def check_limits(ctx: Context, payer: Member, receiver: Member, amount: int) -> list[Breach]:
    """Raise for a breach that refuses; return the soft ones to warn about.

    Under closed bookkeeping another member's limit is not checked when asking: a
    refusal then would answer "how much can An still receive?" for free, amount after
    amount. It is checked when the payment is booked, after the payer's Ja, where a
    probe that fits is a real payment.
    """
    limits = ctx.settings.group_limits
    breaches = transfer_breaches(payer, receiver, amount, limits)
    sender = ctx.sender
    refusing = [
        b
        for b in blocking(breaches, limits)
        if ctx.settings.group.open_bookkeeping
        or (sender is not None and (sender.id == b.member.id or sender.is_coordinator))
    ]
    if refusing:
        raise refuse_breach(ctx, refusing[0])
    return breaches


def to_word_at(words: list[str]) -> int | None:
    """Where "aan" stands in the order ``30 pluimen aan Lies voor soep``, if it is that order."""
    to_at = next((i for i in (1, 2) if i < len(words) and fold(words[i]) in _TO_WORDS), None)
    if to_at is not None and len(words) > to_at + 1 and any(c.isdigit() for c in words[0]):
        return to_at
    return None


def parse_transfer(ctx: Context, words: list[str], usage_of: str) -> tuple[Member, int, str]:
    """``Lies 30 soep``, and the order people also use: ``30 pluimen aan Lies voor soep``."""
    to_at = to_word_at(words)
    if to_at is not None:
        amount, leftover = parse_amount(ctx, words[:to_at], usage_of)
        if not leftover:
            other, rest = ctx.take_member(words[to_at + 1 :], usage_of=usage_of)
            if len(rest) > 1 and fold(rest[0]) in _FOR_WORDS:
                rest = rest[1:]
            description = ctx.text_argument(rest, usage_of=usage_of, limit=DESCRIPTION_LIMIT)
            return other, amount, _unasked(description)
    other, rest = ctx.take_member(words, usage_of=usage_of)
    amount, rest = parse_amount(ctx, rest, usage_of)
    description = ctx.text_argument(rest, usage_of=usage_of, limit=DESCRIPTION_LIMIT)
    return other, amount, _unasked(description)


def _unasked(description: str) -> str:
    """ "eieren?" typed unsure is "eieren": the question asks "voor: eieren?" itself."""
    return description.rstrip("?").rstrip() or description


@REGISTRY.command("pay", nl="betaal", who=Who.MEMBER, also=("betalen", "betaling"))
def pay(ctx: Context, words: list[str]) -> None:
    # Imported here: letsbot.partners builds on this module.
    from letsbot.partners import partner_named, pay_across

    across = partner_named(ctx, words)
    if across is not None:  # "GE-012": a member of a partner group
        pay_across(ctx, *across)
        return
    receiver, amount, description = parse_transfer(ctx, words, "pay")
    payer = ctx.member
    if receiver.id == payer.id:
        raise Refusal("pay.self")
    ensure_can_trade(ctx, receiver)
    check_limits(ctx, payer, receiver, amount)
    ctx.ask(
        PendingAction.PAY,
        payer,
        asked_twice_aware(ctx, "pay.ask", payer, receiver, amount, description),
        payer=payer,
        receiver=receiver,
        amount=amount,
        description=description,
    )


def asked_twice_aware(
    ctx: Context, key: str, payer: Member, receiver: Member, amount: int, description: str
) -> Compose:
    """The question ``key`` (pay.ask, request.ask), after the same payment booked just
    now if there is one: a member who saw no "Geboekt" must not pay twice unawares."""
    before = just_paid(ctx, payer, receiver, amount, description)

    def question(t: Translator) -> str:
        who = ctx.label(receiver, t)
        asked = t(key, who=who, amount=t.amount(amount), description=description)
        if before is None:
            return asked
        again = t(
            "pay.again",
            who=who,
            amount=t.amount(amount),
            description=before.description,
            id=before.id,
        )
        return f"{again}\n{asked}"

    return question


def just_paid(
    ctx: Context, payer: Member, receiver: Member, amount: int, description: str
) -> Transfer | None:
    """The same payment, booked within ``AGAIN_WITHIN`` and not reversed, if there is one."""
    wanted = " ".join(description.casefold().split())
    since = ctx.now - AGAIN_WITHIN
    same = ctx.store.ledger.standing_since(
        payer.id, receiver.id, amount, _PAYS, since, AGAIN_LOOKBACK
    )
    for transfer in same:
        if " ".join(transfer.description.casefold().split()) == wanted:
            return transfer
    return None


@REGISTRY.command("request", nl="vraagbetaling", who=Who.MEMBER)
def request(ctx: Context, words: list[str]) -> None:
    from letsbot.partner_requests import request_across
    from letsbot.partners import partner_named

    across = partner_named(ctx, words)
    if across is not None:  # "DU-003": a member of a partner group
        request_across(ctx, *across)
        return
    payer, amount, description = parse_transfer(ctx, words, "request")
    receiver = ctx.member
    if payer.id == receiver.id:
        raise Refusal("pay.self")
    if payer.is_group_account:
        raise Refusal("request.group_account")
    ensure_can_trade(ctx, payer)
    check_limits(ctx, payer, receiver, amount)
    # Money leaves the payer's account on someone else's word: asked, and
    # answered, only in the payer's direct chat. A payer who blocks the sender
    # is asked nothing, and the sender hears what they would hear otherwise.
    question = asked_twice_aware(ctx, "request.ask", payer, receiver, amount, description)
    if pass_message(ctx, payer):
        asked = (
            ctx.ask(
                PendingAction.REQUEST,
                payer,
                question,
                payer=payer,
                receiver=receiver,
                amount=amount,
                description=description,
            )
            is not None
        )
    else:
        asked = bool(ctx.store.members.identities(payer.id))
    key = "request.sent" if asked else "request.unreachable"
    ctx.reply(ctx.t(key, who=ctx.label(payer), amount=ctx.t.amount(amount)))


@REGISTRY.command("book", nl="boeken", who=Who.COORDINATOR)
def book(ctx: Context, words: list[str]) -> None:
    if not words:
        raise Refusal("error.missing_member", usage=ctx.usage("book"))
    payer, rest = ctx.find_member_in(words)
    receiver, amount, description = parse_transfer(ctx, rest, "book")
    if payer.id == receiver.id:
        raise Refusal("pay.self")
    ensure_can_trade(ctx, payer)
    ensure_can_trade(ctx, receiver)
    check_limits(ctx, payer, receiver, amount)
    ctx.ask(
        PendingAction.BOOK,
        ctx.member,
        lambda t: t(
            "book.ask",
            payer=ctx.label(payer, t),
            receiver=ctx.label(receiver, t),
            amount=t.amount(amount),
            description=description,
        ),
        payer=payer,
        receiver=receiver,
        amount=amount,
        description=description,
    )


@REGISTRY.command("reverse", nl="terugboeken", who=Who.COORDINATOR)
def reverse(ctx: Context, words: list[str]) -> None:
    if not words or _PAGE.fullmatch(words[0].lstrip("#")) is None:
        raise Refusal("reverse.usage", usage=ctx.usage("reverse"))
    transfer_id = int(words[0].lstrip("#"))
    reason = ctx.text_argument(words[1:], usage_of="reverse", limit=DESCRIPTION_LIMIT)
    original = ctx.store.ledger.transfer(transfer_id)
    if original is None:
        raise Refusal("reverse.unknown", id=transfer_id)
    if original.kind is TransferKind.REVERSAL:
        raise Refusal("reverse.is_reversal", id=transfer_id)
    if ctx.store.ledger.reversal_of(transfer_id) is not None:
        raise Refusal("reverse.already", id=transfer_id)
    payer = ctx.store.members.member(original.receiver_id)
    receiver = ctx.store.members.member(original.payer_id)
    assert payer is not None and receiver is not None
    check_limits(ctx, payer, receiver, original.amount)
    ctx.ask(
        PendingAction.REVERSE,
        ctx.member,
        lambda t: t(
            "reverse.ask",
            id=original.id,
            payer=ctx.label(receiver, t),
            receiver=ctx.label(payer, t),
            amount=t.amount(original.amount),
            description=original.description,
            reason=reason,
        ),
        payer=payer,
        receiver=receiver,
        amount=original.amount,
        transfer_id=original.id,
        description=reason,
    )


KIND_OF = {
    PendingAction.PAY: TransferKind.PAYMENT,
    PendingAction.REQUEST: TransferKind.REQUEST,
    PendingAction.BOOK: TransferKind.BOOKING,
    PendingAction.REVERSE: TransferKind.REVERSAL,
}


def kind_of(action: PendingAction, payer: Member, receiver: Member) -> TransferKind:
    """What a leaving member gives the group account is their rest, not trade."""
    leaving = payer.status is Status.LEAVING and action is not PendingAction.REVERSE
    return TransferKind.REST if leaving and receiver.is_group_account else KIND_OF[action]


@REGISTRY.on_answer(
    PendingAction.PAY, PendingAction.REQUEST, PendingAction.BOOK, PendingAction.REVERSE
)
def transfer_answered(ctx: Context, question: Pending, yes: bool) -> None:
    assert question.payer_id is not None and question.receiver_id is not None
    assert question.amount is not None
    if not yes:
        # Named: a "nee" meant for something else must show what it answered.
        ctx.reply(ctx.t("confirm.declined", question=Raw(question.text or "")))
        if question.requested_by_id != ctx.member.id:
            asker = ctx.store.members.member(question.requested_by_id)
            if asker is not None:
                ctx.tell(asker, lambda t: t("request.declined", who=ctx.label(ctx.member, t)))
        return
    description = question.description
    if question.action is PendingAction.REVERSE:
        original = ctx.store.ledger.transfer(question.transfer_id or 0)
        assert original is not None
        # Stored as plain text, like a description a member typed: escaped when shown.
        description = to_plain(
            ctx.t("reverse.description", id=original.id, reason=question.description)
        )

    def still_allowed(payer: Member, receiver: Member) -> None:
        ensure_can_trade(ctx, payer)
        ensure_can_trade(ctx, receiver)
        if question.action is PendingAction.REVERSE:
            assert question.transfer_id is not None
            if ctx.store.ledger.reversal_of(question.transfer_id) is not None:
                raise Refusal("reverse.already", id=question.transfer_id)

    payer_id, receiver_id = question.payer_id, question.receiver_id
    # The answer's claim locked these with the booker (letsbot.questions): read under that lock.
    try:
        posted = post(
            ctx.store,
            payer_id=payer_id,
            receiver_id=receiver_id,
            amount=question.amount,
            description=description,
            kind=partial(kind_of, question.action),
            at=ctx.now,
            booked_by_id=ctx.member.id,
            event_key=ctx.incoming.event_key,
            reverses_id=question.transfer_id,
            limits=ctx.settings.group_limits,
            lock_also=[ctx.member.id],
            locked=ctx.locked,
            check=still_allowed,
        )
    except LimitRefused as refused:
        raise refuse_breach(ctx, refused.breach) from None
    transfer, payer, receiver, soft = posted.transfer, posted.payer, posted.receiver, posted.soft
    payer_after, receiver_after = posted.payer_after, posted.receiver_after
    amount = transfer.amount

    def booked_line(t: Translator) -> Raw:
        return Raw(
            t(
                "booked.line",
                id=transfer.id,
                payer=ctx.label(payer, t),
                receiver=ctx.label(receiver, t),
                amount=t.amount(amount),
                description=transfer.description,
            )
        )

    booker = ctx.member
    reversing = question.action is PendingAction.REVERSE

    def receipt(party: Member, after: int, *, said: bool = True) -> Compose:
        """The booking as ``party`` reads it: what they paid or got, and their balance now;
        who booked it when that was a coordinator, not the reader."""
        paid = party.id == payer.id
        other = receiver if paid else payer
        for_them = party.id != booker.id  # the coordinator's own receipt is a plain one
        if reversing and for_them:
            key = "booked.reversed_paid" if paid else "booked.reversed_received"
        elif question.action is PendingAction.BOOK and for_them:
            key = "booked.for_you_paid" if paid else "booked.for_you_received"
        else:
            key = "booked.you_paid" if paid else "booked.you_received"

        def compose(t: Translator) -> str:
            reason: Raw | str = Raw(t("booked.description_not_shown"))
            if said:  # the coordinator's reason is their plain text, escaped by t()
                reason = (
                    question.description or ""
                    if reversing and for_them
                    else Raw(t("booked.reason", description=transfer.description))
                )
            return t(
                key,
                id=transfer.id,
                original=transfer.reverses_id or 0,
                booker=ctx.label(booker, t),
                amount=t.amount(amount),
                other=ctx.label(other, t),
                reason=reason,
                balance=t.amount(after),
            )

        return compose

    # Balances are private: in the group only the booking is shown.
    sender_id = ctx.member.id
    in_group = ctx.incoming.chat.is_group
    if in_group or sender_id not in (payer.id, receiver.id):
        ctx.reply(ctx.t("booked.done", line=booked_line(ctx.t)))
    # Whose words the description is: a member who blocks its author doesn't read them.
    author = question.requested_by_id
    for party, after in ((payer, payer_after), (receiver, receiver_after)):
        if party.id == sender_id and not in_group:
            ctx.reply(receipt(party, after)(ctx.t))
        else:
            said = party.id == author or not ctx.store.contact.is_blocked(party.id, author)
            ctx.tell(party, receipt(party, after, said=said))
    for breach in soft:
        warn_soft(
            ctx, breach, payer_after if breach.kind is BreachKind.PAYER_MIN else receiver_after
        )
    close_if_settled(ctx, payer, payer_after)
    close_if_settled(ctx, receiver, receiver_after)


def warn_soft(ctx: Context, breach: Breach, after: int) -> None:
    """Soft limits: the booking stands; the member and the coordinators are told."""
    member = breach.member
    key = f"soft.{breach.kind.value}"
    ctx.tell(member, lambda t: t(key, limit=t.amount(breach.limit), balance=t.amount(after)))
    ctx.tell_coordinators(
        lambda t: t(
            "soft.notify",
            who=ctx.label(member, t),
            limit=t.amount(breach.limit),
            balance=t.amount(after),
        ),
        except_sender=False,
    )


@REGISTRY.command("balance", nl="saldo", who=Who.MEMBER, private=True)
def balance(ctx: Context, words: list[str]) -> None:
    member = ctx.member
    if words:
        member, _ = ctx.find_member_in(words)
        may_see = (
            member.id == ctx.member.id
            or ctx.settings.group.open_bookkeeping
            or ctx.member.is_coordinator
        )
        if not may_see:
            raise Refusal("balance.private")
    limits = ctx.settings.group_limits
    t = ctx.t
    if member.is_group_account:
        ctx.reply(
            t("balance.group_account", who=ctx.label(member), balance=t.amount(member.balance))
        )
        return
    low, high = limits.min_for(member), limits.max_for(member)
    can_pay, can_receive = max(member.balance - low, 0), max(high - member.balance, 0)
    if member.status is Status.LEAVING:  # only toward zero now
        can_pay, can_receive = (
            min(can_pay, max(member.balance, 0)),
            min(can_receive, max(-member.balance, 0)),
        )
    key = "balance.own" if member.id == ctx.member.id else "balance.other"
    ctx.reply(
        t(
            key,
            who=ctx.label(member),
            balance=t.amount(member.balance),
            min=t.amount(low),
            max=t.amount(high),
            can_pay=t.amount(can_pay),
            can_receive=t.amount(can_receive),
        )
    )
    if member.status is Status.LEAVING:
        own = member.id == ctx.member.id
        ctx.reply(
            t("balance.leaving") if own else t("balance.other_leaving", who=ctx.label(member))
        )


@REGISTRY.command(
    "history",
    nl="overzicht",
    who=Who.MEMBER,
    private=True,
    also=("geschiedenis", "historiek", "transacties"),
)
def history(ctx: Context, words: list[str]) -> None:
    page = 1
    if words:
        if _PAGE.fullmatch(words[0]) is None or int(words[0]) < 1:
            raise Refusal("history.bad_page", usage=ctx.usage("history"))
        page = int(words[0])
    member = ctx.member
    total = ctx.store.ledger.count_transfers(member.id)
    if total == 0:
        ctx.reply(ctx.t("history.empty"))
        return
    pages = (total + HISTORY_PAGE - 1) // HISTORY_PAGE
    if page > pages:
        raise Refusal("history.no_such_page", page=page, pages=pages)
    rows = ctx.store.ledger.history(member.id, (page - 1) * HISTORY_PAGE, HISTORY_PAGE)
    others = {
        m.id: m
        for m in map(
            ctx.store.members.member, {r.payer_id for r in rows} | {r.receiver_id for r in rows}
        )
        if m
    }
    t = ctx.t
    lines = [t("history.header", page=page, pages=pages, total=total)]
    for row in rows:
        incoming = row.receiver_id == member.id
        other = others[row.payer_id if incoming else row.receiver_id]
        lines.append(
            t(
                "history.in" if incoming else "history.out",
                id=row.id,
                when=t.moment(row.created_at),
                who=ctx.label(other, old=True),
                amount=t.amount(row.amount),
                description=row.description,
            )
        )
    if page < pages:
        lines.append(t("history.more", next=page + 1))
    ctx.reply("\n".join(lines))


def parse_limit(ctx: Context, text: str) -> int | None:
    """A signed amount, or 'standaard'/'default' for the group's limit."""
    if text.lower() in ("default", "standaard"):
        return None
    try:
        return ctx.settings.currency_spec.parse_signed(text)
    except AmountError:
        raise Refusal("limit.bad_number", text=text[:40], usage=ctx.usage("limit")) from None


@REGISTRY.command("limit", nl="limiet", who=Who.COORDINATOR)
def limit(ctx: Context, words: list[str]) -> None:
    if len(words) < 3:
        raise Refusal("limit.usage", usage=ctx.usage("limit"))
    target, rest = ctx.find_member_in(words)
    if len(rest) != 2:
        raise Refusal("limit.usage", usage=ctx.usage("limit"))
    if target.is_group_account:
        raise Refusal("limit.group_account")
    low, high = parse_limit(ctx, rest[0]), parse_limit(ctx, rest[1])
    member = ctx.store.members.lock_members([target.id])[target.id]
    group = ctx.settings.group_limits
    eff_low = group.min_balance if low is None else low
    eff_high = group.max_balance if high is None else high
    if eff_low > 0 or eff_high < 0 or eff_low > eff_high:
        raise Refusal("limit.order")
    if not (eff_low <= member.balance <= eff_high) and not group.soft:
        if not may_see_numbers(ctx, member):
            raise Refusal(
                "limit.breaks_balance_hidden", who=ctx.label(member), code=ctx.code(member)
            )
        raise Refusal(
            "limit.breaks_balance", who=ctx.label(member), balance=ctx.t.amount(member.balance)
        )
    member = ctx.store.members.update_member(member.id, limits=(low, high))
    ctx.reply(
        ctx.t(
            "limit.done",
            who=ctx.label(member),
            min=ctx.t.amount(eff_low),
            max=ctx.t.amount(eff_high),
        )
    )
    ctx.tell(
        member,
        lambda t: t("limit.told", min=t.amount(eff_low), max=t.amount(eff_high)),
    )


def close_if_settled(ctx: Context, locked: Member, balance: int) -> None:
    """A leaving member whose balance reached zero is closed; coordinators are told.

    ``locked``: the account as locked for the booking that left it at ``balance``.
    """
    if locked.status is not Status.LEAVING or balance != 0:
        return
    member = ctx.store.members.update_member(locked.id, status=Status.INACTIVE)
    ctx.store.market.withdraw_listings_of(member.id, ctx.now)  # their offers and wants go with them
    group = ctx.settings.group.name
    ctx.tell(member, lambda t: t("leave.closed", group=group))
    ctx.tell_coordinators(lambda t: t("leave.closed_notify", who=ctx.label(member, t)))
