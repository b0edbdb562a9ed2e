"""The bot in a terminal: an interactive chat, or a script of lines (tests, demos).

Script lines::

    # a comment; blank lines are ignored
    @2026-12-01 09:00           set the virtual clock (local time of group.timezone)
    alice: /join Alice Peeters   alice writes to the bot in a direct chat
    alice@group: /balance        alice writes in the group channel
"""

from __future__ import annotations

import itertools
import re
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from letsbot.clock import VirtualClock
from letsbot.dispatcher import Bot
from letsbot.domain import Identity
from letsbot.markup import to_plain
from letsbot.messages import (
    Chat,
    ChatKind,
    Incoming,
    Mention,
    Outgoing,
    ToAllGroups,
    ToChat,
    ToPerson,
)
from letsbot.outbox import HOLD

PLATFORM = "console"
GROUP = Chat(PLATFORM, "group", ChatKind.GROUP)
NAME = r"[A-Za-z0-9_.-]{1,32}"
_SAY = re.compile(rf"(?P<name>{NAME})(?P<group>@group)?:\s?(?P<text>.*)", re.ASCII)
_CLOCK = re.compile(r"@\s*(?P<date>\d{4}-\d{2}-\d{2})[ T](?P<time>\d{1,2}:\d{2})\s*", re.ASCII)
_MENTION = re.compile(rf"@(?P<name>{NAME})", re.ASCII)


class ScriptError(ValueError):
    """A malformed script line; the message names the line."""


@dataclass(frozen=True)
class Say:
    line: int
    name: str
    in_group: bool
    text: str


@dataclass(frozen=True)
class SetClock:
    line: int
    moment: datetime


Step = Say | SetClock


def parse_script(lines: Iterable[str], timezone: ZoneInfo) -> list[Step]:
    """All steps of a script, or ScriptError for the first malformed line."""
    steps: list[Step] = []
    last: datetime | None = None
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("@"):
            match = _CLOCK.fullmatch(stripped)
            if match is None:
                raise ScriptError(f"line {number}: expected '@YYYY-MM-DD HH:MM', got {stripped!r}")
            try:
                local = datetime.strptime(f"{match['date']} {match['time']}", "%Y-%m-%d %H:%M")
            except ValueError:
                raise ScriptError(f"line {number}: no such date or time: {stripped!r}") from None
            moment = local.replace(tzinfo=timezone)
            if last is not None and moment < last:
                raise ScriptError(f"line {number}: the clock can't go back ({stripped!r})")
            last = moment
            steps.append(SetClock(number, moment))
            continue
        said = _SAY.fullmatch(stripped)
        if said is None:
            raise ScriptError(
                f"line {number}: expected 'name: text', 'name@group: text' or '@date time',"
                f" got {stripped!r}"
            )
        steps.append(Say(number, said["name"], bool(said["group"]), said["text"]))
    return steps


def render(outgoing: Outgoing, picture: str | None = None) -> str:
    """``[group] text`` or ``[dm name] text``; continuation lines indented two spaces.

    A picture is one line: its caption, the file it was written to (``picture``,
    else its name) and the text that says what it shows.
    """
    target = outgoing.target
    if isinstance(target, ToAllGroups):
        where = "group"
    elif isinstance(target, ToChat):
        where = "group" if target.chat.is_group else f"dm {target.chat.chat_id}"
    elif isinstance(target, ToPerson):
        who = target.identity
        where = f"dm {who.user_id}" if who.platform == PLATFORM else f"dm {who}"
    if outgoing.image is not None:
        image = outgoing.image
        caption = to_plain(outgoing.text).replace("\n", " ")
        return f"[{where}] {caption} (picture {picture or image.name}): {image.alt}"
    lines = to_plain(outgoing.text).split("\n")
    block = [f"[{where}] {lines[0]}", *(f"  {line}" for line in lines[1:])]
    # Commands offered as buttons (votes) can't be pressed in a terminal; the
    # text says what to type. A Ja/Nee question shows its typed answers.
    if outgoing.choices and outgoing.asked is not None:
        block.append(
            "  " + "  ".join(f"({n}) {c.label}" for n, c in enumerate(outgoing.choices, start=1))
        )
    return "\n".join(block)


class Console:
    """Feeds lines to the bot as console messages and prints every reply."""

    def __init__(
        self,
        bot: Bot,
        out: TextIO,
        clock: VirtualClock | None = None,
        pictures: Path | None = None,
    ) -> None:
        self.bot = bot
        self.out = out
        self.clock = clock
        # Where pictures (charts) are written; a new temporary folder if None.
        self.pictures = pictures
        # Event ids must never repeat across runs on the same database.
        self._run = uuid.uuid4().hex[:12]
        self._count = 0
        self._picture_numbers = itertools.count(1)
        # Partner groups' news is shown from another thread (app.console): a line at a time.
        self._showing = threading.Lock()
        # Held back as the hub holds them (Outgoing.held_as): by key, with its timer.
        self._held: dict[str, tuple[Outgoing, threading.Timer]] = {}

    def say(self, name: str, text: str, *, in_group: bool) -> None:
        self._count += 1
        identity = Identity(PLATFORM, name)
        chat = GROUP if in_group else Chat(PLATFORM, name, ChatKind.DIRECT)
        mentions = tuple(
            Mention(m.group(0), Identity(PLATFORM, m["name"])) for m in _MENTION.finditer(text)
        )
        incoming = Incoming(
            platform=PLATFORM,
            event_id=f"{self._run}-{self._count}",
            chat=chat,
            sender=identity,
            sender_name=name,
            text=text,
            mentions=mentions,
        )
        self.show(self.bot.handle(incoming).replies)

    def show(self, replies: list[Outgoing]) -> None:
        done: list[Outgoing] = []
        with self._showing:
            for outgoing in replies:
                if outgoing.overtakes in self._held:  # never shown: this says more
                    dropped, timer = self._held.pop(outgoing.overtakes)
                    timer.cancel()
                    done.append(dropped)
                if outgoing.held_as is not None:
                    timer = threading.Timer(HOLD.total_seconds(), self._release, [outgoing.held_as])
                    timer.daemon = True
                    self._held[outgoing.held_as] = (outgoing, timer)
                    timer.start()
                    continue
                picture = self._write_picture(outgoing) if outgoing.image else None
                print(render(outgoing, picture), file=self.out)
                done.append(outgoing)
            self.out.flush()
        # Shown (or overtaken): the outbox keeps nothing for a later `letsbot run` to send.
        shown = [o.outbox_id for o in done if o.outbox_id is not None]
        if shown:
            self.bot.delivered(shown)

    def _release(self, key: str) -> None:
        """A held message not overtaken in time: shown now."""
        with self._showing:
            found = self._held.pop(key, None)
        if found is not None:
            print(file=self.out)  # off the line being typed
            self.show([replace(found[0], held_as=None)])

    def release_all(self) -> None:
        """Show what is still held: nothing will overtake it now."""
        for key in list(self._held):
            found = self._held.get(key)
            if found is not None:
                found[1].cancel()
                self._release(key)

    def _write_picture(self, outgoing: Outgoing) -> str:
        """A terminal shows no pictures: write it to a file that can be opened."""
        assert outgoing.image is not None
        if self.pictures is None:
            self.pictures = Path(tempfile.mkdtemp(prefix="letsbot-pictures-"))
        self.pictures.mkdir(parents=True, exist_ok=True)
        number = next(self._picture_numbers)
        path = self.pictures / f"{self._run}-{number}-{outgoing.image.name}"
        path.write_bytes(outgoing.image.data)
        return str(path)

    def advance(self, moment: datetime) -> None:
        """Move the virtual clock, running each piece of scheduled work at its own time."""
        assert self.clock is not None
        self.show(self.bot.catch_up(moment, self.clock.set))

    def run_script(self, steps: list[Step]) -> None:
        for step in steps:
            if isinstance(step, SetClock):
                if self.clock is None:
                    raise ScriptError(f"line {step.line}: this console has no virtual clock")
                self.advance(step.moment)
            else:
                self.say(step.name, step.text, in_group=step.in_group)


def interactive(
    console: Console,
    ask: Callable[[str], str],
    prompt_name: str,
    hint: str,
    first_name: str | None = None,
) -> None:
    """A chat in the terminal.

    ``:as NAME`` switches person, ``:group`` / ``:dm`` where you write, ``:quit`` ends.
    """
    name = first_name
    in_group = False
    while not name:
        try:
            name = ask(prompt_name).strip()
        except EOFError:  # Ctrl-D (or the end of piped input) before a name: done
            print(file=console.out)
            return
        if name and not re.fullmatch(NAME, name, re.ASCII):
            print(hint, file=console.out)
            name = None
    while True:
        where = "@group" if in_group else ""
        try:
            line = ask(f"{name}{where}> ")
        except EOFError:
            print(file=console.out)
            return
        stripped = line.strip()
        if stripped in (":quit", ":q", ":exit"):
            return
        if stripped == ":group":
            in_group = True
        elif stripped == ":dm":
            in_group = False
        elif stripped.startswith(":as "):
            candidate = stripped[4:].strip()
            if re.fullmatch(NAME, candidate, re.ASCII):
                name = candidate
            else:
                print(hint, file=console.out)
        elif stripped.startswith(":"):
            print(hint, file=console.out)
        elif stripped:
            console.show(console.bot.scheduled_work())  # what fell due while you typed
            console.say(name, stripped, in_group=in_group)
