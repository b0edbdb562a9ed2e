"""Amounts: typed by members as text, stored as whole numbers of the smallest unit."""

from __future__ import annotations

import re
from dataclasses import dataclass

# ASCII only: `\d` and int() would accept Arabic-Indic, full-width and other digits.
_NUMBER = re.compile(r"(?P<minus>-)?(?P<whole>[0-9]{1,15})(?:[.,](?P<frac>[0-9]{1,15}))?", re.ASCII)


class AmountError(ValueError):
    """Why a typed amount was refused; ``reason`` is a catalog key suffix."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Currency:
    name: str
    plural: str
    decimals: int

    @property
    def scale(self) -> int:
        return int(10**self.decimals)

    def parse(self, text: str, maximum: int) -> int:
        """Minor units for ``text``; refuses signs, exponents, zero and more than ``maximum``."""
        value = self._minor(text, signed=False)
        if value == 0:
            raise AmountError("zero")
        if value > maximum:
            raise AmountError("too_large")
        return value

    def parse_signed(self, text: str) -> int:
        """Minor units for a limit such as ``-1500``: a sign and zero are allowed."""
        return self._minor(text, signed=True)

    def _minor(self, text: str, *, signed: bool) -> int:
        match = _NUMBER.fullmatch(text.strip())
        if match is None or (match["minus"] and not signed):
            raise AmountError("format")
        frac = match["frac"] or ""
        if len(frac) > self.decimals:
            raise AmountError("decimals")
        value = int(match["whole"]) * self.scale + int(frac.ljust(self.decimals, "0") or "0")
        return -value if match["minus"] else value

    def unit_name(self, minor: int) -> str:
        return self.name if abs(minor) == self.scale else self.plural
