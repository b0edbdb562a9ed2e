"""Reading the CSV files an import takes: columns found by header, values parsed.

Exports of eLAS/eLAND, or our own CSV: comma or semicolon separated, UTF-8 or
Latin-1. A value that can't be read is reported with its line number.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from letsbot.domain import MemberCode, TransferKind
from letsbot.text import find_control

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
    "id",
    "reverses",
    "old_code",
    "owner",
    "text",
    "tags",
    "category",
    "price",
    "created",
    "expires",
    "withdrawn",
]
Kind = Literal["members", "transfers", "balances", "listings"]

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
    "id": "id",
    "transid": "id",
    "transactie id": "id",
    "reverses": "reverses",
    "owner": "owner",
    "text": "text",
    "category": "category",
    "expires": "expires",
    "created": "created",
    "old_code": "old_code",
    "tags": "tags",
    "price": "price",
    "withdrawn": "withdrawn",
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
_AMOUNT = re.compile(r"-?[0-9]{1,12}(?:[.,][0-9]{1,6})?", re.ASCII)
_THOUSANDS = re.compile(r"-?[0-9]{1,3}[.,][0-9]{3}", re.ASCII)


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
    """One table of a file: its rows as (physical line where the row starts, values by field).

    ``kind`` says what the rows are (None: not known), ``source`` names the export
    it was recognised as ("" for our own CSV or one read by its headers), and
    ``capped`` warns that the file may be cut off (eLAS wrote at most 5,000 transactions).
    """

    rows: list[tuple[int, dict[Field, str]]]
    kind: Kind | None = None
    source: str = ""
    capped: bool = False
    label: str = ""  # the file (and zip entry) the rows are from, for messages; "" if one


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
        found = names.get(plain_title(title))
        if found is None:
            continue
        taken = [i for i, f in columns.items() if f == found]
        if not taken:
            columns[index] = found
        elif plain_title(title) in FULL_NAMES:  # eLAS "name" is a nickname; the full name wins
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
    return Sheet(rows, guess_kind(set(columns.values())))


def guess_kind(fields: set[Field]) -> Kind | None:
    """What a table holds, from the fields found in its headers."""
    if {"date", "from", "to", "amount"} <= fields:
        return "transfers"
    if {"owner", "text"} <= fields:
        return "listings"
    if {"code", "name"} <= fields and fields & {"status", "role", "min", "max"}:
        return "members"
    if {"code", "balance"} <= fields:
        return "balances"
    if {"code", "name"} <= fields:
        return "members"
    return None


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


def plain_title(title: str) -> str:
    decomposed = unicodedata.normalize("NFKD", title.strip().lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def parse_code(text: str, prefix: str) -> int | None:
    """The member number of a code in a file: eLAS pads them (``DU - 0007``)."""
    return MemberCode.number_in(text, prefix, padded=True)


def parse_amount(text: str, decimals: int) -> int | None:
    """``1.234,5`` or ``12,50`` or ``12.5`` -> minor units; None if it isn't a number.

    One separator before exactly three digits (``1.000``, ``1,000``) groups thousands
    when amounts are whole numbers; with one or two decimals it could mean either, so
    it is refused rather than guessed.
    """
    cleaned = text.replace(" ", "")
    if "," in cleaned and "." in cleaned:  # 1.234,50: dots group thousands
        cleaned = cleaned.replace(".", "")
    elif _THOUSANDS.fullmatch(cleaned) is not None:
        if decimals == 0:
            cleaned = cleaned.replace(".", "").replace(",", "")
        elif decimals < 3:
            return None
    if _AMOUNT.fullmatch(cleaned) is None:
        return None
    try:
        value = Decimal(cleaned.replace(",", ".")).scaleb(decimals)
    except InvalidOperation:
        return None
    if value != value.to_integral_value():
        return None
    return int(value)


# A LETS history starts after this: earlier dates are typos (0001, 1900), which
# would also overflow a time zone's arithmetic.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)


def parse_date(text: str, tz: ZoneInfo) -> datetime | None:
    """ISO (with or without a zone), or day-first dates; local time of the group.

    None when it is no date, or one before 1970.
    """
    moment: datetime | None = None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        for pattern in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y"):
            try:
                moment = datetime.strptime(text.strip(), pattern)
                break
            except ValueError:
                continue
    if moment is None or moment.year < EARLIEST.year:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=tz)).astimezone(UTC)


def units(minor: int | None, decimals: int) -> str | None:
    """Minor units as the amount people read: ``1250`` with 2 decimals -> ``12.50``."""
    if minor is None:
        return None
    return str(Decimal(minor).scaleb(-decimals))
