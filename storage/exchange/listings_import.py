"""Importing offers and wants: eLAS/eLAND messages, or our own ``letsbot export listings``.

Keyed on owner, kind, text and creation time: importing a file again adds
nothing. A listing of our own export keeps its id when that id is free, so
export, import and export again give the same file. A category becomes a tag.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, func, insert, select, text

from letsbot.domain import ListingKind
from letsbot.errors import Refusal
from letsbot.market import MAX_TAGS, PRICE_LIMIT, TAG_LIMIT, TEXT_LIMIT, read_tags
from letsbot.text import fold
from storage.exchange.codes import CodeBook
from storage.exchange.export import plain_cell
from storage.exchange.members_import import begun, undo
from storage.exchange.sheet import Field, Report, Sheet, control_problem, parse_date
from storage.tables import listing_tags, listings, members

# eLAS msg_type 1 is an offer, 0 a want; eLAND and our export write the words.
KINDS = {
    "1": ListingKind.OFFER,
    "offer": ListingKind.OFFER,
    "aanbod": ListingKind.OFFER,
    "o": ListingKind.OFFER,
    "0": ListingKind.WANT,
    "want": ListingKind.WANT,
    "vraag": ListingKind.WANT,
    "w": ListingKind.WANT,
}
_NOT_IN_TAG = re.compile(r"[^\w-]+")


def category_tag(category: str) -> str | None:
    """``Vervoer & Fietsen`` -> ``vervoer-fietsen``: a tag as members type them."""
    tag = _NOT_IN_TAG.sub("-", category.strip().lower()).strip("-_")[:TAG_LIMIT].strip("-_")
    return tag if any(ch.isalpha() for ch in tag) else None


def import_listings(
    bind: Engine | Connection,
    sheet: Sheet,
    *,
    prefix: str,
    tz: ZoneInfo,
    dry_run: bool,
    now: datetime,
    days: int,
    notice_at: Callable[[datetime], datetime | None],
) -> Report:
    """Add the file's offers and wants; ``days``: how long one without an expiry lives.

    ``notice_at(expires)``: when its owner is told it is about to expire.
    """
    report = Report()
    with begun(bind) as connection:
        book = CodeBook.load(connection, prefix)
        ids = dict(connection.execute(select(members.c.number, members.c.id)).all())
        known = {
            (row.owner_id, row.kind, row.text, row.created_at)
            for row in connection.execute(
                select(listings.c.owner_id, listings.c.kind, listings.c.text, listings.c.created_at)
            )
        }
        taken = set(connection.execute(select(listings.c.id)).scalars())
        kept_ids = False
        for line, cells in sheet.rows:
            values = {name: plain_cell(value) for name, value in cells.items()}
            found = _read(line, values, book, tz, now, days, report)
            if found is None:
                continue
            number, row, tags = found
            row["owner_id"] = ids[number]
            key = (row["owner_id"], row["kind"], row["text"], row["created_at"])
            if key in known:
                report.unchanged += 1
                continue
            known.add(key)
            wanted = values.get("id", "")
            free = wanted.isascii() and wanted.isdigit() and 0 < int(wanted) < 2**31
            if free and int(wanted) not in taken:
                row["id"] = int(wanted)
                kept_ids = True
            live = row["withdrawn_at"] is None and row["expires_at"] > now
            row["notice_at"] = notice_at(row["expires_at"]) if live else None
            listing_id = connection.execute(
                insert(listings).values(**row).returning(listings.c.id)
            ).scalar_one()
            taken.add(listing_id)
            if tags:
                connection.execute(
                    insert(listing_tags),
                    [{"listing_id": listing_id, "tag": t, "label": label} for t, label in tags],
                )
            report.added += 1
        if kept_ids and connection.dialect.name == "postgresql":
            # Ids given explicitly don't move the sequence: the next listing would collide.
            top = connection.execute(select(func.max(listings.c.id))).scalar_one()
            connection.execute(
                text("SELECT setval(pg_get_serial_sequence('listings', 'id'), :top)"),
                {"top": top},
            )
        if dry_run or report.problems:
            undo(bind, connection)
            if not dry_run:
                report.added = 0
    return report


def _read(
    line: int,
    values: dict[Field, str],
    book: CodeBook,
    tz: ZoneInfo,
    now: datetime,
    days: int,
    report: Report,
) -> tuple[int, dict[str, Any], list[tuple[str, str]]] | None:
    """A row as (owner's number, listing columns, tags), or None with its problem reported."""
    if (problem := control_problem(values)) is not None:
        report.problem(line, problem)
        return None
    kind = KINDS.get(values.get("kind", "").strip().lower())
    number = book.resolve(values.get("owner", ""))
    body = values.get("text", "").strip()
    price = values.get("price", "").strip() or None
    moments: dict[str, datetime | None] = {}
    for name in ("created", "expires", "withdrawn"):
        written = values.get(name, "").strip()
        moments[name] = parse_date(written, tz) if written else None
        if written and moments[name] is None:
            report.problem(line, f"{name} {written!r} is not a date")
            return None
    if kind is None:
        report.problem(line, f"kind {values.get('kind', '')!r} is neither offer nor want")
    elif number is None:
        owner = values.get("owner", "")
        report.problem(line, f"owner {owner!r} is no member here (import the members first)")
    elif not body:
        report.problem(line, "no text")
    elif len(body) > TEXT_LIMIT:
        report.problem(line, f"the text is longer than {TEXT_LIMIT} characters")
    elif price is not None and len(price) > PRICE_LIMIT:
        report.problem(line, f"the price is longer than {PRICE_LIMIT} characters")
    else:
        tag = category_tag(values.get("category", ""))
        if tag is not None and f"#{tag}" not in body.lower().split():
            body = f"{body} #{tag}"
        if "tags" in values:  # our own export: the tags as they were
            labels = values["tags"].split()
            tags = list({fold(label)[:40]: label.lower()[:40] for label in labels}.items())
        else:
            try:
                tags = read_tags(body)
            except Refusal:
                report.problem(line, f"more than {MAX_TAGS} tags, or a tag too long")
                return None
        created = moments["created"] or now
        expires = moments["expires"] or max(created, now) + timedelta(days=days)
        row: dict[str, Any] = {
            "kind": kind.value,
            "text": body,
            "price": price,
            "search_text": fold(f"{body} {price or ''}"),
            "created_at": created,
            "expires_at": expires,
            "withdrawn_at": moments["withdrawn"],
        }
        return number, row, tags
    return None
