"""Importing transfers and opening balances from CSV files.

A real import is one transaction (all or nothing) and idempotent: transfers
are keyed on the source's id or a fingerprint of their row, so importing the
same file twice adds nothing. A dry run reports what would happen and
every problem with its line number, and changes nothing. Transfers are booked
through ``letsbot.posting.post``, as every transfer is.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Container
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select, text, update

from letsbot.domain import GroupLimits, Member, MemberCode, Status, TransferKind
from letsbot.posting import post
from storage.exchange.export import plain_cell
from storage.exchange.members_import import begun, undo
from storage.exchange.sheet import (
    KINDS,
    Field,
    Report,
    Sheet,
    control_problem,
    parse_amount,
    parse_code,
    parse_date,
    units,
)
from storage.tables import members, transfers
from storage.uow import SqlStore

Resolve = Callable[[str], int | None]


def code_reader(prefix: str) -> Resolve:
    """The one seam where a cell naming a member (payer, receiver, a balance's owner,
    an event's people) becomes a member number; None when it names no one.

    Today a code of the group (``DU-007``, ``DU - 0007``); a reader that knows a
    source's own codes takes its place by being passed as ``resolve``.
    """
    return lambda cell: parse_code(cell, prefix)


@dataclass
class TransfersReport(Report):
    """An import of transfers: besides what was booked, what was told and changed."""

    warnings: list[str] = field(default_factory=list)  # worth knowing, refusing nothing
    widened: list[str] = field(default_factory=list)  # limits widened (or that would be)
    kept_numbers: bool = False  # the source's ids became the transfers' own numbers


@dataclass(frozen=True)
class _Row:
    line: int
    when: datetime
    payer: int
    receiver: int
    amount: int
    description: str
    kind: TransferKind
    source_id: str | None  # the source's own id of the transaction
    reverses: str | None  # the source id of the transfer this one reverses
    key: str = ""
    # The key of the row without its id: the same file imported before ids were
    # read is found booked too.
    legacy: str = ""


IMPORT = "import:"  # event_key prefix of every imported transfer
# eLAND's transids look like "c9492d279afb_1@letsdurme": any visible ASCII, no spaces.
_ID = re.compile(r"[!-~]{1,128}", re.ASCII)


def import_transfers(
    engine: Engine | Connection,
    sheet: Sheet,
    *,
    prefix: str,
    decimals: int,
    tz: ZoneInfo,
    dry_run: bool,
    limits: GroupLimits | None = None,
    widen_limits: bool = False,
    expected_balances: dict[int, int] | None = None,
    resolve: Resolve | None = None,
) -> TransfersReport:
    """Book a file's transfers in date order, each once however often it is imported.

    The file's order of rows at the same time is kept, read backwards when the
    file lists the newest first (as eLAS does). A row with the source's ``id``
    is keyed on that id and its content: the same row again is found booked;
    another row with an id imported before is a problem, never a second
    transfer (an edited file, or a second source using the same ids). A row
    without an id is keyed on its content, the nth alike row of a file on its
    count too. When every row has a numeric id and no transfer here has one
    of those numbers, the transfers keep the source's numbers (#12 stays #12).
    A ``reverses`` cell books a reversal of the transfer with that source id,
    in the file or imported before, which can then not be reversed again.

    History is booked as it happened: limits are not checked on the way (an
    old ledger often crossed them for a while, and inactive members' history
    counts too). ``limits`` are checked at the end, as ``letsbot check`` does:
    a member outside them is a problem, unless ``widen_limits`` widens that
    member's limit to their balance, or the group's limits are soft (then a
    warning). ``expected_balances`` (member number: minor units), the
    balances the source shows: a member whose balance after the import
    differs is a problem (a file missing its oldest transfers).
    """
    read = resolve or code_reader(prefix)
    report = TransfersReport()
    if getattr(sheet, "capped", False):
        report.warnings.append(
            f"the file holds {len(sheet.rows)} rows, as many as the source exports at most:"
            " the oldest transfers may be missing; give the balances the source shows to compare"
        )
    with begun(engine) as connection:
        store = SqlStore(connection)
        ids = dict(connection.execute(select(members.c.number, members.c.id)).all())
        # Every account locked once, in the one lock order; a second import of the
        # same file waits here, then finds every row booked.
        locked = store.members.lock_members(list(ids.values()))
        rows: list[_Row] = []
        lines_of: dict[str, int] = {}  # source id: the line it is on
        for line, raw in sheet.rows:
            if (problem := control_problem(raw)) is not None:
                report.problem(line, problem)
                continue
            values = {name: plain_cell(value) for name, value in raw.items()}
            row = _read_row(line, values, read, ids, decimals, tz)
            if isinstance(row, str):
                report.problem(line, row)
                continue
            if row.source_id is not None:
                if row.source_id in lines_of:
                    first = lines_of[row.source_id]
                    report.problem(line, f"id {row.source_id} twice in the file (line {first} too)")
                    continue
                lines_of[row.source_id] = line
            rows.append(row)
        if len(rows) > 1 and rows[0].when > rows[-1].when:
            rows.reverse()  # newest first: rows at the same time are read backwards too
        rows.sort(key=lambda row: row.when)
        last = _book(connection, store, _keyed(rows), ids, locked, report, lines_of)
        if limits is not None:
            _check_limits(connection, limits, widen_limits, report, prefix, decimals, last)
        if expected_balances is not None:
            _compare(connection, expected_balances, report, prefix, decimals)
        if dry_run or report.problems:
            undo(engine, connection)
            if report.problems and not dry_run:
                report.added, report.widened, report.kept_numbers = 0, [], False
            return report
        if report.kept_numbers and report.added and connection.dialect.name == "postgresql":
            # Numbers given by hand leave the sequence behind: the next transfer follows them.
            connection.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence('transfers', 'id'),"
                    " (SELECT max(id) FROM transfers))"
                )
            )
    return report


def _read_row(
    line: int,
    values: dict[Field, str],
    read: Resolve,
    known: Container[int],
    decimals: int,
    tz: ZoneInfo,
) -> _Row | str:
    """One row of transfers, or what is wrong with it."""
    payer, receiver = read(values.get("from", "")), read(values.get("to", ""))
    amount = parse_amount(values.get("amount", ""), decimals)
    when = parse_date(values.get("date", ""), tz)
    kind = values.get("kind", "").strip().lower()
    source_id = values.get("id", "").strip() or None
    reverses = values.get("reverses", "").strip() or None
    if payer not in known or receiver not in known:
        cell = values.get("from", "") if payer not in known else values.get("to", "")
        return f"member {cell!r} is unknown: import the members first"
    assert payer is not None and receiver is not None
    if payer == receiver:
        return "payer and receiver are the same member"
    if amount is None or amount <= 0:
        return f"amount {values.get('amount', '')!r} is not a positive number"
    if when is None:
        return f"date {values.get('date', '')!r} is not a date (of 1970 or later)"
    if when > datetime.now(UTC) + timedelta(days=1):
        return f"date {values.get('date', '')!r} is in the future"
    if kind and kind not in KINDS:
        return f"kind {values.get('kind', '')!r} is unknown (one of {', '.join(sorted(KINDS))})"
    if kind == TransferKind.REVERSAL.value and reverses is None:
        return "a reversal names the transfer it undoes (the reverses column)"
    if reverses is not None and kind and kind != TransferKind.REVERSAL.value:
        return f"reverses {reverses} but its kind is {kind}, not reversal"
    for name, value in (("id", source_id), ("reverses", reverses)):
        if value is not None and _ID.fullmatch(value) is None:
            return f"{name} {value!r} is not an id (up to 128 letters, digits or signs, no spaces)"
    return _Row(
        line,
        when,
        payer,
        receiver,
        amount,
        values.get("description", "") or "import",
        # A file without kinds (eLAS) holds payments, and reversals where it says so.
        TransferKind(kind or (TransferKind.REVERSAL if reverses else TransferKind.PAYMENT)),
        source_id,
        reverses,
    )


def _keyed(rows: list[_Row]) -> list[_Row]:
    """Each row with its event key, the same whenever the same file is imported."""
    keyed = []
    alike: dict[str, int] = {}
    for row in rows:
        when, description = row.when.isoformat(), row.description
        fingerprint = "|".join(
            [when, str(row.payer), str(row.receiver), str(row.amount), description]
        )
        # The same soup bought twice on one day is two rows, two transfers: the
        # nth alike row of a file is the nth transfer, and importing the file
        # again finds each of them booked.
        seen = alike.get(fingerprint, 0)
        alike[fingerprint] = seen + 1
        if seen:
            fingerprint += f"|{seen}"
        legacy = IMPORT + hashlib.sha256(fingerprint.encode()).hexdigest()[:40]
        if row.source_id is None:
            keyed.append(replace(row, key=legacy, legacy=legacy))
            continue
        content = "|".join(
            [
                when,
                str(row.payer),
                str(row.receiver),
                str(row.amount),
                description,
                row.kind.value,
                row.reverses or "",
            ]
        )
        digest = hashlib.sha256(content.encode()).hexdigest()[:32]
        keyed.append(replace(row, key=f"{IMPORT}id:{row.source_id}:{digest}", legacy=legacy))
    return keyed


def _book(
    connection: Connection,
    store: SqlStore,
    rows: list[_Row],
    ids: dict[int, int],
    locked: dict[int, Member],
    report: TransfersReport,
    lines_of: dict[str, int],
) -> dict[int, int]:
    """Post each row not booked yet, in order; a row that can't be is a problem.

    Returns the line of each member's last transfer booked (by member number).
    """
    last: dict[int, int] = {}
    booked: dict[str, int] = dict(
        connection.execute(
            select(transfers.c.event_key, transfers.c.id).where(
                transfers.c.event_key.startswith(IMPORT)
            )
        ).all()
    )
    by_source: dict[str, list[int]] = {}  # source id: transfers imported with it
    for key, number in booked.items():
        if key.startswith(f"{IMPORT}id:"):
            by_source.setdefault(key.split(":")[2], []).append(number)
    reversed_by: dict[int, int] = dict(
        connection.execute(
            select(transfers.c.reverses_id, transfers.c.id).where(
                transfers.c.reverses_id.is_not(None)
            )
        ).all()
    )
    for row in rows:  # found under the key it had before ids were read
        if row.key not in booked and row.legacy in booked:
            booked[row.key] = booked[row.legacy]
    new = [row for row in rows if row.key not in booked]
    numbers = [int(row.source_id) for row in new if row.source_id and row.source_id.isdigit()]
    taken: set[int] = set()
    if numbers and len(numbers) == len(new) and max(numbers) < 2**31:
        low, high = min(numbers), max(numbers)
        here = connection.execute(select(transfers.c.id).where(transfers.c.id.between(low, high)))
        taken = set(here.scalars()) & set(numbers)
        report.kept_numbers = not taken
    if taken:
        report.warnings.append(
            f"transfer numbers of the file are taken here (#{min(taken)} first):"
            " the transfers get new numbers"
        )
    in_file: dict[str, int] = {}  # source id: our transfer, of rows booked so far
    for row in rows:
        if row.key in booked:
            report.unchanged += 1
            if row.source_id is not None:
                in_file[row.source_id] = booked[row.key]
            continue
        if row.source_id is not None and row.source_id in by_source:
            earlier = by_source[row.source_id][0]
            report.problem(
                row.line,
                f"id {row.source_id} was imported before with other content (transfer"
                f" #{earlier}); a changed file? correct a transfer with a booking, not an import",
            )
            continue
        target = None
        if row.reverses is not None:
            found = _reversed(row, in_file, lines_of, by_source, reversed_by)
            if isinstance(found, str):
                report.problem(row.line, found)
                continue
            undone = store.ledger.transfer(found)
            assert undone is not None
            back = (ids[row.receiver], ids[row.payer], row.amount)
            if (undone.payer_id, undone.receiver_id, undone.amount) != back:
                report.problem(
                    row.line,
                    f"reverses {row.reverses} (transfer #{found}) but doesn't undo it: a reversal"
                    " pays the same amount back between the same two members",
                )
                continue
            target = found
        report.added += 1
        last[row.payer] = last[row.receiver] = row.line
        transfer = post(
            store,
            payer_id=ids[row.payer],
            receiver_id=ids[row.receiver],
            amount=row.amount,
            description=row.description[:500],
            kind=row.kind,
            at=row.when,
            booked_by_id=None,
            event_key=row.key,
            reverses_id=target,
            transfer_id=int(row.source_id) if report.kept_numbers and row.source_id else None,
            locked=locked,
        ).transfer
        booked[row.key] = transfer.id
        if target is not None:
            reversed_by[target] = transfer.id
        if row.source_id is not None:
            in_file[row.source_id] = transfer.id
    return last


def _reversed(
    row: _Row,
    in_file: dict[str, int],
    lines_of: dict[str, int],
    by_source: dict[str, list[int]],
    reversed_by: dict[int, int],
) -> int | str:
    """The transfer a row reverses, or why it can't."""
    source = row.reverses
    assert source is not None
    if source in lines_of:
        target = in_file.get(source)
        if target is None:
            return f"reverses {source} (line {lines_of[source]}), which is not booked before it"
    elif len(by_source.get(source, [])) == 1:
        target = by_source[source][0]
    elif source in by_source:
        found = ", ".join(f"#{number}" for number in sorted(by_source[source]))
        return f"reverses {source}, which names more than one transfer imported before ({found})"
    else:
        return f"reverses {source}: no transfer with that id in the file or imported before"
    if target in reversed_by:
        return f"reverses {source} (transfer #{target}), reversed already by #{reversed_by[target]}"
    return target


def _check_limits(
    connection: Connection,
    limits: GroupLimits,
    widen: bool,
    report: TransfersReport,
    prefix: str,
    decimals: int,
    last: dict[int, int],
) -> None:
    """Every balance outside its limits after the import, as ``letsbot check`` finds it.

    Inactive members and the group account are not checked, by ``check`` either.
    ``last``: the line of each member's last transfer in the file, to name.
    """
    for row in connection.execute(select(members).order_by(members.c.number)):
        if row.is_group_account or row.status == Status.INACTIVE.value:
            continue
        low = limits.min_balance if row.min_balance is None else row.min_balance
        high = limits.max_balance if row.max_balance is None else row.max_balance
        if low <= row.balance <= high:
            continue
        who = f"{MemberCode.show(prefix, row.number)} {row.name}"
        if row.number in last:
            who += f" (last transfer on line {last[row.number]})"
        balance = units(row.balance, decimals)
        side, limit = ("minimum", low) if row.balance < low else ("maximum", high)
        where = "below" if side == "minimum" else "above"
        if limits.soft:
            report.warnings.append(
                f"{who}: the balance after the import, {balance}, is {where} its {side}"
                f" {units(limit, decimals)}; it stands, as the group's limits are soft"
            )
        elif widen:
            column = "min_balance" if side == "minimum" else "max_balance"
            connection.execute(
                update(members).where(members.c.id == row.id).values({column: row.balance})
            )
            report.widened.append(
                f"{who}: {side} {units(limit, decimals)} -> {balance}, the balance after the import"
            )
        else:
            report.problems.append(
                f"{who}: the balance after the import, {balance}, is {where} its {side}"
                f" {units(limit, decimals)} (letsbot check would report it); re-run with"
                f" --widen-limits to make {balance} its {side}"
            )


def _compare(
    connection: Connection,
    expected: dict[int, int],
    report: TransfersReport,
    prefix: str,
    decimals: int,
) -> None:
    """Each member whose balance after the import is not the one the source shows."""
    rows = {row.number: row for row in connection.execute(select(members))}
    differ = False
    for number, balance in sorted(expected.items()):
        code = MemberCode.show(prefix, number)
        row = rows.get(number)
        if row is None:
            differ = True
            report.problems.append(
                f"{code}: the source shows a balance of {units(balance, decimals)},"
                " but there is no such member"
            )
        elif row.balance != balance:
            differ = True
            report.problems.append(
                f"{code} {row.name}: the transfers give a balance of"
                f" {units(row.balance, decimals)}, the source shows {units(balance, decimals)}"
                f" (a difference of {units(balance - row.balance, decimals)})"
            )
    if differ:
        report.problems.append(
            "the balances differ from the source's: transfers are missing (an export may"
            " hold only the newest), or the source's balances include more; import the whole"
            " history, or opening balances instead (import balances)"
        )


OPENING = "opening:"  # event_key prefix: one opening balance per member, ever


@dataclass
class BalancesReport(Report):
    """An import of balances: the opening transfers, and what the file sums to."""

    booked: list[str] = field(default_factory=list)  # one line per opening transfer
    zero: int = 0  # members at zero: nothing to book
    total: int = 0  # the file's balances summed, minor units
    group_change: int = 0  # what the group account's balance moves by
    widened: list[str] = field(default_factory=list)  # limits widened (or that would be)


def import_balances(
    engine: Engine | Connection,
    sheet: Sheet,
    *,
    prefix: str,
    decimals: int,
    limits: GroupLimits,
    via_group_account: bool,
    dry_run: bool,
    now: datetime,
    description: str,
    resolve: Resolve | None = None,
    widen_limits: bool = False,
) -> BalancesReport:
    """One opening transfer per member against the group account (``PREFIX-000``).

    An opening balance is recognised by its event key ``opening:<number>``: a
    member has at most one, so importing the same file again books nothing,
    and a different balance for a member already opened is a problem, never a
    second booking. A line for the group account itself is summed but not
    booked: the group account is the other side of every opening transfer.
    """
    read = resolve or code_reader(prefix)
    report = BalancesReport()
    with begun(engine) as connection:
        store = SqlStore(connection)
        # Every account locked in the one lock order (PostgreSQL; SQLite holds the
        # write lock already).
        locked = store.members.lock_members(
            connection.execute(select(members.c.id)).scalars().all()
        )
        rows = {member.number: member for member in locked.values()}
        kas = next(member for member in rows.values() if member.is_group_account)
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
        plan: list[tuple[int, Member, int]] = []
        for line, raw in sheet.rows:
            if (problem := control_problem(raw)) is not None:
                report.problem(line, problem)
                continue
            values = {name: plain_cell(value) for name, value in raw.items()}
            number = read(values.get("code", ""))
            amount = parse_amount(values.get("balance", ""), decimals)
            if number is None:
                report.problem(line, f"member code {values.get('code', '')!r} is not {prefix}-NNN")
                continue
            code = MemberCode.show(prefix, number)
            if number not in rows:
                report.problem(line, f"{code} is unknown: import the members first")
            elif number in seen:
                report.problem(line, f"{code} twice in the file")
            elif amount is None:
                report.problem(line, f"balance {values.get('balance', '')!r} is not a number")
            else:
                seen.add(number)
                report.total += amount
                member = rows[number]
                checked = replace(limits, soft=True) if widen_limits else limits
                problem = _opening_problem(member, amount, opened, traded, checked, code, decimals)
                if widen_limits and problem is None and amount and not member.is_group_account:
                    after = member.balance + amount
                    _widen_to(connection, member, after, limits, report, code, decimals)
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
        group_account = MemberCode.show(prefix, MemberCode.GROUP_ACCOUNT)
        if report.total and not via_group_account:
            total, rest = units(report.total, decimals), units(-report.total, decimals)
            report.problems.append(
                f"the balances sum to {total}, not 0 (a difference of {total});"
                f" add a line for the group account {group_account} with {rest},"
                " or use --via-group-account to let the group account carry the difference"
            )
        report.group_change = -sum(amount for _, _, amount in plan)
        for line, member, amount in plan:
            code = MemberCode.show(prefix, member.number)
            way = "gets {} from" if amount > 0 else "pays {} to"
            report.booked.append(
                f"line {line}: {code} {member.name} {way.format(units(abs(amount), decimals))}"
                f" the group account {group_account}"
            )
        report.added = len(plan)
        if dry_run or report.problems:
            undo(engine, connection)
            if report.problems and not dry_run:
                report.added, report.booked, report.group_change = 0, [], 0
            return report
        for _, member, amount in plan:
            payer, receiver = (kas, member) if amount > 0 else (member, kas)
            post(
                store,
                payer_id=payer.id,
                receiver_id=receiver.id,
                amount=abs(amount),
                description=description[:500],
                kind=TransferKind.OPENING,
                at=now,
                booked_by_id=None,
                event_key=f"{OPENING}{member.number}",
                locked=locked,  # the limits were checked above, on the file's balances
            )
    return report


def _widen_to(
    connection: Connection,
    member: Member,
    after: int,
    limits: GroupLimits,
    report: BalancesReport,
    code: str,
    decimals: int,
) -> None:
    """Widen the one limit a member's opening balance would cross to that balance."""
    if member.status == Status.INACTIVE.value:
        return
    low, high = limits.min_for(member), limits.max_for(member)
    if low <= after <= high:
        return
    column = "min_balance" if after < low else "max_balance"
    connection.execute(update(members).where(members.c.id == member.id).values({column: after}))
    side = "minimum" if after < low else "maximum"
    report.widened.append(
        f"{code} {member.name}: {side} widened to {units(after, decimals)}, its opening balance"
    )


def _opening_problem(
    member: Member,
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
