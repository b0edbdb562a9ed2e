"""Importing our own export of events again: every occurrence, its series, its answers.

The file is what ``letsbot export events`` writes as CSV. Each event keeps
its number (members know "activity 12"), so a series still points at its
first occurrence and the export of the copy is the export of the original.
An event already there with the same content is left as it is; one with
other content under the same number is a problem. All or nothing, as every
import; a dry run changes nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, text

from letsbot.domain import EventKind, EventStatus
from letsbot.text import find_control
from storage.exchange.export import COLUMNS, plain_cell
from storage.exchange.importing import Resolve, code_reader
from storage.exchange.sheet import ImportError_, Report
from storage.tables import events, members, rsvps
from storage.uow import SqlStore

EventRows = list[tuple[int, dict[str, str]]]  # (line number, values by column)
_LONGEST = 200  # title, place and reason: the columns' width
_KINDS = {kind.value for kind in EventKind}
_STATUSES = {status.value for status in EventStatus}


@dataclass
class EventsReport(Report):
    answers: int = 0  # RSVPs added with the events


def read_events(path: Path) -> EventRows:
    """The rows of our CSV export of events, each with the line it starts on."""
    try:
        content = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ImportError_(f"{path}: not UTF-8 text (our export is)") from None
    reader = csv.reader(io.StringIO(content))
    try:
        header = next(reader, None)
        if header is None:
            raise ImportError_(f"{path}: the file is empty")
        missing = [name for name in COLUMNS["events"] if name not in header]
        if missing:
            raise ImportError_(
                f"{path}: no column for {', '.join(missing)}; is this an export of events?"
            )
        rows: EventRows = []
        start = reader.line_num + 1
        for values in reader:
            line, start = start, reader.line_num + 1
            if any(value.strip() for value in values):
                rows.append((line, dict(zip(header, values, strict=False))))
    except csv.Error as error:
        raise ImportError_(
            f"{path}: line {reader.line_num}: not readable as CSV ({error})"
        ) from None
    return rows


@dataclass(frozen=True)
class _Event:
    line: int
    values: dict[str, Any]  # the columns of the events table
    going: tuple[int, ...]  # member ids, in the file's order
    not_going: tuple[int, ...]


def import_events(
    engine: Engine,
    rows: Sequence[tuple[int, Mapping[str, str]]],
    *,
    prefix: str,
    dry_run: bool,
    resolve: Resolve | None = None,
) -> EventsReport:
    """Add each event of the file, with its answers, under its own number.

    The time of an answer is not exported: each gets its event's creation
    time, a second apart in the file's order, so the export lists them alike.
    """
    read = resolve or code_reader(prefix)
    report = EventsReport()
    with engine.begin() as connection:
        ids = dict(connection.execute(select(members.c.number, members.c.id)).all())
        # Every account locked, in the one lock order, as an import of transfers does:
        # a second import of the same file waits, then finds every event there.
        SqlStore(connection).members.lock_members(list(ids.values()))
        parsed: list[_Event] = []
        seen: dict[int, int] = {}
        for line, raw in rows:
            found = _read(line, {k: plain_cell(v) for k, v in raw.items()}, read, ids)
            if isinstance(found, str):
                report.problem(line, found)
            elif found.values["id"] in seen:
                number = found.values["id"]
                report.problem(line, f"event {number} twice in the file (line {seen[number]} too)")
            else:
                seen[found.values["id"]] = line
                parsed.append(found)
        for event in parsed:
            _add(connection, event, report)
        if dry_run or report.problems:
            connection.rollback()
            if report.problems and not dry_run:
                report.added = report.answers = 0
            return report
        if report.added and connection.dialect.name == "postgresql":
            # Numbers given by hand leave the sequence behind: the next event follows them.
            connection.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence('events', 'id'),"
                    " (SELECT max(id) FROM events))"
                )
            )
    return report


def _read(line: int, values: dict[str, str], read: Resolve, ids: dict[int, int]) -> _Event | str:
    """One row of events, or what is wrong with it."""
    for name, value in values.items():
        control = find_control(value)
        if control is not None:
            return (
                f"the {name} has an invisible control character ({control.code}) at position"
                f" {control.position}; remove it from the file"
            )
    number, series = _number(values.get("id", "")), _number(values.get("series", ""))
    starts, ends = _moment(values.get("starts", "")), _moment(values.get("ends", ""))
    created = _moment(values.get("created", ""))
    kind, status = values.get("kind", ""), values.get("status", "")
    title, place = values.get("title", ""), values.get("place", "")
    reason = values.get("cancel_reason", "")
    if number is None:
        return f"id {values.get('id', '')!r} is not an event number"
    if values.get("series") and series is None:
        return f"series {values.get('series')!r} is not an event number"
    if kind not in _KINDS:
        return f"kind {kind!r} is unknown (one of {', '.join(sorted(_KINDS))})"
    if status not in _STATUSES:
        return f"status {status!r} is unknown (one of {', '.join(sorted(_STATUSES))})"
    if not title:
        return "no title"
    if max(len(title), len(place), len(reason)) > _LONGEST:
        return f"a title, place or reason longer than {_LONGEST} characters"
    if starts is None or created is None or (values.get("ends") and ends is None):
        return "a time is not a date and time with its zone (as the export writes them)"
    people: dict[str, list[int]] = {"created_by": [], "going": [], "not_going": []}
    for column in people:
        for cell in values.get(column, "").split():
            member = read(cell)
            if member not in ids:
                return f"{column}: member {cell!r} is unknown: import the members first"
            people[column].append(ids[member])
    if len(people["created_by"]) != 1:
        return f"created_by {values.get('created_by', '')!r} is not one member's code"
    if set(people["going"]) & set(people["not_going"]) or any(
        len(set(answers)) != len(answers) for answers in (people["going"], people["not_going"])
    ):
        return "a member answers twice"
    return _Event(
        line,
        {
            "id": number,
            # The first occurrence of a series points nowhere; the export shows its own id.
            "series_id": None if series == number else series,
            "kind": kind,
            "title": title,
            "place": place or None,
            "starts_at": starts,
            "ends_at": ends,
            "status": status,
            "cancel_reason": reason or None,
            "created_by_id": people["created_by"][0],
            "created_at": created,
        },
        tuple(people["going"]),
        tuple(people["not_going"]),
    )


def _add(connection: Connection, event: _Event, report: EventsReport) -> None:
    number = event.values["id"]
    there = connection.execute(select(events).where(events.c.id == number)).first()
    if there is not None:
        stored = connection.execute(
            select(rsvps.c.member_id, rsvps.c.going).where(rsvps.c.event_id == number)
        ).all()
        wanted = {(member, True) for member in event.going} | {
            (member, False) for member in event.not_going
        }
        same = all(getattr(there, name) == value for name, value in event.values.items())
        if same and {(row.member_id, row.going) for row in stored} == wanted:
            report.unchanged += 1
        else:
            report.problem(
                event.line,
                f"event {number} is here already with other content; a changed file?"
                " change an event in the chat, not by an import",
            )
        return
    connection.execute(insert(events).values(event.values))
    created = event.values["created_at"]
    for going, answers in ((True, event.going), (False, event.not_going)):
        for order, member in enumerate(answers):
            connection.execute(
                insert(rsvps).values(
                    event_id=number,
                    member_id=member,
                    going=going,
                    at=created + timedelta(seconds=order),
                )
            )
            report.answers += 1
    report.added += 1


def _number(cell: str) -> int | None:
    return int(cell) if cell.isdigit() and 0 < int(cell) < 2**31 else None


def _moment(cell: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(cell)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
