"""The one list of commands: names in both languages, who may run them, where.

``/help`` is generated from it; each capability module declares its commands
where it implements them.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from difflib import get_close_matches
from typing import TYPE_CHECKING

from letsbot.domain import Member, PendingAction, Status
from letsbot.text import fold

if TYPE_CHECKING:
    from letsbot.context import Context
    from letsbot.domain import Pending


class Who(enum.IntEnum):
    """Ordered: each level may run everything the levels below it may."""

    ANYONE = 0  # also people who are not members yet
    MEMBER = 1  # active or leaving members
    COORDINATOR = 2


class Where(enum.StrEnum):
    ANY = "any"
    GROUP = "group"
    DIRECT = "direct"


@dataclass(frozen=True)
class Command:
    name: str  # English name, also the catalog key: cmd.<name>.usage/.help/.example
    nl: str  # Dutch name
    who: Who
    where: Where
    handler: Callable[[Context, list[str]], None]
    private: bool = False  # replies go to the sender's direct chat
    listed: bool = True  # shown in /help (answers to questions are offered where asked)
    also: tuple[str, ...] = ()  # more Dutch words people reach for (/betalen, /zoek)

    def name_in(self, language: str) -> str:
        return self.nl if language == "nl" else self.name


def command_key(word: str) -> str:
    """Command words match without case or accents: /categorieen finds /categorieën."""
    return fold(word)


def standing(member: Member | None) -> Who:
    """What a sender may run."""
    if member is None or member.status not in (Status.ACTIVE, Status.LEAVING):
        return Who.ANYONE
    return Who.COORDINATOR if member.is_coordinator else Who.MEMBER


class Registry:
    def __init__(self) -> None:
        self.commands: list[Command] = []
        self._by_word: dict[str, Command] = {}
        self.answer_handlers: dict[PendingAction, Callable[[Context, Pending, bool], None]] = {}
        # Questions that people who are not (or no longer) members may answer too.
        self.open_answers: set[PendingAction] = set()
        # Accounts an answer touches beyond the question's own people (locked before it runs).
        self.answer_locks: dict[PendingAction, Callable[[Context, Pending], Iterable[int]]] = {}

    def command(
        self,
        name: str,
        *,
        nl: str,
        who: Who,
        where: Where = Where.ANY,
        private: bool = False,
        listed: bool = True,
        also: tuple[str, ...] = (),
    ) -> Callable[[Callable[[Context, list[str]], None]], Callable[[Context, list[str]], None]]:
        def register(
            handler: Callable[[Context, list[str]], None],
        ) -> Callable[[Context, list[str]], None]:
            cmd = Command(name, nl, who, where, handler, private, listed, also)
            for word in {command_key(name), command_key(nl), *map(command_key, also)}:
                if word in self._by_word:
                    raise ValueError(f"command word /{word} declared twice")
                self._by_word[word] = cmd
            self.commands.append(cmd)
            return handler

        return register

    def on_answer(
        self,
        *actions: PendingAction,
        anyone: bool = False,
        locks: Callable[[Context, Pending], Iterable[int]] | None = None,
    ) -> Callable[
        [Callable[[Context, Pending, bool], None]], Callable[[Context, Pending, bool], None]
    ]:
        def register(
            handler: Callable[[Context, Pending, bool], None],
        ) -> Callable[[Context, Pending, bool], None]:
            for action in actions:
                self.answer_handlers[action] = handler
                if anyone:
                    self.open_answers.add(action)
                if locks is not None:
                    self.answer_locks[action] = locks
            return handler

        return register

    def find(self, word: str) -> Command | None:
        return self._by_word.get(command_key(word))

    def language_of(self, word: str) -> str | None:
        """The language a command word is in; None when both languages spell it alike."""
        command = self.find(word)
        if command is None or command_key(command.nl) == command_key(command.name):
            return None
        return "en" if command_key(word) == command_key(command.name) else "nl"  # or an alias

    def closest(self, word: str) -> Command | None:
        """The command ``word`` most likely meant (``betaa``, ``betalen``: /betaal);
        None when no command word is close."""
        by_key = {
            command_key(spelling): command
            for command in self.commands
            if command.listed
            for spelling in (command.name, command.nl, *command.also)
        }
        key = command_key(word)
        found = get_close_matches(key, by_key, n=1, cutoff=0.75)
        if found:
            return by_key[found[0]]
        # Two letters swapped ("/pya"): short words fall below the cutoff.
        swapped = {key[:i] + key[i + 1] + key[i] + key[i + 2 :] for i in range(len(key) - 1)}
        return next((by_key[k] for k in by_key if k in swapped), None)

    def visible_to(self, member: Member | None) -> list[Command]:
        """The commands a sender may run, in the order of /help."""
        level = standing(member)
        listed = [c for c in self.commands if c.who <= level and c.listed]
        return sorted(listed, key=lambda c: _rank(c.handler.__module__))


# The capability modules, in the order /help lists their commands: money first,
# then offers, events, decisions, how the group is doing, the account itself,
# linking chats to it, and what the bot keeps about you.
CAPABILITIES = (
    "ledger",
    "bulk",
    "contributions",
    "market",
    "events",
    "governance",
    "stats",
    "members",
    "linking",
    "privacy",
    "questions",
    "partners",
    "partner_manual",
)


def _rank(module: str) -> int:
    name = module.rpartition(".")[2]
    return CAPABILITIES.index(name) if name in CAPABILITIES else len(CAPABILITIES)


REGISTRY = Registry()
