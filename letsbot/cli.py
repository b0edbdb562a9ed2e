"""``letsbot``: the command line, and the composition root that wires the parts."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import shutil
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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
from letsbot.hub import Hub, TransportError
from letsbot.i18n import catalog
from letsbot.timer import Timer
from storage.check import ledger_problems, ledger_size
from storage.database import make_engine, schema_state, upgrade
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
        "check",
        help="verify the ledger: balances sum to zero, cached balances match, limits hold",
    )

    backup = commands.add_parser(
        "backup", help="copy the SQLite database to FILE, safely while the bot runs"
    )
    backup.add_argument("file", metavar="FILE", type=Path)

    export = commands.add_parser("export", help="write members or transfers as CSV or JSON")
    export.add_argument("what", choices=["members", "transfers"])
    export.add_argument("--format", choices=["csv", "json"], default="csv")
    export.add_argument("--output", metavar="FILE", type=Path, help="default: standard output")

    imports = commands.add_parser(
        "import",
        help="read members or transfers from a CSV export of eLAS/eLAND (members first)",
    )
    imports.add_argument("what", choices=["members", "transfers"])
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
        " amount, description)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if args.log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    logging.basicConfig(level=args.log_level, handlers=[handler])
    logging.getLogger("alembic").setLevel(logging.WARNING)  # we say what it did ourselves
    logging.getLogger("httpx").setLevel(logging.WARNING)  # it would log URLs with tokens
    logging.getLogger("nio").setLevel(logging.WARNING)  # a line per room state event
    try:
        if args.command == "init":
            return cmd_init(args)
        if args.command == "db":
            return cmd_db_upgrade(args)
        if args.command == "console":
            return cmd_console(args)
        if args.command == "run":
            return cmd_run(args)
        if args.command == "backup":
            return cmd_backup(args)
        if args.command == "export":
            return cmd_export(args)
        if args.command == "import":
            return cmd_import(args)
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
    try:
        make_url(url)
    except ArgumentError:
        raise CliError(f"storage.url: not a database URL: {safe_url(url)}") from None
    try:
        return make_engine(url, sqlite_synchronous=settings.storage.sqlite_synchronous)
    except (ImportError, SQLAlchemyError) as error:
        raise CliError(f"storage.url: can't use {safe_url(url)}: {error}") from None


def safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unreadable URL)"


def ready_engine(settings: Settings, base: Path) -> Engine:
    """An engine on a database whose schema is current, or a clear CliError."""
    engine = engine_for(settings, base)
    try:
        current, head = schema_state(engine)
    except SQLAlchemyError as error:
        raise CliError(
            f"can't open the database {safe_url(str(engine.url))}: {error.__class__.__name__}"
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
    upgrade(engine)
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
            f"can't upgrade {safe_url(str(engine.url))}: {error.__class__.__name__}"
        ) from None
    print(f"database {safe_url(str(engine.url))} is at revision {current}")
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
        print(catalog("nl")["console.demo_intro"])
        print(catalog("en")["console.demo_intro"])
        name = ""
        while not re.fullmatch(NAME, name, re.ASCII):
            name = input(catalog("nl")["console.who"] + " ").strip()
        settings = demo_settings(name)
        engine = engine_for(settings, Path.cwd())
        upgrade(engine)
        bot = build_bot(settings, engine, SystemClock())
        hint = catalog("nl")["console.hint"]
        interactive(Console(bot, sys.stdout), input, "", hint, first_name=name)
        return 0

    settings, path = settings_from(args)
    engine = ready_engine(settings, path.parent)
    logging.getLogger().setLevel(logging.WARNING)  # the chat is on stdout; keep stderr quiet
    if args.script is None:
        bot = build_bot(settings, engine, SystemClock())
        texts = catalog(settings.group.language)
        interactive(
            Console(bot, sys.stdout), input, texts["console.who"] + " ", texts["console.hint"]
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
    Console(bot, sys.stdout, clock).run_script(steps)
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

    timer = Timer(post_scheduled)
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
            timer.stop()
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
    required = MEMBER_FIELDS if args.what == "members" else TRANSFER_FIELDS
    try:
        sheet = read_sheet(args.file, required, mapping)
    except ImportError_ as error:
        raise CliError(str(error)) from None
    except OSError as error:
        raise CliError(f"{args.file}: {error.strerror}") from None
    prefix = settings.group.code_prefix.upper()
    decimals = settings.currency.decimals
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
