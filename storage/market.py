"""Offers and wants, their tags, and the listings due for a notice."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    and_,
    case,
    exists,
    func,
    insert,
    select,
    update,
)

from letsbot.domain import (
    Listing,
    ListingKind,
    Member,
    Role,
    Status,
)
from storage.rows import TRADING
from storage.tables import (
    listing_notices,
    listing_tags,
    listings,
    members,
)


def _listing(row: Row[Any]) -> Listing:
    return Listing(
        id=row.id,
        kind=ListingKind(row.kind),
        owner_id=row.owner_id,
        text=row.text,
        price=row.price,
        created_at=row.created_at,
        expires_at=row.expires_at,
        notice_at=row.notice_at,
        withdrawn_at=row.withdrawn_at,
    )


# A listing with its owner in one row: the owner's columns carry a prefix.
_OWNER_COLUMNS = [column.label(f"owner__{column.name}") for column in members.c]


def _owner(row: Row[Any]) -> Member:
    values = row._mapping
    return Member(
        id=values["owner__id"],
        number=values["owner__number"],
        name=values["owner__name"],
        language=values["owner__language"],
        status=Status(values["owner__status"]),
        role=Role(values["owner__role"]),
        balance=values["owner__balance"],
        min_balance=values["owner__min_balance"],
        max_balance=values["owner__max_balance"],
        is_group_account=values["owner__is_group_account"],
        forgotten=values["owner__forgotten_at"] is not None,
    )


def _live(now: datetime) -> Any:
    """Shown: not withdrawn, not expired, and the owner still trades."""
    return and_(
        listings.c.withdrawn_at.is_(None),
        listings.c.expires_at > now,
        members.c.status.in_(TRADING),
    )


def _with_owner() -> Any:
    return select(listings, *_OWNER_COLUMNS).join(members, members.c.id == listings.c.owner_id)


class SqlMarket:
    """letsbot.ports.Market on a connection inside the unit of work's transaction."""

    def __init__(self, connection: Connection) -> None:
        self.db = connection

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
        listing_id = self.db.execute(
            insert(listings)
            .values(
                kind=kind.value,
                owner_id=owner_id,
                text=text,
                price=price,
                search_text=search_text,
                created_at=at,
                expires_at=expires_at,
                notice_at=notice_at,
                withdrawn_at=None,
            )
            .returning(listings.c.id)
        ).scalar_one()
        if tags:
            self.db.execute(
                insert(listing_tags),
                [{"listing_id": listing_id, "tag": tag, "label": label} for tag, label in tags],
            )
        found = self.listing(listing_id)
        assert found is not None
        return found

    def listing(self, listing_id: int) -> Listing | None:
        row = self.db.execute(select(listings).where(listings.c.id == listing_id)).first()
        return _listing(row) if row else None

    def set_listing_expiry(
        self, listing_id: int, expires_at: datetime, notice_at: datetime | None
    ) -> Listing:
        self.db.execute(
            update(listings)
            .where(listings.c.id == listing_id)
            .values(expires_at=expires_at, notice_at=notice_at)
        )
        found = self.listing(listing_id)
        assert found is not None
        return found

    def withdraw_listing(self, listing_id: int, at: datetime) -> bool:
        result = self.db.execute(
            update(listings)
            .where(listings.c.id == listing_id, listings.c.withdrawn_at.is_(None))
            .values(withdrawn_at=at)
        )
        return result.rowcount == 1

    def withdraw_listings_of(self, owner_id: int, at: datetime) -> int:
        result = self.db.execute(
            update(listings)
            .where(listings.c.owner_id == owner_id, listings.c.withdrawn_at.is_(None))
            .values(withdrawn_at=at)
        )
        return int(result.rowcount)

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
        conditions = [listings.c.kind == kind.value, _live(now)]
        conditions += [listings.c.search_text.contains(word, autoescape=True) for word in words]
        conditions += [
            exists().where(listing_tags.c.listing_id == listings.c.id, listing_tags.c.tag == tag)
            for tag in tags
        ]
        total = self.db.execute(
            select(func.count())
            .select_from(listings)
            .join(members, members.c.id == listings.c.owner_id)
            .where(*conditions)
        ).scalar_one()
        rows = self.db.execute(
            _with_owner()
            .where(*conditions)
            .order_by(listings.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return [(_listing(row), _owner(row)) for row in rows], int(total)

    def listings_of(self, owner_id: int, since: datetime) -> list[Listing]:
        rows = self.db.execute(
            select(listings)
            .where(
                listings.c.owner_id == owner_id,
                listings.c.withdrawn_at.is_(None),
                listings.c.expires_at > since,
            )
            .order_by(listings.c.id.desc())
        )
        return [_listing(row) for row in rows]

    def count_live_listings(self, owner_id: int, now: datetime) -> int:
        return int(
            self.db.execute(
                select(func.count()).where(
                    listings.c.owner_id == owner_id,
                    listings.c.withdrawn_at.is_(None),
                    listings.c.expires_at > now,
                )
            ).scalar_one()
        )

    def tag_counts(self, now: datetime, limit: int) -> list[tuple[str, int, int]]:
        offers = func.sum(case((listings.c.kind == ListingKind.OFFER.value, 1), else_=0))
        wants = func.sum(case((listings.c.kind == ListingKind.WANT.value, 1), else_=0))
        rows = self.db.execute(
            select(func.min(listing_tags.c.label), offers, wants)
            .select_from(listing_tags)
            .join(listings, listings.c.id == listing_tags.c.listing_id)
            .join(members, members.c.id == listings.c.owner_id)
            .where(_live(now))
            .group_by(listing_tags.c.tag)
            .order_by(func.count().desc(), listing_tags.c.tag)
            .limit(limit)
        )
        return [(row[0], int(row[1]), int(row[2])) for row in rows]

    def new_listings(
        self, start: datetime, end: datetime, now: datetime
    ) -> list[tuple[Listing, Member]]:
        rows = self.db.execute(
            _with_owner()
            .where(listings.c.created_at >= start, listings.c.created_at < end, _live(now))
            .order_by(listings.c.id)
        )
        return [(_listing(row), _owner(row)) for row in rows]

    def notices_due(self, now: datetime) -> list[tuple[Listing, Member]]:
        rows = self.db.execute(
            _with_owner()
            .where(listings.c.notice_at <= now, _live(now), self._unclaimed_notice())
            .order_by(listings.c.notice_at, listings.c.id)
        )
        return [(_listing(row), _owner(row)) for row in rows]

    def next_notice(self, after: datetime, until: datetime) -> datetime | None:
        found: datetime | None = self.db.execute(
            select(func.min(listings.c.notice_at))
            .join(members, members.c.id == listings.c.owner_id)
            .where(
                listings.c.notice_at > after,
                listings.c.notice_at <= until,
                _live(after),
                self._unclaimed_notice(),
            )
        ).scalar_one()
        if found is None:
            return None
        return found.replace(tzinfo=UTC) if found.tzinfo is None else found.astimezone(UTC)

    def _unclaimed_notice(self) -> Any:
        return ~exists().where(
            listing_notices.c.listing_id == listings.c.id,
            listing_notices.c.expires_at == listings.c.expires_at,
        )
