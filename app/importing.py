"""``letsbot import``: members, transfers or balances from a CSV export of eLAS/eLAND."""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy import Engine

from app.compose import CliError, ready_engine, settings_from
from letsbot.clock import SystemClock
from letsbot.config import Settings
from letsbot.domain import MemberCode
from letsbot.i18n import catalog
from storage.exchange import (
    BALANCE_FIELDS,
    HEADERS,
    MEMBER_FIELDS,
    TRANSFER_FIELDS,
    ImportError_,
    import_balances,
    import_members,
    import_transfers,
    read_sheet,
    units,
)


def cmd_import(args: argparse.Namespace) -> int:
    settings, path = settings_from(args)
    engine = ready_engine(settings, path.parent)
    fields = set(HEADERS.values())
    mapping: dict[str, Any] = {}
    for item in args.map:
        column, sep, field = item.partition("=")
        if not sep or field not in fields:
            raise CliError(f"--map {item}: expected COLUMN=FIELD, FIELD one of {sorted(fields)}")
        mapping[column.strip().lower()] = field
    required = {
        "members": MEMBER_FIELDS,
        "transfers": TRANSFER_FIELDS,
        "balances": BALANCE_FIELDS,
    }[args.what]
    try:
        sheet = read_sheet(args.file, required, mapping)
    except ImportError_ as error:
        raise CliError(str(error)) from None
    except OSError as error:
        raise CliError(f"{args.file}: {error.strerror}") from None
    prefix = settings.group.code_prefix.upper()
    decimals = settings.currency.decimals
    if args.what == "balances":
        return import_balances_report(args, settings, engine, sheet)
    if args.what == "members":
        report = import_members(
            engine,
            sheet,
            prefix=prefix,
            decimals=decimals,
            dry_run=args.dry_run,
            now=SystemClock().now(),
        )
    else:
        report = import_transfers(
            engine, sheet, prefix=prefix, decimals=decimals, tz=settings.tz, dry_run=args.dry_run
        )
    for problem in report.problems:
        print(f"{args.file}: {problem}")
    verb = "would add" if args.dry_run else "added"
    if report.problems and not args.dry_run:
        print(f"nothing imported: {len(report.problems)} problem(s); fix them or see --dry-run")
        return 1
    print(f"{verb} {report.added} {args.what}; {report.unchanged} already there")
    return 1 if report.problems else 0


def import_balances_report(
    args: argparse.Namespace, settings: Settings, engine: Engine, sheet: Any
) -> int:
    prefix = settings.group.code_prefix.upper()
    decimals = settings.currency.decimals
    report = import_balances(
        engine,
        sheet,
        prefix=prefix,
        decimals=decimals,
        limits=settings.group_limits,
        via_group_account=args.via_group_account,
        dry_run=args.dry_run,
        now=SystemClock().now(),
        description=catalog(settings.group.language)["opening.description"],
    )
    for problem in report.problems:
        print(f"{args.file}: {problem}")
    if report.problems and not args.dry_run:
        print(f"nothing imported: {len(report.problems)} problem(s); fix them or see --dry-run")
        return 1
    for line in report.booked:
        print(f"{args.file}: {line}")
    verb = "would book" if args.dry_run else "booked"
    group = MemberCode.show(prefix, MemberCode.GROUP_ACCOUNT)
    print(
        f"{verb} {report.added} opening balances; {report.unchanged} already booked,"
        f" {report.zero} at zero; the file sums to {units(report.total, decimals)};"
        f" the group account {group} {'would change' if args.dry_run else 'changed'}"
        f" by {units(report.group_change, decimals)}"
    )
    return 1 if report.problems else 0
