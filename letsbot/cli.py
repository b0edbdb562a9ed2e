"""``letsbot``: the command line, and the composition root that wires the parts."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import shutil
import signal
import sys
import tomllib
from collections.abc import Awaitable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from adapters.console import NAME, Console, ScriptError, interactive, parse_script
from letsbot import __version__
from letsbot.clock import Clock, SystemClock, VirtualClock
from letsbot.config import (
    ConfigError,
    Settings,
    default_config_path,
    load_settings,
    resolve_sqlite_path,
)
from letsbot.dispatcher import Bot
from letsbot.doctor import Check
from letsbot.hub import Hub, TransportError
from letsbot.i18n import catalog
from letsbot.timer import CHECK_EVERY, Timer
from storage.check import ledger_problems, ledger_size
from storage.database import UrlError, error_reason, make_engine, schema_state, upgrade
from storage.platform import SqlPlatformStore
from storage.uow import SqlUnitOfWork

if TYPE_CHECKING:
    from adapters.matrix import Tuning as MatrixTuning
    from adapters.telegram import Tuning

log = logging.getLogger("letsbot")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the traceback, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class CliError(Exception):
    """One line for the person at the terminal; exit status 2."""


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

    commands.add_parser("run", help="serve the enabled chat platforms (Telegram, Matrix)")
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
        "export", help="write members, transfers, listings or events as CSV or JSON"
    )
    export.add_argument("what", choices=["members", "transfers", "listings", "events"])
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
        help="read members, transfers or balances from a CSV export of eLAS/eLAND (members first)",
    )
    imports.add_argument("what", choices=["members", "transfers", "balances"])
    imports.add_argument("file", metavar="FILE", type=Path)
    imports.add_argument(
        "--dry-run", action="store_true", help="report what would happen; change nothing"
    )
    imports.add_argument(
        "--map",
        metavar="COLUMN=FIELD",
        action="append",
        default=[],
        help="read COLUMN as FIELD (code, name, status, role, min, max, date, from, to,"
        " amount, description, balance)",
    )
    imports.add_argument(
        "--via-group-account",
        action="store_true",
        help="balances: accept a file that doesn't sum to zero; the group account carries"
        " the difference",
    )

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


# The least a library logs, whatever --log-level says: below it they would write
# tokens, message texts or names (python-telegram-bot logs every Bot API call with
# its parameters at DEBUG; nio logs whole responses).
LIBRARY_LEVELS = {
    "alembic": logging.WARNING,  # we say what it did ourselves
    "httpx": logging.WARNING,  # it would log URLs with tokens
    "httpcore": logging.WARNING,
    "nio": logging.WARNING,  # a line per room state event, and response bodies
    "telegram": logging.INFO,  # DEBUG: every request and answer, texts and names included
}


def quiet_libraries() -> None:
    """Raise the chatty libraries' loggers to their floor (never below the root's level)."""
    root = logging.getLogger().getEffectiveLevel()
    for name, floor in LIBRARY_LEVELS.items():
        logging.getLogger(name).setLevel(max(root, floor))


def day_argument(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a date such as 2026-01-31, got {text!r}"
        ) from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if args.log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    logging.basicConfig(level=args.log_level, handlers=[handler])
    quiet_libraries()
    try:
        if args.command == "init":
            return cmd_init(args)
        if args.command == "db":
            return cmd_db_copy(args) if args.db_command == "copy" else cmd_db_upgrade(args)
        if args.command == "console":
            return cmd_console(args)
        if args.command == "run":
            return cmd_run(args)
        if args.command == "doctor":
            return cmd_doctor(args)
        if args.command == "backup":
            return cmd_backup(args)
        if args.command == "export":
            return cmd_export(args)
        if args.command == "import":
            return cmd_import(args)
        if args.command == "claim-code":
            return cmd_claim_code(args)
        if args.command == "report":
            return cmd_report(args)
        return cmd_check(args)
    except (CliError, ConfigError) as error:
        print(f"letsbot: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


# composition ------------------------------------------------------------


def config_path(args: argparse.Namespace) -> Path:
    return args.config if args.config is not None else default_config_path()


def settings_from(args: argparse.Namespace) -> tuple[Settings, Path]:
    path = config_path(args)
    return load_settings(path), path


def engine_for(settings: Settings, base: Path) -> Engine:
    url = resolve_sqlite_path(settings.storage.url, base)
    return open_engine(url, "storage.url", settings.storage.sqlite_synchronous)


def open_engine(url: str, what: str, sqlite_synchronous: str = "NORMAL") -> Engine:
    """An engine on ``url``, or a CliError naming ``what`` (the key or option) and why."""
    try:
        return make_engine(url, sqlite_synchronous=sqlite_synchronous)
    except UrlError as error:
        raise CliError(f"{what} {safe_url(url)}: {error}") from None
    except SQLAlchemyError as error:
        raise CliError(f"{what} {safe_url(url)}: {error_reason(error, url)}") from None


def safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # a port that is no number is a ValueError
        return "(unreadable URL)"


def ready_engine(settings: Settings, base: Path) -> Engine:
    """An engine on a database whose schema is current, or a clear CliError."""
    engine = engine_for(settings, base)
    try:
        current, head = schema_state(engine)
    except SQLAlchemyError as error:
        shown = safe_url(str(engine.url))
        raise CliError(
            f"can't open the database {shown}: {error_reason(error, engine.url)}"
        ) from None
    if current != head:
        state = "has no letsbot tables" if current is None else f"is at revision {current}"
        raise CliError(
            f"the database {safe_url(str(engine.url))} {state}; this version needs {head}:"
            " run 'letsbot db upgrade'"
        )
    return engine


def build_bot(settings: Settings, engine: Engine, clock: Clock) -> Bot:
    return Bot(settings, SqlUnitOfWork(engine), clock)


def pictures_dir(engine: Engine) -> Path | None:
    """Where the console writes charts: beside a SQLite file, else a temporary folder (None)."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).parent / "pictures"
    return None


# subcommands ----------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    path = config_path(args)
    if path.exists() and not args.force:
        raise CliError(f"{path} exists already (use --force to overwrite it)")
    example = resources.files("letsbot") / "bot.toml.example"
    with example.open("rb") as source, path.open("wb") as target:
        shutil.copyfileobj(source, target)
    settings = load_settings(path)
    engine = engine_for(settings, path.parent)
    try:
        upgrade(engine)
    except SQLAlchemyError as error:
        raise CliError(
            f"wrote {path}, but can't create the database {safe_url(str(engine.url))}:"
            f" {error_reason(error, engine.url)}"
        ) from None
    print(f"wrote {path} and created the database {safe_url(str(engine.url))}")
    print(f"next: edit {path} (group name, coordinators), then 'letsbot console' or 'letsbot run'")
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings, path = settings_from(args)
    engine = engine_for(settings, path.parent)
    try:
        upgrade(engine)
        current, _ = schema_state(engine)
    except SQLAlchemyError as error:
        raise CliError(
            f"can't upgrade {safe_url(str(engine.url))}: {error_reason(error, engine.url)}"
        ) from None
    print(f"database {safe_url(str(engine.url))} is at revision {current}")
    return 0


def cmd_db_copy(args: argparse.Namespace) -> int:
    from storage.copy import CopyError, copy_database

    settings, path = settings_from(args)
    source = ready_engine(settings, path.parent)
    target_url = resolve_sqlite_path(args.to, Path.cwd())
    shown = safe_url(target_url)
    target = open_engine(target_url, "--to")
    warnings: list[str] = []
    try:
        counts = copy_database(source, target, warnings.append)
    except CopyError as error:
        raise CliError(f"{shown}: {error}") from None
    rows = ", ".join(f"{name} {count}" for name, count in counts.items() if count)
    print(f"copied {sum(counts.values())} rows to {shown} ({rows or 'no rows'})")
    for warning in warnings:
        print(warning)
    problems = ledger_problems(target, settings.group_limits)
    members, transfers = ledger_size(target)
    if problems:
        print(f"check on the copy FAILED: {len(problems)} problem(s)")
        for problem in problems:
            print(f"  {problem}")
        return 1
    print(f"check on the copy: OK, {members} members, {transfers} transfers")
    print(
        "next: point storage.url at the copy (a password belongs in LETSBOT_STORAGE__URL,"
        " not in bot.toml), then start the bot"
    )
    return 0


def demo_settings(coordinator: str) -> Settings:
    from letsbot.config import GroupSection, StorageSection

    return Settings(
        group=GroupSection(
            name="LETS Demo", code_prefix="DEMO", coordinators=[f"console:{coordinator}"]
        ),
        storage=StorageSection(url="sqlite:///var/demo.db"),
    )


def cmd_console(args: argparse.Namespace) -> int:
    if args.demo and args.script:
        raise CliError("--demo is for trying the bot by hand; use --config with --script")
    if args.demo:
        logging.getLogger().setLevel(logging.WARNING)
        quiet_libraries()
        print(catalog("nl")["console.demo_intro"])
        print(catalog("en")["console.demo_intro"])
        name = ""
        while not re.fullmatch(NAME, name, re.ASCII):
            try:
                name = input(catalog("nl")["console.who"] + " ").strip()
            except EOFError:  # Ctrl-D (or the end of piped input) before a name: done
                print()
                return 0
        settings = demo_settings(name)
        engine = engine_for(settings, Path.cwd())
        upgrade(engine)
        bot = build_bot(settings, engine, SystemClock())
        hint = catalog("nl")["console.hint"]
        console = Console(bot, sys.stdout, pictures=pictures_dir(engine))
        interactive(console, input, "", hint, first_name=name)
        return 0

    settings, path = settings_from(args)
    engine = ready_engine(settings, path.parent)
    logging.getLogger().setLevel(logging.WARNING)  # the chat is on stdout; keep stderr quiet
    quiet_libraries()
    if args.script is None:
        bot = build_bot(settings, engine, SystemClock())
        texts = catalog(settings.group.language)
        interactive(
            Console(bot, sys.stdout, pictures=pictures_dir(engine)),
            input,
            texts["console.who"] + " ",
            texts["console.hint"],
        )
        return 0

    try:
        if args.script == "-":
            lines = sys.stdin.read().splitlines()
        else:
            lines = Path(args.script).read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise CliError(f"{args.script}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise CliError(f"{args.script}: not UTF-8 text") from None
    try:
        steps = parse_script(lines, settings.tz)
    except ScriptError as error:
        raise CliError(f"{args.script}: {error}") from None
    clock = VirtualClock(SystemClock().now())
    bot = build_bot(settings, engine, clock)
    Console(bot, sys.stdout, clock, pictures_dir(engine)).run_script(steps)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    settings, path = settings_from(args)
    engine = ready_engine(settings, path.parent)
    if not settings.telegram.enabled and not settings.matrix.enabled:
        raise CliError(
            f"{path}: no chat platform is enabled; set enabled = true under [telegram]"
            " or [matrix], or try the bot with 'letsbot console'"
        )
    try:
        asyncio.run(run_until_signal(settings, engine))
    except TransportError as error:
        raise CliError(str(error)) from None
    return 0


async def run_until_signal(settings: Settings, engine: Engine) -> None:
    """Serve until SIGINT or SIGTERM; a second signal ends the process at once."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)

    def on_signal(number: int) -> None:
        log.info("%s: stopping after the messages in hand", signal.Signals(number).name)
        for each in signals:
            loop.remove_signal_handler(each)
        stop.set()

    for number in signals:
        loop.add_signal_handler(number, on_signal, number)
    await serve(settings, engine, SystemClock(), stop)


def build_hub(
    settings: Settings,
    engine: Engine,
    clock: Clock,
    *,
    telegram_tuning: Tuning | None = None,
    matrix_tuning: MatrixTuning | None = None,
) -> Hub:
    """The bot behind every enabled chat platform (not started yet)."""
    # A chat SDK loads only when its platform is served: console, check and a
    # one-platform run start faster and stay smaller (see the start-up benchmark).
    bot = build_bot(settings, engine, clock)
    hub = Hub(bot)
    if settings.telegram.enabled:
        from adapters.telegram import PLATFORM as TELEGRAM
        from adapters.telegram import TelegramTransport

        hub.add(
            TelegramTransport(
                settings.telegram,
                SqlPlatformStore(engine, TELEGRAM, clock),
                bot.translators,
                language=settings.group.language,
                group_name=settings.group.name,
                tuning=telegram_tuning,
            )
        )
    if settings.matrix.enabled:
        from adapters.matrix import PLATFORM as MATRIX
        from adapters.matrix import MatrixTransport

        hub.add(
            MatrixTransport(
                settings.matrix,
                SqlPlatformStore(engine, MATRIX, clock),
                bot.translators,
                language=settings.group.language,
                group_name=settings.group.name,
                tuning=matrix_tuning,
            )
        )
    return hub


async def serve(
    settings: Settings,
    engine: Engine,
    clock: Clock,
    stop: asyncio.Event,
    *,
    telegram_tuning: Tuning | None = None,
    matrix_tuning: MatrixTuning | None = None,
    check_every: timedelta = CHECK_EVERY,
) -> None:
    """Every enabled chat platform in one process, until ``stop`` is set; then a clean stop.

    Stopping finishes the messages already received and sends their replies.
    """
    hub = build_hub(
        settings, engine, clock, telegram_tuning=telegram_tuning, matrix_tuning=matrix_tuning
    )
    secrets = [settings.telegram.bot_token()] if settings.telegram.enabled else []
    if settings.matrix.enabled:
        secrets += [settings.matrix.login_password(), settings.matrix.token()]

    async def post_scheduled() -> None:
        for outgoing in await asyncio.to_thread(hub.bot.scheduled_work):
            hub.post(outgoing)

    timer = Timer(post_scheduled, check_every)
    with redacted(secrets):
        starting = asyncio.create_task(hub.start())
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if starting.done():
                starting.result()  # a transport that can't start ends the run
                timer.start()  # reminders and notices, from now on and those missed
                await stopping
        finally:
            await timer.stop()
            for task in (starting, stopping):
                task.cancel()
            await asyncio.gather(starting, stopping, return_exceptions=True)
            await hub.stop()
            log.info("stopped")


class Redact(logging.Filter):
    """Secrets never reach a log line, whoever logs them (PTB, httpx, us)."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "<secret>")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self.clean(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.clean(record.exc_text)
        return True


@contextmanager
def redacted(secrets: Sequence[str]) -> Iterator[None]:
    """Redact ``secrets`` in everything the root logger's handlers write, for a while."""
    redact = Redact(secrets)
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(redact)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(redact)


def cmd_check(args: argparse.Namespace) -> int:
    settings, path = settings_from(args)
    engine = ready_engine(settings, path.parent)
    problems = ledger_problems(engine, settings.group_limits)
    members, transfers = ledger_size(engine)
    if problems:
        print(f"FAILED: {len(problems)} problem(s) in {members} members, {transfers} transfers")
        for problem in problems:
            print(f"  {problem}")
        return 1
    print(f"OK: {members} members, {transfers} transfers; balances sum to zero and match")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from storage.backup import BackupError, backup_sqlite

    settings, path = settings_from(args)
    engine = ready_engine(settings, path.parent)
    try:
        pages = backup_sqlite(str(engine.url), args.file)
    except (BackupError, OSError) as error:
        raise CliError(str(error)) from None
    print(f"wrote {args.file} ({pages} pages); to restore, point storage.url at a copy of it")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from storage.exchange import export_rows, write_rows

    settings, path = settings_from(args)
    engine = ready_engine(settings, path.parent)
    rows = export_rows(
        engine, args.what, settings.group.code_prefix.upper(), settings.currency.decimals
    )
    if args.output is None:
        write_rows(rows, sys.stdout, args.format)
        return 0
    try:
        with args.output.open("w", encoding="utf-8", newline="") as out:
            write_rows(rows, out, args.format)
    except OSError as error:
        raise CliError(f"{args.output}: {error.strerror}") from None
    print(f"wrote {len(rows)} {args.what} to {args.output}", file=sys.stderr)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from storage.exchange import (
        BALANCE_FIELDS,
        HEADERS,
        MEMBER_FIELDS,
        TRANSFER_FIELDS,
        ImportError_,
        import_members,
        import_transfers,
        read_sheet,
    )

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


CLAIM_PROBLEMS = {
    "group_account": "is the group account",
    "inactive": "is no longer a member",
    "has_chat": "uses the bot already (they add another chat app themselves with /link)",
}


def cmd_claim_code(args: argparse.Namespace) -> int:
    from letsbot.domain import CodePurpose, Status
    from letsbot.linking import claim_problem, issue_code, spaced
    from storage.exchange import parse_code

    if bool(args.members) == args.all:
        raise CliError("claim-code: name members (e.g. DU-012) or give --all, not both")
    settings, path = settings_from(args)
    engine = ready_engine(settings, path.parent)
    prefix = settings.group.code_prefix.upper()
    now = SystemClock().now()
    problems: list[str] = []
    lines: list[str] = []
    # All or nothing, in one transaction: a problem with one member makes no codes.
    with SqlUnitOfWork(engine).transaction() as store:
        if args.all:
            statuses = (Status.ACTIVE, Status.LEAVING, Status.CANDIDATE)
            chosen = [m for m in store.members.members(statuses) if claim_problem(store, m) is None]
        else:
            chosen = []
            for text in args.members:
                number = parse_code(text, prefix)
                member = store.members.member_by_number(number) if number is not None else None
                if member is None:
                    problems.append(f"{text}: no member with that code")
                elif (problem := claim_problem(store, member)) is not None:
                    problems.append(f"{prefix}-{member.number:03d}: {CLAIM_PROBLEMS[problem]}")
                else:
                    chosen.append(member)
        if not problems:
            for member in chosen:
                code, expires = issue_code(store, settings, CodePurpose.CLAIM, member, now, None)
                until = expires.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M")
                lines.append(
                    f"{prefix}-{member.number:03d} {member.name}: {spaced(code)}"
                    f" (valid until {until})"
                )
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print("no codes made: fix the member codes and run it again", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    if not lines:
        print("every member uses the bot already: no codes made")
        return 0
    print(
        f"{len(lines)} code(s); hand each to its member in person or on paper. They send"
        " /activeer CODE (English: /claim CODE) in a direct chat with the bot."
        " An earlier code of theirs no longer works."
    )
    return 0


def import_balances_report(
    args: argparse.Namespace, settings: Settings, engine: Engine, sheet: Any
) -> int:
    from storage.exchange import import_balances, units

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
    print(
        f"{verb} {report.added} opening balances; {report.unchanged} already booked,"
        f" {report.zero} at zero; the file sums to {units(report.total, decimals)};"
        f" the group account {prefix}-000 {'would change' if args.dry_run else 'changed'}"
        f" by {units(report.group_change, decimals)}"
    )
    return 1 if report.problems else 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from storage.doctor import database_checks

    path = config_path(args)
    checks: list[Check] = []
    try:
        settings = load_settings(path)
    except ConfigError as error:
        checks.append(
            Check.failed(
                "configuration", str(error), "correct it (bot.toml.example shows every key)"
            )
        )
        return report_checks(checks)
    sections = (("telegram", settings.telegram), ("matrix", settings.matrix))
    enabled = [name for name, section in sections if section.enabled]
    checks.append(
        Check.passed(
            "configuration",
            f"{path} loads; chat platforms: {', '.join(enabled) or 'none (console only)'}",
        )
    )
    checks.extend(secret_checks(settings, path))
    try:
        engine = engine_for(settings, path.parent)
    except CliError as error:
        checks.append(Check.failed("database", str(error), "correct storage.url"))
    else:
        checks.extend(database_checks(engine, settings.group_limits, safe_url(str(engine.url))))
    secrets = [settings.telegram.bot_token()] if settings.telegram.enabled else []
    if settings.matrix.enabled:
        secrets += [settings.matrix.login_password(), settings.matrix.token()]
    with redacted(secrets):
        checks.extend(asyncio.run(platform_checks(settings)))
    return report_checks(checks)


# Each secret of bot.toml: its name in doctor's lines, section, key, variable, *_file key.
SECRETS = (
    ("telegram token", "telegram", "token", "TELEGRAM__TOKEN", "token_file"),
    ("matrix password", "matrix", "password", "MATRIX__PASSWORD", "password_file"),
    ("matrix access token", "matrix", "access_token", "MATRIX__ACCESS_TOKEN", "access_token_file"),
)


@dataclass(frozen=True)
class Found:
    """A secret as the configuration holds it (never its value)."""

    name: str  # as doctor names it
    key: str  # section.key in the file
    variable: str  # LETSBOT_<variable>
    in_file: bool
    overridden: bool  # by the environment: the file's copy is ignored


def secret_checks(settings: Settings, path: Path) -> list[Check]:
    """Where each secret comes from; never its value.

    Fails for every secret written in ``path`` (also of a platform that is off, and
    a password inside storage.url) when others may read the file, and for one the
    environment overrides: the file's copy is then ignored, and only a risk.
    """
    written = _written(path)
    used = _used_secrets(settings)
    checks = []
    for name, section, key, variable, file_key in SECRETS:
        value = written.get(section, {}).get(key)
        in_file = isinstance(value, str) and bool(value.strip())
        loaded = getattr(settings, section)
        effective = getattr(loaded, key).get_secret_value()
        overridden = in_file and (effective != value or _in_environment(variable))
        if in_file or name in used:
            found = Found(name, f"{section}.{key}", variable, in_file, overridden)
            elsewhere = f"LETSBOT_{variable} or {section}.{file_key}"
            checks.append(_secret_check(found, path, elsewhere, str(getattr(loaded, file_key))))
    checks.extend(_database_password_check(settings, path, written))
    return checks


def _secret_check(found: Found, path: Path, elsewhere: str, secret_file: str) -> Check:
    """``elsewhere``: where the secret belongs; ``secret_file``: the *_file it may come from."""
    name = found.name
    if found.overridden:
        return Check.failed(
            name,
            f"LETSBOT_{found.variable} overrides {found.key}, so the copy in {path} is ignored",
            f"remove {found.key} from {path}",
        )
    if found.in_file and (readers := _readers(path)):
        return Check.failed(
            name,
            f"written in {path}, which {readers} may read",
            f"move it to {elsewhere}, or 'chmod go-r {path}' if the bot runs as its owner",
        )
    if found.in_file:
        return Check.passed(name, f"set, in {path}")
    if _in_environment(found.variable):
        return Check.passed(name, f"set, from LETSBOT_{found.variable}")
    return Check.passed(name, f"set, from {secret_file}")


def _database_password_check(
    settings: Settings, path: Path, written: dict[str, Any]
) -> list[Check]:
    url = written.get("storage", {}).get("url")
    in_file = isinstance(url, str) and bool(_password(url))
    if not in_file and not _password(settings.storage.url):
        return []  # no password at all (SQLite, or a server that trusts the bot's user)
    overridden = in_file and settings.storage.url != url
    found = Found("database password", "storage.url", "STORAGE__URL", in_file, overridden)
    return [_secret_check(found, path, "LETSBOT_STORAGE__URL (the whole URL)", "")]


def _used_secrets(settings: Settings) -> set[str]:
    used = {"telegram token"} if settings.telegram.enabled else set()
    if settings.matrix.enabled:
        used.add("matrix access token" if settings.matrix.token() else "matrix password")
    return used


def _written(path: Path) -> dict[str, Any]:
    """The config file as written, before the environment overrides anything."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, ValueError):
        return {}


def _password(url: str) -> str | None:
    try:
        return make_url(url).password
    except (ArgumentError, ValueError):
        return None


def _in_environment(variable: str) -> bool:
    wanted = f"LETSBOT_{variable}".lower()  # pydantic-settings reads names in any case
    return any(key.lower() == wanted and value for key, value in os.environ.items())


def _readers(path: Path) -> str:
    """Who besides the file's owner may read ``path``: '' when nobody."""
    mode = path.stat().st_mode
    if mode & 0o004:
        return "everyone on this server"
    if mode & 0o040:
        return "its group"
    return ""


async def platform_checks(settings: Settings) -> list[Check]:
    """Each enabled chat platform asked by its own adapter (the SDKs load only now)."""
    checks: list[Check] = []
    if settings.telegram.enabled:
        from adapters.telegram import diagnose as telegram

        checks.extend(await unexpected("telegram", telegram(settings.telegram)))
    if settings.matrix.enabled:
        from adapters.matrix import diagnose as matrix

        checks.extend(await unexpected("matrix", matrix(settings.matrix)))
    return checks


async def unexpected(platform: str, probe: Awaitable[list[Check]]) -> list[Check]:
    """A probe that breaks in a way nobody foresaw is a failed check, not a traceback."""
    try:
        return await probe
    except Exception as error:
        log.exception("doctor: the %s check broke", platform)
        return [
            Check.failed(
                platform,
                f"the check itself broke ({type(error).__name__})",
                "read the log lines above, and the README section of this platform",
            )
        ]


def report_checks(checks: Sequence[Check]) -> int:
    for check in checks:
        print(check.line())
    failed = sum(1 for check in checks if not check.ok)
    if failed:
        print(f"{failed} of {len(checks)} checks failed")
        return 1
    print(f"all {len(checks)} checks passed")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from letsbot.figures import months_back
    from letsbot.i18n import Translator
    from letsbot.report import build_report

    settings, path = settings_from(args)
    engine = ready_engine(settings, path.parent)
    now = SystemClock().now()
    last: date = args.last or now.astimezone(settings.tz).date()
    first: date = args.first or months_back(last, 12)
    if first > last:
        raise CliError(f"--from {first} is after --to {last}")
    t = Translator(settings.group.language, settings.currency_spec, settings.tz)
    page = build_report(SqlUnitOfWork(engine), settings, t, first, last, now)
    try:
        args.output.write_text(page, encoding="utf-8")
    except OSError as error:
        raise CliError(f"{args.output}: {error.strerror}") from None
    print(f"wrote {args.output}: {first} to {last}")
    return 0
