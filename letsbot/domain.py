"""The LETS ledger's values and rules. Pure: no storage, no chat platform."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime


class Status(enum.StrEnum):
    CANDIDATE = "candidate"
    ACTIVE = "active"
    LEAVING = "leaving"
    INACTIVE = "inactive"
    # An account of another group (eLAS status 7, interlets): it carries that group's
    # trade here. No vote, no login, no place in member counts or lists; its limits
    # are checked as any account's (its own, else the group's), as eLAND does.
    EXTERNAL = "external"


# What members call the group account besides its name: these name it in commands
# (``/betaal kas 12 bijdrage``), and no member may take one as their name.
GROUP_ACCOUNT_WORDS = frozenset(
    {"kas", "groepskas", "groep", "groepsrekening", "group", "groupaccount", "kitty"}
)


class Role(enum.StrEnum):
    MEMBER = "member"
    COORDINATOR = "coordinator"


class TransferKind(enum.StrEnum):
    PAYMENT = "payment"  # booked by the payer (/pay)
    REQUEST = "request"  # asked by the receiver, confirmed by the payer
    BOOKING = "booking"  # booked by a coordinator on behalf of the payer
    START_CREDIT = "start_credit"
    REVERSAL = "reversal"
    OPENING = "opening"  # a balance brought in from another system, against the group account
    REST = "rest"  # what is left on an account that closes, given to the group account
    # The group's own economy: a mass payment (/massa) between one account and many.
    # Not trade: /stats and the report leave it out.
    GROUP = "group"


class PendingAction(enum.StrEnum):
    PAY = "pay"
    REQUEST = "request"
    BOOK = "book"
    REVERSE = "reverse"
    LEAVE = "leave"
    FORGET = "forget"  # erase a member's personal data (letsbot.privacy)
    EVENT = "event"  # a coordinator confirms a parsed event before it is saved
    REJECT = "reject"  # a coordinator confirms turning a candidate down
    EVENT_CHANGE = "event_change"  # a coordinator confirms cancelling or moving an event
    BULK = "bulk"  # a coordinator confirms a mass payment after its preview (letsbot.bulk)
    PARTNER_PAY = "partner_pay"  # a payment to a member of a partner group (letsbot.partners)
    CONTRIBUTION_END = "contribution_end"  # a coordinator confirms ending a contribution


class PendingStatus(enum.StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"  # replaced by a correction, or by the same question sent again


@dataclass(frozen=True, slots=True)
class Identity:
    """A person on one platform: ``platform:user_id`` (``telegram:123``)."""

    platform: str
    user_id: str

    @classmethod
    def parse(cls, text: str) -> Identity:
        platform, sep, user_id = text.partition(":")
        if not sep or not platform or not user_id:
            raise ValueError(f"expected platform:id, got {text!r}")
        return cls(platform, user_id)

    def __str__(self) -> str:
        return f"{self.platform}:{self.user_id}"


# The prefix, then the number: ``DU-007``, ``du7``, ``7``; in a file also ``DU - 0007``.
_CODE = re.compile(
    r"(?:(?P<prefix>[A-Za-z]{1,8})(?P<gap>\s*-?\s*))?(?P<zeros>0*)(?P<number>[0-9]{1,6})",
    re.ASCII,
)
CODE_DIGITS = 6


@dataclass(frozen=True, slots=True)
class MemberCode:
    """A member's code: the group's prefix and the member's number, shown ``DU-007``.

    The group account is number 0 (``DU-000``).
    """

    prefix: str  # as written; "" when only the number was
    number: int

    GROUP_ACCOUNT = 0

    @classmethod
    def read(cls, text: str, *, padded: bool = False) -> MemberCode | None:
        """The code ``text`` spells, whatever its prefix; None if it spells none.

        Typed in a chat: a hyphen or nothing between prefix and number, at most
        six digits. ``padded`` (a file from another system): also spaces around the
        hyphen, and any number of leading zeros.
        """
        match = _CODE.fullmatch(text.strip())
        if match is None:
            return None
        if not padded and (
            match["gap"] not in (None, "", "-")
            or len(match["zeros"]) + len(match["number"]) > CODE_DIGITS
        ):
            return None
        return cls(match["prefix"] or "", int(match["number"]))

    @classmethod
    def number_in(cls, text: str, prefix: str, *, padded: bool = False) -> int | None:
        """The member number ``text`` names in a group whose codes start with ``prefix``."""
        code = cls.read(text, padded=padded)
        if code is None or (code.prefix and code.prefix.upper() != prefix.upper()):
            return None
        return code.number

    @classmethod
    def show(cls, prefix: str, number: int) -> str:
        """``DU-007``: the prefix in capitals, the number in at least three digits."""
        return str(cls(prefix, number))

    @property
    def is_group_account(self) -> bool:
        return self.number == self.GROUP_ACCOUNT

    def __str__(self) -> str:
        return f"{self.prefix.upper()}-{self.number:03d}"


@dataclass(frozen=True, slots=True)
class Member:
    id: int
    number: int
    name: str
    language: str | None
    status: Status
    role: Role
    balance: int
    min_balance: int | None  # per-member override, minor units
    max_balance: int | None
    is_group_account: bool = False
    forgotten: bool = False  # erased on request: only the code and the transfers remain
    old_code: str | None = None  # the code in the system the group moved from (``ILGENT``)

    @property
    def is_coordinator(self) -> bool:
        return self.role is Role.COORDINATOR and self.status is Status.ACTIVE

    @property
    def can_trade(self) -> bool:
        return self.is_group_account or self.status in (Status.ACTIVE, Status.LEAVING)


@dataclass(frozen=True, slots=True)
class Footprint:
    """How much the bot keeps about one member, for /privacy: counts, never contents."""

    transfers: int
    listings: int  # offers and wants, also withdrawn or expired ones
    rsvps: int
    votes: int
    proposals: int  # proposals they made
    blocks: int  # members they block
    messages: int  # private messages they sent through the bot (who and when only)
    questions: int  # Ja/Nee questions still open for them
    notify: bool


@dataclass(frozen=True, slots=True)
class Transfer:
    id: int
    payer_id: int
    receiver_id: int
    amount: int
    description: str
    kind: TransferKind
    created_at: datetime
    booked_by_id: int | None
    reverses_id: int | None


@dataclass(frozen=True, slots=True)
class Pending:
    """A question that waits for Ja/Nee from one member."""

    id: int
    action: PendingAction
    asked_id: int
    requested_by_id: int
    payer_id: int | None
    receiver_id: int | None
    amount: int | None
    transfer_id: int | None  # the transfer a REVERSE question is about
    description: str
    created_at: datetime
    expires_at: datetime
    status: PendingStatus
    data: str | None = None  # JSON details of questions that aren't transfers
    # Where it was asked: a group chat (platform and chat id), or the asked
    # person's direct chat on ``platform`` (chat_id None). Only an answer from
    # there counts.
    platform: str | None = None
    chat_id: str | None = None
    text: str | None = None  # the question as the asked person saw it, to show it again


@dataclass(frozen=True, slots=True)
class GroupLimits:
    """Group-wide limits in minor units."""

    min_balance: int
    max_balance: int
    soft: bool

    def min_for(self, member: Member) -> int:
        return self.min_balance if member.min_balance is None else member.min_balance

    def max_for(self, member: Member) -> int:
        return self.max_balance if member.max_balance is None else member.max_balance


class BreachKind(enum.StrEnum):
    PAYER_MIN = "payer_min"
    RECEIVER_MAX = "receiver_max"
    PAYER_LEAVING = "payer_leaving"  # a leaving member may only move toward zero
    RECEIVER_LEAVING = "receiver_leaving"


@dataclass(frozen=True, slots=True)
class Breach:
    kind: BreachKind
    member: Member
    limit: int
    room: int  # how much could still move without breaking the rule (>= 0)

    @property
    def always_hard(self) -> bool:
        return self.kind in (BreachKind.PAYER_LEAVING, BreachKind.RECEIVER_LEAVING)


def transfer_breaches(
    payer: Member, receiver: Member, amount: int, limits: GroupLimits
) -> list[Breach]:
    """Every rule a transfer of ``amount`` from payer to receiver would break.

    The group account is exempt from limits. A leaving member may only move
    toward zero, never past it.
    """
    breaches: list[Breach] = []
    if not payer.is_group_account:
        after = payer.balance - amount
        if payer.status is Status.LEAVING:
            if after < 0:
                breaches.append(Breach(BreachKind.PAYER_LEAVING, payer, 0, max(payer.balance, 0)))
        else:
            low = limits.min_for(payer)
            if after < low:
                breaches.append(
                    Breach(BreachKind.PAYER_MIN, payer, low, max(payer.balance - low, 0))
                )
    if not receiver.is_group_account:
        after = receiver.balance + amount
        if receiver.status is Status.LEAVING:
            if after > 0:
                breaches.append(
                    Breach(BreachKind.RECEIVER_LEAVING, receiver, 0, max(-receiver.balance, 0))
                )
        else:
            high = limits.max_for(receiver)
            if after > high:
                breaches.append(
                    Breach(BreachKind.RECEIVER_MAX, receiver, high, max(high - receiver.balance, 0))
                )
    return breaches


def blocking(breaches: list[Breach], limits: GroupLimits) -> list[Breach]:
    """The breaches that refuse a transfer: all of them, unless limits are soft."""
    return [b for b in breaches if b.always_hard or not limits.soft]


class EventKind(enum.StrEnum):
    MARKET = "market"
    REPAIRCAFE = "repaircafe"
    MEETING = "meeting"
    OTHER = "other"


class EventStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    series_id: int | None
    kind: EventKind
    title: str
    place: str | None
    starts_at: datetime
    ends_at: datetime | None
    status: EventStatus
    cancel_reason: str | None
    created_by_id: int


class ListingKind(enum.StrEnum):
    OFFER = "offer"
    WANT = "want"


@dataclass(frozen=True, slots=True)
class Listing:
    """An offer or a want. Never deleted: withdrawn, or past ``expires_at``, it is not shown."""

    id: int
    kind: ListingKind
    owner_id: int
    text: str  # as typed, with its #tags
    price: str | None  # a free hint: "60 pluimen per uur"
    created_at: datetime
    expires_at: datetime
    notice_at: datetime | None  # when the owner is told it is about to expire
    withdrawn_at: datetime | None

    def is_live(self, now: datetime) -> bool:
        return self.withdrawn_at is None and now < self.expires_at


class CodePurpose(enum.StrEnum):
    LINK = "link"  # a member joins another chat identity to their account (/link)
    CLAIM = "claim"  # an imported member takes their account into a chat (/claim)


@dataclass(frozen=True, slots=True)
class AccessCode:
    """A one-time code, known to us only by its hash."""

    id: int
    purpose: CodePurpose
    member_id: int
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None


class Every(enum.StrEnum):
    """How often a contribution is booked."""

    YEAR = "year"
    MONTH = "month"


class ContributionStatus(enum.StrEnum):
    PROPOSED = "proposed"  # carried by an open proposal: becomes active if it is accepted
    ACTIVE = "active"
    PAUSED = "paused"
    ENDED = "ended"
    REJECTED = "rejected"  # its proposal was not accepted: never booked


@dataclass(frozen=True, slots=True)
class Contribution:
    """A recurring payment of every active member to the group account (letsbot.contributions).

    The amount per member is a mass payment's rule (``fixed`` plus ``per_mille``
    of ``base``, see letsbot.bulk.Rule). Booked every year on ``day``/``month``,
    or every month on ``day`` (``month`` 0); periods due before ``active_since``
    are never booked.
    """

    id: int
    fixed: int
    per_mille: int
    base: str  # none | balance | turnover
    days: int
    every: Every
    month: int
    day: int
    description: str
    status: ContributionStatus
    proposal_id: int | None
    created_by_id: int
    created_at: datetime
    active_since: datetime | None


# Trade between groups (letsbot.partners)


@dataclass(frozen=True, slots=True)
class Partner:
    """Another group whose bot this one trades with, and this group's account of it."""

    id: int
    name: str  # "LETS Gent"
    prefix: str  # its member codes' prefix, in capitals: "GE"
    url: str  # its bot's partner address, e.g. https://gent.example.org/letsbot-partner
    public_key: str  # its Ed25519 key (base64), as its `letsbot partner key` prints it
    units_per_hour: int  # its unit: how many of its whole units make an hour
    decimals: int  # its unit's digits after the decimal separator
    unit: str  # its unit's name (plural), as its members say it
    cap: int  # minor units here: how far the trade balance may go either way
    paused: bool  # no new payments either way
    account_id: int  # this group's account of it (Status.EXTERNAL)
    removed: bool = False

    @property
    def manual(self) -> bool:
        """A group without a bot (on eLAND): its url is empty, and a coordinator here
        has a payment entered there by hand (letsbot.partner_manual)."""
        return not self.url


@dataclass(frozen=True, slots=True)
class LookedUp:
    """A partner's bot's word on one of its member codes (letsbot.partner_lookup)."""

    state: str | None  # "active", "not_active", "unknown"; None: no answer in time
    name: str | None = None  # only for an active member


class PartnerState(enum.StrEnum):
    SENDING = "sending"  # booked here, not yet answered there
    WAITING = "waiting"  # booked here; waits for a coordinator to have it entered there (manual)
    BOOKED = "booked"  # booked there too
    REVERSED = "reversed"  # refused there, or given up: booked back here


@dataclass(frozen=True, slots=True)
class PartnerPayment:
    """A payment to a member of a partner group, from its first booking here."""

    id: int
    payment_id: str  # the id both bots know it by
    partner_id: int
    payer_id: int
    transfer_id: int  # payer -> partner account, here
    receiver_code: str  # "GE-012"
    amount: int  # minor units here
    their_amount: int  # minor units there
    description: str
    state: PartnerState
    reason: str | None  # why it was reversed
    created_at: datetime
    expires_at: datetime  # the partner books it only before this; then it may be given up
    next_try_at: datetime
    tries: int
    receiver_name: str | None  # as the partner answered
    request_id: str | None = None  # the partner's payment request it answers


@dataclass(frozen=True, slots=True)
class IncomingAnswer:
    """What this group answered a partner's payment: the same again for a repeat."""

    digest: str  # of what was asked (letsbot.partners.digest)
    status: str  # booked | refused
    reason: str | None  # why it was refused
    transfer_id: int | None  # partner account -> receiver, when booked


@dataclass(frozen=True, slots=True)
class TradeSide:
    """What one group's database says about its trade with one partner group
    (letsbot.partner_check): payments that stand, those still on their way, in
    this group's minor units unless named ``their``."""

    balance: int  # of this group's account of the partner
    sent_count: int  # payments to the partner booked there, standing here
    sent_amount: int
    sent_their_amount: int  # the same in the partner's minor units
    sending: dict[str, tuple[int, int]]  # the oldest still on their way: id -> (amount, theirs)
    sending_count: int  # all still on their way
    sending_amount: int
    late: int  # on their way past their expiry (and the window): not booked back
    received_count: int  # payments from the partner booked here that stand
    received_amount: int
    reversed: dict[str, tuple[int, int]]  # the newest booked back here: id -> (amount, theirs)


class RequestState(enum.StrEnum):
    """Where a payment request between groups stands (letsbot.partner_requests)."""

    SENDING = "sending"  # made here, not yet answered by the payer's bot
    ASKED = "asked"  # the payer was asked Ja/Nee, no answer yet
    PAID = "paid"  # the payer said Ja and it was booked there: the payment is on its way
    DECLINED = "declined"  # the payer said Nee
    EXPIRED = "expired"  # the payer didn't answer in time
    REFUSED = "refused"  # the payer's group refused it (``reason``), or never answered


OPEN_REQUEST_STATES = (RequestState.SENDING, RequestState.ASKED)


@dataclass(frozen=True, slots=True)
class PartnerRequest:
    """A payment request between groups: ``out``, a member here asks a member of the
    partner group; ``in``, a member of the partner group asks a member here."""

    id: int
    direction: str  # out | in
    request_id: str  # the id both bots know it by
    partner_id: int
    member_id: int | None  # out: the requester here; in: the payer here (None: no member)
    other_code: str  # the other member's code: out the payer's, in the requester's
    amount: int  # minor units here: out what the requester gets, in what the payer pays
    their_amount: int  # the same in the partner's minor units
    description: str
    state: RequestState
    reason: str | None  # why it was refused
    pending_id: int | None  # in: the question put to the payer
    created_at: datetime
    expires_at: datetime
    next_try_at: datetime  # out: the next try (or the end of its lease)
    tries: int
