"""Importing members, transfers and opening balances from CSV files.

A real import is one transaction (all or nothing) and idempotent: members are
keyed on their code, transfers on a fingerprint of their row, so importing
the same file twice adds nothing. A dry run reports what would happen and
every problem with its line number, and changes nothing. Transfers are booked
through ``letsbot.posting.post``, as every transfer is.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select

from letsbot.domain import GroupLimits, Member, MemberCode, Status, TransferKind
from letsbot.posting import post
from storage.exchange.members_import import begun, undo
from storage.exchange.sheet import (
    KINDS,
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


def import_transfers(
    engine: Engine | Connection,
    sheet: Sheet,
    *,
    prefix: str,
    decimals: int,
    tz: ZoneInfo,
    dry_run: bool,
    widen_limits: bool = False,
) -> Report:
    report = Report()
    with begun(engine) as connection:
        store = SqlStore(connection)
        ids = dict(connection.execute(select(members.c.number, members.c.id)).all())
        # Every account locked once, in the one lock order; no limit is checked.
        locked = store.members.lock_members(list(ids.values()))
        keys = set(connection.execute(select(transfers.c.event_key)).scalars())
        alike: dict[str, int] = {}
        for line, values in sheet.rows:
            if (problem := control_problem(values)) is not None:
                report.problem(line, problem)
                continue
            payer = parse_code(values.get("from", ""), prefix)
            receiver = parse_code(values.get("to", ""), prefix)
            amount = parse_amount(values.get("amount", ""), decimals)
            when = parse_date(values.get("date", ""), tz)
            description = values.get("description", "") or "import"
            kind = TransferKind(values["kind"]) if values.get("kind") in KINDS else None
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
                # The same soup bought twice on one day is two rows, two transfers:
                # the nth alike row of a file is the nth transfer, and importing the
                # file again finds each of them booked.
                seen = alike.get(fingerprint, 0)
                alike[fingerprint] = seen + 1
                if seen:
                    fingerprint += f"|{seen}"
                key = "import:" + hashlib.sha256(fingerprint.encode()).hexdigest()[:40]
                if key in keys:
                    report.unchanged += 1
                    continue
                keys.add(key)
                report.added += 1
                post(
                    store,
                    payer_id=ids[payer],
                    receiver_id=ids[receiver],
                    amount=amount,
                    description=description[:500],
                    kind=kind or TransferKind.PAYMENT,
                    at=when,
                    booked_by_id=None,
                    event_key=key,
                    locked=locked,
                )
        if dry_run or report.problems:
            undo(engine, connection)
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
) -> BalancesReport:
    """One opening transfer per member against the group account (``PREFIX-000``).

    An opening balance is recognised by its event key ``opening:<number>``: a
    member has at most one, so importing the same file again books nothing,
    and a different balance for a member already opened is a problem, never a
    second booking. A line for the group account itself is summed but not
    booked: the group account is the other side of every opening transfer.
    """
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
        for line, values in sheet.rows:
            if (problem := control_problem(values)) is not None:
                report.problem(line, problem)
                continue
            number = parse_code(values.get("code", ""), prefix)
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
