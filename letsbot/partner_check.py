"""``letsbot partner check``: the bots of two partner groups compare their books.

This bot sends a signed summary request to ``SUMMARY_PATH`` on the partner's
bot: the usual envelope (both prefixes, the time it was sent, checked against
``partners.window``), a random nonce, and the ids of its payments to the
partner still on their way or lately booked back (``ask``). The partner
answers, signed, with its side (``TradeSide``): its trade balance with this
group in its unit, the count and sum of the payments each way that stand
there, the ids of its own payments still on their way and lately booked
back, and which of the asked ids it booked. Asking changes nothing there.

This bot reads its own side before and after asking and asks again when a
payment moved meanwhile, so the two sides are of one moment. Then, per
partner, one line: OK, or FAIL with what to do, when

- the partner counts another number of units an hour than this group's
  partnership says (every conversion would be off);
- a payment is still on its way past its expiry, on either side;
- a payment was booked on one side and booked back on the other;
- the payments that stand differ in count or sum (in the receiver's unit):
  one is missing or doubled on one side;
- the trade balances, the payments still on their way left out, don't mirror
  each other within the rounding: every payment rounds down, by less than one
  minor unit of the receiving group, so with our balance B (our minor units,
  ``r`` = units per hour × 10^decimals, ours and theirs) and theirs b,
  0 <= B × r_theirs + b × r_ours < (payments to them) × r_ours + (payments
  from them) × r_theirs.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from letsbot.clock import Clock
from letsbot.config import Settings
from letsbot.doctor import Check
from letsbot.domain import Partner, TradeSide
from letsbot.partners import VERSION, PartnerDesk, Reply, Send, _iso
from letsbot.ports import Partners, UnitOfWork
from letsbot.signing import SigningKey, sign_object, verify_object

log = logging.getLogger(__name__)

SUMMARY_PATH = "/letsbot/partner/v1/summary"
LIMIT = 200  # ids of each kind in one message: it stays far below the endpoint's 64 KiB
TRIES = 3  # asked again when a payment moved while asking
ID_LENGTH = 40


def _wire(side: TradeSide) -> dict[str, Any]:
    return {
        "balance": side.balance,
        "sent": [side.sent_count, side.sent_amount, side.sent_their_amount],
        "sending": {k: list(v) for k, v in side.sending.items()},
        "sending_total": [side.sending_count, side.sending_amount],
        "late": side.late,
        "received": [side.received_count, side.received_amount],
        "reversed": {k: list(v) for k, v in side.reversed.items()},
    }


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _counts(value: object, size: int) -> list[int] | None:
    if isinstance(value, list) and len(value) == size and all(_whole(v) for v in value):
        return list(value)
    return None


def _payments(value: object) -> dict[str, tuple[int, int]] | None:
    if not isinstance(value, dict) or len(value) > LIMIT:
        return None
    found: dict[str, tuple[int, int]] = {}
    for key, amounts in value.items():
        pair = _counts(amounts, 2)
        if not isinstance(key, str) or len(key) > ID_LENGTH or pair is None:
            return None
        found[key] = (pair[0], pair[1])
    return found


def _side(message: dict[str, Any]) -> TradeSide | None:
    """A partner's side as its answer carries it; None when it doesn't."""
    sent = _counts(message.get("sent"), 3)
    total = _counts(message.get("sending_total"), 2)
    received = _counts(message.get("received"), 2)
    sending = _payments(message.get("sending"))
    reversed_ = _payments(message.get("reversed"))
    balance, late = message.get("balance"), message.get("late")
    if (
        sent is None
        or total is None
        or received is None
        or sending is None
        or reversed_ is None
        or not _whole(balance)
        or not _whole(late)
    ):
        return None
    assert isinstance(balance, int) and isinstance(late, int)
    return TradeSide(
        balance=balance,
        sent_count=sent[0],
        sent_amount=sent[1],
        sent_their_amount=sent[2],
        sending=sending,
        sending_count=total[0],
        sending_amount=total[1],
        late=late,
        received_count=received[0],
        received_amount=received[1],
        reversed=reversed_,
    )


def _ids(value: object, most: int) -> list[str] | None:
    if not isinstance(value, list) or len(value) > most:
        return None
    if not all(isinstance(v, str) and 0 < len(v) <= ID_LENGTH for v in value):
        return None
    return list(value)


# answering


def answer_summary(desk: PartnerDesk, body: bytes) -> Reply:
    """A partner's summary request: its side of the books, signed; nothing changes."""
    opened = desk.open_message(
        body, "summary", refuse=lambda status, why, sender, _: _refused(status, why, sender)
    )
    if isinstance(opened, Reply):
        return opened
    message, partner, now = opened.message, opened.partner, opened.now
    sender = partner.prefix
    nonce = message.get("nonce")
    ask = _ids(message.get("ask"), 2 * LIMIT)
    if not (isinstance(nonce, str) and 16 <= len(nonce) <= 64) or ask is None:
        return _refused(400, "not a summary request this bot reads", sender)
    window = desk.settings.partners.window
    with desk.uow.transaction() as store:
        side = store.partners.trade_side(partner, late_before=now - window, limit=LIMIT)
        booked = sorted(store.partners.booked_from(partner.id, ask))
    currency = desk.settings.currency
    answer = sign_object(
        {
            "v": VERSION,
            "kind": "summary",
            "from": desk.prefix,
            "to": partner.prefix,
            "sent_at": _iso(now),
            "nonce": nonce,
            "units_per_hour": currency.units_per_hour,
            "decimals": currency.decimals,
            "booked": booked,
            **_wire(side),
        },
        desk.key,
    )
    return Reply(200, json.dumps(answer, ensure_ascii=False).encode(), [])


def _refused(status: int, why: str, sender: object) -> Reply:
    log.warning("partner summary request refused (%s): from=%r", why, str(sender)[:16])
    return Reply(status, json.dumps({"error": why}).encode(), [])


# asking and comparing


@dataclass(frozen=True, slots=True)
class Theirs:
    """The partner's signed answer, read."""

    side: TradeSide
    booked: frozenset[str]  # of the ids asked, those booked there that stand
    units_per_hour: int
    decimals: int


class Unanswered(Exception):
    """No signed summary from the partner: ``detail`` and ``remedy`` say why."""

    def __init__(self, detail: str, remedy: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.remedy = remedy


NOT_RUNNING = (
    "check with its coordinators that its bot runs a letsbot that answers"
    " 'partner check', and that --url is right ('letsbot partner list')"
)


class PartnerCheck:
    """Compares this group's books with each partner's, over the partner endpoint."""

    def __init__(
        self, settings: Settings, uow: UnitOfWork, clock: Clock, key: SigningKey, send: Send
    ) -> None:
        self.settings = settings
        self.uow = uow
        self.clock = clock
        self.key = key
        self.send = send
        self.prefix = settings.group.code_prefix.upper()

    def partners(self) -> list[Partner]:
        with self.uow.transaction() as store:
            # A group on eLAND has no bot to compare with: its coordinators settle by hand.
            return [p for p in store.partners.partners() if not p.removed and not p.manual]

    def check(self, partner: Partner) -> Check:
        name = f"trade with {partner.prefix}"
        try:
            for _ in range(TRIES):
                ours = self._ours(partner)
                theirs = self._ask(partner, [*ours.sending, *ours.reversed])
                again, booked_here = self._ours_and(partner, theirs.side)
                if again == ours:
                    break
            else:
                return Check.failed(
                    name, "payments kept moving while comparing", "check again in a minute"
                )
        except Unanswered as no:
            return Check.failed(name, no.detail, no.remedy)
        return compare(self.settings, partner, ours, theirs, booked_here, name)

    def _ours(self, partner: Partner) -> TradeSide:
        with self.uow.transaction() as store:
            return self._side(store.partners, partner)

    def _ours_and(self, partner: Partner, theirs: TradeSide) -> tuple[TradeSide, dict[str, int]]:
        """Our side again, and which of their payments on their way or booked back
        stand here (with the amount booked)."""
        with self.uow.transaction() as store:
            asked = [*theirs.sending, *theirs.reversed]
            return self._side(store.partners, partner), store.partners.booked_from(
                partner.id, asked
            )

    def _side(self, partners: Partners, partner: Partner) -> TradeSide:
        late_before = self.clock.now() - self.settings.partners.window
        return partners.trade_side(partner, late_before=late_before, limit=LIMIT)

    def booked_there(self, partner: Partner, payment_id: str) -> bool:
        """Whether the partner's bot says payment ``payment_id`` is booked there and
        stands; raises Unanswered when it doesn't say."""
        return payment_id in self._ask(partner, [payment_id]).booked

    def _ask(self, partner: Partner, ask: list[str]) -> Theirs:
        """The partner's signed summary, with which of the payment ids ``ask`` stand there."""
        nonce = secrets.token_hex(16)
        request = sign_object(
            {
                "v": VERSION,
                "kind": "summary",
                "from": self.prefix,
                "to": partner.prefix,
                "sent_at": _iso(self.clock.now()),
                "nonce": nonce,
                "ask": ask,
            },
            self.key,
        )
        url = partner.url.rstrip("/") + SUMMARY_PATH
        try:
            status, body = self.send(url, json.dumps(request).encode())
        except Exception as error:  # down, unreachable, too slow
            raise Unanswered(
                f"{partner.name}'s bot at {partner.url} didn't answer ({_why(error)})",
                NOT_RUNNING,
            ) from None
        if status != 200:
            said = _said(body)
            raise Unanswered(
                f"{partner.name}'s bot answered HTTP {status}{said}",
                "set the clocks of both servers right (NTP)"
                if "time window" in said
                else "give its coordinators this group's key ('letsbot partner key') and address"
                if status == 403
                else NOT_RUNNING,
            )
        try:
            answer = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: "[[[[..." thousands deep
            answer = None
        side = _side(answer) if isinstance(answer, dict) else None
        booked = _ids(answer.get("booked"), 2 * LIMIT) if isinstance(answer, dict) else None
        valid = (
            isinstance(answer, dict)
            and verify_object(answer, partner.public_key)
            and answer.get("kind") == "summary"
            and answer.get("from") == partner.prefix
            and answer.get("to") == self.prefix
            and answer.get("nonce") == nonce
            and _whole(answer.get("units_per_hour"))
            and _whole(answer.get("decimals"))
            and side is not None
            and booked is not None
        )
        if not valid:
            raise Unanswered(
                f"{partner.name}'s bot gave an answer that isn't its signed summary",
                f"check its key with its coordinators, then 'letsbot partner add {partner.prefix}'"
                " with the key they give",
            )
        assert isinstance(answer, dict) and side is not None and booked is not None
        return Theirs(side, frozenset(booked), answer["units_per_hour"], answer["decimals"])


def _why(error: Exception) -> str:
    reason = getattr(error, "reason", None)  # urllib wraps the socket's error
    return type(reason if isinstance(reason, Exception) else error).__name__


def _said(body: bytes) -> str:
    try:
        said = json.loads(body).get("error")
    except (ValueError, RecursionError, AttributeError):
        return ""
    return f": {said[:80]}" if isinstance(said, str) else ""


def compare(
    settings: Settings,
    partner: Partner,
    ours: TradeSide,
    theirs: Theirs,
    booked_here: dict[str, int],
    name: str,
) -> Check:
    """One line: OK when both sides' books agree, else what differs and what to do."""
    group = partner.name
    if (theirs.units_per_hour, theirs.decimals) != (partner.units_per_hour, partner.decimals):
        return Check.failed(
            name,
            f"{group} counts {theirs.units_per_hour} {partner.unit} an hour with"
            f" {theirs.decimals} decimals; here the partnership says {partner.units_per_hour}"
            f" with {partner.decimals}",
            f"'letsbot partner add {partner.prefix}' with --units-per-hour"
            f" {theirs.units_per_hour} --decimals {theirs.decimals} (the other terms as they are)",
        )
    side = theirs.side
    if len(ours.sending) < ours.sending_count or len(side.sending) < side.sending_count:
        return Check.failed(
            name,
            f"more than {LIMIT} payments on their way between the groups",
            "check again once they arrived",
        )
    if ours.late:
        return Check.failed(
            name,
            f"{ours.late} payment(s) to {group} past their expiry, not booked back",
            "keep 'letsbot run' running: it books them back within a minute",
        )
    if side.late:
        return Check.failed(
            name,
            f"{side.late} payment(s) from {group} past their expiry, not booked back there",
            f"ask {group}'s coordinators to keep their bot running",
        )
    there_not_here = sorted(theirs.booked & set(ours.reversed))
    if there_not_here:
        return Check.failed(
            name,
            f"payment(s) {', '.join(there_not_here)} booked at {group} but booked back here",
            "the payer here has it back, and the receiver there has it too: book it again"
            f" here with 'letsbot partner rebook {there_not_here[0]}' (the payer is told),"
            f" or settle it otherwise with {group}'s coordinators",
        )
    here_not_there = sorted(set(booked_here) & set(side.reversed))
    if here_not_there:
        return Check.failed(
            name,
            f"payment(s) {', '.join(here_not_there)} from {group} booked here but booked back"
            " there",
            "the payer there has it back, and the receiver here has it too: ask"
            f" {group}'s coordinators to book it again there with 'letsbot partner rebook"
            f" {here_not_there[0]}'",
        )
    arrived = theirs.booked & set(ours.sending)
    out_count = ours.sent_count + len(arrived)
    out_theirs = ours.sent_their_amount + sum(ours.sending[i][1] for i in arrived)
    if (out_count, out_theirs) != (side.received_count, side.received_amount):
        return Check.failed(
            name,
            f"payments to {group}: {out_count} for {theirs_shown(out_theirs, partner)} booked here,"
            f" {side.received_count} for {theirs_shown(side.received_amount, partner)} there",
            "one is missing or doubled on one side: compare"
            " 'letsbot export partner-payments' of both groups",
        )
    came = set(booked_here) & set(side.sending)
    in_count = side.sent_count + len(came)
    in_ours = side.sent_their_amount + sum(booked_here[i] for i in came)
    if (in_count, in_ours) != (ours.received_count, ours.received_amount):
        return Check.failed(
            name,
            f"payments from {group}: {in_count} for {ours_shown(in_ours, settings)} booked there,"
            f" {ours.received_count} for {ours_shown(ours.received_amount, settings)} here",
            "one is missing or doubled on one side: compare"
            " 'letsbot export partner-payments' of both groups",
        )
    # The balances without the payments that are on one side only: on their way.
    here = ours.balance - sum(a for i, (a, _) in ours.sending.items() if i not in arrived)
    there = side.balance - sum(a for i, (a, _) in side.sending.items() if i not in came)
    r_ours = settings.currency.units_per_hour * 10**settings.currency.decimals
    r_theirs = partner.units_per_hour * 10**partner.decimals
    apart = here * r_theirs + there * r_ours
    rounding = out_count * r_ours + in_count * r_theirs
    here_now, there_now = ours_shown(ours.balance, settings), theirs_shown(side.balance, partner)
    balances = f"{here_now} here, {there_now} at {group}"
    if not (apart == 0 or 0 <= apart < rounding):
        return Check.failed(
            name,
            f"the trade balances don't mirror each other ({balances})",
            "a booking on one group's account of the other that is no payment between them:"
            f" compare the transfers of both accounts ('letsbot export transfers') with"
            f" {group}'s coordinators",
        )
    on_way = len(ours.sending) + len(side.sending) - len(arrived) - len(came)
    return Check.passed(
        name,
        f"the trade balances mirror each other ({balances}); {out_count} payment(s) to"
        f" {group} and {in_count} from it agree, {on_way} on their way, none half-done",
    )


def theirs_shown(amount: int, partner: Partner) -> str:
    return _shown(amount, partner.decimals, partner.unit)


def ours_shown(amount: int, settings: Settings) -> str:
    return _shown(amount, settings.currency.decimals, settings.currency.plural)


def _shown(amount: int, decimals: int, unit: str) -> str:
    """``-20.50 munten``: minor units as a number of the unit, for the command line."""
    whole, part = divmod(abs(amount), 10**decimals)
    number = f"{whole}.{part:0{decimals}d}" if decimals else str(whole)
    return f"{'-' if amount < 0 else ''}{number} {unit}"
