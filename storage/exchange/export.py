"""Moving out: every member, transfer, listing and event as CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Connection, Engine, func, select

from letsbot.domain import MemberCode
from storage.exchange.sheet import units
from storage.tables import events, identities, listing_tags, listings, members, rsvps, transfers

if TYPE_CHECKING:
    pass


def export_rows(
    engine: Engine,
    what: Literal["members", "transfers", "listings", "events"],
    prefix: str,
    decimals: int,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Everything needed to move to another system, amounts in units, times in UTC.

    ``now`` decides which listings count as expired (default: the current time).
    """
    with engine.connect() as connection:
        numbers = dict(connection.execute(select(members.c.id, members.c.number)).all())
        codes = {id_: MemberCode.show(prefix, number) for id_, number in numbers.items()}
        if what == "listings":
            rows = _listing_rows(connection, codes, now or datetime.now(UTC))
        elif what == "events":
            rows = _event_rows(connection, codes)
        elif what == "members":
            linked: dict[int, int] = dict(
                connection.execute(
                    select(identities.c.member_id, func.count()).group_by(identities.c.member_id)
                ).all()
            )
            rows = [
                {
                    "code": MemberCode.show(prefix, row.number),
                    "old_code": row.old_code,  # the code before the move-in, if it changed
                    "name": row.name,
                    "status": row.status,
                    "role": row.role,
                    "min": units(row.min_balance, decimals),
                    "max": units(row.max_balance, decimals),
                    "balance": units(row.balance, decimals),
                    "group_account": row.is_group_account,
                    "chat_accounts": linked.get(row.id, 0),
                }
                for row in connection.execute(select(members).order_by(members.c.number))
            ]
        else:
            rows = [
                {
                    "id": row.id,
                    "date": row.created_at.isoformat(),
                    "from": codes[row.payer_id],
                    "to": codes[row.receiver_id],
                    "amount": units(row.amount, decimals),
                    "description": row.description,
                    "kind": row.kind,
                    "reverses": row.reverses_id,
                }
                for row in connection.execute(select(transfers).order_by(transfers.c.id))
            ]
        connection.rollback()
    return rows


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _listing_rows(
    connection: Connection, codes: dict[int, str], now: datetime
) -> list[dict[str, Any]]:
    """Offers and wants, withdrawn and expired ones too, each with its tags."""
    tags: dict[int, list[str]] = {}
    for listing_id, label in connection.execute(
        select(listing_tags.c.listing_id, listing_tags.c.label).order_by(
            listing_tags.c.listing_id, listing_tags.c.tag
        )
    ):
        tags.setdefault(listing_id, []).append(label)
    rows = []
    for row in connection.execute(select(listings).order_by(listings.c.id)):
        if row.withdrawn_at is not None:
            status = "withdrawn"
        elif row.expires_at <= now:
            status = "expired"
        else:
            status = "live"
        rows.append(
            {
                "id": row.id,
                "kind": row.kind,
                "owner": codes[row.owner_id],
                "text": row.text,
                "tags": tags.get(row.id, []),
                "price": row.price,
                "created": _iso(row.created_at),
                "expires": _iso(row.expires_at),
                "withdrawn": _iso(row.withdrawn_at),
                "status": status,
            }
        )
    return rows


def _event_rows(connection: Connection, codes: dict[int, str]) -> list[dict[str, Any]]:
    """Every occurrence (a repeated event: one row each, sharing ``series``), with RSVPs."""
    answers: dict[tuple[int, bool], list[str]] = {}
    for event_id, member_id, going in connection.execute(
        select(rsvps.c.event_id, rsvps.c.member_id, rsvps.c.going).order_by(
            rsvps.c.event_id, rsvps.c.at, rsvps.c.member_id
        )
    ):
        answers.setdefault((event_id, going), []).append(codes[member_id])
    rows = connection.execute(select(events).order_by(events.c.starts_at, events.c.id)).all()
    # The first occurrence of a series is its id: the others point at it, it points nowhere.
    series = {row.series_id for row in rows if row.series_id is not None}
    return [
        {
            "id": row.id,
            "series": row.series_id or (row.id if row.id in series else None),
            "kind": row.kind,
            "title": row.title,
            "place": row.place,
            "starts": _iso(row.starts_at),
            "ends": _iso(row.ends_at),
            "status": row.status,
            "cancel_reason": row.cancel_reason,
            "created_by": codes[row.created_by_id],
            "created": _iso(row.created_at),
            "going": answers.get((row.id, True), []),
            "not_going": answers.get((row.id, False), []),
        }
        for row in rows
    ]


def write_rows(rows: Iterable[dict[str, Any]], out: io.TextIOBase | Any, fmt: str) -> None:
    listed = list(rows)
    if fmt == "json":
        json.dump(listed, out, ensure_ascii=False, indent=2, default=str)
        out.write("\n")
        return
    if not listed:
        return
    writer = csv.DictWriter(out, fieldnames=list(listed[0]))
    writer.writeheader()
    for row in listed:  # lists (tags, member codes) as words separated by spaces
        writer.writerow({k: " ".join(v) if isinstance(v, list) else v for k, v in row.items()})
