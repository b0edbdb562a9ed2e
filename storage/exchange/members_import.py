"""Importing members from an eLAS/eLAND users export, or from our own export.

All or nothing, and keyed on the member code: a member already here is never
added twice. What a file says differently about a member already here (name,
status, role, limits, old code) is listed per member; it is applied only when
asked (``update``), and without that the import changes nothing at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from letsbot.domain import MemberCode, Role, Status
from storage.exchange.codes import CodeBook, code_key, kept_number
from storage.exchange.export import plain_cell
from storage.exchange.sheet import STATUSES, Field, Report, Sheet, control_problem, parse_amount
from storage.exchange.sheet import units as shown_units
from storage.tables import members

# eLAS status 7 and the roles guest and interlets: an account of another group.
STATUS_WORDS = {
    **STATUSES,
    "7": Status.EXTERNAL.value,
    "extern": Status.EXTERNAL.value,
    "external": Status.EXTERNAL.value,
}
EXTERNAL_ROLES = {"guest", "interlets"}
# Our own export's word. eLAS/eLAND's "admin" makes no coordinator here: who
# coordinates is named in bot.toml (group.coordinators), not by a file.
COORDINATOR_ROLES = {"coordinator"}


@contextmanager
def begun(bind: Engine | Connection) -> Iterator[Connection]:
    """A transaction of its own on an engine; on a connection, the caller's.

    Several files are imported in one transaction (all or nothing across files):
    the caller passes its connection and commits or rolls back at the end.
    """
    if isinstance(bind, Connection):
        yield bind
        return
    with bind.begin() as connection:
        yield connection


def undo(bind: Engine | Connection, connection: Connection) -> None:
    """Roll back a transaction of our own; the caller's is the caller's to end."""
    if not isinstance(bind, Connection):
        connection.rollback()


@dataclass
class MembersReport(Report):
    """A members import: also what the file says differently, and the new numbers."""

    changed: int = 0  # members the file describes differently
    changes: list[str] = field(default_factory=list)  # DU-012 Tine: status active -> leaving
    mapping: list[str] = field(default_factory=list)  # ILGENT -> DU-041
    applied: bool = False  # the changes were made (update, not a dry run, no problems)
    notes: list[str] = field(default_factory=list)  # worth knowing, refusing nothing


@dataclass
class _Member:
    """One row of the file, read."""

    line: int
    code: str
    name: str
    status: str | None  # None: the file doesn't say
    role: str | None
    limits: dict[str, int | None]  # min_balance/max_balance, only those the file has
    old_code: str | None  # our own export names it; else set when the number changes
    number: int | None = None


def import_members(
    bind: Engine | Connection,
    sheet: Sheet,
    *,
    prefix: str,
    decimals: int,
    dry_run: bool,
    now: datetime,
    update: bool = False,
) -> MembersReport:
    """Add the file's new members; list (and with ``update`` apply) what differs.

    On a problem, in a dry run, or with differences and no ``update``, its
    transaction is rolled back; a caller's transaction (``bind`` a connection) is
    left for the caller to end.
    """
    report = MembersReport()
    with begun(bind) as connection:
        book = CodeBook.load(connection, prefix)
        here = {row.number: row for row in connection.execute(select(members))}
        keys: set[str] = set()
        reserved: set[int] = set()
        new: list[_Member] = []
        for line, cells in sheet.rows:
            values = {name: plain_cell(value) for name, value in cells.items()}
            row = _read(line, values, decimals, report)
            if row is None:
                continue
            if code_key(row.code) in keys:
                report.problem(line, f"code {row.code} twice in the file")
                continue
            keys.add(code_key(row.code))
            number = book.owner(row.code)
            if number == MemberCode.GROUP_ACCOUNT:
                report.unchanged += 1  # the group account: ours, whatever the file says
            elif not row.name:
                report.problem(line, f"{row.code}: no name (neither a full name nor a nickname)")
            elif number is not None:
                _compare(
                    connection, here[number], row, book, report, decimals=decimals, apply=update
                )
            elif (kept := kept_number(row.code, prefix)) in reserved:
                shown = MemberCode.show(prefix, kept or 0)
                report.problem(line, f"code {row.code}: {shown} is in the file twice")
            else:
                if kept is not None and kept not in book.names:
                    row.number = kept
                    reserved.add(kept)
                new.append(row)
        for row in new:  # the codes that keep their number first, then the lowest free ones
            if row.number is None:
                row.number = book.lowest_free(reserved)
                reserved.add(row.number)
                row.old_code = row.code
                report.mapping.append(f"{row.code} -> {book.show(row.number)}")
            if row.old_code and code_key(row.old_code) in book.by_old:
                taken = book.show(book.by_old[code_key(row.old_code)])
                report.problem(row.line, f"old code {row.old_code} is {taken}'s already")
                continue
            book.add(row.number, row.name, row.old_code)  # a later row may name it
            report.added += 1
            connection.execute(
                insert(members).values(
                    number=row.number,
                    name=row.name,
                    language=None,
                    status=row.status or Status.ACTIVE.value,
                    role=row.role or Role.MEMBER.value,
                    is_group_account=False,
                    balance=0,
                    min_balance=row.limits.get("min_balance"),
                    max_balance=row.limits.get("max_balance"),
                    created_at=now,
                    old_code=row.old_code,
                )
            )
        held = report.changed and not update
        if dry_run or report.problems or held:
            undo(bind, connection)
            if not dry_run:
                report.added = 0
        report.applied = bool(report.changed and update and not dry_run and not report.problems)
    return report


def _read(
    line: int, values: dict[Field, str], decimals: int, report: MembersReport
) -> _Member | None:
    """A row as a member, or None with its problem reported."""
    if (problem := control_problem(values)) is not None:
        report.problem(line, problem)
        return None
    code = " ".join(values.get("code", "").split())
    name = " ".join(values.get("name", "").split())
    if not code:
        report.problem(line, "no member code")
        return None
    if len(code) > 40:
        report.problem(line, f"code {code[:40]}...: longer than 40 characters")
        return None
    status: str | None = None
    if "status" in values:
        status = STATUS_WORDS.get(values["status"].strip().lower() or "1")
        if status is None:
            report.problem(line, f"{code}: status {values['status']!r} unknown")
            return None
    role: str | None = None
    if "role" in values:
        written = values["role"].strip().lower()
        role = Role.COORDINATOR.value if written in COORDINATOR_ROLES else Role.MEMBER.value
        if written == "admin":
            report.notes.append(
                f"line {line}: {code} {name} was an admin there and is a member here;"
                " coordinators are named in bot.toml (group.coordinators)"
            )
        if written in EXTERNAL_ROLES:
            status = Status.EXTERNAL.value
    limits: dict[str, int | None] = {}
    for column, field_ in (("min_balance", "min"), ("max_balance", "max")):
        if field_ not in values:
            continue
        text = values[field_]
        limits[column] = parse_amount(text, decimals) if text else None
        if text and limits[column] is None:
            report.problem(line, f"{code}: limits are not numbers")
            return None
    low, high = limits.get("min_balance"), limits.get("max_balance")
    if (low is not None and low > 0) or (high is not None and high < 0):
        # A balance starts at zero: a limit that excludes zero breaks at once.
        report.problem(line, f"{code}: the minimum must be 0 or less and the maximum 0 or more")
        return None
    old = " ".join(values.get("old_code", "").split()) or None
    return _Member(line, code, name[:200], status, role, limits, old)


def _compare(
    connection: Connection,
    here: Any,
    row: _Member,
    book: CodeBook,
    report: MembersReport,
    *,
    decimals: int,
    apply: bool,
) -> None:
    """What the file says differently about a member already here; made so with ``apply``."""
    if here.forgotten_at is not None:  # erased on request: never brought back from a file
        report.unchanged += 1
        return
    differences: dict[str, Any] = {}
    lines: list[str] = []
    wanted: dict[str, Any] = {"name": row.name, "status": row.status, "role": row.role}
    wanted |= row.limits
    if row.old_code is not None:
        wanted["old_code"] = row.old_code
    for column, value in wanted.items():
        if column in ("status", "role") and value is None:
            continue  # the file doesn't say
        if column.endswith("_balance") and _widened(here, column, value):
            continue  # an import's --widen-limits, kept: the file's limit would break it
        if here._mapping[column] != value:
            differences[column] = value
            lines.append(
                f"{_LABEL[column]} {_shown(column, here._mapping[column], decimals)}"
                f" -> {_shown(column, value, decimals)}"
            )
    if not differences:
        report.unchanged += 1
        return
    report.changed += 1
    who = f"{book.show(here.number)} {here.name}"
    report.changes.extend(f"{who}: {line}" for line in lines)
    if apply:
        connection.execute(update(members).where(members.c.id == here.id).values(**differences))


def _widened(here: Any, column: str, value: int | None) -> bool:
    """Whether the limit here was widened to the member's balance (``--widen-limits``)
    past the one the file gives, which that balance would break."""
    stored, balance = here._mapping[column], here._mapping["balance"]
    if stored != balance:
        return False
    if value is None:  # the group's limit, which the balance broke
        return True
    return bool(value > balance if column == "min_balance" else value < balance)


_LABEL = {
    "name": "name",
    "status": "status",
    "role": "role",
    "min_balance": "minimum",
    "max_balance": "maximum",
    "old_code": "old code",
}


def _shown(column: str, value: Any, decimals: int) -> str:
    """A value as the volunteer reads it in a change line."""
    if value is None:
        return "(group default)" if column.endswith("_balance") else "(none)"
    if column.endswith("_balance"):
        return str(shown_units(value, decimals))
    return str(value)
