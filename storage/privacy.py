"""What the bot keeps about a member, and forgetting it (letsbot.privacy on SQLAlchemy Core).

Forgetting keeps the member's row, with its code and cached balance, and
their transfers: the ledger must still sum to zero and other members keep
their own history. Everything else that names or identifies the person is
erased, in the core's transaction.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, String, Table, delete, func, literal, or_, select, update
from sqlalchemy import cast as sql_cast

from letsbot.decisions import ProposalStatus
from letsbot.domain import Footprint, PendingStatus, Role, Status
from storage.tables import (
    access_codes,
    blocks,
    direct_messages,
    handles,
    held_messages,
    identities,
    listing_tags,
    listings,
    members,
    notify_optins,
    partner_outgoing,
    partner_requests,
    pending,
    platform_state,
    processed,
    proposal_voters,
    proposals,
    rsvps,
    transfers,
    votes,
)

# Name words that are also ordinary words; never replaced in descriptions on their own.
_PARTICLES = {"van", "der", "den", "ter", "ten", "het", "des", "von", "del", "dos", "das", "die"}


def _count(db: Connection, table: Table, *where: Any) -> int:
    return int(db.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def footprint(db: Connection, member_id: int) -> Footprint:
    return Footprint(
        transfers=_count(
            db,
            transfers,
            or_(transfers.c.payer_id == member_id, transfers.c.receiver_id == member_id),
        ),
        listings=_count(db, listings, listings.c.owner_id == member_id),
        rsvps=_count(db, rsvps, rsvps.c.member_id == member_id),
        votes=_count(db, votes, votes.c.member_id == member_id),
        proposals=_count(db, proposals, proposals.c.proposer_id == member_id),
        blocks=_count(db, blocks, blocks.c.member_id == member_id),
        messages=_count(db, direct_messages, direct_messages.c.sender_id == member_id),
        questions=_count(
            db,
            pending,
            pending.c.asked_id == member_id,
            pending.c.status == PendingStatus.OPEN.value,
        ),
        notify=_count(db, notify_optins, notify_optins.c.member_id == member_id) > 0,
    )


def name_pattern(name: str) -> re.Pattern[str] | None:
    """The whole name and each of its words of three letters or more, as whole words."""
    parts = {name.strip()} | set(name.split())
    words = sorted(
        (p for p in parts if len(p) >= 3 and p.casefold() not in _PARTICLES),
        key=len,
        reverse=True,
    )
    if not words:
        return None
    alternatives = "|".join(re.escape(word) for word in words)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def forget_member(db: Connection, member_id: int, placeholder: str, at: datetime) -> None:
    """letsbot.ports.Store.forget_member; the caller holds the member's lock."""
    name = db.execute(select(members.c.name).where(members.c.id == member_id)).scalar_one()
    people = db.execute(
        select(identities.c.platform, identities.c.user_id).where(
            identities.c.member_id == member_id
        )
    ).all()
    _scrub_descriptions(db, member_id, str(name), placeholder)
    for platform, user_id in people:
        _forget_person(db, str(platform), str(user_id))
    db.execute(delete(identities).where(identities.c.member_id == member_id))
    # Link and claim codes: theirs go; those they handed out as a coordinator stay, unsigned.
    db.execute(delete(access_codes).where(access_codes.c.member_id == member_id))
    db.execute(
        update(access_codes)
        .where(access_codes.c.created_by_id == member_id)
        .values(created_by_id=None)
    )
    db.execute(
        delete(pending).where(
            or_(
                pending.c.asked_id == member_id,
                pending.c.requested_by_id == member_id,
                pending.c.payer_id == member_id,
                pending.c.receiver_id == member_id,
            )
        )
    )
    owned = select(listings.c.id).where(listings.c.owner_id == member_id).scalar_subquery()
    db.execute(delete(listing_tags).where(listing_tags.c.listing_id.in_(owned)))
    db.execute(
        update(listings)
        .where(listings.c.owner_id == member_id)
        .values(
            text="",
            price=None,
            search_text="",
            withdrawn_at=func.coalesce(listings.c.withdrawn_at, at),
        )
    )
    db.execute(
        delete(direct_messages).where(
            or_(
                direct_messages.c.sender_id == member_id, direct_messages.c.receiver_id == member_id
            )
        )
    )
    db.execute(
        delete(blocks).where(or_(blocks.c.member_id == member_id, blocks.c.blocked_id == member_id))
    )
    db.execute(delete(rsvps).where(rsvps.c.member_id == member_id))
    db.execute(delete(notify_optins).where(notify_optins.c.member_id == member_id))
    # An open vote goes with the voter; a closed one stays as a count, without its reason.
    still_open = (
        select(proposals.c.id)
        .where(proposals.c.status == ProposalStatus.OPEN.value)
        .scalar_subquery()
    )
    db.execute(
        delete(votes).where(votes.c.member_id == member_id, votes.c.proposal_id.in_(still_open))
    )
    db.execute(
        delete(proposal_voters).where(
            proposal_voters.c.member_id == member_id, proposal_voters.c.proposal_id.in_(still_open)
        )
    )
    db.execute(update(votes).where(votes.c.member_id == member_id).values(objection=None))
    db.execute(
        update(members)
        .where(members.c.id == member_id)
        .values(
            name=placeholder,
            language=None,
            status=Status.INACTIVE.value,
            role=Role.MEMBER.value,
            min_balance=None,
            max_balance=None,
            forgotten_at=at,
        )
    )


def _scrub_descriptions(db: Connection, member_id: int, name: str, placeholder: str) -> None:
    """Their name, where someone wrote it in the description of one of their transfers,
    of their payments to partner groups, or of payment requests between groups to or
    from them."""
    pattern = name_pattern(name)
    if pattern is None:
        return
    for table, theirs in (
        (transfers, or_(transfers.c.payer_id == member_id, transfers.c.receiver_id == member_id)),
        (partner_outgoing, partner_outgoing.c.payer_id == member_id),
        (partner_requests, partner_requests.c.member_id == member_id),
    ):
        rows = db.execute(select(table.c.id, table.c.description).where(theirs)).all()
        for row_id, description in rows:
            scrubbed = pattern.sub(placeholder, description)
            if scrubbed != description:
                db.execute(update(table).where(table.c.id == row_id).values(description=scrubbed))


def _forget_person(db: Connection, platform: str, user_id: str) -> None:
    """What is kept about one chat account, in the core's tables and the adapter's."""
    # Event keys of direct chats may carry the person's id (Telegram: the chat id is
    # the user id). Those messages were handled long ago; their keys go, and a
    # transfer keeps a key of its own that names no one.
    keyed = _like_prefix(f"{platform}:{user_id}:")
    db.execute(
        update(transfers)
        .where(transfers.c.event_key.like(keyed, escape="\\"))
        .values(event_key=literal("forgotten:") + sql_cast(transfers.c.id, String))
    )
    db.execute(delete(processed).where(processed.c.key.like(keyed, escape="\\")))
    db.execute(delete(handles).where(handles.c.platform == platform, handles.c.user_id == user_id))
    db.execute(
        delete(held_messages).where(
            held_messages.c.platform == platform, held_messages.c.user_id == user_id
        )
    )
    # Adapter state names a person in its key (dm:<user>) or its value (direct:<user>,
    # or "<question> <user>" for a Matrix message that asked them).
    rows = db.execute(
        select(platform_state.c.key, platform_state.c.value).where(
            platform_state.c.platform == platform
        )
    ).all()
    for key, value in rows:
        named = value == f"direct:{user_id}" or value.endswith(f" {user_id}")
        if key.partition(":")[2] == user_id or named:
            db.execute(
                delete(platform_state).where(
                    platform_state.c.platform == platform, platform_state.c.key == key
                )
            )


class SqlPrivacy:
    """letsbot.ports.Privacy on a connection inside the unit of work's transaction."""

    def __init__(self, connection: Connection) -> None:
        self.db = connection

    def has_footprint(self, member_id: int) -> bool:
        traces = [
            select(transfers.c.id).where(
                (transfers.c.payer_id == member_id) | (transfers.c.receiver_id == member_id)
            ),
            select(listings.c.id).where(listings.c.owner_id == member_id),
            select(votes.c.member_id).where(votes.c.member_id == member_id),
            select(proposals.c.id).where(proposals.c.proposer_id == member_id),
            select(pending.c.id).where(
                (pending.c.asked_id == member_id) | (pending.c.requested_by_id == member_id)
            ),
            select(direct_messages.c.id).where(
                (direct_messages.c.sender_id == member_id)
                | (direct_messages.c.receiver_id == member_id)
            ),
            select(rsvps.c.member_id).where(rsvps.c.member_id == member_id),
            select(blocks.c.member_id).where(
                (blocks.c.member_id == member_id) | (blocks.c.blocked_id == member_id)
            ),
        ]
        return any(self.db.execute(trace.limit(1)).first() is not None for trace in traces)

    def footprint(self, member_id: int) -> Footprint:
        return footprint(self.db, member_id)

    def forget_member(self, member_id: int, placeholder: str, at: datetime) -> None:
        forget_member(self.db, member_id, placeholder, at)
