"""``letsbot``: the command line. Each subcommand lives in its own module of ``app``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

from app.compose import CliError
from app.logs import JsonFormatter, quiet_libraries
from app.platforms import PLATFORMS
from letsbot import __version__
from letsbot.config import ConfigError


class Parser(argparse.ArgumentParser):
    """Command-line mistakes are one line, like every other error; no guessing of options."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="letsbot",
        description="A chat bot that runs a LETS group: members, payments and balances.",
    )
    parser.add_argument("--version", action="version", version=f"letsbot {__version__}")
    parser.add_argument(
        "--config",
        type=Path,
        help="the TOML configuration (default: $LETSBOT_CONFIG, else ./bot.toml)",
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    parser.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="json: one JSON object per line, for log collectors",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    init = commands.add_parser(
        "init", help="write bot.toml from the example and create the database"
    )
    init.add_argument("--force", action="store_true", help="overwrite an existing bot.toml")

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", metavar="DB_COMMAND", required=True)
    db_commands.add_parser("upgrade", help="bring the database schema up to date")
    copy = db_commands.add_parser(
        "copy",
        help="copy every table to another, empty database (e.g. from SQLite to PostgreSQL);"
        " stop the bot first",
    )
    copy.add_argument(
        "--to",
        metavar="URL",
        required=True,
        help="the target, e.g. postgresql+psycopg://letsbot@localhost/letsbot",
    )

    console = commands.add_parser(
        "console", help="chat with the bot in this terminal, or run a script of lines"
    )
    console.add_argument(
        "--script",
        metavar="FILE",
        help="read lines from FILE ('-' = standard input) instead of asking; exit at the end",
    )
    console.add_argument(
        "--demo",
        action="store_true",
        help="try the bot on var/demo.db, without a config file; you are a coordinator",
    )

    titles = ", ".join(listed.title for listed in PLATFORMS)
    commands.add_parser("run", help=f"serve the enabled chat platforms ({titles})")
    commands.add_parser(
        "doctor",
        help="check the configuration, the database and each enabled chat platform;"
        " a line per check, with what to do when one fails",
    )
    commands.add_parser(
        "check",
        help="verify the ledger: balances sum to zero, cached balances match, limits hold",
    )

    backup = commands.add_parser(
        "backup", help="copy the SQLite database to FILE, safely while the bot runs"
    )
    backup.add_argument("file", metavar="FILE", type=Path)

    export = commands.add_parser(
        "export",
        help="write members, transfers, listings, events or partner payments as CSV or JSON",
    )
    export.add_argument(
        "what", choices=["members", "transfers", "listings", "events", "partner-payments"]
    )
    export.add_argument("--format", choices=["csv", "json"], default="csv")
    export.add_argument("--output", metavar="FILE", type=Path, help="default: standard output")

    report = commands.add_parser(
        "report",
        help="write one HTML page with the figures, charts and events of a period,"
        " for the general meeting",
    )
    report.add_argument(
        "--from",
        dest="first",
        metavar="DATE",
        type=day_argument,
        help="the first day, YYYY-MM-DD (default: the first day of the month, 11 months back)",
    )
    report.add_argument(
        "--to",
        dest="last",
        metavar="DATE",
        type=day_argument,
        help="the last day, included, YYYY-MM-DD (default: today)",
    )
    report.add_argument(
        "--output",
        metavar="FILE",
        type=Path,
        required=True,
        help="the HTML file to write; it holds everything, images included",
    )

    imports = commands.add_parser(
        "import",
        help="move in from eLAS/eLAND (or our own export): members, balances, transfers,"
        " listings; all files in one go, all or nothing",
        usage="letsbot import [members|transfers|balances|listings] PATH... [options]",
        description="Read exports of eLAS or eLAND, or of letsbot export. Without a kind"
        " word each file is recognised by its columns; members are imported first, then"
        " balances, transfers and listings, all in one transaction: a problem in any file"
        " imports nothing. Exit status: 0 imported, 1 problems (or members that differ,"
        " without --update), 2 a wrong command or an unreadable file.",
    )
    imports.add_argument(
        "paths",
        metavar="PATH",
        nargs="+",
        type=Path,
        help="the files; the first may be the kind of all of them (members, transfers,"
        " balances or listings)",
    )
    imports.add_argument(
        "--dry-run", action="store_true", help="report what would happen; change nothing"
    )
    imports.add_argument(
        "--map",
        metavar="COLUMN=FIELD",
        action="append",
        default=[],
        help="read COLUMN as FIELD (code, name, status, role, min, max, date, from, to,"
        " amount, description, balance, owner, text, category, ...)",
    )
    imports.add_argument(
        "--update",
        action="store_true",
        help="members: make members already here as the file says (name, status, role,"
        " limits); without it such differences are shown and nothing is imported",
    )
    imports.add_argument(
        "--widen-limits",
        action="store_true",
        help="transfers: widen a member's limits where the old system let them go further",
    )
    imports.add_argument(
        "--group-account",
        metavar="CODE",
        help="the old system's code of the group's own account (e.g. 099): its history is"
        " booked on the group account here, DU-000, instead of on a member",
    )
    imports.add_argument(
        "--via-group-account",
        action="store_true",
        help="balances: accept a file that doesn't sum to zero; the group account carries"
        " the difference",
    )

    add_partner_parser(commands)

    claim = commands.add_parser(
        "claim-code",
        help="one-time codes (valid 7 days) with which imported members claim their account"
        " in a chat (/claim CODE, Dutch /activeer CODE)",
    )
    claim.add_argument("members", metavar="MEMBER", nargs="*", help="member codes, e.g. DU-012")
    claim.add_argument(
        "--all",
        action="store_true",
        help="every member who doesn't use the bot yet (a new code for each)",
    )
    return parser


def add_partner_parser(commands: Any) -> None:
    """``letsbot partner ...`` under ``commands`` (the parser's subcommands)."""
    partner = commands.add_parser(
        "partner",
        help="trade with other groups' bots (or by hand with groups on eLAND):"
        " this group's key, and the partner groups",
    )
    sub = partner.add_subparsers(dest="partner_command", metavar="PARTNER_COMMAND", required=True)
    sub.add_parser("key", help="print this group's public key, to give to a partner group")
    sub.add_parser("list", help="the partner groups, their terms and trade balances")
    add = sub.add_parser(
        "add", help="add a partner group, or change its terms (the same PREFIX again)"
    )
    add.add_argument("prefix", metavar="PREFIX", help="its member codes' prefix, e.g. GE")
    add.add_argument("--name", required=True, help='its name, e.g. "LETS Gent"')
    add.add_argument("--url", help="its bot's partner address, e.g. https://gent.example.org")
    add.add_argument("--key", help="its public key ('letsbot partner key' there)")
    add.add_argument(
        "--manual",
        action="store_true",
        help="a group on eLAND, without a bot (no --url, no --key): coordinators here"
        " have each payment entered there by hand",
    )
    add.add_argument(
        "--units-per-hour", type=int, required=True, help="its currency: units for an hour"
    )
    add.add_argument(
        "--decimals", type=int, default=0, choices=range(5), help="default: 0 (eLAND: always 0)"
    )
    add.add_argument("--unit", default="uren", help="its currency's name, plural (shown)")
    add.add_argument(
        "--cap",
        type=int,
        required=True,
        help="in this group's units: how far the trade balance may go either way",
    )
    check = sub.add_parser(
        "check",
        help="compare the trade balances and payments with each partner group's bot"
        " (exit status 1 when they differ)",
    )
    check.add_argument("prefix", metavar="PREFIX", nargs="?", help="only this partner group")
    rebook = sub.add_parser(
        "rebook",
        help="book again a payment that was booked back here but stands at the partner"
        " group ('partner check' names it); its bot is asked first",
    )
    rebook.add_argument("payment_id", metavar="PAYMENT_ID")
    for word, what in (
        ("pause", "stop payments with a partner group for now"),
        ("resume", "allow payments with a paused partner group again"),
        ("remove", "end a partnership whose trade balance is 0"),
    ):
        sub.add_parser(word, help=what).add_argument("prefix", metavar="PREFIX")


def day_argument(text: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    # Beyond these years a date is a typo, and would overflow the arithmetic of months.
    if day is None or not 1970 <= day.year <= 2999:
        raise argparse.ArgumentTypeError(
            f"expected a date such as 2026-01-31 (from 1970 to 2999), got {text!r}"
        )
    return day


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if (
        extra
        and getattr(args, "paths", None) is not None
        and not any(word.startswith("-") for word in extra)
    ):
        args.paths += [Path(word) for word in extra]  # files after an option: import --dry-run F
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if args.log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    logging.basicConfig(level=args.log_level, handlers=[handler])
    quiet_libraries()
    try:
        return dispatch(args)
    except (CliError, ConfigError) as error:
        print(f"letsbot: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``letsbot export ... | head``): stop quietly, and
        # keep the interpreter from failing again on flushing the closed stdout.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def dispatch(args: argparse.Namespace) -> int:
    """Run the subcommand; its module, and what only it needs, loads now."""
    if args.command == "init":
        from app.init import cmd_init

        return cmd_init(args)
    if args.command == "db":
        from app.db import cmd_db_copy, cmd_db_upgrade

        return cmd_db_copy(args) if args.db_command == "copy" else cmd_db_upgrade(args)
    if args.command == "console":
        from app.console import cmd_console

        return cmd_console(args)
    if args.command == "run":
        from app.run import cmd_run

        return cmd_run(args)
    if args.command == "doctor":
        from app.doctor import cmd_doctor

        return cmd_doctor(args)
    if args.command == "backup":
        from app.backup import cmd_backup

        return cmd_backup(args)
    if args.command == "export":
        from app.export import cmd_export

        return cmd_export(args)
    if args.command == "import":
        from app.importing import cmd_import

        return cmd_import(args)
    if args.command == "claim-code":
        from app.claim_code import cmd_claim_code

        return cmd_claim_code(args)
    if args.command == "partner":
        from app.partners import cmd_partner

        return cmd_partner(args)
    if args.command == "report":
        from app.report import cmd_report

        return cmd_report(args)
    from app.check import cmd_check

    return cmd_check(args)
