"""``letsbot import``: members, balances, transfers and listings from eLAS/eLAND or our export.

Every file of one run is imported in one transaction: all or nothing across
files. Members first (the others name them), then balances, transfers, listings.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, update

from app.compose import CliError, ready_engine, settings_from
from letsbot.clock import SystemClock
from letsbot.config import Settings
from letsbot.domain import MemberCode
from letsbot.i18n import catalog
from letsbot.market import notice_time
from storage.exchange import (
    BALANCE_FIELDS,
    HEADERS,
    MEMBER_FIELDS,
    TRANSFER_FIELDS,
    BalancesReport,
    Field,
    ImportError_,
    MembersReport,
    Report,
    Sheet,
    import_balances,
    import_members,
    import_transfers,
    parse_amount,
    units,
)
from storage.exchange.codes import CodeBook
from storage.exchange.formats import read_files, read_source
from storage.exchange.listings_import import import_listings
from storage.tables import members

KINDS = ("members", "balances", "transfers", "listings")  # the order they are imported in
REQUIRED: dict[str, tuple[Field, ...]] = {
    "members": MEMBER_FIELDS,
    "transfers": TRANSFER_FIELDS,
    "balances": BALANCE_FIELDS,
    "listings": ("kind", "owner", "text"),
}


@dataclass
class Part:
    """One sheet to import: the file it came from and what it holds."""

    path: Path
    kind: str
    sheet: Sheet
    # The balances the source shows, to check the transfers against (a balances
    # file or saldo column given with a transfers file); None: nothing to check.
    expected: list[Sheet] | None = None


def cmd_import(args: argparse.Namespace) -> int:
    settings, config = settings_from(args)
    mapping = _mapping(args.map)
    what: str | None = None
    paths = list(args.paths)
    if paths and str(paths[0]) in KINDS and not paths[0].exists():
        what = str(paths.pop(0))
    if not paths:
        raise CliError("import: name the file(s) to import, e.g. letsbot import users.csv")
    # Plain CSV files are read together (eLAND's tables saved one by one find each
    # other); a folder, a zip or a JSON export on its own.
    single = [p for p in paths if p.suffix.lower() == ".csv" and p.is_file()]
    parts = _read(single, what, mapping) if single else []
    for path in paths:
        if path not in single:
            parts += _read([path], what, mapping)
    parts.sort(key=lambda part: KINDS.index(part.kind))
    parts = _with_checks(parts)
    engine = ready_engine(settings, config.parent)
    now = SystemClock().now()
    # One transaction for every file: the later ones see the members of the first,
    # and a problem anywhere (or a dry run) rolls all of them back.
    with engine.connect() as connection:
        if args.group_account:
            _name_group_account(connection, args.group_account, settings)
        else:
            _suggest_group_account(parts)
        said = io.StringIO()
        with contextlib.redirect_stdout(said):
            good = [_import(connection, part, args, settings, now) for part in parts]
        if all(good) and not args.dry_run:
            connection.commit()
        else:
            connection.rollback()
    # What each file added is said once the run is over: of a run stopped by a
    # problem in a later file, "added" would read as done.
    for line in said.getvalue().splitlines():
        if not all(good) and not args.dry_run:
            line = _UNDONE.sub(lambda verb: f"would {_WOULD[verb[1]]}", line)
        print(line)
    if not all(good) and len(parts) > 1:
        print("nothing imported from any file: fix the problems above first")
    return 0 if all(good) else 1


_WOULD = {"added": "add", "booked": "book", "changed": "change"}
_UNDONE = re.compile(r"\b(added|booked|changed)\b(?= \d)")


# Names an old system gives the group's own account ("kas" in eLAS, "Groepsrekening").
_GROUP_NAMES = re.compile(r"groeps?rekening|groepskas|^kas$|group account|^lets\b", re.I)


def _suggest_group_account(parts: list[Part]) -> None:
    """A member that looks like the group's own account: say how to book it as such."""
    for part in parts:
        if part.kind != "members":
            continue
        for line, values in part.sheet.rows:
            if _GROUP_NAMES.search(values.get("name", "").strip()):
                code = values.get("code", "")
                print(
                    f"{part.path}: line {line}: {code} {values.get('name', '')} looks like the"
                    f" group's own account; if it is, add --group-account {code} so that its"
                    " history is booked on the group account here instead of on a member"
                )


def _name_group_account(connection: Connection, code: str, settings: Settings) -> None:
    """The old code of the group's own account is ours: files naming it book on DU-000."""
    prefix = settings.group.code_prefix.upper()
    book = CodeBook.load(connection, prefix)
    owner = book.owner(code)
    group = MemberCode.show(prefix, MemberCode.GROUP_ACCOUNT)
    if owner is not None and owner != MemberCode.GROUP_ACCOUNT:
        raise CliError(
            f"--group-account {code}: that is {book.show(owner)} {book.names[owner]} here"
            f" already; the group account is {group}"
        )
    connection.execute(update(members).where(members.c.is_group_account).values(old_code=code))
    print(f"{code}: the group's own account, booked on {group}")


def _with_checks(parts: list[Part]) -> list[Part]:
    """Balances given with transfers check the transfers; they are no opening balances.

    An eLAS or eLAND export holds the whole history: the balances it shows must
    come out of the transfers (a file that lost its oldest rows doesn't).
    """
    transfers = [part for part in parts if part.kind == "transfers"]
    if not transfers:
        return parts
    shown = [part.sheet for part in parts if part.kind == "balances"]
    shown += [
        part.sheet
        for part in parts
        if part.kind == "members" and any("balance" in values for _, values in part.sheet.rows)
    ]
    for part in parts:
        if part.kind == "balances":
            print(f"{part.path}: balances to check the transfers against, not opening balances")
    for part in transfers:
        part.expected = shown or None
    return [part for part in parts if part.kind != "balances"]


def _expected(
    connection: Connection, sheets: list[Sheet], prefix: str, decimals: int
) -> tuple[dict[int, int], list[str]]:
    """Member number: the balance the source shows, in minor units; and the lines
    that name no member (a balance no transfer could give is no check)."""
    book = CodeBook.load(connection, prefix)
    expected: dict[int, int] = {}
    unknown: list[str] = []
    for sheet in sheets:
        for line, values in sheet.rows:
            number = book.resolve(values.get("code", ""))
            amount = parse_amount(values.get("balance", ""), decimals)
            if number is None:
                if amount:
                    where = f"{sheet.label or 'balances'}: "
                    unknown.append(
                        f"{where}line {line}: balance of {values.get('code', '')!r}, who is"
                        " no member here or in the members file"
                    )
            elif amount is not None:
                expected[number] = amount
    return expected, unknown


def _mapping(items: list[str]) -> dict[str, Field]:
    fields = set(HEADERS.values())
    mapping: dict[str, Field] = {}
    for item in items:
        column, sep, field = item.partition("=")
        if not sep or field not in fields:
            raise CliError(f"--map {item}: expected COLUMN=FIELD, FIELD one of {sorted(fields)}")
        mapping[column.strip().lower()] = field
    return mapping


def _read(paths: list[Path], what: str | None, mapping: dict[str, Field]) -> list[Part]:
    try:
        sheets = read_files(paths, mapping) if len(paths) > 1 else read_source(paths[0], mapping)
    except ImportError_ as error:
        raise CliError(str(error)) from None
    except OSError as error:
        raise CliError(f"{error.filename}: {error.strerror}") from None
    parts = []
    for sheet in sheets:
        path = Path(sheet.label) if sheet.label else paths[0]
        kind = what or sheet.kind
        if kind is None:
            raise CliError(
                f"{path}: not recognised as members, balances, transfers or listings;"
                f" name the kind: letsbot import members {path}"
            )
        if what is None:
            found_as = f"recognised as {sheet.source}" if sheet.source else "read by its headers"
            print(f"{path}: {kind}, {found_as}")
        found = {name for _, values in sheet.rows for name in values}
        missing = [name for name in REQUIRED[kind] if name not in found]
        if missing and sheet.rows:
            raise CliError(
                f"{path}: no column for {', '.join(missing)}; name it with --map COLUMN=FIELD"
            )
        parts.append(Part(path, kind, sheet))
    return parts


def _import(
    connection: Connection,
    part: Part,
    args: argparse.Namespace,
    settings: Settings,
    now: datetime,
) -> bool:
    """Import one sheet in the run's transaction and say how it went; False: problems.

    Given our connection, the import functions leave the transaction to us.
    """
    prefix = settings.group.code_prefix.upper()
    decimals = settings.currency.decimals
    if part.kind == "members":
        members = import_members(
            connection,
            part.sheet,
            prefix=prefix,
            decimals=decimals,
            dry_run=args.dry_run,
            now=now,
            update=args.update,
        )
        return _members_said(part, members, args)
    if part.kind == "balances":
        balances = import_balances(
            connection,
            part.sheet,
            resolve=CodeBook.load(connection, prefix).resolve,
            prefix=prefix,
            decimals=decimals,
            limits=settings.group_limits,
            via_group_account=args.via_group_account,
            dry_run=args.dry_run,
            now=now,
            description=catalog(settings.group.language)["opening.description"],
            widen_limits=args.widen_limits,
        )
        return _balances_said(part, balances, args, prefix, decimals)
    if part.kind == "transfers":
        shown = part.expected
        expected: dict[int, int] | None = None
        if shown is not None:
            expected, unknown = _expected(connection, shown, prefix, decimals)
            for line in unknown:
                print(line)
            if unknown and not args.dry_run:
                print(f"nothing imported: {len(unknown)} balance(s) of no member")
                return False
        transfers = import_transfers(
            connection,
            part.sheet,
            prefix=prefix,
            decimals=decimals,
            tz=settings.tz,
            dry_run=args.dry_run,
            limits=settings.group_limits,
            widen_limits=args.widen_limits,
            expected_balances=expected,
            resolve=CodeBook.load(connection, prefix).resolve,
        )
        for line in transfers.warnings:
            print(f"{part.path}: {line}")
        for line in transfers.widened:
            print(f"{part.path}: {line}")
        report: Report = transfers
    else:
        report = import_listings(
            connection,
            part.sheet,
            prefix=prefix,
            tz=settings.tz,
            dry_run=args.dry_run,
            now=now,
            days=settings.market.listing_days,
            notice_at=lambda expires: notice_time(settings, expires, now),
        )
    if _problems(part, report, args):
        return False
    verb = "would add" if args.dry_run else "added"
    print(f"{verb} {report.added} {part.kind}; {report.unchanged} already there")
    return not report.problems


def _problems(part: Part, report: Report, args: argparse.Namespace) -> bool:
    """Print the problems; True when a real run stops on them."""
    for problem in report.problems:
        print(f"{part.path}: {problem}")
    if report.problems and not args.dry_run:
        print(f"nothing imported: {len(report.problems)} problem(s); fix them or see --dry-run")
        return True
    return False


def _members_said(part: Part, report: MembersReport, args: argparse.Namespace) -> bool:
    if _problems(part, report, args):
        return False
    for line in report.mapping:
        print(f"{part.path}: new code {line}")
    for line in report.notes:
        print(f"{part.path}: {line}")
    for line in report.changes:
        print(f"{part.path}: {line}")
    verb = "would add" if args.dry_run else "added"
    said = f"{verb} {report.added} members; {report.unchanged} already there"
    if report.changed and args.update:
        said += f"; {report.changed} {'would change' if args.dry_run else 'changed'}"
    print(said)
    if report.changed and not args.update:
        print(
            f"{part.path}: {report.changed} member(s) differ from the file (above);"
            " nothing imported: run it again with --update to make them so"
        )
        return False
    return not report.problems


def _balances_said(
    part: Part, report: BalancesReport, args: argparse.Namespace, prefix: str, decimals: int
) -> bool:
    if _problems(part, report, args):
        return False
    for line in report.booked:
        print(f"{part.path}: {line}")
    verb = "would book" if args.dry_run else "booked"
    group = MemberCode.show(prefix, MemberCode.GROUP_ACCOUNT)
    print(
        f"{verb} {report.added} opening balances; {report.unchanged} already booked,"
        f" {report.zero} at zero; the file sums to {units(report.total, decimals)};"
        f" the group account {group} {'would change' if args.dry_run else 'changed'}"
        f" by {units(report.group_change, decimals)}"
    )
    return not report.problems
