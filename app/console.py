"""``letsbot console``: chat with the bot in this terminal, run a script, or try the demo."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

from sqlalchemy import Engine

from adapters.console import NAME, Console, ScriptError, interactive, parse_script
from app.compose import (
    CliError,
    build_bot,
    engine_for,
    pictures_dir,
    ready_engine,
    settings_from,
)
from app.logs import quiet_libraries
from app.run import has_partners
from letsbot.clock import SystemClock, VirtualClock
from letsbot.config import GroupSection, Settings, StorageSection
from letsbot.hub import TransportError
from letsbot.i18n import catalog
from letsbot.messages import Outgoing
from letsbot.partners import PartnerDesk
from storage.database import upgrade


def demo_settings(coordinator: str) -> Settings:
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
        return demo()

    settings, path = settings_from(args)
    engine = ready_engine(settings, path.parent)
    logging.getLogger().setLevel(logging.WARNING)  # the chat is on stdout; keep stderr quiet
    quiet_libraries()
    if args.script is None:
        bot = build_bot(settings, engine, SystemClock())
        texts = catalog(settings.group.language)
        console = Console(bot, sys.stdout, pictures=pictures_dir(engine))
        with partners_beside(settings, path, engine, console):
            interactive(console, input, texts["console.who"] + " ", texts["console.hint"])
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


@contextlib.contextmanager
def partners_beside(
    settings: Settings, path: Path, engine: Engine, console: Console
) -> Iterator[None]:
    """With partner groups, their endpoint (``partners.listen``) and the sender run
    beside the chat, as in ``letsbot run``, on a thread of their own: two groups can
    trade from two terminals. What they have to say is printed when it comes."""
    if not (settings.partners.listen or has_partners(engine)):
        yield
        return
    from app.partner_http import PartnerService
    from app.partners import signing_key

    bot = console.bot
    key = signing_key(settings, path, engine)
    desk = PartnerDesk(settings, bot.uow, bot.clock, bot.translators, bot.outbox, key)
    service = PartnerService(desk, _Printed(console), settings.partners.listen)
    loop = asyncio.new_event_loop()
    started: Future[None] = Future()

    def serve() -> None:
        try:
            loop.run_until_complete(service.start())
        except BaseException as error:  # the address is taken: said, and no chat
            started.set_exception(error)
            loop.close()
            return
        started.set_result(None)
        loop.run_forever()
        loop.run_until_complete(service.stop())
        loop.close()

    thread = threading.Thread(target=serve, name="partners", daemon=True)
    thread.start()
    try:
        started.result()
    except TransportError as error:
        raise CliError(str(error)) from None
    bot.partner_lookup = service.look_up  # "Tine (GE-012)" in the question
    try:
        yield
    finally:
        bot.partner_lookup = None
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        console.release_all()


class _Printed:
    """A partner group's news (a payment arrived, one booked back), shown as it comes."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def post(self, outgoing: Outgoing) -> None:
        print(file=self.console.out)  # off the line being typed
        self.console.show([outgoing])


def demo() -> int:
    """The bot on var/demo.db, without a config file; the person at the keyboard coordinates."""
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
