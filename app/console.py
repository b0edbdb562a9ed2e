"""``letsbot console``: chat with the bot in this terminal, run a script, or try the demo."""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

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
from letsbot.clock import SystemClock, VirtualClock
from letsbot.config import GroupSection, Settings, StorageSection
from letsbot.i18n import catalog
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
