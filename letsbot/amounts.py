"""Amounts: typed by members as text, stored as whole numbers of the smallest unit."""

from __future__ import annotations

import re
from dataclasses import dataclass

# ASCII only: `\d` and int() would accept Arabic-Indic, full-width and other digits.
_NUMBER = re.compile(r"(?P<minus>-)?(?P<whole>[0-9]{1,15})(?:[.,](?P<frac>[0-9]{1,15}))?", re.ASCII)
# Thousands as the bot itself writes them (1.500, 12.000.000) or as English does (1,500),
# an optional fraction after the other separator (1.500,50).
_GROUPED = re.compile(
    r"(?P<minus>-)?(?P<whole>[0-9]{1,3}(?:(?P<sep>[.,])[0-9]{3})+)"
    r"(?:(?!(?P=sep))[.,](?P<frac>[0-9]{1,15}))?",
    re.ASCII,
)
# "30,-" and "30.-": a whole amount, as written on price tags.
_DASH = re.compile(r"[.,][-\u2013]$")


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
        whole, frac, minus = self._digits(_DASH.sub("", text.strip()))
        if minus and not signed:
            raise AmountError("format")
        # Zeros after the comma change nothing ("30,00" is 30 pluimen), but three
        # digits there may be thousands ("1.000" with cents): refused, never read as 1.
        if len(frac) > self.decimals and len(frac) != 3:
            frac = frac.rstrip("0")
        if len(frac) > self.decimals:
            raise AmountError("decimals" if self.decimals else "whole")
        value = int(whole) * self.scale + int(frac.ljust(self.decimals, "0") or "0")
        return -value if minus else value

    def _digits(self, typed: str) -> tuple[str, str, bool]:
        """Whole part, fraction and sign of a typed number; refuses signs where not asked."""
        match = _NUMBER.fullmatch(typed)
        if match is not None:
            whole, frac = match["whole"], match["frac"] or ""
            # "1.500" means fifteen hundred where there are no cents to write, as the bot
            # writes it; "1,500" is refused: one and a half to a Fleming, never guessed.
            dotted = "." in typed
            if (
                self.decimals == 0
                and dotted
                and len(frac) == 3
                and len(whole) <= 3
                and whole[0] != "0"
            ):
                whole, frac = whole + frac, ""
            return whole, frac, bool(match["minus"])
        grouped = _GROUPED.fullmatch(typed)
        if grouped is None:
            if re.fullmatch(r"-?[0-9]{16,}(?:[.,][0-9]+)?", typed, re.ASCII):
                raise AmountError("too_large")  # digits only, just far too many of them
            raise AmountError("format")
        whole = grouped["whole"].replace(".", "").replace(",", "")
        return whole, grouped["frac"] or "", bool(grouped["minus"])

    def unit_name(self, minor: int) -> str:
        return self.name if abs(minor) == self.scale else self.plural
