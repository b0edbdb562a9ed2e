"""The figures of /stats and ``letsbot report``: plain values, months and balance bins. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from letsbot.domain import TransferKind

# Trade is what members book for goods and services: start credits and the
# counter-bookings of mistakes are not trade, and a reversed transfer no longer counts.
TRADE_KINDS = (TransferKind.PAYMENT, TransferKind.REQUEST, TransferKind.BOOKING)


@dataclass(frozen=True, slots=True)
class MonthFigures:
    """One month (or the part of it inside a report's period)."""

    start: datetime  # local midnight of the month's first day (or of the period's start)
    transfers: int  # trades that stand
    volume: int  # minor units moved by them
    traders: int  # distinct members who paid or received in them
    new_members: int
    new_listings: int


@dataclass(frozen=True, slots=True)
class PeriodFigures:
    """The months of a period, and who traded in it at all."""

    months: list[MonthFigures]
    traders: int  # distinct members over the whole period: not the sum of the months'


@dataclass(frozen=True, slots=True)
class Spread:
    """How many members stand how far from zero."""

    balances: tuple[int, ...]  # sorted

    @property
    def below(self) -> int:
        return sum(1 for b in self.balances if b < 0)

    @property
    def at_zero(self) -> int:
        return sum(1 for b in self.balances if b == 0)

    @property
    def above(self) -> int:
        return sum(1 for b in self.balances if b > 0)


@dataclass(frozen=True, slots=True)
class Bin:
    """Balances in [low, high]; a bin of its own for exactly zero."""

    low: int
    high: int
    count: int


def month_bounds(first: date, last: date, tz: tzinfo) -> list[datetime]:
    """Local midnights that cut [first month, last month] into months: one more than months."""
    bounds: list[datetime] = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        bounds.append(datetime(year, month, 1, tzinfo=tz))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    bounds.append(datetime(year, month, 1, tzinfo=tz))
    return bounds


def months_back(today: date, count: int) -> date:
    """The first day of the month ``count - 1`` months before ``today``'s month."""
    index = today.year * 12 + today.month - 1 - (count - 1)
    return date(index // 12, index % 12 + 1, 1)


def clip(bounds: Sequence[datetime], start: datetime, end: datetime) -> list[datetime]:
    """Month bounds cut to a period: its start and end replace the outer midnights."""
    inner = [b for b in bounds if start < b < end]
    return [start, *inner, end]


_STEPS = (1, 2, 5)


def nice_step(largest: int, bins_per_side: int = 5) -> int:
    """A round bin width (1, 2, 5, 10, 20, 50, ...) so ``largest`` fits in a few bins."""
    scale = 1
    while True:
        for step in _STEPS:
            width = step * scale
            if width * bins_per_side >= largest:
                return width
        scale *= 10


def bins(balances: Sequence[int], scale: int) -> list[Bin]:
    """Balances grouped by distance from zero, in round steps of whole units.

    ``scale`` is the number of minor units in one unit; the bins never cut a unit.
    Exactly zero is its own bin, so "how many stand at zero" can be read at a glance.
    """
    if not balances:
        return [Bin(0, 0, 0)]
    largest = max(abs(b) for b in balances)
    width = nice_step(-(-largest // scale)) * scale
    lowest = -(-max(0, -min(balances)) // width)  # bins below zero
    highest = -(-max(0, max(balances)) // width)
    found: list[Bin] = []
    for index in range(-lowest, highest + 1):
        if index < 0:
            low, high = index * width, (index + 1) * width - 1
        elif index == 0:
            low = high = 0
        else:
            low, high = (index - 1) * width + 1, index * width
        count = sum(1 for b in balances if low <= b <= high)
        found.append(Bin(low, high, count))
    return found


@dataclass(frozen=True, slots=True)
class PartnerTrade:
    """Trade with one partner group in a period (letsbot.partners), in this group's unit."""

    name: str
    prefix: str
    paid_count: int  # payments this group's members made to that group's members
    paid: int
    received_count: int  # and received from them
    received: int
    balance: int  # this group's account of it, at the period's end
