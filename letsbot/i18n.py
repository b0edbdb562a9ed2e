"""Translations (gettext PO catalogs, one per language) and locale formatting (Babel)."""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

from babel import Locale
from babel.dates import format_date, format_datetime, format_timedelta
from babel.messages.pofile import read_po
from babel.numbers import parse_pattern

from letsbot.amounts import Currency
from letsbot.markup import escape

LANGUAGES = ("nl", "en")
DEFAULT_LANGUAGE = "nl"


@cache
def catalog(language: str) -> dict[str, str]:
    """Message key -> text for one language, read from ``locales/<language>.po``."""
    source = resources.files("letsbot") / "locales" / f"{language}.po"
    with source.open("rb") as handle:
        po = read_po(handle, locale=language)
    return {str(m.id): str(m.string) for m in po if m.id and m.string}


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


class Raw(str):
    """A value that is already markup (a nested catalog text): not escaped again."""


@cache
def _number_pattern(decimals: int) -> Any:
    """What format_decimal parses on every call, parsed once (a payment shows five amounts)."""
    return parse_pattern("#,##0" + ("." + "0" * decimals if decimals else ""))


@cache
def _locale(language: str) -> Locale:
    return Locale.parse(language)


def number_in(minor: int, decimals: int, language: str) -> str:
    """``1.500,50``: minor units of a currency with ``decimals``, as ``language`` writes it."""
    value = Decimal(minor).scaleb(-decimals)
    return str(_number_pattern(decimals).apply(value, _locale(language)))


@dataclass(frozen=True)
class Translator:
    language: str
    currency: Currency
    timezone: tzinfo

    def template(self, key: str) -> str:
        """The message with its {placeholders} unfilled."""
        text = catalog(self.language).get(key) or catalog(DEFAULT_LANGUAGE).get(key)
        if text is None:
            raise KeyError(f"message {key!r} is missing from the catalogs")
        return text

    def __call__(self, key: str, **params: Any) -> str:
        text = self.template(key)
        if not params:
            return text
        safe = {k: v if isinstance(v, Raw) else escape(str(v)) for k, v in params.items()}
        return text.format_map(safe)

    def counted(self, key: str, count: int, **params: Any) -> str:
        """``key`` with ``count`` filled in, worded for one (``key_one``) or none
        (``key_none``) where the catalog has that: "1 boeking", "3 boekingen"."""
        special = {0: f"{key}_none", 1: f"{key}_one"}.get(count)
        if special is not None and special in catalog(self.language):
            key = special
        return self(key, count=count, **params)

    def number(self, minor: int) -> str:
        return number_in(minor, self.currency.decimals, self.language)

    def amount(self, minor: int) -> Raw:
        """``30 pluimen``, ``1 pluim``, ``-1.500 pluimen``."""
        return Raw(escape(f"{self.number(minor)} {self.currency.unit_name(minor)}"))

    def moment(self, moment: datetime) -> Raw:
        return Raw(
            escape(
                str(
                    format_datetime(
                        moment, "d MMM yyyy HH:mm", tzinfo=self.timezone, locale=self.language
                    )
                )
            )
        )

    def event_time(self, start: datetime, end: datetime | None) -> Raw:
        """``za 12 dec 2026 10:00-16:00`` in the group's time zone."""
        text = str(
            format_datetime(
                start, "EEE d MMM yyyy HH:mm", tzinfo=self.timezone, locale=self.language
            )
        )
        if end is not None:
            text += "-" + str(
                format_datetime(end, "HH:mm", tzinfo=self.timezone, locale=self.language)
            )
        return Raw(escape(text))

    def ahead(self, delta: timedelta) -> Raw:
        """``over 2 uur`` / ``in 2 hours``."""
        return Raw(
            escape(
                str(
                    format_timedelta(delta, add_direction=True, threshold=1.0, locale=self.language)
                )
            )
        )

    def day(self, moment: datetime) -> Raw:
        """``1 mrt 2027`` / ``1 Mar 2027``: the day of ``moment`` in the group's time zone."""
        return Raw(
            escape(
                str(
                    format_datetime(
                        moment, "d MMM yyyy", tzinfo=self.timezone, locale=self.language
                    )
                )
            )
        )

    def month(self, moment: datetime) -> Raw:
        """``maart 2027`` / ``March 2027``: the month of ``moment`` in the group's time zone."""
        return Raw(
            escape(
                str(
                    format_datetime(moment, "MMMM yyyy", tzinfo=self.timezone, locale=self.language)
                )
            )
        )

    def month_short(self, moment: datetime) -> str:
        """``mrt`` / ``Mar``: a month's short name as it stands alone (under a chart's bar)."""
        local = moment.astimezone(self.timezone).date()
        return str(format_date(local, "LLL", locale=self.language))

    def date(self, day: date) -> Raw:
        """``1 maart 2027`` / ``1 March 2027``: a calendar day, written out."""
        return Raw(escape(str(format_date(day, "d MMMM yyyy", locale=self.language))))

    def day_month(self, month: int, day: int) -> Raw:
        """``15 januari`` / ``15 January``: a day of every year."""
        return Raw(escape(str(format_date(date(2001, month, day), "d MMMM", locale=self.language))))
