"""Event dates typed by coordinators: ``za 12 dec 10u-16u ... elke eerste zaterdag tot 31/12``.

Pure functions, no I/O. Dates are day-first as written in Flanders (12/3 is 12 March), never
month-first. Names of months and weekdays are Dutch or English, full or abbreviated.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

# Every key the caller needs a catalog text ``when.<reason>`` for.
REASONS = (
    "no_date",
    "bad_date",
    "weekday_mismatch",
    "no_time",
    "bad_time",
    "end_before_start",
    "no_such_time",
    "past",
    "too_far",
    "bad_repeat",
    "repeat_weekday",
    "bad_until",
    "until_before_start",
    "nth_mismatch",
)

# A date further ahead than this is almost surely a typo (2062 for 2026).
HORIZON_YEARS = 10


class WhenError(ValueError):
    """Why a typed date or repeat was refused; ``reason`` is a catalog key suffix.

    ``text`` holds the offending words as typed ('' when they are missing). A
    "weekday_mismatch" also carries the day the date really is (``on``), the weekday typed
    (``typed_weekday``, 0 is Monday) and, where known, the index of the typed weekday in
    the words given (``at``), so the reply can name both days and show the corrected words.
    """

    def __init__(
        self,
        reason: str,
        text: str = "",
        *,
        on: date | None = None,
        typed_weekday: int | None = None,
        at: int | None = None,
    ) -> None:
        super().__init__(reason, text)
        self.reason = reason
        self.text = text
        self.on = on
        self.typed_weekday = typed_weekday
        self.at = at

    def shifted(self, offset: int) -> WhenError:
        """The same error with ``at`` counted in a longer list that starts ``offset`` earlier."""
        at = None if self.at is None else self.at + offset
        return WhenError(
            self.reason, self.text, on=self.on, typed_weekday=self.typed_weekday, at=at
        )


@dataclass(frozen=True, slots=True)
class When:
    """``start`` carries the group's ZoneInfo (local wall time); ``end`` is later the same day."""

    start: datetime
    end: datetime | None = None

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("When.start must be timezone-aware")
        if self.end is not None and not self.end > self.start:
            raise ValueError("When.end must be after When.start")


@dataclass(frozen=True, slots=True)
class Repeat:
    unit: Literal["week", "month"]
    interval: int
    # (n, weekday): n in 1..4 or -1 for the last one; weekday 0 is Monday.
    nth_weekday: tuple[int, int] | None = None
    until: date | None = None

    def __post_init__(self) -> None:
        if self.interval < 1:
            raise ValueError("Repeat.interval must be at least 1")
        if self.nth_weekday is not None:
            n, weekday = self.nth_weekday
            if self.unit != "month" or n not in (1, 2, 3, 4, -1) or not 0 <= weekday <= 6:
                raise ValueError(f"Repeat.nth_weekday {self.nth_weekday} makes no sense")


def _names(*groups: str) -> dict[str, int]:
    return {name: number for number, group in enumerate(groups) for name in group.split()}


_MONTHS = _names(
    "",  # months count from 1
    "januari january jan",
    "februari february feb",
    "maart march mrt maa mar",
    "april apr",
    "mei may",
    "juni june jun",
    "juli july jul",
    "augustus august aug",
    "september sept sep",
    "oktober october okt oct",
    "november nov",
    "december dec",
)
_WEEKDAYS = _names(
    "maandag monday ma mon",
    "dinsdag tuesday di tue tues",
    "woensdag wednesday wo wed",
    "donderdag thursday do thu thur thurs",
    "vrijdag friday vr fri",
    "zaterdag saturday za sat",
    "zondag sunday zo sun",
)
_ORDINALS = _names(
    "",
    "eerste first 1e 1ste 1st",
    "tweede second 2e 2de 2nd",
    "derde third 3e 3de 3rd",
    "vierde fourth 4e 4de 4th",
) | dict.fromkeys(("laatste", "last"), -1)
_NUMBERS = _names(
    "",
    "een één one",
    "twee two",
    "drie three",
    "vier four",
    "vijf five",
    "zes six",
    "zeven seven",
    "acht eight",
    "negen nine",
    "tien ten",
    "elf eleven",
    "twaalf twelve",
) | dict.fromkeys(("other", "andere"), 2)  # "every other week"
_UNITS: dict[str, Literal["week", "month"]] = {
    "week": "week",
    "weken": "week",
    "weeks": "week",
    "maand": "month",
    "maanden": "month",
    "month": "month",
    "months": "month",
}
_MAX_INTERVAL = {"week": 52, "month": 12}
# Not "each" or the neuter "elk"/"ieder": "2 euro each" ends many a title, and neither fits
# week or maand.
_EVERY = frozenset({"elke", "iedere", "every"})
# Not supported, but after "every" they mean a repeat: reported, not kept as ordinary text.
_UNSUPPORTED = frozenset(
    {"dag", "dagen", "day", "days", "daily", "jaar", "year", "years"}
    | {"vijfde", "fifth", "5e", "5de", "5th"}  # not every month has a fifth Saturday
)
_UNTIL = ("tot en met", "t.e.m", "t/m", "tem", "tot", "until", "till", "through", "to")
_OF_MONTH = ("van de maand", "van elke maand", "of the month", "of every month", "of each month")
_ON = ("op de", "op", "on the", "on")
_DATE_PREFIX = frozenset({"op", "on"})
# Days counted from today. Not "morgens": "'s morgens" is a time of day.
_DAYS_AHEAD = {"vandaag": 0, "today": 0, "morgen": 1, "tomorrow": 1, "overmorgen": 2}
# "volgende zaterdag" is the Saturday of next week (weeks run Monday to Sunday); "deze"
# and "komende" zaterdag are the coming one, like a bare "zaterdag".
_NEXT = frozenset({"volgende", "next"})
_THIS = frozenset({"deze", "komende", "this", "coming"})
_NEXT_WEEK = ("volgende week", "next week")

# ASCII digits only: `\d` and int() would accept Arabic-Indic, full-width and other digits.
_ISO = re.compile(r"(?P<y>[0-9]{4})-(?P<m>[0-9]{1,2})-(?P<d>[0-9]{1,2})", re.ASCII)
_DMY = re.compile(
    r"(?P<d>[0-9]{1,2})(?P<sep>[/.-])(?P<m>[0-9]{1,2})(?:(?P=sep)(?P<y>[0-9]{4}|[0-9]{2}))?",
    re.ASCII,
)
_DATE_LIKE = re.compile(r"[0-9]+(?:[/-][0-9]*)+|[0-9]+\.[0-9]+\.[0-9]*", re.ASCII)
_DAY = re.compile(r"(?P<d>[0-9]{1,2})(?:st|nd|rd|th|e|ste|de)?", re.ASCII)
_YEAR = re.compile(r"[0-9]{4}", re.ASCII)
_COUNT = re.compile(r"[0-9]{1,3}", re.ASCII)


def _clock(p: str) -> str:
    """One time of day: 10:00, 10.30, 10u, 10 uur, 10u30, 10h30, 10:00u, 10am, 10:30 p.m.,
    2 uur 's middags, or a bare 10."""
    return (
        rf"(?P<{p}h>[0-9]{{1,2}})"
        rf"(?:[:.](?P<{p}m>[0-9]{{2}})(?:[uh]| uur)?|(?P<{p}u>[uh]| ?uur)(?P<{p}um>[0-9]{{2}})?)?"
        rf"(?: ?(?P<{p}ap>[ap])\.?m)?"
        rf"(?: 's (?P<{p}dp>{'|'.join(_DAY_PARTS)}))?"
    )


# The hours that a part of the day makes unambiguous, and what they become: "2 uur 's
# middags" is 14:00. An hour outside the range ("10 uur 's avonds" is fine, "3 uur 's
# avonds" is not) is a bad time. "'s nachts" is left out: 1 uur 's nachts is the next day.
_DAY_PARTS: dict[str, dict[int, int]] = {
    "morgens": {h: h for h in range(5, 12)},
    "ochtends": {h: h for h in range(5, 12)},
    "middags": {12: 12} | {h: h + 12 for h in range(1, 7)} | {h: h for h in range(13, 19)},
    "namiddags": {h: h + 12 for h in range(1, 7)} | {h: h for h in range(13, 19)},
    "avonds": {h: h + 12 for h in range(6, 12)} | {h: h for h in range(18, 24)},
}


# Matched against the normalised words joined by single spaces, so 10:00-16:00,
# 10:00 - 16:00 and 10u tot 16u all read the same.
_SPAN = re.compile(
    rf"(?:(?P<pre>om|at|van|from|tussen|between) )?{_clock('s')}"
    rf"(?:(?P<sep> ?[-–] ?| (?:tot|to|till|until|en|and) ){_clock('e')})?",
    re.ASCII,
)
# "om 10" and "van 10 tot 16" are times without a u or :, a bare "10" is not.
_AT = frozenset({"om", "at"})
_FROM = frozenset({"van", "from", "tussen", "between"})
_BETWEEN = frozenset({"tussen", "between"})
# Digits followed by something a time has: reported as a bad time rather than a missing one.
_TIME_LIKE = re.compile(r"[0-9]+(?=[^0-9])[:.hu0-9]*(?:[ap]\.?m)?", re.ASCII)
_MAX_SPAN_WORDS = 10  # "tussen 2 uur 's middags en 5 uur 's middags"


def month_number(word: str) -> int | None:
    """1 to 12 for a month's name as typed ("januari", "jan.", "January"), else None."""
    return _MONTHS.get(_norm(word))


def _norm(word: str) -> str:
    # A trailing dot or comma is punctuation: "za, 12 dec. 10u" reads as "za 12 dec 10u".
    return word.lower().rstrip(".,").replace("\u2019", "'")


@dataclass(frozen=True, slots=True)
class _Day:
    """A typed calendar day, before a missing year is filled in."""

    day: int
    month: int
    year: int | None
    weekday: int | None
    text: str
    weekday_text: str
    weekday_at: int | None = None


@dataclass(frozen=True, slots=True)
class _Relative:
    """A day named from today: ``morgen`` (days=1), ``zaterdag``, ``volgende zaterdag``."""

    days: int | None
    weekday: int | None
    next_week: bool
    text: str

    def resolve(self, today: date, *, skip_today: bool) -> date:
        if self.days is not None:
            return today + timedelta(days=self.days)
        assert self.weekday is not None
        if self.next_week:
            return today + timedelta(days=7 - today.weekday() + self.weekday)
        on = today + timedelta(days=(self.weekday - today.weekday()) % 7)
        return on + timedelta(days=7) if on == today and skip_today else on


def _starts_with(norm: list[str], i: int, phrases: tuple[str, ...]) -> int:
    """How many words of the first phrase that ``norm[i:]`` starts with; 0 if none."""
    for phrase in phrases:
        parts = phrase.split()
        if norm[i : i + len(parts)] == parts:
            return len(parts)
    return 0


def _read_day(words: list[str], i: int) -> tuple[_Day, int]:
    """The date at ``words[i:]`` (after an optional 'op' and weekday) and the index after it."""
    norm = [_norm(w) for w in words]
    if i < len(norm) and norm[i] in _DATE_PREFIX:
        i += 1
    weekday = _WEEKDAYS.get(norm[i]) if i < len(norm) else None
    weekday_text = words[i] if weekday is not None else ""
    weekday_at = i if weekday is not None else None
    if weekday is not None:
        i += 1
    if i >= len(norm):
        raise WhenError("no_date")
    found = _numeric_day(norm[i])
    used = 1
    if found is None:
        found, used = _named_day(norm, i)
    text = " ".join(words[i : i + used])
    if found is None:
        if _DATE_LIKE.fullmatch(norm[i]):
            raise WhenError("bad_date", text)
        named_like = _DAY.fullmatch(norm[i]) and i + 1 < len(norm)
        raise WhenError("no_date", " ".join(words[i : i + 2]) if named_like else text)
    day, month, year = found
    try:
        # Without a year, try 2000, a leap year: 29/2 is a day, just not every year.
        date(2000 if year is None else year, month, day)
    except ValueError:
        raise WhenError("bad_date", text) from None
    return _Day(day, month, year, weekday, text, weekday_text, weekday_at), i + used


def _read_relative(words: list[str], i: int) -> tuple[_Relative | None, int]:
    """A day named from today at ``words[i:]`` (after an optional 'op'), and the index after it.

    (None, i) when the words name no such day, or a weekday is followed by a date
    ("za 12 dec"): that is for _read_day.
    """
    norm = [_norm(w) for w in words]
    start = i + 1 if i < len(norm) and norm[i] in _DATE_PREFIX else i
    word = norm[start] if start < len(norm) else ""
    if word in _DAYS_AHEAD:
        return _Relative(_DAYS_AHEAD[word], None, False, words[start]), start + 1
    if (week := _starts_with(norm, start, _NEXT_WEEK)) and _weekday_at(norm, start + week):
        end = start + week + 1
        return _Relative(None, _WEEKDAYS[norm[end - 1]], True, _joined(words, start, end)), end
    if (word in _NEXT or word in _THIS) and _weekday_at(norm, start + 1):
        end = start + 2
        weekday = _WEEKDAYS[norm[start + 1]]
        return _Relative(None, weekday, word in _NEXT, _joined(words, start, end)), end
    if word not in _WEEKDAYS or _date_follows(norm, start + 1):
        return None, i
    week = _starts_with(norm, start + 1, _NEXT_WEEK)
    end = start + 1 + week
    return _Relative(None, _WEEKDAYS[word], bool(week), _joined(words, start, end)), end


def _weekday_at(norm: list[str], i: int) -> bool:
    return i < len(norm) and norm[i] in _WEEKDAYS


def _joined(words: list[str], start: int, end: int) -> str:
    return " ".join(words[start:end])


def _date_follows(norm: list[str], i: int) -> bool:
    """Whether a date (or something meant as one) comes next: 'za 12 dec', 'za 31/13'."""
    if i >= len(norm):
        return False
    word = norm[i]
    if _DATE_LIKE.fullmatch(word) or _numeric_day(word) is not None or word in _MONTHS:
        return True
    # "za 12 decmber" is a date with a typo, "za 10 uur" a time.
    following = norm[i + 1] if i + 1 < len(norm) else ""
    return bool(_DAY.fullmatch(word)) and following not in ("uur", "'s", "-", "–", "tot", "to")


def _numeric_day(word: str) -> tuple[int, int, int | None] | None:
    if match := _ISO.fullmatch(word):
        return int(match["d"]), int(match["m"]), int(match["y"])
    match = _DMY.fullmatch(word)
    # Without a year, 10.30 is a time rather than the tenth of the thirtieth month.
    if match is None or (match["sep"] == "." and match["y"] is None):
        return None
    year = match["y"]
    if year is None:
        return int(match["d"]), int(match["m"]), None
    return int(match["d"]), int(match["m"]), int(year) + (2000 if len(year) == 2 else 0)


def _named_day(norm: list[str], i: int) -> tuple[tuple[int, int, int | None] | None, int]:
    """``12 december [2026]`` or ``december 12 [2026]``; (None, 1) when it is neither."""
    pair = norm[i : i + 2]
    if len(pair) < 2:
        return None, 1
    if (match := _DAY.fullmatch(pair[0])) and pair[1] in _MONTHS:
        day, month = int(match["d"]), _MONTHS[pair[1]]
    elif pair[0] in _MONTHS and (match := _DAY.fullmatch(pair[1])):
        day, month = int(match["d"]), _MONTHS[pair[0]]
    else:
        return None, 1
    if i + 2 < len(norm) and _YEAR.fullmatch(norm[i + 2]):
        return (day, month, int(norm[i + 2])), 3
    return (day, month, None), 2


def _read_span(words: list[str], i: int) -> tuple[time, time | None, int] | None:
    """Start and optional end time at ``words[i:]`` and the index after them; None if no time."""
    norm = [_norm(w) for w in words]
    for used in range(min(_MAX_SPAN_WORDS, len(norm) - i), 0, -1):
        match = _SPAN.fullmatch(" ".join(norm[i : i + used]))
        if match is None:
            continue
        text = " ".join(words[i : i + used])
        pre = match["pre"]
        if match["sep"] is not None and match["sep"].strip() in ("en", "and"):
            if pre not in _BETWEEN:
                continue  # "10u en 16u" without "tussen" is no span
        elif pre in _BETWEEN:
            continue  # "tussen 10u" alone is no time
        if match["eh"] is not None and not (_marked(match, "e") or pre in _FROM):
            continue  # the end needs a u/h/:/am: "tot 16" may start the title
        if match["eh"] is None and not (_marked(match, "s") or pre in _AT):
            continue  # a bare number is no time: "10" might be a day or a count
        start = _time_of(match, "s", text)
        if match["eh"] is None:
            return start, None, i + used
        end = _time_of(match, "e", text)
        start = _carried(match, start, end)
        if end <= start:
            raise WhenError("end_before_start", text)
        return start, end, i + used
    if i < len(norm) and _TIME_LIKE.fullmatch(re.split("[-–]", norm[i])[0]):
        raise WhenError("bad_time", words[i])
    return None


def _carried(match: re.Match[str], start: time, end: time) -> time:
    """The start with the pm or part of day of the end when only the end has one.

    "1-4pm" means 13:00-16:00 and "van 2 tot 5 uur 's middags" 14:00-17:00, but "10-4pm"
    still means 10:00-16:00: the later reading is taken only when it lies before the end.
    """
    if match["sap"] is None and match["sdp"] is None and 1 <= start.hour <= 12:
        later = None
        if match["eap"] is not None:
            later = start.replace(hour=start.hour % 12 + (12 if match["eap"] == "p" else 0))
        elif match["edp"] is not None and start.hour in _DAY_PARTS[match["edp"]]:
            later = start.replace(hour=_DAY_PARTS[match["edp"]][start.hour])
        if later is not None and later < end:
            return later
    return start


def _marked(match: re.Match[str], p: str) -> bool:
    return any(match[p + group] for group in ("m", "u", "ap", "dp"))


def _time_of(match: re.Match[str], p: str, text: str) -> time:
    hour, minute = int(match[p + "h"]), int(match[p + "m"] or match[p + "um"] or 0)
    if match[p + "ap"] is not None:
        if not 1 <= hour <= 12 or match[p + "dp"] is not None:
            raise WhenError("bad_time", text)
        hour = hour % 12 + (12 if match[p + "ap"] == "p" else 0)
    if match[p + "dp"] is not None:
        hours = _DAY_PARTS[match[p + "dp"]]
        if hour not in hours:
            raise WhenError("bad_time", text)
        hour = hours[hour]
    if hour > 23 or minute > 59:
        raise WhenError("bad_time", text)
    return time(hour, minute)


def _local(on: date, at: time, tz: ZoneInfo) -> datetime:
    """Wall time ``at`` on ``on``; a time the clock skips (spring forward) moves on by the gap.

    Ambiguous times (fall back) take the first of the two, fold=0.
    """
    return datetime.combine(on, at, tzinfo=tz).astimezone(UTC).astimezone(tz)


def _exists(on: date, at: time, tz: ZoneInfo) -> bool:
    return _local(on, at, tz).replace(tzinfo=None) == datetime.combine(on, at)


def _aware(now: datetime, tz: ZoneInfo) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(tz)


def _check_range(on: date, today: date, day: _Day, past: str) -> None:
    if on < today:
        raise WhenError(past, day.text)
    if on.year > today.year + HORIZON_YEARS:
        raise WhenError("too_far", day.text)
    if day.weekday is not None and on.weekday() != day.weekday:
        raise WhenError(
            "weekday_mismatch",
            f"{day.weekday_text} {day.text}",
            on=on,
            typed_weekday=day.weekday,
            at=day.weekday_at,
        )


def _upcoming(day: _Day, today: date, *, skip_today: bool) -> date:
    """The next ``day`` (no year given) from today on, or from tomorrow on."""
    # 29 February may be 8 years away (2096 -> 2104); _read_day made sure it exists at all.
    for year in range(today.year, today.year + 9):
        if _valid(year, day):
            on = date(year, day.month, day.day)
            if on > today or (on == today and not skip_today):
                return on
    raise WhenError("bad_date", day.text)  # unreachable for a day that exists in 2000


def _valid(year: int, day: _Day) -> bool:
    try:
        date(year, day.month, day.day)
    except ValueError:
        return False
    return True


def _later(a: datetime, b: datetime) -> bool:
    # Aware datetimes sharing a tzinfo compare by wall time, ignoring fold; instants don't.
    return a.timestamp() > b.timestamp()


def parse_when(words: list[str], *, now: datetime, tz: ZoneInfo) -> tuple[When, list[str]]:
    """Read a date and a time (optionally an end time) from the START of words.

    Returns them and the remaining words. A date without a year is the next such date
    (today if the time is still to come); with a year it must not be in the past. So is a
    bare weekday ("zaterdag", "za", "deze zaterdag"): the coming one, today only while the
    time is still to come. "volgende zaterdag", "zaterdag volgende week" and "next
    saturday" are the Saturday of next week (weeks run Monday to Sunday). "vandaag",
    "morgen" and "overmorgen" count from today.
    """
    now = _aware(now, tz)
    relative, i = _read_relative(words, 0)
    day = None
    if relative is None:
        day, i = _read_day(words, 0)
    span = _read_span(words, i)
    if span is None:
        raise WhenError("no_time", words[i] if i < len(words) else "")
    start_at, end_at, rest = span
    gone = not _later(datetime.combine(now.date(), start_at, tzinfo=tz), now)
    if relative is not None:
        on = relative.resolve(now.date(), skip_today=gone)
        day_text = relative.text
    else:
        assert day is not None
        day_text = day.text
        if day.year is None:
            on = _upcoming(day, now.date(), skip_today=gone)
        else:
            on = date(day.year, day.month, day.day)
        _check_range(on, now.date(), day, "past")
    time_text = " ".join(words[i:rest])
    if not _exists(on, start_at, tz) or (end_at is not None and not _exists(on, end_at, tz)):
        raise WhenError("no_such_time", time_text)
    start = datetime.combine(on, start_at, tzinfo=tz)
    if not _later(start, now):
        raise WhenError("past", f"{day_text} {time_text}")
    end = None if end_at is None else datetime.combine(on, end_at, tzinfo=tz)
    return When(start, end), words[rest:]


def split_repeat(
    words: list[str], *, now: datetime, tz: ZoneInfo
) -> tuple[list[str], Repeat | None]:
    """Cut a repeat phrase (``elke 2 weken tot 31/12``) off the END of words.

    The phrase starts at the last 'elke', 'iedere' or 'every'.
    When the word after it belongs to the repeat vocabulary (a number, week/maand, an
    ordinal, a weekday, dag/jaar, vijfde) the rest must parse as a repeat, else WhenError: a typo is
    reported rather than silently kept in the title. After any other word ("voor elke
    bezoeker") it is ordinary text and (words, None) comes back. The until date is the next
    such date from today on when it has no year, and may not be before today.
    """
    now = _aware(now, tz)
    norm = [_norm(w) for w in words]
    starts = [i for i, word in enumerate(norm) if word in _EVERY]
    if not starts:
        return words, None
    at = starts[-1]
    if at + 1 < len(norm) and not _repeat_word(norm[at + 1]):
        return words, None
    try:
        return words[:at], _read_repeat(words[at + 1 :], norm[at + 1 :], now, words[at])
    except WhenError as error:
        raise error.shifted(at + 1) from None


def open_end(first: date) -> date:
    """The last day a repeat without 'tot' runs to: a year after ``first``, less one day.

    Weekly that is 52 or 53 times, monthly 12: within the 60 that ``occurrences`` makes.
    """
    if first.year >= date.max.year:
        return date.max
    return date(first.year + 1, first.month, 1) + timedelta(days=first.day - 2)


def names_a_day(word: str) -> bool:
    """Whether a word names a day: 'zondag', 'za', 'morgen', 'volgende', 'dec', '12/12'.

    Words after 'op' or 'in' that name a day are part of the title ("Ruilen op zondag"),
    not a place.
    """
    norm = _norm(word)
    names = (_WEEKDAYS, _MONTHS, _DAYS_AHEAD, _NEXT)
    return any(norm in group for group in names) or norm[:1].isdigit()


def _repeat_word(word: str) -> bool:
    vocabulary = (_NUMBERS, _UNITS, _ORDINALS, _WEEKDAYS, _UNSUPPORTED)
    return bool(_COUNT.fullmatch(word)) or any(word in names for names in vocabulary)


def _read_repeat(words: list[str], norm: list[str], now: datetime, every: str) -> Repeat:
    if not norm:
        raise WhenError("bad_repeat", every)
    interval, i = _read_count(norm, 0)
    unit = _UNITS.get(norm[i]) if i < len(norm) else None
    nth: tuple[int, int] | None = None
    if unit is not None:
        i += 1
        if unit == "month" and (on := _starts_with(norm, i, _ON)):
            nth, i = _read_nth(words, norm, i + on)
    elif i == 0 and norm[0] in _ORDINALS:
        unit = "month"
        nth, i = _read_nth(words, norm, 0)
    elif i == 0 and norm[0] in _WEEKDAYS:
        raise WhenError("repeat_weekday", f"{every} {words[0]}")
    else:
        raise WhenError("bad_repeat", " ".join([every, *words[: i + 1]]))
    if not 1 <= interval <= _MAX_INTERVAL[unit]:
        raise WhenError("bad_repeat", " ".join([every, *words[:i]]))
    until = None
    if until_words := _starts_with(norm, i, _UNTIL):
        until, i = _read_until(words, i + until_words, now)
    if i < len(norm):
        raise WhenError("bad_until" if until else "bad_repeat", " ".join(words[i:]))
    return Repeat(unit, interval, nth, until)


def _read_count(norm: list[str], i: int) -> tuple[int, int]:
    """The N of "every N weeks" (1 when absent) and the index after it."""
    if _COUNT.fullmatch(norm[i]):
        return int(norm[i]), i + 1
    if norm[i] in _NUMBERS and i + 1 < len(norm) and norm[i + 1] in _UNITS:
        return _NUMBERS[norm[i]], i + 1
    return 1, i


def _read_nth(words: list[str], norm: list[str], i: int) -> tuple[tuple[int, int], int]:
    """``eerste zaterdag [van de maand]`` -> ((1, 5), index after it)."""
    pair = norm[i : i + 2]
    if len(pair) == 2 and pair[0] in _ORDINALS and pair[1] in _WEEKDAYS:
        return (_ORDINALS[pair[0]], _WEEKDAYS[pair[1]]), i + 2 + _starts_with(
            norm, i + 2, _OF_MONTH
        )
    raise WhenError("bad_repeat", " ".join(words[i : i + 2]))


def _read_until(words: list[str], i: int, now: datetime) -> tuple[date, int]:
    """The (inclusive) last day after 'tot'/'until', and the index after it."""
    try:
        day, end = _read_day(words, i)
    except WhenError as error:
        raise WhenError("bad_until", error.text or " ".join(words[i - 1 :])) from None
    today = now.date()
    if day.year is None:
        on = _upcoming(day, today, skip_today=False)
    else:
        on = date(day.year, day.month, day.day)
    _check_range(on, today, day, "until_before_start")
    return on, end


def occurrences(first: When, repeat: Repeat | None, *, limit: int = 60) -> list[When]:
    """``first`` and its repeats up to ``repeat.until`` (inclusive), at most ``limit`` in all.

    Local wall-clock time is kept across DST changes; a time the clock skips that day moves
    on by the gap. Monthly repeats on day 29-31 fall on the last day of shorter months;
    nth-weekday repeats take that weekday of every ``interval``-th month.

    Raises WhenError for what only shows once both halves are known: "until_before_start"
    and "nth_mismatch" (the first date is not, say, the first Saturday of its month).
    ``first.start`` must carry a ZoneInfo, as parse_when gives it: with a fixed UTC offset
    the wall time could not follow DST.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    tz = first.start.tzinfo
    if not isinstance(tz, ZoneInfo):
        raise ValueError("first.start must carry a ZoneInfo")
    if repeat is None:
        return [first]
    start_day = first.start.date()
    if repeat.until is not None and repeat.until < start_day:
        raise WhenError("until_before_start", repeat.until.isoformat())
    if repeat.nth_weekday is not None:
        n, weekday = repeat.nth_weekday
        if _nth_weekday(start_day.year, start_day.month, n, weekday) != start_day:
            raise WhenError("nth_mismatch", start_day.isoformat())
    result = [first]
    while len(result) < limit:
        on = _step(start_day, repeat, len(result))
        if on is None or (repeat.until is not None and on > repeat.until):
            break
        try:
            result.append(_moved(first, on, tz))
        except OverflowError:  # near year 9999 only
            break
    return result


def _step(start: date, repeat: Repeat, k: int) -> date | None:
    """The day of the k-th repeat, counted from ``start`` (not chained: 31 Jan, 28 Feb, 31 Mar)."""
    if repeat.unit == "week":
        try:
            return start + timedelta(weeks=repeat.interval * k)
        except OverflowError:
            return None
    months = start.month - 1 + repeat.interval * k
    year, month = start.year + months // 12, months % 12 + 1
    if year > date.max.year:
        return None
    if repeat.nth_weekday is not None:
        return _nth_weekday(year, month, *repeat.nth_weekday)
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def _nth_weekday(year: int, month: int, n: int, weekday: int) -> date:
    """The n-th (or with n=-1 the last) given weekday of a month."""
    days = range(1, calendar.monthrange(year, month)[1] + 1)
    matching = [d for d in days if calendar.weekday(year, month, d) == weekday]
    return date(year, month, matching[n - 1 if n > 0 else -1])


def _moved(first: When, on: date, tz: ZoneInfo) -> When:
    """``first`` at the same wall-clock time(s) on another day."""
    start = _local(on, first.start.time().replace(fold=0), tz)
    if first.end is None:
        return When(start)
    end = _local(on, first.end.time().replace(fold=0), tz)
    if end <= start:  # only when the start fell into a DST gap and moved past the end
        wall = datetime.combine(on, first.end.time()) - datetime.combine(on, first.start.time())
        end = (start + wall).astimezone(UTC).astimezone(tz)
    return When(start, end)


def parse_day(words: list[str], *, now: datetime, tz: ZoneInfo) -> date:
    """All of ``words`` as one day: ``1/3/2027``, ``2027-03-01``, ``1 maart``, ``za 1 maart``.

    Without a year it is the next such day from today on. Never before today nor past the
    horizon; WhenError "no_date", "bad_date", "weekday_mismatch", "past" or "too_far".
    """
    now = _aware(now, tz)
    day, end = _read_day(words, 0)
    if end < len(words):
        raise WhenError("bad_date", " ".join(words))
    today = now.date()
    if day.year is None:
        on = _upcoming(day, today, skip_today=False)
    else:
        on = date(day.year, day.month, day.day)
    _check_range(on, today, day, "past")
    return on
