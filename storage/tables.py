"""The tables as SQLAlchemy Core ``Table`` objects, for the statements of storage/.

The ORM classes in storage.models declare them (and Alembic compares against
them); the unit of work and its helpers write Core statements on these.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table

from storage.models import (
    AccessCodeRow,
    BlockRow,
    CodeAttemptRow,
    ContributionRow,
    ContributionRunRow,
    DigestRow,
    DirectMessageRow,
    EventRow,
    HandleRow,
    HeldMessageRow,
    IdentityRow,
    ListingNoticeRow,
    ListingRow,
    ListingTagRow,
    MemberRow,
    NotifyRow,
    OutboxRow,
    PartnerIncomingRow,
    PartnerOutgoingRow,
    PartnerRequestRow,
    PartnerRow,
    PendingRow,
    PlatformStateRow,
    ProcessedEventRow,
    ProposalRow,
    ProposalVoterRow,
    ReminderRow,
    RsvpRow,
    TransferRow,
    VoteRow,
)

members = cast(Table, MemberRow.__table__)
identities = cast(Table, IdentityRow.__table__)
transfers = cast(Table, TransferRow.__table__)
pending = cast(Table, PendingRow.__table__)
processed = cast(Table, ProcessedEventRow.__table__)
platform_state = cast(Table, PlatformStateRow.__table__)
handles = cast(Table, HandleRow.__table__)
held_messages = cast(Table, HeldMessageRow.__table__)
outbox = cast(Table, OutboxRow.__table__)
events = cast(Table, EventRow.__table__)
rsvps = cast(Table, RsvpRow.__table__)
reminders = cast(Table, ReminderRow.__table__)
listings = cast(Table, ListingRow.__table__)
listing_tags = cast(Table, ListingTagRow.__table__)
listing_notices = cast(Table, ListingNoticeRow.__table__)
digests = cast(Table, DigestRow.__table__)
direct_messages = cast(Table, DirectMessageRow.__table__)
blocks = cast(Table, BlockRow.__table__)
proposals = cast(Table, ProposalRow.__table__)
proposal_voters = cast(Table, ProposalVoterRow.__table__)
votes = cast(Table, VoteRow.__table__)
notify_optins = cast(Table, NotifyRow.__table__)
access_codes = cast(Table, AccessCodeRow.__table__)
code_attempts = cast(Table, CodeAttemptRow.__table__)
contributions = cast(Table, ContributionRow.__table__)
contribution_runs = cast(Table, ContributionRunRow.__table__)
partners = cast(Table, PartnerRow.__table__)
partner_outgoing = cast(Table, PartnerOutgoingRow.__table__)
partner_incoming = cast(Table, PartnerIncomingRow.__table__)
partner_requests = cast(Table, PartnerRequestRow.__table__)
