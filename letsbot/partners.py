"""Trade between groups: a member here pays a member of a partner group, exactly once.

Each group runs its own bot on its own database, and keeps one account per
partner group (Status.EXTERNAL). ``/betaal GE-012 30 soep``, with GE the
partner's code prefix (or ``/betaal 30 aan GE-012 soep``), asks as a payment at
home does, showing what the receiver gets in their group's unit, and their name
when the partner's bot says who GE-012 is (letsbot.partner_lookup). After Ja
this bot books payer → the partner's account and, in the same transaction, a
payment record with a new payment id (``partner_outgoing``). ``PartnerDesk``
sends it to the partner's bot, signed, again and again with growing pauses
until it has a signed answer; the partner books its account of this group →
receiver at most once per payment id (``partner_incoming``: a repeat gets the
same answer). A refusal books the first booking back with the reason; so does giving up,
which only happens after the payment's expiry (``partners.give_up``), after
which the partner no longer books it.

Conversion: through hours, in integers, rounded down (the receiver never gets
more hours than the payer gave): receiver's minor units = floor(amount ×
their units per hour × 10^their decimals / (our units per hour × 10^our
decimals)). Each ledger books its own unit and sums to zero on its own; the
two trade balances mirror each other within that rounding.

The wire: one JSON object per message, signed with Ed25519 over its canonical
form (letsbot.signing), carrying the sender's and receiver's code prefixes,
the time it was sent and the payment id. A bad signature, a time outside
``partners.window``, an unknown group, or a payment id seen before with other
content is refused and logged once, and nothing is booked; a payment the
receiving group refuses (receiver unknown or not active, their limit, the
cap, the partnership paused, past its expiry) gets a signed refusal.

A partner without a bot (a group on eLAND) is a manual partnership: the same
question and first booking, then coordinators settle it (letsbot.partner_manual).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any, NoReturn

from letsbot.clock import Clock
from letsbot.config import Settings
from letsbot.context import Compose, Context
from letsbot.domain import (
    IncomingAnswer,
    Member,
    MemberCode,
    Partner,
    PartnerPayment,
    PartnerState,
    Pending,
    PendingAction,
    TransferKind,
)
from letsbot.errors import Busy, Refusal
from letsbot.i18n import Raw, Translator, number_in
from letsbot.jobs import Job
from letsbot.ledger import (
    DESCRIPTION_LIMIT,
    check_limits,
    ensure_can_trade,
    parse_amount,
    refuse_breach,
    to_word_at,
)
from letsbot.messages import Outgoing, ToPerson
from letsbot.outbox import Outbox
from letsbot.ports import Store, UnitOfWork
from letsbot.posting import LimitRefused, Posted, post
from letsbot.registry import REGISTRY
from letsbot.signing import SigningKey, canonical_json, sign_object, verify_object
from letsbot.text import fold, strip_controls

log = logging.getLogger(__name__)

VERSION = 1
PATH = "/letsbot/partner/v1/payment"  # the summaries: letsbot.partner_check.SUMMARY_PATH
# A payment being sent is left alone by other processes this long: longer than one
# try may take (app.partner_http.TIMEOUT); after a crash, how long it waits.
LEASE = timedelta(seconds=15)
FIRST_PAUSE = timedelta(seconds=5)  # then twice as long after each try without answer
LONGEST_PAUSE = timedelta(hours=1)
BATCH = 50
# Why a payment was refused or booked back; each a key "partner.reason.<reason>".
REASONS = (
    *("unknown", "not_active", "limit", "cap", "paused", "expired", "no_answer"),
    *("too_large", "terms"),
)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A payment booked just now, claimed for its first try in the booking's own
    transaction (as ``claim_due_payments`` would): sent without another transaction."""

    payment: PartnerPayment
    partner: Partner
    payer: Member


# Told, after the commit, of each payment booked here, by the group's code prefix
# (tests run two groups in one process): 'letsbot run''s sender then sends it at
# once; told None, it looks at once for what else waits (a payment request). Only
# the sender adds one; without it a payment waits for a look.
_waiting: dict[str, Callable[[Claimed | None], None]] = {}


def when_payment_waits(
    prefix: str, listener: Callable[[Claimed | None], None]
) -> Callable[[], None]:
    """Call ``listener`` (from any thread) after each partner payment of group ``prefix``
    is booked here, claimed for it; returns what stops it. If the listener never sends
    it, the payment is sent again once its lease is over, as after a crash."""
    _waiting[prefix.upper()] = listener

    def stop() -> None:
        _waiting.pop(prefix.upper(), None)

    return stop


def _payment_waits() -> list[Outgoing]:
    """After the commit of something else to send: every sender here looks at once."""
    for listener in list(_waiting.values()):
        listener(None)
    return []


def convert(amount: int, settings: Settings, partner: Partner) -> int:
    """What ``amount`` (minor units here) is in the partner's minor units, rounded down."""
    return _hours(amount, settings, partner)[0]


def _hours(amount: int, settings: Settings, partner: Partner) -> tuple[int, bool]:
    """``convert``, and whether it was rounded."""
    ours = settings.currency.units_per_hour * int(10**settings.currency.decimals)
    theirs = partner.units_per_hour * int(10**partner.decimals)
    converted, rest = divmod(amount * theirs, ours)
    return converted, rest != 0


def their_amount(amount: int, partner: Partner, language: str) -> str:
    """``1.650 uren``: an amount in the partner's unit, written as amounts are here."""
    return f"{number_in(amount, partner.decimals, language)} {partner.unit}"


def partner_in(ctx: Context, word: str) -> tuple[Partner, str] | None:
    """The partner group ``word`` (a member code) names, and the code as shown: ``GE-012``."""
    code = MemberCode.read(word)
    if code is None or not code.prefix:
        return None
    if code.prefix.upper() == ctx.settings.group.code_prefix.upper():
        return None
    partner = ctx.store.partners.partner_by_prefix(code.prefix)
    if partner is None or partner.removed:
        return None
    return partner, str(code)


def partner_named(ctx: Context, words: list[str]) -> tuple[Partner, str, list[str]] | None:
    """The partner group and code a payment (or request) names, first (``GE-012 30 soep``)
    or after the amount (``30 pluimen aan GE-012 voor soep``); and the other words,
    the amount first."""
    if not words:
        return None
    first = partner_in(ctx, words[0])
    if first is not None:
        return first[0], first[1], words[1:]
    if len(words) > 2 and words[0].isalpha() and words[1].isdigit():
        spaced = partner_in(ctx, f"{words[0]}-{words[1]}")  # "GE 012 30 soep", an amount after
        if spaced is not None:
            return spaced[0], spaced[1], words[2:]
    to_at = to_word_at(words)
    later = partner_in(ctx, words[to_at + 1]) if to_at is not None else None
    if later is None or to_at is None:
        return None
    return later[0], later[1], words[:to_at] + words[to_at + 2 :]


def pay_across(ctx: Context, partner: Partner, code: str, words: list[str]) -> None:
    """``/betaal GE-012 30 soep``: asked as a payment at home, with what the receiver gets."""
    amount, rest = parse_amount(ctx, words, "pay")
    if rest and _their_unit(partner, rest[0]):
        _refuse_their_unit(ctx, partner, code, amount, rest)
    description = ctx.text_argument(rest, usage_of="pay", limit=DESCRIPTION_LIMIT)
    if partner.manual:
        # Imported here: letsbot.partner_manual builds on this module.
        from letsbot.partner_manual import check_description

        check_description(partner, description)
    payer = ctx.member
    if partner.paused:
        raise Refusal("partner.paused", group=partner.name)
    ensure_can_trade(ctx, payer)
    theirs, rounded = _hours(amount, ctx.settings, partner)
    if theirs <= 0:
        ours_rate = ctx.settings.currency.units_per_hour * 10**ctx.settings.currency.decimals
        theirs_rate = partner.units_per_hour * 10**partner.decimals
        least = -(-ours_rate // theirs_rate)  # the least that is 1 there, rounded down
        raise Refusal(
            "partner.too_small",
            group=partner.name,
            amount=ctx.t.amount(amount),
            least=ctx.t.amount(least),
        )
    account = ctx.store.members.member(partner.account_id)
    assert account is not None
    _check_cap(ctx.t, partner, account.balance + amount, account.balance)
    check_limits(ctx, payer, account, amount)
    # Imported here: letsbot.partner_lookup builds on this module.
    from letsbot.partner_lookup import checked_receiver

    found = checked_receiver(ctx, partner, code)

    def question(t: Translator) -> str:
        asked = t(
            "partner.ask_named" if found is not None and found.name else "partner.ask",
            amount=t.amount(amount),
            code=code,
            name=found.name if found is not None and found.name else "",
            group=partner.name,
            theirs=their_amount(theirs, partner, t.language),
            description=description,
        )
        if found is not None and found.state is None:
            asked += f"\n{t('partner.not_checked', group=partner.name, code=code)}"
        if rounded:
            asked += f"\n{t('partner.rounded')}"
        if partner.manual:
            asked += f"\n{t('partner_manual.ask', group=partner.name)}"
        return asked

    ctx.ask(
        PendingAction.PARTNER_PAY,
        payer,
        question,
        payer=payer,
        receiver=account,
        amount=amount,
        description=description,
        # The name checked there, for the transfer's description here: "soep (Tine, GE-012)".
        data=json.dumps(
            {
                "partner": partner.id,
                "to": code,
                "theirs": theirs,
                **({"name": found.name} if found is not None and found.name else {}),
            }
        ),
    )


def _their_unit(partner: Partner, word: str) -> bool:
    """``munten`` (or ``munt``) in ``/betaal GE-012 30 munten soep``: the partner's unit."""
    unit, typed = fold(partner.unit), fold(word).strip(".,")
    return typed in {unit, unit.removesuffix("en"), unit.removesuffix("s")} and len(typed) > 1


def _refuse_their_unit(
    ctx: Context, partner: Partner, code: str, amount: int, rest: list[str]
) -> NoReturn:
    """An amount in the partner's unit: what it is here, and the payment to send."""
    typed = Fraction(amount, 10**ctx.settings.currency.decimals)  # as the member wrote it
    theirs = typed * 10**partner.decimals  # minor units there
    ours_rate = ctx.settings.currency.units_per_hour * 10**ctx.settings.currency.decimals
    theirs_rate = partner.units_per_hour * 10**partner.decimals
    needed = math.ceil(theirs * ours_rate / theirs_rate)  # here, for at least that there
    command = REGISTRY.find("pay")
    assert command is not None
    description = " ".join(rest[1:]) or ctx.t("partner.example_description")
    raise Refusal(
        "partner.their_unit",
        unit=partner.unit,
        group=partner.name,
        theirs=their_amount(math.floor(theirs), partner, ctx.language),
        ours=ctx.t.amount(needed),
        example=f"/{command.name_in(ctx.language)} {code} {ctx.t.amount(needed)} {description}",
    )


def _check_cap(t: Translator, partner: Partner, after: int, before: int) -> None:
    """The trade balance with a partner stays within its cap, either way."""
    if abs(after) > partner.cap and abs(after) > abs(before):
        # How far it may still move this way: up to +cap, or down to -cap.
        room = max(partner.cap - before if after > before else partner.cap + before, 0)
        raise Refusal("partner.cap", group=partner.name, room=t.amount(room))


@REGISTRY.on_answer(PendingAction.PARTNER_PAY)
def partner_pay_answered(ctx: Context, question: Pending, yes: bool) -> None:
    # Imported here: letsbot.partner_requests builds on this module.
    from letsbot.partner_requests import request_answered

    if not yes:
        ctx.reply(ctx.t("confirm.declined", question=Raw(question.text or "")))
        request_answered(ctx, question, paid=False)  # a partner group's request: declined
        return
    assert question.payer_id is not None and question.receiver_id is not None
    assert question.amount is not None and question.data is not None
    data = json.loads(question.data)
    partner = ctx.store.partners.partner(int(data["partner"]))
    if partner is None or partner.removed or partner.account_id != question.receiver_id:
        raise Refusal("partner.gone")
    if partner.paused:
        raise Refusal("partner.paused", group=partner.name)
    amount = question.amount
    maximum = ctx.settings.minor(ctx.settings.limits.max_transfer)
    if amount > maximum:  # a partner's request asked more than a /betaal here may be
        raise Refusal("amount.too_large", maximum=ctx.t.amount(maximum))
    to = f"{data['name'][:60]}, {data['to']}" if data.get("name") else data["to"]

    def still_allowed(payer: Member, account: Member) -> None:
        ensure_can_trade(ctx, payer)
        _check_cap(ctx.t, partner, account.balance + amount, account.balance)

    try:
        posted = post(
            ctx.store,
            payer_id=question.payer_id,
            receiver_id=partner.account_id,
            amount=amount,
            description=f"{question.description} ({to})",
            kind=TransferKind.PAYMENT,
            at=ctx.now,
            booked_by_id=ctx.member.id,
            event_key=ctx.incoming.event_key,
            limits=ctx.settings.group_limits,
            lock_also=[ctx.member.id],
            locked=ctx.locked,
            check=still_allowed,
        )
    except LimitRefused as refused:
        raise refuse_breach(ctx, refused.breach) from None
    give_up = ctx.settings.partners.give_up
    # A payment to a partner's bot is claimed for its sender in this process, if any.
    sender = None if partner.manual else _waiting.get(ctx.settings.group.code_prefix.upper())
    payment = ctx.store.partners.add_outgoing_payment(
        # The partner as read under its account's lock: 'partner add' changes it under that lock.
        state=PartnerState.WAITING if partner.manual else PartnerState.SENDING,
        payment_id=uuid.uuid4().hex,
        partner_id=partner.id,
        payer_id=question.payer_id,
        transfer_id=posted.transfer.id,
        receiver_code=data["to"],
        amount=amount,
        their_amount=int(data["theirs"]),
        description=question.description,
        created_at=ctx.now,
        expires_at=ctx.now + give_up,
        next_try_at=ctx.now + LEASE if sender else ctx.now,
        tries=1 if sender else 0,
        receiver_name=None,
        request_id=data.get("request"),
    )
    request_answered(ctx, question, paid=True)  # a partner group's request: paid
    if partner.manual:
        from letsbot.partner_manual import wait_for_coordinators

        wait_for_coordinators(ctx, partner, payment, posted.payer_after)
        return

    def send_now() -> list[Outgoing]:
        if sender is not None:
            sender(Claimed(payment, partner, posted.payer))
        return []

    ctx.after_commit(send_now)
    # The payer's balance is theirs alone: from a group chat it is told privately.
    say = ctx.reply_privately if ctx.incoming.chat.is_group else ctx.reply
    say(
        ctx.t(
            "partner.on_way",
            id=posted.transfer.id,
            amount=ctx.t.amount(amount),
            code=data["to"],
            group=partner.name,
            balance=ctx.t.amount(posted.payer_after),
        ),
        # Most payments arrive within the hold: then the payer reads only "Aangekomen".
        held_as=on_way_key(payment) if sender is not None else None,
    )


def on_way_key(payment: PartnerPayment) -> str:
    """What the payer's "on its way" is held as, and what its outcome overtakes."""
    return f"partner-on-way:{payment.payment_id}"


def _code_of(code: object, prefix: str) -> bool:
    """Whether ``code`` is a member code of the partner group with ``prefix``: its member
    pays or asks, never one of ours (the sender can't speak for this group's members)."""
    read = MemberCode.read(code) if isinstance(code, str) else None
    return read is not None and read.prefix.upper() == prefix.upper()


def shown_words(text: str) -> str:
    """What another group's bot sent, as members here may type it: no control
    characters, and one line (a line break could pass for a message of the bot's)."""
    return " ".join(strip_controls(text).split())


def digest(message: dict[str, Any]) -> str:
    """What a payment message asks, without when it was sent or its signature."""
    body = {k: v for k, v in message.items() if k not in ("sent_at", "signature")}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _moment(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


@dataclass(frozen=True, slots=True)
class Opened:
    """A partner's message that passed the checks every path makes (``open_message``)."""

    message: dict[str, Any]
    partner: Partner
    now: datetime


# (HTTP status, why, sender, the message's id) -> the refusal, logged once.
Refuse = Callable[[int, str, object, object], "Reply"]


@dataclass(frozen=True, slots=True)
class Reply:
    """The HTTP answer to a partner's request, and what to post in chats after it."""

    status: int
    body: bytes
    posts: list[Outgoing]


def _error(status: int, what: str) -> Reply:
    return Reply(status, json.dumps({"error": what}).encode(), [])


# (URL, body) -> (HTTP status, body); raises OSError (or any error) when there is no answer.
Send = Callable[[str, bytes], tuple[int, bytes]]


class NotRebooked(Exception):
    """Why a payment can't be booked again (PartnerDesk.rebook): said to the coordinator."""


class PartnerDesk(Job):
    """The bot's side of every partnership: what it sends, and what it receives."""

    def __init__(
        self,
        settings: Settings,
        uow: UnitOfWork,
        clock: Clock,
        translators: dict[str, Translator],
        outbox: Outbox,
        key: SigningKey,
    ) -> None:
        super().__init__(settings, uow, clock, translators, outbox)
        self.key = key
        self.prefix = settings.group.code_prefix.upper()

    # receiving

    def open_message(
        self,
        body: bytes,
        kind: str,
        id_key: str | None = None,
        refuse: Refuse | None = None,
        store: Store | None = None,
    ) -> Opened | Reply:
        """A partner's signed message of ``kind``, checked as every path checks it: JSON,
        from a partner group that has a bot, its signature, sent within
        ``partners.window``, this version, to this group. Else the refusal (``refuse``,
        by default ``_refused``), logged once; the path checks its own fields after.
        The partner is read in ``store``'s transaction if given, else in one of its own."""
        refuse = refuse or self._refused
        try:
            message = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: "[[[[..." thousands deep
            return refuse(400, "not JSON", None, None)
        if not isinstance(message, dict):
            return refuse(400, "not a JSON object", None, None)
        sender = message.get("from")
        its_id = message.get(id_key) if id_key else None
        partner = None
        if isinstance(sender, str):
            if store is not None:
                partner = store.partners.partner_by_prefix(sender)
            else:
                with self.uow.transaction() as reading:
                    partner = reading.partners.partner_by_prefix(sender)
        if partner is None or partner.removed or partner.manual:  # a group on eLAND sends none
            return refuse(403, "unknown group", sender, its_id)
        if not verify_object(message, partner.public_key):
            return refuse(403, "bad signature", sender, its_id)
        now = self.clock.now()
        sent_at = _moment(message.get("sent_at"))
        if sent_at is None or abs(now - sent_at) > self.settings.partners.window:
            return refuse(403, "sent outside the time window", sender, its_id)
        if (message.get("v"), message.get("kind"), message.get("to")) != (
            VERSION,
            kind,
            self.prefix,
        ):
            return refuse(400, f"not a {kind} this bot reads", sender, its_id)
        return Opened(message, partner, now)

    def receive(self, body: bytes) -> Reply:
        """A partner's payment: booked at most once, answered with a signed answer."""
        # One transaction from reading the partner to the answer: the payer waits for it.
        with self.uow.transaction() as store:
            return self._receive(store, body)

    def _receive(self, store: Store, body: bytes) -> Reply:
        opened = self.open_message(body, "payment", "payment_id", store=store)
        if isinstance(opened, Reply):
            return opened
        message, partner, now = opened.message, opened.partner, opened.now
        sender, payment_id = partner.prefix, message.get("payment_id")
        expires_at = _moment(message.get("expires_at"))
        amount = message.get("amount")
        fields_ok = (
            isinstance(payment_id, str)
            and 0 < len(payment_id) <= 40
            and expires_at is not None
            and isinstance(amount, int)
            and not isinstance(amount, bool)
            and amount > 0
            and all(
                isinstance(message.get(k), str) and 0 < len(message[k]) <= DESCRIPTION_LIMIT
                for k in ("receiver", "payer", "payer_name", "description")
            )
            and (
                message.get("request_id") is None
                or (isinstance(message["request_id"], str) and 0 < len(message["request_id"]) <= 40)
            )
            and all(
                isinstance(message.get(k), int) and not isinstance(message[k], bool)
                for k in ("payer_amount", "payer_units_per_hour", "payer_decimals")
            )
            and _code_of(message["payer"], partner.prefix)
        )
        if not fields_ok:
            return self._refused(400, "not a payment this bot reads", sender, payment_id)
        assert isinstance(payment_id, str) and isinstance(amount, int) and expires_at is not None
        asked = digest(message)
        # Words another group's members typed: shown here, so no control characters
        # (a right-to-left override ...) and one line, as for what members type here.
        for key in ("payer", "payer_name", "description"):
            message[key] = shown_words(message[key])
        return self._book(store, partner, message, asked, amount, expires_at, now)

    def _refused(self, status: int, why: str, sender: object, payment_id: object) -> Reply:
        # Logged once per message, never its content: it may be anyone's.
        log.warning(
            "partner message refused (%s): from=%r payment=%r",
            why,
            str(sender)[:16],
            str(payment_id)[:40],
        )
        return _error(status, why)

    def _book(
        self,
        store: Store,
        partner: Partner,
        message: dict[str, Any],
        asked: str,
        amount: int,
        expires_at: datetime,
        now: datetime,
    ) -> Reply:
        payment_id: str = message["payment_id"]
        posts: list[Outgoing] = []
        number = MemberCode.number_in(message["receiver"], self.prefix)
        receiver = store.members.member_by_number(number) if number is not None else None
        wanted = [partner.account_id] + ([receiver.id] if receiver is not None else [])
        # Every delivery of a payment takes the partner account's lock first: two at
        # once take turns, and the second finds the first's answer.
        locked = store.members.lock_members(sorted(set(wanted)))
        before = store.partners.incoming_answer(partner.id, payment_id)
        if before is not None:
            if before.digest != asked:
                return self._refused(409, "payment id replayed", partner.prefix, payment_id)
            return Reply(200, self._answer_for(store, partner, payment_id, before, now), [])
        partner = store.partners.partner(partner.id) or partner  # as it stands now
        reason = self._terms_differ(partner, message, amount) or self._reason(
            partner, receiver, locked, amount, expires_at, now
        )
        transfer_id: int | None = None
        name = None
        if reason is None and receiver is not None:
            try:
                posted = post(
                    store,
                    payer_id=partner.account_id,
                    receiver_id=receiver.id,
                    amount=amount,
                    description=self._description(message),
                    kind=TransferKind.PAYMENT,
                    at=now,
                    booked_by_id=None,
                    event_key=f"partner-in:{partner.prefix}:{payment_id}",
                    limits=self.settings.group_limits,
                    locked=locked,
                )
            except LimitRefused as refused:
                own = refused.breach.member.id == partner.account_id
                reason = "cap" if own else "limit"
            else:
                transfer_id, name = posted.transfer.id, posted.receiver.name
                posts += self._received(store, partner, message, posted)
        if reason and message.get("request_id"):
            posts += self._request_not_booked(store, partner, message["request_id"], reason)
        answer = IncomingAnswer(asked, "refused" if reason else "booked", reason, transfer_id)
        store.partners.add_incoming(
            partner_id=partner.id, payment_id=payment_id, answer=answer, at=now
        )
        body = self._answer_for(store, partner, payment_id, answer, now, name)
        if reason:
            log.info("partner payment %s from %s refused: %s", payment_id, partner.prefix, reason)
        return Reply(200, body, self.outbox.queue(store, posts))

    def _answer_for(
        self,
        store: Store,
        partner: Partner,
        payment_id: str,
        answer: IncomingAnswer,
        now: datetime,
        name: str | None = None,
    ) -> bytes:
        """The signed answer, signed afresh for a repeat; with the receiver's name as it
        is now (a forgotten member's is no longer theirs), unless just booked (``name``)."""
        if name is None and answer.transfer_id is not None:
            transfer = store.ledger.transfer(answer.transfer_id)
            receiver = store.members.member(transfer.receiver_id) if transfer else None
            if receiver is not None and not receiver.forgotten:
                name = receiver.name
        signed = sign_object(
            {
                "v": VERSION,
                "kind": "answer",
                "from": self.prefix,
                "to": partner.prefix,
                "payment_id": payment_id,
                "sent_at": _iso(now),
                "status": answer.status,
                "reason": answer.reason,
                "receiver_name": name,
            },
            self.key,
        )
        return json.dumps(signed, ensure_ascii=False).encode()

    def _request_not_booked(
        self, store: Store, partner: Partner, request_id: str, reason: str
    ) -> list[Outgoing]:
        """The payment answering a member's request here can't be booked: they are told
        (their request was answered Ja there, so it ends there as paid)."""
        request = store.partners.request("out", partner.id, request_id)
        requester = (
            store.members.member(request.member_id) if request and request.member_id else None
        )
        if request is None or requester is None or requester.forgotten:
            return []

        def compose(t: Translator) -> str:
            return t(
                "partner_request.not_booked_here",
                code=request.other_code,
                group=partner.name,
                amount=t.amount(request.amount),
                description=request.description,
                reason=Raw(t(f"partner_request.here.{reason}")),
            )

        return self._tell(store, requester, compose)

    @staticmethod
    def _description(message: dict[str, Any]) -> str:
        return f"{message['description']} ({message['payer_name']}, {message['payer']})"

    def _terms_differ(self, partner: Partner, message: dict[str, Any], amount: int) -> str | None:
        """ "terms" when the two bots don't count each other's currency alike (a wrong
        --units-per-hour or --decimals on either side): booked, it would be off."""
        said = (message["payer_units_per_hour"], message["payer_decimals"])
        ours = self.settings.currency.units_per_hour * 10**self.settings.currency.decimals
        theirs = partner.units_per_hour * 10**partner.decimals
        same = said == (partner.units_per_hour, partner.decimals)
        if same and amount == message["payer_amount"] * ours // theirs:
            return None
        log.warning(
            "partner %s: payment %s refused: the terms differ (it counts %s an hour with %s"
            " decimals and sent %s for %s; here it is known as %s an hour with %s decimals);"
            " check 'letsbot partner add' on both sides",
            partner.prefix,
            message["payment_id"],
            *said,
            amount,
            message["payer_amount"],
            partner.units_per_hour,
            partner.decimals,
        )
        return "terms"

    def _reason(
        self,
        partner: Partner,
        receiver: Member | None,
        locked: dict[int, Member],
        amount: int,
        expires_at: datetime,
        now: datetime,
    ) -> str | None:
        """Why this group refuses the payment; None: it may be booked."""
        if partner.paused:
            return "paused"
        if now > expires_at:
            return "expired"  # the sender may have booked it back already
        if amount > self.settings.minor(self.settings.limits.max_transfer):
            return "too_large"
        if receiver is None or receiver.is_group_account or receiver.id == partner.account_id:
            return "unknown"
        if not locked[receiver.id].can_trade:
            return "not_active"
        account = locked[partner.account_id]
        after = account.balance - amount
        if abs(after) > partner.cap and abs(after) > abs(account.balance):
            return "cap"
        return None

    def _received(
        self,
        store: Store,
        partner: Partner,
        message: dict[str, Any],
        posted: Posted,
    ) -> list[Outgoing]:
        transfer, receiver, balance = posted.transfer, posted.receiver, posted.receiver_after

        def compose(t: Translator) -> str:
            return t(
                "partner.received",
                id=transfer.id,
                amount=t.amount(transfer.amount),
                payer=f"{message['payer_name']} ({message['payer']})",
                group=partner.name,
                description=message["description"],
                balance=t.amount(balance),
                paid=their_amount(message["payer_amount"], partner, t.language),
            )

        return self._tell(store, receiver, compose)

    # settling by hand

    def rebook(self, payment_id: str) -> int:
        """A payment booked back here that its partner booked after all (the two servers'
        clocks were further apart than ``partners.window``), booked again here as it was
        first, so both groups' books agree; its payer is told. The new transfer's id.

        The caller has asked the partner's bot that it stands there."""
        now = self.clock.now()
        with self.uow.transaction() as store:
            payment = store.partners.outgoing_payment(payment_id)
            if payment is None:
                raise NotRebooked(f"no payment {payment_id} to a partner group here")
            partner = store.partners.partner(payment.partner_id)
            assert partner is not None
            locked = store.members.lock_members(sorted({payment.payer_id, partner.account_id}))
            payment = store.partners.outgoing_payment(payment_id) or payment  # under the lock
            if payment.state is not PartnerState.REVERSED:
                raise NotRebooked(f"payment {payment_id} is {payment.state.value}, not booked back")
            group = self.translators[self.settings.group.language]
            try:
                posted = post(
                    store,
                    payer_id=payment.payer_id,
                    receiver_id=partner.account_id,
                    amount=payment.amount,
                    description=group(
                        "partner.rebook_description",
                        description=payment.description,
                        code=payment.receiver_code,
                        group=partner.name,
                        id=payment.transfer_id,
                    ),
                    kind=TransferKind.PAYMENT,
                    at=now,
                    booked_by_id=None,
                    event_key=f"partner-again:{payment_id}",
                    limits=self.settings.group_limits,
                    locked=locked,
                )
            except LimitRefused:
                payer = locked[payment.payer_id]
                raise NotRebooked(
                    f"{payer.name}'s limits don't allow it (balance {payer.balance}, the payment"
                    f" {payment.amount}): change them first, or settle it otherwise with"
                    f" {partner.name}'s coordinators"
                ) from None
            store.partners.rebook_payment(payment.id, posted.transfer.id, at=now)

            def compose(t: Translator) -> str:
                return t(
                    "partner.rebooked",
                    amount=t.amount(payment.amount),
                    code=payment.receiver_code,
                    group=partner.name,
                    id=payment.transfer_id,
                    new=posted.transfer.id,
                    balance=t.amount(posted.payer_after),
                )

            self.outbox.queue(store, self._tell(store, posted.payer, compose))
        log.info("partner payment %s booked again as #%s", payment_id, posted.transfer.id)
        return posted.transfer.id

    # sending

    def message_for(self, payment: PartnerPayment, partner: Partner, payer: Member) -> bytes:
        """The signed payment message, timed now: each try is signed afresh."""
        message = sign_object(
            {
                "v": VERSION,
                "kind": "payment",
                "from": self.prefix,
                "to": partner.prefix,
                "payment_id": payment.payment_id,
                "sent_at": _iso(self.clock.now()),
                "expires_at": _iso(payment.expires_at),
                "payer": MemberCode.show(self.prefix, payer.number),
                "payer_name": payer.name,
                "receiver": payment.receiver_code,
                "amount": payment.their_amount,
                "description": payment.description,
                # What the payer paid, and how this group counts: the partner checks
                # that it converts alike (a wrong --units-per-hour books a wrong amount).
                "payer_amount": payment.amount,
                "payer_units_per_hour": self.settings.currency.units_per_hour,
                "payer_decimals": self.settings.currency.decimals,
                # On a payment request of the partner's member: told there if refused.
                **({"request_id": payment.request_id} if payment.request_id else {}),
            },
            self.key,
        )
        return json.dumps(message, ensure_ascii=False).encode()

    def due(self) -> list[tuple[PartnerPayment, Partner, bytes]]:
        """Payments whose next try is due, claimed: each with its partner and message."""
        now = self.clock.now()
        found: list[tuple[PartnerPayment, Partner, bytes]] = []
        with self.uow.transaction() as store:
            for payment in store.partners.claim_due_payments(
                now=now, lease_until=now + LEASE, limit=BATCH
            ):
                partner = store.partners.partner(payment.partner_id)
                payer = store.members.member(payment.payer_id)
                assert partner is not None and payer is not None
                found.append((payment, partner, self.message_for(payment, partner, payer)))
        return found

    def send_due(self, send: Send) -> list[Outgoing]:
        """One round: every due payment sent once, and what its answer means done."""
        return self._send(self.due(), send)

    def send_claimed(self, claimed: list[Claimed], send: Send) -> list[Outgoing]:
        """Payments booked just now (``when_payment_waits``), each sent once."""
        return self._send(
            [
                (c.payment, c.partner, self.message_for(c.payment, c.partner, c.payer))
                for c in claimed
            ],
            send,
        )

    def _send(self, due: list[tuple[PartnerPayment, Partner, bytes]], send: Send) -> list[Outgoing]:
        posts: list[Outgoing] = []
        for payment, partner, message in due:
            try:
                status, body = send(partner.url.rstrip("/") + PATH, message)
            except Exception as error:  # the partner is down or unreachable: try later
                log.info(
                    "partner %s unreachable for %s: %s",
                    partner.prefix,
                    payment.payment_id,
                    type(error).__name__,
                )
                status, body = 0, b""
            try:
                posts += self.answered(payment, partner, status, body)
            except Busy:
                log.warning("database busy; partner payment %s waits", payment.payment_id)
        return posts

    def answered(
        self, payment: PartnerPayment, partner: Partner, status: int, body: bytes
    ) -> list[Outgoing]:
        """Settle ``payment`` on a signed answer; else try again later, or give up."""
        answer = self._answer(payment, partner, status, body)
        now = self.clock.now()
        if answer is None:
            if now > payment.expires_at + self.settings.partners.window:
                return self._reverse(payment, partner, "no_answer")
            pause = min(FIRST_PAUSE * 2 ** max(payment.tries - 1, 0), LONGEST_PAUSE)
            with self.uow.transaction() as store:
                store.partners.retry_payment_at(payment.id, now + pause)
            return []
        if answer["status"] == "booked":
            return self._booked(payment, partner, str(answer.get("receiver_name") or ""))
        reason = answer.get("reason")
        return self._reverse(payment, partner, reason if reason in REASONS else "unknown")

    def _answer(
        self, payment: PartnerPayment, partner: Partner, status: int, body: bytes
    ) -> dict[str, Any] | None:
        """The partner's signed answer about ``payment``; None for anything else."""
        if status != 200:
            if status:
                log.warning(
                    "partner %s answered %s for payment %s",
                    partner.prefix,
                    status,
                    payment.payment_id,
                )
            return None
        try:
            answer = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: "[[[[..." thousands deep
            answer = None
        valid = (
            isinstance(answer, dict)
            and verify_object(answer, partner.public_key)
            and answer.get("kind") == "answer"
            and answer.get("from") == partner.prefix
            and answer.get("to") == self.prefix
            and answer.get("payment_id") == payment.payment_id
            and answer.get("status") in ("booked", "refused")
        )
        if not valid:
            log.warning("partner %s: an answer that isn't its signed answer", partner.prefix)
            return None
        assert isinstance(answer, dict)
        return answer

    def _booked(self, payment: PartnerPayment, partner: Partner, name: str) -> list[Outgoing]:
        now = self.clock.now()
        with self.uow.transaction() as store:
            if not store.partners.settle_payment(
                payment.id, PartnerState.BOOKED, at=now, receiver_name=name[:200] or None
            ):
                now_is = store.partners.outgoing_payment(payment.payment_id)
                if now_is is not None and now_is.state is PartnerState.REVERSED:
                    # Booked there after all, booked back here (clocks further apart than
                    # partners.window): the coordinators of both groups settle it by hand.
                    log.error(
                        "partner %s booked payment %s, which was booked back here",
                        partner.prefix,
                        payment.payment_id,
                    )
                return []
            payer = store.members.member(payment.payer_id)
            assert payer is not None

            def compose(t: Translator) -> str:
                return t(
                    "partner.booked",
                    amount=t.amount(payment.amount),
                    who=f"{name} ({payment.receiver_code})" if name else payment.receiver_code,
                    group=partner.name,
                    theirs=their_amount(payment.their_amount, partner, t.language),
                    id=payment.transfer_id,
                    balance=t.amount(payer.balance),
                )

            told = self._tell(store, payer, compose, overtakes=on_way_key(payment))
            return self.outbox.queue(store, told)

    def _reverse(self, payment: PartnerPayment, partner: Partner, reason: str) -> list[Outgoing]:
        """Book the first booking back, once, and tell the payer why."""
        now = self.clock.now()
        with self.uow.transaction() as store:
            locked = store.members.lock_members(sorted({payment.payer_id, partner.account_id}))
            if not store.partners.settle_payment(
                payment.id, PartnerState.REVERSED, at=now, reason=reason
            ):
                return []
            payer = locked[payment.payer_id]
            t_payer = self.translators[payer.language or self.settings.group.language]
            back = post(
                store,
                payer_id=partner.account_id,
                receiver_id=payment.payer_id,
                amount=payment.amount,
                description=t_payer(
                    "partner.reversal_description",
                    id=payment.transfer_id,
                    reason=Raw(t_payer(f"partner.reason.{reason}")),
                ),
                kind=TransferKind.REVERSAL,
                at=now,
                booked_by_id=None,
                event_key=f"partner-back:{payment.payment_id}",
                reverses_id=payment.transfer_id,
                locked=locked,
            )

            def compose(t: Translator) -> str:
                return t(
                    "partner.reversed",
                    amount=t.amount(payment.amount),
                    code=payment.receiver_code,
                    group=partner.name,
                    reason=Raw(t(f"partner.reason.{reason}")),
                    id=back.transfer.id,
                    balance=t.amount(back.receiver_after),
                )

            log.info("partner payment %s booked back: %s", payment.payment_id, reason)
            told = self._tell(store, payer, compose, overtakes=on_way_key(payment))
            return self.outbox.queue(store, told)

    def _tell(
        self, store: Store, member: Member, compose: Compose, overtakes: str | None = None
    ) -> list[Outgoing]:
        found = store.members.identities(member.id)
        if not found:
            return []
        t = self.translators[member.language or self.settings.group.language]
        return [Outgoing(ToPerson(found[0]), compose(t), language=t.language, overtakes=overtakes)]
