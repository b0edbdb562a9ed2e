"""Characters a member can't see and a database can't always store.

NUL can't be stored by PostgreSQL at all; other control characters and the
bidirectional controls hide or reorder what a reply shows (a payment's
description that reads backwards, a name that wipes the line before it).
A member who typed one gets told where it is; a name a platform gives us
(the member can't retype it) and a legacy row are cleaned instead.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from letsbot.errors import Refusal

EXAMPLE_LIMIT = 80

# C0 except tab and newline (a carriage return only before a newline: that is
# how some clients end a line), DEL, C1; the bidirectional marks, embeddings,
# overrides and isolates; the invisible spaces and joiners that hide a word
# (zero width space, word joiner, invisible operators, BOM, Mongolian vowel
# separator; not U+200C/U+200D, which scripts and emoji need); and lone
# surrogates, which no UTF-8 database takes.
_CONTROL = re.compile(
    "\r(?!\n)|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
    "\u061c\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069"
    "\ufeff\ud800-\udfff]"
)


@dataclass(frozen=True)
class Control:
    """The first control character in a text: where it is and which it is."""

    position: int  # counted from 1, as a person counts characters
    char: str

    @property
    def code(self) -> str:
        """``U+0000``: the way to name a character nobody can see."""
        return f"U+{ord(self.char):04X}"


def find_control(text: str) -> Control | None:
    """The first character of ``text`` that a member can't see or we can't store."""
    match = _CONTROL.search(text)
    if match is None:
        return None
    return Control(match.start() + 1, match.group())


def strip_controls(text: str) -> str:
    """``text`` without those characters."""
    return _CONTROL.sub("", text)


def refuse_controls(text: str) -> None:
    """A Refusal naming the first control character in a member's ``text``, if it has one.

    The example is their own text without those characters, so that they see
    what to send instead.
    """
    found = find_control(text)
    if found is None:
        return
    cleaned = " ".join(strip_controls(text).split())
    if not cleaned:
        raise Refusal("error.control_character_only", code=found.code)
    if len(cleaned) > EXAMPLE_LIMIT:
        cleaned = cleaned[: EXAMPLE_LIMIT - 1] + "…"
    raise Refusal(
        "error.control_character", code=found.code, position=found.position, example=cleaned
    )


def fold(text: str) -> str:
    """What searches and names compare: lower case, no accents, single spaces.

    ``Café  Noir`` -> ``cafe noir``.
    """
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(plain.split())
