"""Which file is which: a sheet of members, transfers, balances or listings.

A small reader: columns found by header (``sheet.read_sheet``), the kind guessed
from the fields a file has.
"""

from __future__ import annotations

import json
from pathlib import Path

from storage.exchange.sheet import HEADERS, Field, ImportError_, Sheet, read_sheet

# Our own export's columns beyond those of eLAS/eLAND (``letsbot export``).
OWN_HEADERS: dict[str, Field] = {
    name: name
    for name in (
        "old_code",
        "id",
        "owner",
        "text",
        "tags",
        "category",
        "price",
        "created",
        "expires",
        "withdrawn",
    )
}


def read_source(path: Path, mapping: dict[str, Field] | None) -> list[Sheet]:
    """The sheets in ``path``, each with the kind it holds (None: not recognised)."""
    names = {**OWN_HEADERS, **(mapping or {})}
    if path.suffix.lower() == ".json":
        sheet = _read_json(path, names)
    else:
        sheet = read_sheet(path, (), names)
    found: set[str] = {name for _, values in sheet.rows for name in values}
    return [Sheet(sheet.rows, kind=_kind(found), source=sheet.source)]


def _kind(found: set[str]) -> str | None:
    if {"owner", "text"} <= found:
        return "listings"
    if {"from", "to", "amount"} <= found:
        return "transfers"
    if {"code", "name"} <= found:
        return "members"
    if {"code", "balance"} <= found:
        return "balances"
    return None


def _read_json(path: Path, names: dict[str, Field]) -> Sheet:
    try:
        listed = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ImportError_(f"{path}: not readable as JSON ({error})") from None
    if not isinstance(listed, list) or not all(isinstance(row, dict) for row in listed):
        raise ImportError_(f"{path}: expected a JSON list of objects")
    every = {**HEADERS, **names}
    rows = []
    for number, row in enumerate(listed, start=1):
        values: dict[Field, str] = {}
        for key, value in row.items():
            field = every.get(str(key).strip().lower())
            if field is None or value is None:
                continue
            values[field] = " ".join(map(str, value)) if isinstance(value, list) else str(value)
        rows.append((number, values))
    return Sheet(rows)
