"""Member codes of the system a group moves from, and the numbers they get here.

eLAS/eLAND letscodes are free text: ``012``, ``DU-0007``, ``ILGENT``, ``AB12``.
A numeric code (with the group's prefix or none) keeps its number; any other
code, or a number too long to type in a chat, gets the lowest free number and
is kept as the member's old code, so files and people can name them by it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from letsbot.domain import CODE_DIGITS, MemberCode
from storage.tables import members

_PARENS = re.compile(r"(?P<name>.*?)\s*\((?P<code>[^()]+)\)")  # Tine (012)


def code_key(text: str) -> str:
    """How codes compare: case and spaces don't count (``du - 0007`` is ``DU-0007``)."""
    return "".join(text.split()).upper()


def kept_number(code: str, prefix: str) -> int | None:
    """The number a file's code keeps here; None when it gets a new one.

    ``012`` and ``DU-0007`` keep theirs; ``ILGENT``, another group's ``XY-0007``
    and a number too long to type (``DU-1000000``) don't.
    """
    read = MemberCode.read(code, padded=True)
    if read is None or (read.prefix and read.prefix.upper() != prefix.upper()):
        return None
    if len(str(read.number)) > CODE_DIGITS:
        return None
    return read.number


@dataclass
class CodeBook:
    """Every member's number, old code and name, to read the codes in files by."""

    prefix: str
    names: dict[int, str] = field(default_factory=dict)  # number -> name
    old: dict[int, str] = field(default_factory=dict)  # number -> old code, as stored
    by_old: dict[str, int] = field(default_factory=dict)  # code_key(old code) -> number

    @classmethod
    def load(cls, connection: Connection, prefix: str) -> CodeBook:
        book = cls(prefix)
        rows = connection.execute(select(members.c.number, members.c.name, members.c.old_code))
        for number, name, old in rows:
            book.add(number, name, old)
        return book

    def add(self, number: int, name: str, old: str | None) -> None:
        self.names[number] = name
        if old:
            self.old[number] = old
            self.by_old[code_key(old)] = number

    def show(self, number: int) -> str:
        return MemberCode.show(self.prefix, number)

    def owner(self, code: str) -> int | None:
        """The member a code names exactly: by old code, else by a number it owns.

        A member who got a new number doesn't own it in old files: ``041`` there is
        not the member ``ILGENT`` who became 41. Our own code (``DU-041``) is.
        """
        found = self.by_old.get(code_key(code))
        if found is not None:
            return found
        number = kept_number(code, self.prefix)
        if number is None or number not in self.names:
            return None
        written = MemberCode.read(code, padded=True)
        own_prefix = written is not None and bool(written.prefix)
        if number in self.old and not own_prefix:
            return None
        return number

    def lowest_free(self, taken: set[int]) -> int:
        """The lowest number no member has and ``taken`` doesn't hold."""
        number = 1
        while number in self.names or number in taken:
            number += 1
        return number

    def resolve(self, cell: str) -> int | None:
        """The member number a cell of a transfers or balances file names; None if
        it names no member or more than one.

        ``DU-012``, ``012``, ``du - 0012``, an old code (``ILGENT``), ``012 Tine``
        (code, then name: eLAND) or ``Tine (012)``; case and padding don't count.
        """
        text = " ".join(cell.split())
        if not text:
            return None
        readings: list[tuple[str, str]] = [(text, "")]
        parens = _PARENS.fullmatch(text)
        if parens is not None:
            readings.append((parens["code"], parens["name"]))
        code, _, name = text.partition(" ")
        if name:
            readings.append((code, name))
        found: set[int] = set()
        for code, name in readings:
            number = self.owner(code)
            if number is None:
                continue
            if name and name.casefold() not in self.names[number].casefold():
                # A code with another member's name: which did the file mean?
                other = [
                    n for n, known in self.names.items() if known.casefold() == name.casefold()
                ]
                if other and number not in other:
                    return None
            found.add(number)
        return found.pop() if len(found) == 1 else None
