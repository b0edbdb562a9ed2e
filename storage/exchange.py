"""Moving in and out: CSV exports of eLAS/eLAND in, our own CSV or JSON out.

A real import is one transaction (all or nothing) and idempotent: members are
keyed on their code, transfers on a fingerprint of their row, so importing
the same file twice adds nothing. A dry run reports what would happen and
every problem with its line number, and changes nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, func, insert, select, update

from letsbot.domain import GroupLimits, Status, TransferKind
from letsbot.text import find_control
from storage.tables import events, identities, listing_tags, listings, members, rsvps, transfers

if TYPE_CHECKING:
    from _csv import Reader as CsvReader

Field = Literal[
    "code",
    "name",
    "status",
    "role",
    "min",
    "max",
    "date",
    "from",
    "to",
    "amount",
    "description",
    "kind",
    "balance",
]

# Header spellings seen in eLAS/eLAND exports and their Dutch or English variants.
HEADERS: dict[str, Field] = {
    "code": "code",
    "letscode": "code",
    "ledencode": "code",
    "fullname": "name",
    "full_name": "name",
    "volledige naam": "name",
    "naam": "name",
    "name": "name",
    "status": "status",
    "accountrole": "role",
    "role": "role",
    "rol": "role",
    "min": "min",
    "max": "max",
    "kind": "kind",
    "minlimit": "min",
    "min_limit": "min",
    "minimum": "min",
    "ondergrens": "min",
    "maxlimit": "max",
    "max_limit": "max",
    "maximum": "max",
    "bovengrens": "max",
    "date": "date",
    "datum": "date",
    "cdate": "date",
    "transaction date": "date",
    "from": "from",
    "from code": "from",
    "van": "from",
    "van code": "from",
    "letscode_from": "from",
    "to": "to",
    "to code": "to",
    "naar": "to",
    "aan": "to",
    "naar code": "to",
    "letscode_to": "to",
    "amount": "amount",
    "bedrag": "amount",
    "aantal": "amount",
    "description": "description",
    "omschrijving": "description",
    "beschrijving": "description",
    "balance": "balance",
    "saldo": "balance",
    "stand": "balance",
    "balans": "balance",
    "beginsaldo": "balance",
    "opening balance": "balance",
}
FULL_NAMES = {"fullname", "full_name", "volledige naam"}
MEMBER_FIELDS: tuple[Field, ...] = ("code", "name")
TRANSFER_FIELDS: tuple[Field, ...] = ("date", "from", "to", "amount")
BALANCE_FIELDS: tuple[Field, ...] = ("code", "balance")

# eLAS status numbers: 0 inactive, 1 active, 2 leaving, 3 newcomer, 4 secretariat,
# 5 info pack, 6 info evening, 7 external (an account of another group).
STATUSES = {
    "0": "inactive",
    "1": "active",
    "2": "leaving",
    "3": "active",
    "4": "active",
    "5": "candidate",
    "6": "candidate",
    "actief": "active",
    "active": "active",
    "inactief": "inactive",
    "inactive": "inactive",
    "uitstapper": "leaving",
    "leaving": "leaving",
    "instapper": "active",
    "kandidaat": "candidate",
    "candidate": "candidate",
}
KINDS = {kind.value for kind in TransferKind}
_CODE = re.compile(r"(?:(?P<prefix>[A-Za-z]{1,8})\s*-?\s*)?0*(?P<number>[0-9]{1,6})", re.ASCII)
_AMOUNT = re.compile(r"-?[0-9]{1,12}(?:[.,][0-9]{1,6})?", re.ASCII)


class ImportError_(Exception):
    """A file that can't be read at all: one line for the volunteer."""


@dataclass
class Report:
    """What an import did (or would do), and what was wrong, by line."""

    added: int = 0
    unchanged: int = 0
    problems: list[str] = field(default_factory=list)

    def problem(self, line: int, text: str) -> None:
        self.problems.append(f"line {line}: {text}")


@dataclass(frozen=True)
class Sheet:
    rows: list[tuple[int, dict[Field, str]]]  # (line number, values by field)


def read_sheet(
    path: Path, required: Sequence[Field], mapping: dict[str, Field] | None = None
) -> Sheet:
    """A CSV file, comma or semicolon separated, UTF-8 or Latin-1, columns found by header."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:  # what Excel on Windows writes: its curly quotes and € are no control characters
            text = raw.decode("cp1252")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
    first = text.splitlines()[0] if text.strip() else ""
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        return _read_rows(path, reader, required, mapping)
    except csv.Error as error:
        why = f"not readable as CSV ({error})"
        if "field limit" in str(error):
            limit = csv.field_size_limit()
            why = f"a field is longer than {limit} characters; is this the right file?"
        elif "new-line character" in str(error):  # a lone CR: an invisible control character
            why = "a carriage return (U+000D) inside a value; remove it from the file"
        raise ImportError_(f"{path}: line {reader.line_num}: {why}") from None


def _read_rows(
    path: Path,
    reader: CsvReader,
    required: Sequence[Field],
    mapping: dict[str, Field] | None,
) -> Sheet:
    try:
        header = next(reader)
    except StopIteration:
        raise ImportError_(f"{path}: the file is empty") from None
    names = {**HEADERS, **{k.lower(): v for k, v in (mapping or {}).items()}}
    columns: dict[int, Field] = {}
    for index, title in enumerate(header):
        found = names.get(_plain(title))
        if found is None:
            continue
        taken = [i for i, f in columns.items() if f == found]
        if not taken:
            columns[index] = found
        elif _plain(title) in FULL_NAMES:  # eLAS "name" is a nickname; the full name wins
            del columns[taken[0]]
            columns[index] = found
    missing = [f for f in required if f not in columns.values()]
    if missing:
        shown = [title[:40] for title in header[:30]]  # one readable line, whatever the file
        raise ImportError_(
            f"{path}: no column for {', '.join(missing)} (headers: {', '.join(shown)});"
            " name it with --map COLUMN=FIELD"
        )
    rows = []
    start = reader.line_num + 1
    for values in reader:
        # The line a row starts on, as an editor counts: a quoted value may hold line breaks.
        line, start = start, reader.line_num + 1
        if not any(v.strip() for v in values):
            continue
        rows.append((line, {f: values[i].strip() for i, f in columns.items() if i < len(values)}))
    return Sheet(rows)


def control_problem(values: dict[Field, str]) -> str | None:
    """A row with an invisible control character: refused, since no one sees what it says."""
    for name, value in values.items():
        found = find_control(value)
        if found is not None:
            return (
                f"the {name} has an invisible control character ({found.code}) at position"
                f" {found.position}; remove it from the file"
            )
    return None


def _plain(title: str) -> str:
    decomposed = unicodedata.normalize("NFKD", title.strip().lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def parse_code(text: str, prefix: str) -> int | None:
    match = _CODE.fullmatch(text.strip())
    if match is None:
        return None
    if match["prefix"] and match["prefix"].upper() != prefix.upper():
        return None
    return int(match["number"])


def parse_amount(text: str, decimals: int) -> int | None:
    """``1.234,5`` or ``12,50`` or ``12.5`` -> minor units; None if it isn't a number."""
    cleaned = text.replace(" ", "")
    if "," in cleaned and "." in cleaned:  # 1.234,50: dots group thousands
        cleaned = cleaned.replace(".", "")
    if _AMOUNT.fullmatch(cleaned) is None:
        return None
    try:
        value = Decimal(cleaned.replace(",", ".")).scaleb(decimals)
    except InvalidOperation:
        return None
    if value != value.to_integral_value():
        return None
    return int(value)


def parse_date(text: str, tz: ZoneInfo) -> datetime | None:
    """ISO (with or without a zone), or day-first dates; local time of the group."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        pass
    else:
        return (moment if moment.tzinfo else moment.replace(tzinfo=tz)).astimezone(UTC)
    for pattern in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y"):
        try:
            return datetime.strptime(text.strip(), pattern).replace(tzinfo=tz).astimezone(UTC)
        except ValueError:
            continue
    return None


def import_members(
    engine: Engine,
    sheet: Sheet,
    *,
    prefix: str,
    decimals: int,
    dry_run: bool,
    now: datetime,
) -> Report:
    report = Report()
    with engine.begin() as connection:
        known = set(connection.execute(select(members.c.number)).scalars())
        seen: set[int] = set()
        for line, values in sheet.rows:
            if (problem := control_problem(values)) is not None:
                report.problem(line, problem)
                continue
            number = parse_code(values.get("code", ""), prefix)
            name = values.get("name", "")
            status = STATUSES.get(values.get("status", "1").strip().lower() or "1")
            low = parse_amount(values["min"], decimals) if values.get("min") else None
            high = parse_amount(values["max"], decimals) if values.get("max") else None
            if number == 0 or number in known:
                report.unchanged += 1  # the group account, or imported before
            elif number is None:
                report.problem(line, f"member code {values.get('code', '')!r} is not {prefix}-NNN")
            elif not name:
                report.problem(line, "no name")
            elif status is None:
                report.problem(line, f"status {values.get('status')!r} unknown")
            elif (values.get("min") and low is None) or (values.get("max") and high is None):
                report.problem(line, "limits are not numbers")
            elif number in seen:
                report.problem(line, f"code {prefix}-{number:03d} twice in the file")
            else:
                seen.add(number)
                report.added += 1
                role = values.get("role", "").lower()
                role = "coordinator" if role in ("admin", "coordinator") else "member"
                connection.execute(
                    insert(members).values(
                        number=number,
                        name=name[:200],
                        language=None,
                        status=status,
                        role=role,
                        is_group_account=False,
                        balance=0,
                        min_balance=low,
                        max_balance=high,
                        created_at=now,
                    )
                )
        if dry_run or report.problems:
            connection.rollback()
            if report.problems and not dry_run:
                report.added = 0
    return report


def import_transfers(
    engine: Engine,
    sheet: Sheet,
    *,
    prefix: str,
    decimals: int,
    tz: ZoneInfo,
    dry_run: bool,
) -> Report:
    report = Report()
    with engine.begin() as connection:
        ids = dict(connection.execute(select(members.c.number, members.c.id)).all())
        keys = set(connection.execute(select(transfers.c.event_key)).scalars())
        for line, values in sheet.rows:
            if (problem := control_problem(values)) is not None:
                report.problem(line, problem)
                continue
            payer = parse_code(values.get("from", ""), prefix)
            receiver = parse_code(values.get("to", ""), prefix)
            amount = parse_amount(values.get("amount", ""), decimals)
            when = parse_date(values.get("date", ""), tz)
            description = values.get("description", "") or "import"
            kind = values.get("kind") if values.get("kind") in KINDS else "payment"
            if payer not in ids or receiver not in ids:
                report.problem(line, "a member code is unknown: import the members first")
            elif payer == receiver:
                report.problem(line, "payer and receiver are the same member")
            elif amount is None or amount <= 0:
                report.problem(
                    line, f"amount {values.get('amount', '')!r} is not a positive number"
                )
            elif when is None:
                report.problem(line, f"date {values.get('date', '')!r} is not a date")
            else:
                fingerprint = "|".join(
                    [when.isoformat(), str(payer), str(receiver), str(amount), description]
                )
                key = "import:" + hashlib.sha256(fingerprint.encode()).hexdigest()[:40]
                if key in keys:
                    report.unchanged += 1
                    continue
                keys.add(key)
                report.added += 1
                payer_id, receiver_id = ids[payer], ids[receiver]
                connection.execute(
                    insert(transfers).values(
                        payer_id=payer_id,
                        receiver_id=receiver_id,
                        amount=amount,
                        description=description[:500],
                        kind=kind,
                        created_at=when,
                        booked_by_id=None,
                        reverses_id=None,
                        event_key=key,
                    )
                )
                for member_id, change in ((payer_id, -amount), (receiver_id, amount)):
                    connection.execute(
                        update(members)
                        .where(members.c.id == member_id)
                        .values(balance=members.c.balance + change)
                    )
        if dry_run or report.problems:
            connection.rollback()
            if report.problems and not dry_run:
                report.added = 0
    return report


OPENING = "opening:"  # event_key prefix: one opening balance per member, ever


@dataclass
class BalancesReport(Report):
    """An import of balances: the opening transfers, and what the file sums to."""

    booked: list[str] = field(default_factory=list)  # one line per opening transfer
    zero: int = 0  # members at zero: nothing to book
    total: int = 0  # the file's balances summed, minor units
    group_change: int = 0  # what the group account's balance moves by


def import_balances(
    engine: Engine,
    sheet: Sheet,
    *,
    prefix: str,
    decimals: int,
    limits: GroupLimits,
    via_group_account: bool,
    dry_run: bool,
    now: datetime,
    description: str,
) -> BalancesReport:
    """One opening transfer per member against the group account (``PREFIX-000``).

    An opening balance is recognised by its event key ``opening:<number>``: a
    member has at most one, so importing the same file again books nothing,
    and a different balance for a member already opened is a problem, never a
    second booking. A line for the group account itself is summed but not
    booked: the group account is the other side of every opening transfer.
    """
    report = BalancesReport()
    with engine.begin() as connection:
        # Every account locked in one order, as lock_members does (PostgreSQL; SQLite
        # holds the write lock already): NO KEY UPDATE lets the bot's inserts through.
        everyone = select(members).order_by(members.c.id).with_for_update(key_share=True)
        rows = {row.number: row for row in connection.execute(everyone)}
        kas = next(row for row in rows.values() if row.is_group_account)
        opened = {
            row.event_key: row
            for row in connection.execute(
                select(transfers).where(transfers.c.event_key.startswith(OPENING))
            )
        }
        # Accounts with other bookings: an opening balance must come first.
        others = ~transfers.c.event_key.startswith(OPENING)
        traded: set[int] = set()
        for side in (transfers.c.payer_id, transfers.c.receiver_id):
            traded |= set(connection.execute(select(side).where(others).distinct()).scalars())
        seen: set[int] = set()
        plan: list[tuple[int, Any, int]] = []
        for line, values in sheet.rows:
            if (problem := control_problem(values)) is not None:
                report.problem(line, problem)
                continue
            number = parse_code(values.get("code", ""), prefix)
            amount = parse_amount(values.get("balance", ""), decimals)
            if number is None:
                report.problem(line, f"member code {values.get('code', '')!r} is not {prefix}-NNN")
                continue
            code = f"{prefix}-{number:03d}"
            if number not in rows:
                report.problem(line, f"{code} is unknown: import the members first")
            elif number in seen:
                report.problem(line, f"{code} twice in the file")
            elif amount is None:
                report.problem(line, f"balance {values.get('balance', '')!r} is not a number")
            else:
                seen.add(number)
                report.total += amount
                problem = _opening_problem(
                    rows[number], amount, opened, traded, limits, code, decimals
                )
                if problem:
                    report.problem(line, problem)
                elif rows[number].is_group_account:
                    continue  # its balance follows from the others
                elif f"{OPENING}{number}" in opened:
                    report.unchanged += 1
                elif amount == 0:
                    report.zero += 1
                else:
                    plan.append((line, rows[number], amount))
        if report.total and not via_group_account:
            total, rest = units(report.total, decimals), units(-report.total, decimals)
            report.problems.append(
                f"the balances sum to {total}, not 0 (a difference of {total});"
                f" add a line for the group account {prefix}-000 with {rest},"
                " or use --via-group-account to let the group account carry the difference"
            )
        report.group_change = -sum(amount for _, _, amount in plan)
        for line, member, amount in plan:
            code = f"{prefix}-{member.number:03d}"
            way = "gets {} from" if amount > 0 else "pays {} to"
            report.booked.append(
                f"line {line}: {code} {member.name} {way.format(units(abs(amount), decimals))}"
                f" the group account {prefix}-000"
            )
        report.added = len(plan)
        if dry_run or report.problems:
            connection.rollback()
            if report.problems and not dry_run:
                report.added, report.booked, report.group_change = 0, [], 0
            return report
        for _, member, amount in plan:
            payer, receiver = (kas, member) if amount > 0 else (member, kas)
            connection.execute(
                insert(transfers).values(
                    payer_id=payer.id,
                    receiver_id=receiver.id,
                    amount=abs(amount),
                    description=description[:500],
                    kind="opening",
                    created_at=now,
                    booked_by_id=None,
                    reverses_id=None,
                    event_key=f"{OPENING}{member.number}",
                )
            )
            connection.execute(
                update(members)
                .where(members.c.id == member.id)
                .values(balance=members.c.balance + amount)
            )
        if plan:
            connection.execute(
                update(members)
                .where(members.c.id == kas.id)
                .values(balance=members.c.balance + report.group_change)
            )
    return report


def _opening_problem(
    member: Any,
    amount: int,
    opened: dict[str, Any],
    traded: set[int],
    limits: GroupLimits,
    code: str,
    decimals: int,
) -> str | None:
    """Why this member's opening balance can't be booked; None when it can (or is there)."""
    if member.is_group_account:
        return None
    earlier = opened.get(f"{OPENING}{member.number}")
    if earlier is not None:
        booked = earlier.amount if earlier.receiver_id == member.id else -earlier.amount
        if booked == amount:
            return None
        return (
            f"{code} has an opening balance of {units(booked, decimals)} already"
            f" (transfer #{earlier.id}), not {units(amount, decimals)};"
            " correct the difference with a booking (/book), not a second import"
        )
    if amount == 0:
        return None
    if member.id in traded:
        return (
            f"{code} has transfers already; an opening balance must be the first booking"
            " of an account"
        )
    after = member.balance + amount
    if limits.soft or member.status == Status.INACTIVE.value:
        return None
    low = limits.min_balance if member.min_balance is None else member.min_balance
    high = limits.max_balance if member.max_balance is None else member.max_balance
    if after < low:
        return (
            f"{code}: balance {units(after, decimals)} is below its minimum"
            f" {units(low, decimals)}; give the member a lower limit first"
            " (minlimit in the members file, or /limit)"
        )
    if after > high:
        return (
            f"{code}: balance {units(after, decimals)} is above its maximum"
            f" {units(high, decimals)}; give the member a higher limit first"
            " (maxlimit in the members file, or /limit)"
        )
    return None


def units(minor: int | None, decimals: int) -> str | None:
    """Minor units as the amount people read: ``1250`` with 2 decimals -> ``12.50``."""
    if minor is None:
        return None
    return str(Decimal(minor).scaleb(-decimals))


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
        codes = {id_: f"{prefix}-{number:03d}" for id_, number in numbers.items()}
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
                    "code": f"{prefix}-{row.number:03d}",
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
                    "from": f"{prefix}-{numbers[row.payer_id]:03d}",
                    "to": f"{prefix}-{numbers[row.receiver_id]:03d}",
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
