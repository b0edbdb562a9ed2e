"""The tables. Amounts are integers of the smallest unit; transfers are append-only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as UTC; always read back timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class MemberRow(Base):
    __tablename__ = "members"
    # Unique when set; NULLs (most members) don't collide, on SQLite nor PostgreSQL.
    __table_args__ = (Index("ix_members_old_code", "old_code", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[int] = mapped_column(Integer, unique=True)  # shown as DU-007
    name: Mapped[str] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(16))
    is_group_account: Mapped[bool] = mapped_column(Boolean, default=False)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)  # cache of its transfers
    min_balance: Mapped[int | None] = mapped_column(BigInteger)
    max_balance: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set when the member asked to be forgotten: the name is a placeholder, the rest erased.
    forgotten_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The code in the system the group moved from, when it got another number here.
    old_code: Mapped[str | None] = mapped_column(String(40))
    # When a coordinator approved them (None: made active when the account was made).
    active_since: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IdentityRow(Base):
    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("platform", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    platform: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(200))


class TransferRow(Base):
    __tablename__ = "transfers"
    __table_args__ = (
        CheckConstraint("amount > 0", name="positive_amount"),
        CheckConstraint("payer_id <> receiver_id", name="two_accounts"),
        Index("ix_transfers_payer", "payer_id", "id"),
        Index("ix_transfers_receiver", "receiver_id", "id"),
        Index("ix_transfers_created_at", "created_at"),  # months for /stats and the report
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    payer_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    receiver_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    booked_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    # A transfer is reversed at most once: the unique key makes a second reversal fail.
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("transfers.id"), unique=True)
    # The platform event that caused it: the same event can never book twice.
    event_key: Mapped[str] = mapped_column(String(255), unique=True)


class PendingRow(Base):
    __tablename__ = "pending"
    __table_args__ = (Index("ix_pending_asked_status", "asked_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    action: Mapped[str] = mapped_column(String(16))
    asked_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    payer_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    receiver_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    amount: Mapped[int | None] = mapped_column(BigInteger)
    transfer_id: Mapped[int | None] = mapped_column(ForeignKey("transfers.id"))
    description: Mapped[str] = mapped_column(Text)
    data: Mapped[str | None] = mapped_column(Text)  # JSON details of other questions
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    # Where it was asked: a group chat, or (chat_id NULL) the asked person's direct chat.
    platform: Mapped[str | None] = mapped_column(String(32))
    chat_id: Mapped[str | None] = mapped_column(String(255))
    text: Mapped[str | None] = mapped_column(Text)  # as asked, to ask "which one?"


class ProcessedEventRow(Base):
    """Incoming events already handled, written in the transaction of their effect."""

    __tablename__ = "processed_events"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    handled_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PlatformStateRow(Base):
    """Small facts an adapter keeps across restarts (a sync token, a migrated chat id)."""

    __tablename__ = "platform_state"

    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OutboxRow(Base):
    """A message to send, written in the transaction of what it tells and sent after it.

    A process claims a row for a while (``owner``, ``lease_until``) before it
    sends it, and marks it sent once the platform accepted it; a row whose
    lease ran out unsent (the process died) is claimed and sent again. Ids are
    never reused: the Matrix adapter derives its transaction id from them.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_unsent", "sent_at", "lease_until"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str | None] = mapped_column(String(32))  # None: every platform's groups
    body: Mapped[str] = mapped_column(Text)  # the Outgoing, as JSON (letsbot.outbox); sent: ""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    owner: Mapped[str] = mapped_column(String(32))
    lease_until: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class HandleRow(Base):
    """A public name seen on a platform (a Telegram @username) and whose it is."""

    __tablename__ = "handles"
    __table_args__ = (UniqueConstraint("platform", "handle"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    handle: Mapped[str] = mapped_column(String(255))  # lower case, without '@'
    user_id: Mapped[str] = mapped_column(String(255))
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class HeldMessageRow(Base):
    """A direct message the platform refused (the person never started the bot).

    Kept until the person opens the direct chat, then delivered.
    """

    __tablename__ = "held_messages"
    __table_args__ = (Index("ix_held_messages_person", "platform", "user_id", "delivered_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)  # the Outgoing, as JSON
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class EventRow(Base):
    """One occurrence of a market, repair café, meeting...; a series shares series_id."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_status_starts", "status", "starts_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    series_id: Mapped[int | None] = mapped_column(Integer, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200))
    place: Mapped[str | None] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))  # scheduled | cancelled
    cancel_reason: Mapped[str | None] = mapped_column(String(200))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RsvpRow(Base):
    __tablename__ = "rsvps"

    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    going: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReminderRow(Base):
    """A reminder posted (or skipped as too late): the unique key is the claim.

    Keyed on the due time, so a moved event gets fresh reminders and the old
    time's are never posted.
    """

    __tablename__ = "reminders"
    __table_args__ = (UniqueConstraint("event_id", "offset_seconds", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    offset_seconds: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    handled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16))  # posted | late | skipped


class ListingRow(Base):
    """An offer or a want; never deleted. Withdrawn or past ``expires_at``, it is not shown."""

    __tablename__ = "listings"
    __table_args__ = (
        Index("ix_listings_kind_expires", "kind", "expires_at"),
        Index("ix_listings_owner_expires", "owner_id", "expires_at"),
        Index("ix_listings_notice", "notice_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # offer | want
    owner_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    text: Mapped[str] = mapped_column(Text)  # as typed, with its #tags
    price: Mapped[str | None] = mapped_column(String(200))
    # Lower case without accents (NFKD), matched with LIKE: the same on SQLite and PostgreSQL.
    search_text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    notice_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ListingTagRow(Base):
    """A category of a listing (``#fiets``), for /categories and tag searches."""

    __tablename__ = "listing_tags"

    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)  # folded
    label: Mapped[str] = mapped_column(String(40))  # lower case, as typed


class ListingNoticeRow(Base):
    """An expiry notice sent (or not deliverable): the unique key is the claim.

    Keyed on the expiry time, so an extended listing gets a fresh notice.
    """

    __tablename__ = "listing_notices"
    __table_args__ = (UniqueConstraint("listing_id", "expires_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    handled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16))  # sent | unreachable


class DigestRow(Base):
    """A weekly digest handled, keyed on its due time: posted, empty or skipped, once."""

    __tablename__ = "digests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, unique=True)
    handled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16))  # posted | empty | skipped
    listings: Mapped[int] = mapped_column(Integer)


class DirectMessageRow(Base):
    """A member's text the bot took to another member (/msg, /contact, /request).

    Only who, to whom and when, to limit messages per sender; never the text.
    One held back by a block counts too, so the sender can't tell.
    """

    __tablename__ = "direct_messages"
    __table_args__ = (Index("ix_direct_messages_sender_sent", "sender_id", "sent_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sender_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    receiver_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    listing_id: Mapped[int | None] = mapped_column(ForeignKey("listings.id"))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BlockRow(Base):
    """``member_id`` receives no private messages from ``blocked_id``."""

    __tablename__ = "blocks"

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    blocked_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProposalRow(Base):
    """A proposal put to the group's vote; its rule and ballot are fixed when it is made."""

    __tablename__ = "proposals"
    __table_args__ = (
        Index("ix_proposals_status_closes", "status", "closes_at"),
        Index("ix_proposals_status_remind", "status", "remind_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    options: Mapped[str | None] = mapped_column(Text)  # JSON list; None: For/Against/Abstain
    rule: Mapped[str] = mapped_column(String(16))  # majority | supermajority | consent
    quorum: Mapped[str] = mapped_column(String(16))  # decimal text: exact arithmetic
    supermajority: Mapped[str] = mapped_column(String(16))
    ballot: Mapped[str] = mapped_column(String(8))  # open | secret
    early_close: Mapped[bool] = mapped_column(Boolean)
    proposer_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closes_at: Mapped[datetime] = mapped_column(UTCDateTime)
    remind_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None: too short to remind
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the reminder's claim
    status: Mapped[str] = mapped_column(String(16))  # open | closed | withdrawn
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verdict: Mapped[str | None] = mapped_column(String(16))
    withdraw_reason: Mapped[str | None] = mapped_column(String(300))


class ProposalVoterRow(Base):
    """Who may vote on a proposal: the active members when it was made."""

    __tablename__ = "proposal_voters"

    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposals.id"), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)


class VoteRow(Base):
    """One vote per member and proposal; voting again replaces it until the close."""

    __tablename__ = "votes"

    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposals.id"), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    choice: Mapped[int] = mapped_column(Integer)  # index into the choices
    objection: Mapped[str | None] = mapped_column(String(300))  # consent: why Against
    voted_at: Mapped[datetime] = mapped_column(UTCDateTime)


class NotifyRow(Base):
    """A member who asked for direct messages such as vote reminders (/notify on)."""

    __tablename__ = "notify_optins"

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class AccessCodeRow(Base):
    """A one-time code that joins a chat identity to a member (/link, /claim).

    Only a slow hash of the code is kept; the code itself is shown once.
    """

    __tablename__ = "access_codes"
    __table_args__ = (Index("ix_access_codes_member_purpose", "member_id", "purpose"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    purpose: Mapped[str] = mapped_column(String(8))  # link | claim
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))  # a coordinator
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CodeAttemptRow(Base):
    """A wrong, used or expired code someone sent: counted to stop guessing.

    ``sender`` is a hash of the platform identity; neither a name nor the code is kept.
    """

    __tablename__ = "code_attempts"
    __table_args__ = (
        Index("ix_code_attempts_sender_at", "sender", "at"),
        Index("ix_code_attempts_at", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sender: Mapped[str] = mapped_column(String(300))  # sha256 hex of e.g. telegram:123
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class ContributionRow(Base):
    """A recurring contribution of every active member to the group account (/bijdrage).

    The amount rule is a mass payment's (letsbot.bulk.Rule). Made by a
    coordinator (active at once) or carried by a proposal (``proposed`` until
    the vote accepts it). Only periods due at or after ``active_since`` are booked.
    """

    __tablename__ = "contributions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fixed: Mapped[int] = mapped_column(BigInteger)  # minor units
    per_mille: Mapped[int] = mapped_column(Integer)
    base: Mapped[str] = mapped_column(String(16))  # none | balance | turnover
    days: Mapped[int] = mapped_column(Integer)  # the turnover's period
    every: Mapped[str] = mapped_column(String(8))  # year | month
    month: Mapped[int] = mapped_column(Integer)  # 1-12 for a yearly one, 0 for a monthly one
    day: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))  # proposed|active|paused|ended|rejected
    proposal_id: Mapped[int | None] = mapped_column(ForeignKey("proposals.id"), index=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    active_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ContributionRunRow(Base):
    """A contribution's announcement or run of one period: the unique key is the claim."""

    __tablename__ = "contribution_runs"
    __table_args__ = (UniqueConstraint("contribution_id", "due_at", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contribution_id: Mapped[int] = mapped_column(ForeignKey("contributions.id"))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the period's booking time
    step: Mapped[str] = mapped_column(String(16))  # announce | run
    handled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16))  # posted | booked | refused | empty
    count: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(BigInteger, default=0)


class PartnerRow(Base):
    """Another group whose bot this one trades with (letsbot partner add)."""

    __tablename__ = "partners"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(8), unique=True)
    url: Mapped[str] = mapped_column(String(500))
    public_key: Mapped[str] = mapped_column(String(64))
    units_per_hour: Mapped[int] = mapped_column(Integer)
    decimals: Mapped[int] = mapped_column(Integer)
    unit: Mapped[str] = mapped_column(String(40))
    cap: Mapped[int] = mapped_column(BigInteger)
    paused: Mapped[bool] = mapped_column(Boolean)
    account_id: Mapped[int] = mapped_column(ForeignKey("members.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PartnerOutgoingRow(Base):
    """A payment to a partner group's member: written with its first booking here."""

    __tablename__ = "partner_outgoing"
    __table_args__ = (Index("ix_partner_outgoing_due", "state", "next_try_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    payment_id: Mapped[str] = mapped_column(String(40), unique=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    payer_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    transfer_id: Mapped[int] = mapped_column(ForeignKey("transfers.id"), unique=True)
    receiver_code: Mapped[str] = mapped_column(String(20))
    amount: Mapped[int] = mapped_column(BigInteger)
    their_amount: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_try_at: Mapped[datetime] = mapped_column(UTCDateTime)
    tries: Mapped[int] = mapped_column(Integer)
    receiver_name: Mapped[str | None] = mapped_column(String(200))
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The partner's payment request this payment answers (partner_requests, in).
    request_id: Mapped[str | None] = mapped_column(String(40))


class PartnerIncomingRow(Base):
    """A payment a partner's bot sent, and what it was answered: a payment id is booked
    at most once, and a repeat gets the same answer (signed afresh; the receiver's
    name read anew, so a forgotten member's name is not kept here)."""

    __tablename__ = "partner_incoming"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    payment_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))  # sha256 of what was asked, sans time
    status: Mapped[str] = mapped_column(String(16))  # booked | refused
    reason: Mapped[str | None] = mapped_column(String(40))  # why it was refused
    transfer_id: Mapped[int | None] = mapped_column(ForeignKey("transfers.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PartnerRequestRow(Base):
    """A payment request between groups (letsbot.partner_requests), either way: ``out``
    a member here asks a member of the partner group (sent until final), ``in`` a
    member there asks a member here (asked once; a repeat gets its state)."""

    __tablename__ = "partner_requests"
    __table_args__ = (
        UniqueConstraint("direction", "partner_id", "request_id"),
        Index("ix_partner_requests_due", "direction", "state", "next_try_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    direction: Mapped[str] = mapped_column(String(3))  # out | in
    request_id: Mapped[str] = mapped_column(String(40))
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    # in: None when the code names no member here (refused, kept for its repeats)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    other_code: Mapped[str] = mapped_column(String(20))
    amount: Mapped[int] = mapped_column(BigInteger)
    their_amount: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(Text)
    digest: Mapped[str | None] = mapped_column(String(64))  # in: of what was asked
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(40))
    # No foreign key: forgetting a member deletes their questions (storage.privacy).
    pending_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_try_at: Mapped[datetime] = mapped_column(UTCDateTime)
    tries: Mapped[int] = mapped_column(Integer)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
