"""Moving out: every member, transfer, listing and event as CSV or JSON.

A CSV cell that a spreadsheet would run as a formula (one starting with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return) gets a single quote in
front, as OWASP's advice on CSV injection has it; a plain number such as
``-12.50`` stays as it is. ``plain_cell`` undoes exactly that quote when our
own CSV is imported again, so a round trip is exact. JSON is written raw.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Connection, Engine, select

from letsbot.domain import MemberCode
from storage.exchange.sheet import units
from storage.tables import (
    events,
    listing_tags,
    listings,
    members,
    partner_incoming,
    partner_outgoing,
    partners,
    rsvps,
    transfers,
)

if TYPE_CHECKING:
    pass

What = Literal["members", "transfers", "listings", "events", "partner-payments"]

# The columns of each export, in order: an empty export still has its header.
# Members have no count of chat accounts: a link to a chat account can't move
# (it is made again with /claim), so it has no place in a file for moving.
COLUMNS: dict[str, tuple[str, ...]] = {
    "members": (
        "code",
        "old_code",
        "name",
        "status",
        "role",
        "min",
        "max",
        "balance",
        "group_account",
    ),
    "transfers": ("id", "date", "from", "to", "amount", "description", "kind", "reverses"),
    "listings": (
        "id",
        "kind",
        "owner",
        "text",
        "tags",
        "price",
        "created",
        "expires",
        "withdrawn",
        "status",
    ),
    "events": (
        "id",
        "series",
        "kind",
        "title",
        "place",
        "starts",
        "ends",
        "status",
        "cancel_reason",
        "created_by",
        "created",
        "going",
        "not_going",
    ),
    # Trade between groups: each payment sent to or received from a partner group,
    # by the id both bots know it by; "transfer" is the booking here.
    "partner-payments": (
        "direction",
        "partner",
        "payment_id",
        "date",
        "member",
        "other",
        "amount",
        "their_amount",
        "state",
        "reason",
        "transfer",
    ),
}
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?", re.ASCII)


def _quoted(cell: str) -> bool:
    """Whether ``cell`` gets a quote in front: it starts a formula, or it starts with
    a quote before such a cell (so that undoing the quote is exact, whatever the text)."""
    rest = cell.lstrip("'")
    return bool(rest) and rest[0] in _FORMULA and _NUMBER.fullmatch(rest) is None


def neutralised(cell: str) -> str:
    """``cell`` as a spreadsheet shows it as text, never runs it."""
    return "'" + cell if _quoted(cell) else cell


def plain_cell(cell: str) -> str:
    """The inverse of ``neutralised``: the text of a cell of our own CSV export."""
    return cell[1:] if cell.startswith("'") and _quoted(cell[1:]) else cell


def export_rows(
    engine: Engine,
    what: What,
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
        elif what == "partner-payments":
            rows = _partner_rows(connection, codes, decimals)
        elif what == "members":
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


def _partner_rows(
    connection: Connection, codes: dict[int, str], decimals: int
) -> list[dict[str, Any]]:
    """Payments sent (oldest first), then payments received (oldest first)."""
    prefixes = dict(connection.execute(select(partners.c.id, partners.c.prefix)).all())
    sent = [
        {
            "direction": "out",
            "partner": prefixes[row.partner_id],
            "payment_id": row.payment_id,
            "date": row.created_at.isoformat(),
            "member": codes[row.payer_id],
            "other": row.receiver_code,
            "amount": units(row.amount, decimals),
            "their_amount": row.their_amount,  # minor units of the partner's currency
            "state": row.state,
            "reason": row.reason,
            "transfer": row.transfer_id,
        }
        for row in connection.execute(select(partner_outgoing).order_by(partner_outgoing.c.id))
    ]
    received = connection.execute(
        select(partner_incoming, transfers.c.receiver_id, transfers.c.amount)
        .outerjoin(transfers, transfers.c.id == partner_incoming.c.transfer_id)
        .order_by(partner_incoming.c.created_at, partner_incoming.c.payment_id)
    )
    return sent + [
        {
            "direction": "in",
            "partner": prefixes[row.partner_id],
            "payment_id": row.payment_id,
            "date": row.created_at.isoformat(),
            "member": None if row.receiver_id is None else codes[row.receiver_id],
            "other": None,
            "amount": None if row.amount is None else units(row.amount, decimals),
            "their_amount": None,
            "state": row.status,
            "reason": row.reason,
            "transfer": row.transfer_id,
        }
        for row in received
    ]


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


def write_rows(
    rows: Iterable[dict[str, Any]],
    out: io.TextIOBase | Any,
    fmt: str,
    columns: Sequence[str] | None = None,
) -> None:
    """``rows`` as JSON, or as CSV with ``columns`` (default: the first row's keys)."""
    listed = list(rows)
    if fmt == "json":
        json.dump(listed, out, ensure_ascii=False, indent=2, default=str)
        out.write("\n")
        return
    names = list(columns) if columns is not None else list(listed[0]) if listed else []
    if not names:
        return
    writer = csv.DictWriter(out, fieldnames=names)
    writer.writeheader()
    for row in listed:
        writer.writerow({k: _cell(v) for k, v in row.items()})


def _cell(value: Any) -> Any:
    if isinstance(value, list):  # tags, member codes: words separated by spaces
        value = " ".join(value)
    return neutralised(value) if isinstance(value, str) else value
