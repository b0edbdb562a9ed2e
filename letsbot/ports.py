"""What the core needs from storage. ``storage/`` implements it with SQLAlchemy."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from letsbot.decisions import Ballot, Policy, Proposal, ProposalStatus, Verdict, Vote
from letsbot.domain import (
    AccessCode,
    CodePurpose,
    Contribution,
    ContributionStatus,
    Event,
    EventKind,
    Footprint,
    Identity,
    IncomingAnswer,
    Listing,
    ListingKind,
    Member,
    Partner,
    PartnerPayment,
    PartnerRequest,
    PartnerState,
    Pending,
    PendingAction,
    PendingStatus,
    RequestState,
    Role,
    Status,
    TradeSide,
    Transfer,
    TransferKind,
)
from letsbot.figures import PartnerTrade, PeriodFigures


class Claims(Protocol):
    """Claims of incoming events and of scheduled work: each done once, by one process."""

    def claim_event(self, key: str, at: datetime) -> bool:
        """Record an incoming event; False when it was handled before."""
        ...

    def claim_event_from(
        self, key: str, at: datetime, identity: Identity
    ) -> tuple[bool, Member | None]:
        """``claim_event``, and the member ``identity`` is (``members.member_by_identity``)."""
        ...

    def claim_reminder(
        self, event_id: int, offset_seconds: int, due_at: datetime, at: datetime, outcome: str
    ) -> bool:
        """Record a reminder as handled; False when it was handled before (by anyone)."""
        ...

    def handled_reminders(self, event_ids: Sequence[int]) -> set[tuple[int, int, datetime]]:
        """(event id, offset seconds, due time) of every reminder already handled."""
        ...

    def claim_notice(
        self, listing_id: int, expires_at: datetime, at: datetime, outcome: str
    ) -> bool:
        """Record an expiry notice as handled; False when it was handled before (by anyone)."""
        ...

    def digest_handled(self, due_at: datetime) -> bool: ...

    def claim_digest(self, due_at: datetime, at: datetime, outcome: str, listings: int) -> bool:
        """Record a weekly digest as handled; False when it was handled before (by anyone)."""
        ...

    def claim_proposal_reminder(self, proposal_id: int, at: datetime) -> bool:
        """Record the reminder as sent; False when it was sent before (by anyone)."""
        ...


class Outbox(Protocol):
    """The outbox: messages to send, written in the transaction of their effect."""

    def add_outgoing(
        self,
        *,
        messages: Sequence[tuple[str | None, str]],
        owner: str,
        at: datetime,
        lease_until: datetime,
    ) -> list[int]:
        """Messages to send, each (platform, body), leased to ``owner`` until
        ``lease_until``; their row ids, in order. One statement for them all."""
        ...

    def claim_outgoing(
        self,
        *,
        owner: str,
        platforms: Sequence[str],
        now: datetime,
        lease_until: datetime,
        since: datetime,
        max_attempts: int,
        limit: int,
    ) -> list[tuple[int, str]]:
        """Lease unsent messages whose lease ran out (of ``platforms`` or of every group),
        created since ``since`` and tried fewer than ``max_attempts`` times: (id, body),
        oldest first. A row another process holds is never returned."""
        ...

    def renew_outgoing(self, owner: str, ids: Sequence[int], lease_until: datetime) -> None:
        """Extend ``owner``'s leases on these unsent messages."""
        ...

    def mark_outgoing_sent(self, ids: Sequence[int], at: datetime) -> None:
        """Never send these again; their text is not kept."""
        ...

    def give_up_outgoing(self, *, now: datetime, since: datetime, max_attempts: int) -> int:
        """Stop trying unsent messages created before ``since`` or tried ``max_attempts``
        times (their lease run out): marked sent, unsent; how many."""
        ...

    def purge_outgoing(self, before: datetime) -> int:
        """Forget messages created before ``before``, sent or not; how many."""
        ...


class Members(Protocol):
    """Members, their chat identities and the row locks of the accounts."""

    def member(self, member_id: int) -> Member | None: ...

    def member_by_number(self, number: int) -> Member | None: ...

    def member_by_identity(self, identity: Identity) -> Member | None: ...

    def group_account(self) -> Member: ...

    def members(self, statuses: Iterable[Status]) -> list[Member]: ...

    def add_member(
        self, *, name: str, language: str | None, status: Status, role: Role, at: datetime
    ) -> Member:
        """A new member with the next free number."""
        ...

    def update_member(
        self,
        member_id: int,
        *,
        status: Status | None = None,
        role: Role | None = None,
        language: str | None = None,
        limits: tuple[int | None, int | None] | None = None,
        name: str | None = None,
        active_since: datetime | None = None,
    ) -> Member: ...

    def add_identity(self, member_id: int, identity: Identity, display_name: str) -> None: ...

    def identities(self, member_id: int) -> list[Identity]: ...

    def stranger_fact(self, identity: Identity, fact: str) -> str | None:
        """What someone who is not a member yet told the bot: ``language`` they chose with
        /taal, the ``name`` they were offered to join with."""
        ...

    def keep_stranger_fact(
        self, identity: Identity, fact: str, value: str | None, at: datetime
    ) -> None:
        """Keep (or, with None, drop) one fact of someone who is not a member yet."""
        ...

    def first_identities(self, member_ids: Sequence[int]) -> dict[int, Identity]:
        """``identities(id)[0]`` of each member that has one, in one query."""
        ...

    def move_identity(self, identity: Identity, member_id: int) -> None: ...

    def remove_identity(self, identity: Identity) -> bool:
        """False when no member had it."""
        ...

    def lock_members(self, member_ids: Sequence[int]) -> dict[int, Member]:
        """Fresh rows, locked in id order until the transaction ends.

        The first lock a writing transaction takes, all its members in one call,
        before it changes any other row (pending, transfers ...).
        """
        ...

    def hold_members(self, member_ids: Sequence[int]) -> None:
        """``lock_members`` for a transaction that doesn't read the rows."""
        ...


class Contact(Protocol):
    """Private messages between members, and who blocks whom."""

    def add_message(
        self, *, sender_id: int, receiver_id: int, listing_id: int | None, at: datetime
    ) -> None: ...

    def messages_since(self, sender_id: int, since: datetime) -> list[datetime]:
        """When the member's messages after ``since`` were sent, oldest first."""
        ...

    def is_blocked(self, member_id: int, blocked_id: int) -> bool:
        """Whether ``member_id`` blocks messages from ``blocked_id``."""
        ...

    def set_block(self, member_id: int, blocked_id: int, blocked: bool, at: datetime) -> bool:
        """Block or unblock; False when it already was so."""
        ...

    def blocked_by(self, member_id: int) -> list[Member]: ...


class Codes(Protocol):
    """One-time access codes (/link, /claim) and the attempts to guess them."""

    def add_access_code(
        self,
        *,
        purpose: CodePurpose,
        member_id: int,
        code_hash: str,
        created_by_id: int | None,
        at: datetime,
        expires_at: datetime,
    ) -> None:
        """A new code; the member's earlier codes of that purpose stop working."""
        ...

    def access_code(self, code_hash: str) -> AccessCode | None: ...

    def use_access_code(self, code_id: int, at: datetime) -> bool:
        """Mark a code used; False when it was used before (by anyone)."""
        ...

    def add_code_attempt(self, sender: str, at: datetime) -> None:
        """Record a failed code; attempts older than a day are forgotten."""
        ...

    def code_attempts_since(self, sender: str | None, since: datetime) -> int:
        """Failed codes of one sender (None: of everyone) since ``since``."""
        ...


class Ledger(Protocol):
    """Transfers and the cached balances they move."""

    def add_transfer(
        self,
        *,
        payer_id: int,
        receiver_id: int,
        amount: int,
        description: str,
        kind: TransferKind,
        at: datetime,
        booked_by_id: int | None,
        event_key: str,
        reverses_id: int | None = None,
        transfer_id: int | None = None,
    ) -> Transfer:
        """Append a transfer and move both cached balances. Call lock_members first.

        ``transfer_id``: the number it gets (an import keeping the source's
        numbers); None: the next one.
        """
        ...

    def add_transfers(
        self,
        lines: Sequence[tuple[int, int, int, str]],
        *,
        description: str,
        kind: TransferKind,
        at: datetime,
        booked_by_id: int | None,
    ) -> None:
        """Append many transfers (payer id, receiver id, amount, event key) with one
        description, and move the cached balances by what each account gained or
        lost in all of them. Call lock_members first."""
        ...

    def transfer(self, transfer_id: int) -> Transfer | None: ...

    def last_transfer_id(self) -> int | None:
        """The newest transfer's number, None before the first booking."""
        ...

    def reversal_of(self, transfer_id: int) -> Transfer | None: ...

    def transfer_by_event_key(self, event_key: str) -> Transfer | None:
        """The transfer a platform event (or a run's line, ``bulk:<run>:<member>``) booked."""
        ...

    def history(self, member_id: int, offset: int, limit: int) -> list[Transfer]: ...

    def count_transfers(self, member_id: int) -> int: ...

    def standing_since(
        self,
        payer_id: int,
        receiver_id: int,
        amount: int,
        kinds: Sequence[TransferKind],
        since: datetime,
        lookback: int,
    ) -> list[Transfer]:
        """Among the payer's ``lookback`` newest payments: those of ``amount`` to
        receiver, of these kinds, booked at or after ``since`` and not reversed;
        newest first."""
        ...


class Questions(Protocol):
    """Open questions (a payment to confirm, a request to accept ...)."""

    def add_pending(
        self,
        *,
        action: PendingAction,
        asked_id: int,
        requested_by_id: int,
        payer_id: int | None,
        receiver_id: int | None,
        amount: int | None,
        transfer_id: int | None = None,
        description: str,
        at: datetime,
        expires_at: datetime,
        data: str | None = None,
        platform: str | None = None,
        chat_id: str | None = None,
        text: str | None = None,
    ) -> Pending: ...

    def open_pending(self, asked_id: int) -> list[Pending]:
        """The questions put to ``asked`` that wait for an answer, oldest first."""
        ...

    def newest_asked(self, asked_id: int, platform: str, chat_id: str | None) -> Pending | None:
        """The newest question put to ``asked_id`` in that group chat (``chat_id`` None:
        in their direct chats), whatever its status."""
        ...

    def answered_since(self, action: PendingAction, since: datetime, limit: int) -> list[Pending]:
        """Questions of ``action`` asked at or after ``since`` and answered Ja, newest
        first (answered Ja: not necessarily booked)."""
        ...

    def pending(self, pending_id: int) -> Pending | None: ...

    def close_pending(self, pending_id: int, status: PendingStatus) -> bool:
        """Close an open question; False when it was no longer open (answered meanwhile)."""
        ...


class Events(Protocol):
    """Markets, repair cafés and other events, and who comes."""

    def add_event(
        self,
        *,
        series_id: int | None,
        kind: EventKind,
        title: str,
        place: str | None,
        starts_at: datetime,
        ends_at: datetime | None,
        created_by_id: int,
        at: datetime,
    ) -> Event: ...

    def event(self, event_id: int) -> Event | None: ...

    def events_between(self, start: datetime, end: datetime | None, limit: int) -> list[Event]:
        """Scheduled events starting in [start, end), soonest first."""
        ...

    def update_event(
        self,
        event_id: int,
        *,
        starts_at: datetime | None = None,
        ends_at: datetime | None = None,
        cancel_reason: str | None = None,
        cancelled: bool = False,
    ) -> Event: ...

    def set_rsvp(self, event_id: int, member_id: int, going: bool, at: datetime) -> None: ...

    def rsvps(self, event_id: int) -> list[tuple[Member, bool]]: ...

    def going_counts(self, event_ids: Sequence[int]) -> dict[int, int]: ...


class Market(Protocol):
    """Offers and wants, their tags, and the listings due for a notice."""

    def add_listing(
        self,
        *,
        kind: ListingKind,
        owner_id: int,
        text: str,
        price: str | None,
        search_text: str,
        tags: Sequence[tuple[str, str]],
        at: datetime,
        expires_at: datetime,
        notice_at: datetime | None,
    ) -> Listing:
        """A new listing; ``tags`` are (folded tag, label as typed) pairs."""
        ...

    def listing(self, listing_id: int) -> Listing | None: ...

    def set_listing_expiry(
        self, listing_id: int, expires_at: datetime, notice_at: datetime | None
    ) -> Listing: ...

    def withdraw_listing(self, listing_id: int, at: datetime) -> bool:
        """False when it was withdrawn before."""
        ...

    def withdraw_listings_of(self, owner_id: int, at: datetime) -> int:
        """Withdraw every listing of a member; how many there were."""
        ...

    def search_listings(
        self,
        kind: ListingKind,
        *,
        words: Sequence[str],
        tags: Sequence[str],
        now: datetime,
        offset: int,
        limit: int,
    ) -> tuple[list[tuple[Listing, Member]], int]:
        """Live listings of active or leaving members, newest first: one page, and the total.

        Each holds every (folded) word in its search text and carries every (folded) tag.
        """
        ...

    def listings_of(self, owner_id: int, since: datetime) -> list[Listing]:
        """A member's listings that are not withdrawn and expire after ``since``, newest first."""
        ...

    def count_live_listings(self, owner_id: int, now: datetime) -> int: ...

    def tag_counts(self, now: datetime, limit: int) -> list[tuple[str, int, int]]:
        """(label, offers, wants) of each tag on live listings, most used first."""
        ...

    def new_listings(
        self, start: datetime, end: datetime, now: datetime
    ) -> list[tuple[Listing, Member]]:
        """Listings created in [start, end), live at ``now``, of active or leaving members."""
        ...

    def notices_due(self, now: datetime) -> list[tuple[Listing, Member]]:
        """Live listings of active or leaving members whose expiry notice is due and unclaimed."""
        ...

    def next_notice(self, after: datetime, until: datetime) -> datetime | None:
        """The first unclaimed expiry notice time in (after, until]."""
        ...


class Governance(Protocol):
    """Proposals, votes and who wants reminders of them."""

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
        """A new open proposal; ``voter_ids`` are the members who may vote on it."""
        ...

    def proposal(self, proposal_id: int, *, lock: bool = False) -> Proposal | None:
        """``lock``: hold the row until the transaction ends, so votes on it take turns."""
        ...

    def open_proposals(self, limit: int) -> list[Proposal]:
        """Open proposals, the first to close first."""
        ...

    def eligible_count(self, proposal_id: int) -> int: ...

    def is_eligible(self, proposal_id: int, member_id: int) -> bool: ...

    def set_vote(
        self, proposal_id: int, member_id: int, choice: int, objection: str | None, at: datetime
    ) -> bool:
        """Record or replace a member's vote; True when it is their first."""
        ...

    def vote_of(self, proposal_id: int, member_id: int) -> Vote | None: ...

    def votes(self, proposal_id: int) -> list[tuple[Member, Vote]]: ...

    def turnouts(self, proposal_ids: Sequence[int]) -> dict[int, int]:
        """How many members voted on each proposal."""
        ...

    def close_proposal(
        self,
        proposal_id: int,
        status: ProposalStatus,
        at: datetime,
        verdict: Verdict | None = None,
        reason: str | None = None,
    ) -> bool:
        """Close or withdraw an open proposal; False when it was no longer open (the claim)."""
        ...

    def proposals_due(self, now: datetime) -> list[Proposal]:
        """Open proposals whose deadline has come."""
        ...

    def proposal_reminders_due(self, now: datetime) -> list[Proposal]:
        """Open proposals whose reminder time has come and whose reminder is unclaimed."""
        ...

    def next_proposal_due(self, after: datetime, until: datetime) -> datetime | None:
        """The first deadline or unclaimed reminder time of an open proposal in (after, until]."""
        ...

    def silent_voters(self, proposal_id: int) -> list[Member]:
        """Eligible, still active members who opted in to reminders and haven't voted."""
        ...

    def set_notify(self, member_id: int, on: bool, at: datetime) -> bool:
        """Opt in or out of direct reminders; False when it already was so."""
        ...

    def notify_on(self, member_id: int) -> bool: ...


class Figures(Protocol):
    """The read side of reports and statistics: aggregated by the database."""

    def month_figures(self, bounds: Sequence[datetime]) -> PeriodFigures:
        """The figures of each period [bounds[i], bounds[i + 1]), and of all of them.

        Trades are payments, requests and bookings that were not reversed; a
        trader is a member (not the group account) who paid or received one.
        """
        ...

    def open_listings(self, at: datetime) -> tuple[int, int]:
        """(offers, wants) online at ``at``: placed before it, not expired or withdrawn yet."""
        ...

    def balances(self, at: datetime | None = None) -> list[int]:
        """Balances of the active and leaving members, lowest first; at ``at`` if given."""
        ...

    def group_bookings(self, since: datetime) -> tuple[int, int]:
        """(count, units) of the group's own bookings (mass payments) from ``since``
        that stand: not trade, so apart from the month figures."""
        ...

    def turnover(self, since: datetime) -> dict[int, int]:
        """Per member id: what they paid and received in trades that stand, from ``since``."""
        ...

    def partner_trade(self, start: datetime, end: datetime) -> list[PartnerTrade]:
        """Per partner group that stands or traded in [start, end): the payments to and
        from it that stand, and its trade balance at ``end``."""
        ...


class Privacy(Protocol):
    """What the bot keeps about a member, and forgetting it."""

    def has_footprint(self, member_id: int) -> bool:
        """Whether a member left any trace besides their profile: transfers, listings,
        votes, proposals, questions, messages, RSVPs, blocks."""
        ...

    def footprint(self, member_id: int) -> Footprint: ...

    def forget_member(self, member_id: int, placeholder: str, at: datetime) -> None:
        """Erase what identifies a member; keep the row (code, balance) and the transfers.

        Names, language, limits and chat identities go, and with the identities
        what the adapters keep about those people (@handles, held messages,
        direct rooms, event keys that carry their id). Listings are withdrawn
        and emptied; RSVPs, questions, blocks, private-message records, the
        reminder choice and votes on open proposals are removed; votes on
        closed proposals stay as counts, without their reasons. The name is
        replaced by ``placeholder`` in the descriptions of their transfers.
        """
        ...


class Contributions(Protocol):
    """Recurring contributions to the group account, and the claims of their runs."""

    def add_contribution(
        self,
        *,
        fixed: int,
        per_mille: int,
        base: str,
        days: int,
        every: str,
        month: int,
        day: int,
        description: str,
        status: ContributionStatus,
        proposal_id: int | None,
        created_by_id: int,
        at: datetime,
    ) -> Contribution: ...

    def contribution(self, contribution_id: int) -> Contribution | None: ...

    def contributions(self, statuses: Iterable[ContributionStatus]) -> list[Contribution]:
        """In id order."""
        ...

    def carried_by(self, proposal_id: int) -> Contribution | None:
        """The contribution a proposal carries, if any."""
        ...

    def set_contribution_status(
        self,
        contribution_id: int,
        status: ContributionStatus,
        at: datetime,
        *,
        was: Iterable[ContributionStatus],
        active_since: datetime | None = None,
    ) -> bool:
        """Move it from one of the statuses ``was``; False if it had none of them.
        ``active_since`` is set when given."""
        ...

    def handled_steps(self, contribution_ids: Sequence[int]) -> set[tuple[int, datetime, str]]:
        """(contribution, due time, step) of every announcement and run claimed."""
        ...

    def claim_step(
        self,
        contribution_id: int,
        due_at: datetime,
        step: str,
        at: datetime,
        outcome: str,
        *,
        count: int = 0,
        total: int = 0,
    ) -> bool:
        """Claim one period's announcement or run; False if it was claimed before."""
        ...

    def joined_since(self, since: datetime) -> set[int]:
        """The members approved (or, without an approval, whose account was made) after
        ``since``."""
        ...


class Partners(Protocol):
    """Partner groups (trade between groups), and the payments to and from them."""

    def add_partner(self, *, account_id: int, at: datetime, **fields: Any) -> Partner:
        """A partnership; ``fields``: the columns of letsbot.domain.Partner but id."""
        ...

    def update_partner(self, partner_id: int, **fields: Any) -> Partner:
        """Change columns; ``removed``: the time it ends (None: it stands again)."""
        ...

    def partner(self, partner_id: int) -> Partner | None: ...

    def partner_by_prefix(self, prefix: str) -> Partner | None:
        """The partnership (also a removed one) of the group whose codes start with ``prefix``."""
        ...

    def partners(self) -> list[Partner]: ...

    def trade_side(self, partner: Partner, *, late_before: datetime, limit: int) -> TradeSide:
        """This group's side of its trade with ``partner`` (at most ``limit`` ids of each
        kind); late: payments still on their way that expired before ``late_before``."""
        ...

    def booked_from(self, partner_id: int, payment_ids: Sequence[str]) -> dict[str, int]:
        """Of these payments from the partner, those booked here that stand, with
        the amount each booked."""
        ...

    def add_outgoing_payment(
        self, *, state: PartnerState = PartnerState.SENDING, **fields: Any
    ) -> PartnerPayment:
        """A payment to send (SENDING), or to have entered by hand (WAITING), in the
        transaction of its first booking; ``tries`` 0 unless given (claimed for a first
        try at once)."""
        ...

    def outgoing_payment(self, payment_id: str) -> PartnerPayment | None: ...

    def outgoing_payment_of(self, transfer_id: int) -> PartnerPayment | None:
        """The payment whose first booking here is ``transfer_id``, if it is one."""
        ...

    def outgoing_payments(self, states: Sequence[PartnerState]) -> list[PartnerPayment]: ...

    def claim_due_payments(
        self, *, now: datetime, lease_until: datetime, limit: int
    ) -> list[PartnerPayment]:
        """Payments still SENDING whose next try is due, now held until ``lease_until``
        (their try counted): another process leaves them meanwhile."""
        ...

    def retry_payment_at(self, row_id: int, at: datetime) -> None: ...

    def settle_payment(
        self,
        row_id: int,
        state: PartnerState,
        *,
        at: datetime,
        reason: str | None = None,
        receiver_name: str | None = None,
        was: PartnerState = PartnerState.SENDING,
    ) -> bool:
        """BOOKED or REVERSED, from ``was``; False when it was settled before (the claim)."""
        ...

    def rebook_payment(self, row_id: int, transfer_id: int, *, at: datetime) -> bool:
        """A payment booked back here and booked there after all, booked again here as
        ``transfer_id``: BOOKED from REVERSED; False when it wasn't booked back."""
        ...

    def incoming_answer(self, partner_id: int, payment_id: str) -> IncomingAnswer | None:
        """What a payment received before was answered, if it was."""
        ...

    def add_incoming(
        self,
        *,
        partner_id: int,
        payment_id: str,
        answer: IncomingAnswer,
        at: datetime,
    ) -> None: ...

    # payment requests between groups (letsbot.partner_requests)

    def add_request(self, **fields: Any) -> PartnerRequest:
        """A request either way; ``fields``: the columns of PartnerRequest but id and
        tries, and ``digest`` (incoming: of what was asked)."""
        ...

    def request(
        self, direction: str, partner_id: int, request_id: str
    ) -> PartnerRequest | None: ...

    def request_digest(self, row_id: int) -> str | None: ...

    def requests(self, direction: str, states: Sequence[RequestState]) -> list[PartnerRequest]: ...

    def requests_from_since(self, partner_id: int, other_code: str, since: datetime) -> int:
        """How many requests the partner's member ``other_code`` sent here since ``since``."""
        ...

    def claim_due_requests(
        self, *, now: datetime, lease_until: datetime, limit: int
    ) -> list[PartnerRequest]:
        """Outgoing requests still open whose next try is due, held until ``lease_until``."""
        ...

    def retry_request_at(self, row_id: int, at: datetime, state: RequestState) -> None:
        """An open request's next try, and its state (SENDING or ASKED) meanwhile."""
        ...

    def settle_request(
        self, row_id: int, state: RequestState, *, at: datetime, reason: str | None = None
    ) -> bool:
        """A final state, from an open one; False when it was final before."""
        ...


class Store(Protocol):
    """The data of one group, inside one transaction that holds the write lock.

    One part per capability; a handler reaches only the tables of the parts it names.
    """

    @property
    def claims(self) -> Claims: ...
    @property
    def outbox(self) -> Outbox: ...
    @property
    def members(self) -> Members: ...
    @property
    def contact(self) -> Contact: ...
    @property
    def codes(self) -> Codes: ...
    @property
    def ledger(self) -> Ledger: ...
    @property
    def questions(self) -> Questions: ...
    @property
    def events(self) -> Events: ...
    @property
    def market(self) -> Market: ...
    @property
    def governance(self) -> Governance: ...
    @property
    def figures(self) -> Figures: ...
    @property
    def privacy(self) -> Privacy: ...
    @property
    def contributions(self) -> Contributions: ...
    @property
    def partners(self) -> Partners: ...


class UnitOfWork(Protocol):
    def transaction(self) -> AbstractContextManager[Store]:
        """One write transaction: committed when the block ends, rolled back on an exception."""
        ...
