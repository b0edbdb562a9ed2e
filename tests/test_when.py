from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_datetime
from hypothesis import given, settings
from hypothesis import strategies as st

from letsbot.when import (
    REASONS,
    Repeat,
    When,
    WhenError,
    names_a_day,
    occurrences,
    open_end,
    parse_when,
    split_repeat,
)

TZ = ZoneInfo("Europe/Brussels")
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=TZ)  # a Thursday


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=TZ)


def when(text: str, now: datetime = NOW) -> tuple[When, list[str]]:
    return parse_when(text.split(), now=now, tz=TZ)


def repeat(text: str, now: datetime = NOW) -> tuple[list[str], Repeat | None]:
    return split_repeat(text.split(), now=now, tz=TZ)


def reason(call: Callable[[], object]) -> tuple[str, str]:
    with pytest.raises(WhenError) as caught:
        call()
    return caught.value.reason, caught.value.text


# --- parse_when: accepted forms -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-12 10:00",
        "12/12/2026 10:00",
        "12-12-2026 10:00",
        "12.12.2026 10:00",
        "12/12/26 10:00",
        "12/12 10u",
        "12-12 10u",
        "12 december 10:00",
        "12 dec 2026 10:00",
        "12 dec. 2026 10u",
        "za 12 dec 10u",
        "zaterdag 12 december 10:00",
        "Zaterdag, 12 December, 10:00",
        "op zaterdag 12 december om 10u",
        "ZA 12 DEC 10U",
        "12de december 10u",
        "sat 12 dec 10:00",
        "Saturday 12 December 10am",
        "Sat. 12 Dec. 10 AM",
        "on Saturday December 12, 2026 at 10:00",
        "12th December 10a.m.",
        "12 dec 10h",
        "12 dec 10:00u",
        "12 dec 10.00",
        "12 dec 10h00",
        "12 dec 10u00",
    ],
)
def test_forms_for_ten_o_clock(text: str) -> None:
    assert when(text) == (When(at(2026, 12, 12, 10, 0)), [])


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("10u30", time(10, 30)),
        ("10.30", time(10, 30)),
        ("10h30", time(10, 30)),
        ("10:30", time(10, 30)),
        ("9:05", time(9, 5)),
        ("09:05", time(9, 5)),
        ("0:00", time(0, 0)),
        ("23:59", time(23, 59)),
        ("12pm", time(12, 0)),
        ("12am", time(0, 0)),
        ("4pm", time(16, 0)),
        ("4:30pm", time(16, 30)),
        ("11:59p.m.", time(23, 59)),
    ],
)
def test_times(word: str, expected: time) -> None:
    start = when(f"2026-12-12 {word}")[0].start
    assert start.timetz() == expected.replace(tzinfo=TZ)


@pytest.mark.parametrize(
    "span",
    [
        "10:00-16:00",
        "10u-16u",
        "10u–16u",
        "10:00 - 16:00",
        "10:00 tot 16:00",
        "10:00 to 16:00",
        "10:00 until 16:00",
        "10:00- 16:00",
        "10:00 -16:00",
        "van 10u tot 16u",
        "van 10 tot 16u",
        "10-16u",
        "from 10am to 4pm",
        "10am-4pm",
        "10 am - 4 pm",
        "10-4pm",
        "10:00-16:00u",
    ],
)
def test_time_ranges(span: str) -> None:
    found, rest = when(f"12 dec {span} Ruilmarkt @ Parochiezaal")
    assert found == When(at(2026, 12, 12, 10, 0), at(2026, 12, 12, 16, 0))
    assert rest == ["Ruilmarkt", "@", "Parochiezaal"]


def test_pm_of_the_end_carries_to_a_start_that_would_be_too_early() -> None:
    assert when("12 dec 1-4pm")[0] == When(at(2026, 12, 12, 13, 0), at(2026, 12, 12, 16, 0))
    assert when("12 dec 9-11am")[0] == When(at(2026, 12, 12, 9, 0), at(2026, 12, 12, 11, 0))


def test_the_rest_is_returned_as_typed() -> None:
    found, rest = when("12 dec 10u Ruilmarkt tot 16 uur, 2026 edition")
    assert found == When(at(2026, 12, 12, 10))
    assert rest == ["Ruilmarkt", "tot", "16", "uur,", "2026", "edition"]


def test_a_bare_number_after_a_time_is_no_end() -> None:
    # "tot 16" might well be the start of a title; an end needs u, h, : or am/pm.
    found, rest = when("12 dec 10u tot 16 kinderen")
    assert found.end is None and rest == ["tot", "16", "kinderen"]


_MONTH_NAMES = [
    ("januari", "january", "jan"),
    ("februari", "february", "feb"),
    ("maart", "march", "mrt", "mar"),
    ("april", "apr"),
    ("mei", "may"),
    ("juni", "june", "jun"),
    ("juli", "july", "jul"),
    ("augustus", "august", "aug"),
    ("september", "sep", "sept"),
    ("oktober", "october", "okt", "oct"),
    ("november", "nov"),
    ("december", "dec"),
]


@pytest.mark.parametrize(
    ("name", "month"),
    [(name, n) for n, names in enumerate(_MONTH_NAMES, 1) for name in names],
)
def test_month_names(name: str, month: int) -> None:
    for spelled in (name, name.upper(), name.capitalize() + "."):
        assert when(f"1 {spelled} 2027 10u")[0].start == at(2027, month, 1, 10)


_WEEKDAY_NAMES = [
    ("maandag", "ma", "monday", "mon"),
    ("dinsdag", "di", "tuesday", "tue", "tues"),
    ("woensdag", "wo", "wednesday", "wed"),
    ("donderdag", "do", "thursday", "thu", "thurs"),
    ("vrijdag", "vr", "friday", "fri"),
    ("zaterdag", "za", "saturday", "sat"),
    ("zondag", "zo", "sunday", "sun"),
]


@pytest.mark.parametrize(
    ("name", "weekday"),
    [(name, n) for n, names in enumerate(_WEEKDAY_NAMES) for name in names],
)
def test_weekday_names_must_match_the_date(name: str, weekday: int) -> None:
    day = 7 + weekday  # 7 December 2026 is a Monday
    assert when(f"{name} {day} dec 10u")[0].start == at(2026, 12, day, 10)
    assert when(f"{name.upper()}. {day}/12/2026 10u")[0].start == at(2026, 12, day, 10)
    other = 7 + (weekday + 1) % 7
    assert reason(lambda: when(f"{name} {other} dec 10u")) == (
        "weekday_mismatch",
        f"{name} {other} dec",
    )


# --- parse_when: days named from today ------------------------------------------------------
# NOW is Thursday 26 November 2026, 12:00. Weeks run Monday to Sunday: next week is 30 Nov-6 Dec.

_THIS_WEEK = {0: 30, 1: 1, 2: 2, 3: 3, 4: 27, 5: 28, 6: 29}  # at 10:00 today has gone by
_NEXT_WEEK = {0: 30, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6}


def coming(weekday: int, hour: int, next_week: bool = False) -> datetime:
    day = (_NEXT_WEEK if next_week else _THIS_WEEK)[weekday]
    return at(2026, 11 if day >= 26 else 12, day, hour)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("vandaag 14u", at(2026, 11, 26, 14)),
        ("Vandaag om 14 uur", at(2026, 11, 26, 14)),
        ("today at 2pm", at(2026, 11, 26, 14)),
        ("morgen 10u", at(2026, 11, 27, 10)),
        ("morgen om 10", at(2026, 11, 27, 10)),
        ("op morgen 10u", at(2026, 11, 27, 10)),
        ("Morgen, 10u", at(2026, 11, 27, 10)),
        ("tomorrow 10am", at(2026, 11, 27, 10)),
        ("tomorrow at 10", at(2026, 11, 27, 10)),
        ("overmorgen 9u", at(2026, 11, 28, 9)),
        ("morgen 0:00", at(2026, 11, 27, 0)),
        ("vandaag 23:59", at(2026, 11, 26, 23, 59)),
        # today's weekday: today while the time is still to come, else next week
        ("donderdag 13u", at(2026, 11, 26, 13)),
        ("donderdag 12u", at(2026, 12, 3, 12)),
        ("do 11u", at(2026, 12, 3, 11)),
        ("deze donderdag 13u", at(2026, 11, 26, 13)),
        ("deze donderdag 11u", at(2026, 12, 3, 11)),
        ("thursday 1pm", at(2026, 11, 26, 13)),
        # next Thursday is in next week whatever the time
        ("volgende donderdag 13u", at(2026, 12, 3, 13)),
        ("donderdag volgende week 13u", at(2026, 12, 3, 13)),
        ("next thursday 1pm", at(2026, 12, 3, 13)),
        # a Sunday is in this week; "volgende zondag" is the one after
        ("zondag 10u", at(2026, 11, 29, 10)),
        ("volgende zondag 10u", at(2026, 12, 6, 10)),
        ("zo 10u", at(2026, 11, 29, 10)),
        ("woensdag 10u", at(2026, 12, 2, 10)),
        ("volgende woensdag 10u", at(2026, 12, 2, 10)),  # the coming one is in next week too
    ],
)
def test_days_named_from_today(text: str, expected: datetime) -> None:
    assert when(f"{text} Ruilmarkt") == (When(expected), ["Ruilmarkt"])


@pytest.mark.parametrize("weekday", range(7))
@pytest.mark.parametrize(
    ("pattern", "next_week"),
    [
        ("{day} 10u", False),
        ("{Day} 10u", False),
        ("op {day} 10u", False),
        ("deze {day} 10u", False),
        ("komende {day} 10u", False),
        ("this {day} 10u", False),
        ("coming {day} 10u", False),
        ("volgende {day} 10u", True),
        ("Volgende {day} 10u", True),
        ("op volgende {day} 10u", True),
        ("{day} volgende week 10u", True),
        ("volgende week {day} 10u", True),
        ("next {day} 10u", True),
        ("{day} next week 10u", True),
        ("next week {day} 10u", True),
    ],
)
def test_every_weekday_name_in_every_phrase(weekday: int, pattern: str, next_week: bool) -> None:
    for name in _WEEKDAY_NAMES[weekday]:
        text = pattern.format(day=name, Day=name.capitalize())
        expected = coming(weekday, 10, next_week)
        assert when(f"{text} Markt") == (When(expected), ["Markt"]), text


def test_a_weekday_followed_by_a_date_is_still_checked_against_it() -> None:
    assert when("za 28/11 10u")[0].start == at(2026, 11, 28, 10)
    assert reason(lambda: when("vr 28/11 10u")) == ("weekday_mismatch", "vr 28/11")


def test_a_wrong_weekday_says_which_day_it_is_and_where_it_was_typed() -> None:
    with pytest.raises(WhenError) as caught:
        parse_when(["vrijdag", "12/12/2026", "10:00", "Wintermarkt"], now=NOW, tz=TZ)
    error = caught.value
    assert (error.reason, error.text) == ("weekday_mismatch", "vrijdag 12/12/2026")
    assert (error.on, error.typed_weekday, error.at) == (date(2026, 12, 12), 4, 0)
    with pytest.raises(WhenError) as caught:
        parse_when(["op", "vr", "12", "dec", "10u"], now=NOW, tz=TZ)
    assert caught.value.at == 1 and caught.value.shifted(3).at == 4


def test_a_wrong_weekday_in_the_until_date_is_placed_too() -> None:
    with pytest.raises(WhenError) as caught:
        repeat("Markt elke week tot vr 31 dec 2026")
    error = caught.value
    assert (error.reason, error.on, error.typed_weekday) == (
        "weekday_mismatch",
        date(2026, 12, 31),
        4,
    )
    assert ["Markt", "elke", "week", "tot", "vr", "31", "dec", "2026"][error.at or 0] == "vr"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("vandaag 11u", ("past", "vandaag 11u")),
        ("vandaag 12u", ("past", "vandaag 12u")),
        ("today 10am-4pm", ("past", "today 10am-4pm")),  # it has begun
        ("morgen", ("no_time", "")),
        ("morgen Markt", ("no_time", "Markt")),
        ("morgen 10 Markt", ("no_time", "10")),  # a bare number without 'om'
        ("za 10 Markt", ("no_date", "10 Markt")),  # read as a day with a month missing
        ("zaterdag om Markt", ("no_time", "om")),
        ("morgen om 25 uur", ("bad_time", "om 25 uur")),
        ("morgen 25u", ("bad_time", "25u")),
        ("volgende maand 10u", ("no_date", "volgende")),
        ("volgende 10u", ("no_date", "volgende")),
        ("deze week 10u", ("no_date", "deze")),
        ("next 10am", ("no_date", "next")),
        ("gisteren 10u", ("no_date", "gisteren")),
        ("morgen van 16 tot 10 Markt", ("end_before_start", "van 16 tot 10")),
        ("morgen tussen 17 en 14 uur", ("end_before_start", "tussen 17 en 14 uur")),
        ("morgen 3 uur 's avonds", ("bad_time", "3 uur 's avonds")),
        ("morgen 10 uur 's middags", ("bad_time", "10 uur 's middags")),
        ("morgen 12 uur 's morgens", ("bad_time", "12 uur 's morgens")),
        ("morgen 2pm 's middags", ("bad_time", "2pm 's middags")),
        ("zondag 28 mrt 2027 2u30", ("no_such_time", "2u30")),
    ],
)
def test_refusals_of_days_named_from_today(text: str, expected: tuple[str, str]) -> None:
    assert reason(lambda: when(text)) == expected


def test_a_named_day_in_the_skipped_hour_is_refused() -> None:
    saturday = at(2027, 3, 27, 12)
    assert reason(lambda: when("morgen 2u30", saturday)) == ("no_such_time", "2u30")
    assert reason(lambda: when("zondag 02:30", saturday)) == ("no_such_time", "02:30")


# --- parse_when: times as people write them ------------------------------------------------


@pytest.mark.parametrize(
    ("span", "start", "end"),
    [
        ("om 10 uur", (10, 0), None),
        ("om 10u", (10, 0), None),
        ("om 10", (10, 0), None),
        ("10 uur", (10, 0), None),
        ("10uur", (10, 0), None),
        ("om 10uur", (10, 0), None),
        ("10u30", (10, 30), None),
        ("om 10u30", (10, 30), None),
        ("10.30", (10, 30), None),
        ("om 10.30", (10, 30), None),
        ("10.30 uur", (10, 30), None),
        ("10:30 uur", (10, 30), None),
        ("om 9", (9, 0), None),
        ("at 10", (10, 0), None),
        ("at 10am", (10, 0), None),
        ("at 4pm", (16, 0), None),
        ("van 10 tot 16", (10, 0), (16, 0)),
        ("van 10 tot 16 uur", (10, 0), (16, 0)),
        ("van 10 uur tot 16 uur", (10, 0), (16, 0)),
        ("van 10u tot 16u", (10, 0), (16, 0)),
        ("van 10u30 tot 16u", (10, 30), (16, 0)),
        ("van 10.30 tot 16.00", (10, 30), (16, 0)),
        ("van 10 tot 16u", (10, 0), (16, 0)),
        ("van 10 - 16", (10, 0), (16, 0)),
        ("10-16u", (10, 0), (16, 0)),
        ("10-16 uur", (10, 0), (16, 0)),
        ("10u-16u", (10, 0), (16, 0)),
        ("10 - 16 uur", (10, 0), (16, 0)),
        ("tussen 14 en 17 uur", (14, 0), (17, 0)),
        ("tussen 14 en 17", (14, 0), (17, 0)),
        ("tussen 14u en 17u", (14, 0), (17, 0)),
        ("tussen 14u30 en 17u", (14, 30), (17, 0)),
        ("between 2 and 5pm", (14, 0), (17, 0)),
        ("between 2pm and 5pm", (14, 0), (17, 0)),
        ("from 10 to 4pm", (10, 0), (16, 0)),
        ("from 10 to 16", (10, 0), (16, 0)),
        ("from 10am to 4pm", (10, 0), (16, 0)),
        ("10am-4pm", (10, 0), (16, 0)),
        ("10am - 4pm", (10, 0), (16, 0)),
        ("10 am to 4 pm", (10, 0), (16, 0)),
        ("from 1 to 4pm", (13, 0), (16, 0)),
        # a part of the day, where it leaves one reading
        ("om 2 uur 's middags", (14, 0), None),
        ("2 uur 's middags", (14, 0), None),
        ("om 2u 's middags", (14, 0), None),
        ("om 2 uur ’s middags", (14, 0), None),
        ("om 12 uur 's middags", (12, 0), None),
        ("om 14 uur 's middags", (14, 0), None),
        ("om 3 uur 's namiddags", (15, 0), None),
        ("om 8 uur 's avonds", (20, 0), None),
        ("om 8u30 's avonds", (20, 30), None),
        ("om 20 uur 's avonds", (20, 0), None),
        ("om 9 uur 's morgens", (9, 0), None),
        ("om 9 uur 's ochtends", (9, 0), None),
        ("om 9 's morgens", (9, 0), None),
        ("van 2 tot 5 uur 's middags", (14, 0), (17, 0)),
        ("van 2 tot 5 's middags", (14, 0), (17, 0)),
        ("tussen 2 en 5 uur 's middags", (14, 0), (17, 0)),
        ("van 10 uur 's morgens tot 4 uur 's middags", (10, 0), (16, 0)),
        ("van 10 tot 4 uur 's middags", (10, 0), (16, 0)),  # 22:00 would be after 16:00
        ("van 7 tot 10 uur 's avonds", (19, 0), (22, 0)),
    ],
)
def test_times_as_people_write_them(
    span: str, start: tuple[int, int], end: tuple[int, int] | None
) -> None:
    for day, on in (("12 dec", at(2026, 12, 12)), ("morgen", at(2026, 11, 27))):
        found, rest = when(f"{day} {span} Ruilmarkt op het plein")
        expected_end = None if end is None else on.replace(hour=end[0], minute=end[1])
        assert found == When(on.replace(hour=start[0], minute=start[1]), expected_end), span
        assert rest == ["Ruilmarkt", "op", "het", "plein"]


def test_without_van_a_bare_end_stays_in_the_title() -> None:
    assert when("morgen om 10 tot 16 kinderen") == (
        When(at(2026, 11, 27, 10)),
        ["tot", "16", "kinderen"],
    )
    assert when("morgen 10u en 16u Markt") == (When(at(2026, 11, 27, 10)), ["en", "16u", "Markt"])
    assert when("morgen 10u 's nachts") == (When(at(2026, 11, 27, 10)), ["'s", "nachts"])


# --- parse_when: which year ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("26 nov 12:01", at(2026, 11, 26, 12, 1)),  # today, still to come
        ("26 nov 12:00", at(2027, 11, 26, 12, 0)),  # now is not in the future
        ("26 nov 11:00", at(2027, 11, 26, 11, 0)),
        ("26/11 23:59", at(2026, 11, 26, 23, 59)),
        ("25 nov 23u", at(2027, 11, 25, 23, 0)),
        ("27 nov 0:00", at(2026, 11, 27, 0, 0)),
        ("1 jan 10u", at(2027, 1, 1, 10, 0)),
        ("31 dec 23:59", at(2026, 12, 31, 23, 59)),
        ("29 feb 10u", at(2028, 2, 29, 10, 0)),  # the next 29 February
        ("vr 26 nov 10u", at(2027, 11, 26, 10, 0)),  # 26 Nov 2027 is a Friday
    ],
)
def test_a_date_without_year_is_the_next_such_date(text: str, expected: datetime) -> None:
    assert when(text)[0].start == expected


def test_today_with_a_year() -> None:
    assert when("26/11/2026 12:30")[0].start == at(2026, 11, 26, 12, 30)
    assert reason(lambda: when("26/11/2026 11:30")) == ("past", "26/11/2026 11:30")
    assert reason(lambda: when("26/11/2026 12:00")) == ("past", "26/11/2026 12:00")


def test_now_in_another_zone_is_compared_as_an_instant() -> None:
    now = datetime(2026, 11, 26, 11, 30, tzinfo=UTC)  # 12:30 in Brussels
    assert when("26 nov 12:15", now)[0].start == at(2027, 11, 26, 12, 15)
    assert when("26 nov 12:45", now)[0].start == at(2026, 11, 26, 12, 45)
    late = datetime(2026, 11, 26, 23, 30, tzinfo=UTC)  # 00:30 on 27 November in Brussels
    assert when("26 nov 23:45", late)[0].start == at(2027, 11, 26, 23, 45)
    assert when("27 nov 0:15", late)[0].start == at(2027, 11, 27, 0, 15)
    assert when("27 nov 0:45", late)[0].start == at(2026, 11, 27, 0, 45)


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse_when(["12", "dec", "10u"], now=datetime(2026, 11, 26), tz=TZ)


def test_the_result_carries_the_zone() -> None:
    start = when("12 dec 10u")[0].start
    assert start.tzinfo is TZ and start.utcoffset() == timedelta(hours=1)
    assert when("1 jun 2027 10u")[0].start.utcoffset() == timedelta(hours=2)


# --- parse_when: DST ----------------------------------------------------------------------


def test_a_time_the_clock_skips_is_refused() -> None:
    assert reason(lambda: when("28 mrt 2027 02:30")) == ("no_such_time", "02:30")
    assert reason(lambda: when("28 mrt 02:30")) == ("no_such_time", "02:30")
    assert reason(lambda: when("28/3/2027 01:00-02:15")) == ("no_such_time", "01:00-02:15")
    assert when("28 mrt 2027 03:00")[0].start.utcoffset() == timedelta(hours=2)
    assert when("28 mrt 2027 01:59")[0].start.utcoffset() == timedelta(hours=1)


def test_an_ambiguous_time_takes_the_first() -> None:
    start = when("31 okt 2027 02:30")[0].start  # the clock goes from 03:00 back to 02:00
    assert start.fold == 0 and start.utcoffset() == timedelta(hours=2)


# --- parse_when: refusals -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ("no_date", "")),
        ("Ruilmarkt", ("no_date", "Ruilmarkt")),
        ("za", ("no_time", "")),  # a bare weekday is a day now; the time is missing
        ("12 decmber 10u", ("no_date", "12 decmber")),
        ("10:00 12 dec", ("no_date", "10:00")),
        ("12", ("no_date", "12")),
        ("overmorgens 10u", ("no_date", "overmorgens")),
        ("10.30 Markt", ("no_date", "10.30")),  # 10.30 is a time, not a date
        ("１２/１２ 10u", ("no_date", "１２/１２")),  # full-width digits
        ("١٢ dec 10u", ("no_date", "١٢")),  # Arabic-Indic digits
        ("31/2 10u", ("bad_date", "31/2")),
        ("30 feb 10u", ("bad_date", "30 feb")),
        ("29/2/2027 10u", ("bad_date", "29/2/2027")),
        ("2026-13-01 10u", ("bad_date", "2026-13-01")),
        ("0 dec 10u", ("bad_date", "0 dec")),
        ("32 dec 10u", ("bad_date", "32 dec")),
        ("0000-01-01 10u", ("bad_date", "0000-01-01")),
        ("12/12/20266 10u", ("bad_date", "12/12/20266")),
        ("12/13 10u", ("bad_date", "12/13")),
        ("12 dec", ("no_time", "")),
        ("12 dec Markt", ("no_time", "Markt")),
        ("12 dec 10 Markt", ("no_time", "10")),  # a bare number could be anything
        ("12 dec １０:００", ("no_time", "１０:００")),
        ("12 dec ١٠:٠٠", ("no_time", "١٠:٠٠")),
        ("12 dec 25:00", ("bad_time", "25:00")),
        ("12 dec 24:00", ("bad_time", "24:00")),
        ("12 dec 10:61", ("bad_time", "10:61")),
        ("12 dec 10:5", ("bad_time", "10:5")),
        ("12 dec 13pm", ("bad_time", "13pm")),
        ("12 dec 0am", ("bad_time", "0am")),
        ("12 dec 100:00", ("bad_time", "100:00")),
        ("12 dec 10:00-25:00", ("bad_time", "10:00-25:00")),
        ("12 dec 10u tot 16u61", ("bad_time", "10u tot 16u61")),
        ("12 dec 16u-10u", ("end_before_start", "16u-10u")),
        ("12 dec 10:00 - 10:00", ("end_before_start", "10:00 - 10:00")),
        ("12 dec 22:00-02:00", ("end_before_start", "22:00-02:00")),
        ("2026-11-25 10u", ("past", "2026-11-25")),
        ("1/1/2020 10u", ("past", "1/1/2020")),
        ("12 dec 2062 10u", ("too_far", "12 dec 2062")),
        ("vr 12 dec 10u", ("weekday_mismatch", "vr 12 dec")),
        ("friday 12/12/2026 10u", ("weekday_mismatch", "friday 12/12/2026")),
        ("28 mrt 2027 2u30", ("no_such_time", "2u30")),
    ],
)
def test_refusals(text: str, expected: tuple[str, str]) -> None:
    assert reason(lambda: when(text)) == expected


# --- split_repeat -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("elke week", Repeat("week", 1)),
        ("every week", Repeat("week", 1)),
        ("Elke Week.", Repeat("week", 1)),
        ("iedere week", Repeat("week", 1)),
        ("elke 2 weken", Repeat("week", 2)),
        ("every 2 weeks", Repeat("week", 2)),
        ("elke twee weken", Repeat("week", 2)),
        ("every other week", Repeat("week", 2)),
        ("elke maand", Repeat("month", 1)),
        ("every month", Repeat("month", 1)),
        ("elke 3 maanden", Repeat("month", 3)),
        ("every 3 months", Repeat("month", 3)),
        ("elke 12 maanden", Repeat("month", 12)),
        ("elke eerste zaterdag", Repeat("month", 1, (1, 5))),
        ("every first saturday", Repeat("month", 1, (1, 5))),
        ("elke tweede dinsdag", Repeat("month", 1, (2, 1))),
        ("every second tuesday", Repeat("month", 1, (2, 1))),
        ("elke derde woensdag", Repeat("month", 1, (3, 2))),
        ("every third wed", Repeat("month", 1, (3, 2))),
        ("elke vierde do", Repeat("month", 1, (4, 3))),
        ("every fourth thursday", Repeat("month", 1, (4, 3))),
        ("elke laatste vrijdag", Repeat("month", 1, (-1, 4))),
        ("every last friday", Repeat("month", 1, (-1, 4))),
        ("elke 1e zondag van de maand", Repeat("month", 1, (1, 6))),
        ("every 1st sunday of the month", Repeat("month", 1, (1, 6))),
        ("elke 2 maanden op de laatste zaterdag", Repeat("month", 2, (-1, 5))),
        ("every 2 months on the last saturday", Repeat("month", 2, (-1, 5))),
        ("elke week tot 2027-12-31", Repeat("week", 1, None, date(2027, 12, 31))),
        ("every week until 31/12/2027", Repeat("week", 1, None, date(2027, 12, 31))),
        ("elke week tot en met 31 december 2027", Repeat("week", 1, None, date(2027, 12, 31))),
        ("elke week t/m vr 31 dec 2027", Repeat("week", 1, None, date(2027, 12, 31))),
        ("elke maand tot 1 maart", Repeat("month", 1, None, date(2027, 3, 1))),
        ("elke maand tot 26 nov", Repeat("month", 1, None, date(2026, 11, 26))),  # today
        ("elke maand tot 25 nov", Repeat("month", 1, None, date(2027, 11, 25))),
        ("elke eerste za tot 29 feb", Repeat("month", 1, (1, 5), date(2028, 2, 29))),
    ],
)
def test_repeats(text: str, expected: Repeat) -> None:
    assert repeat(f"Ruilmarkt @ Parochiezaal {text}") == (
        ["Ruilmarkt", "@", "Parochiezaal"],
        expected,
    )


def test_the_whole_example() -> None:
    words = "markt 12 december 10:00-16:00 Ruilmarkt @ Parochiezaal elke 3 maanden tot 2027-12-31"
    rest, found = split_repeat(words.split()[1:], now=NOW, tz=TZ)
    first, title = parse_when(rest, now=NOW, tz=TZ)
    assert title == ["Ruilmarkt", "@", "Parochiezaal"]
    assert found == Repeat("month", 3, None, date(2027, 12, 31))
    assert [o.start.date() for o in occurrences(first, found)] == [
        date(2026, 12, 12),
        date(2027, 3, 12),
        date(2027, 6, 12),
        date(2027, 9, 12),
        date(2027, 12, 12),
    ]


def test_the_last_every_starts_the_repeat() -> None:
    assert repeat("Elke week soep elke maand") == (["Elke", "week", "soep"], Repeat("month", 1))


@pytest.mark.parametrize(
    "text",
    [
        "Ruilmarkt",
        "",
        "Soep voor elke bezoeker @ Zaal",
        "Every body welcome",
        "elke bezoeker",
        "2 euro each",
        "Markt elke １ week",  # not an ASCII number, so not a repeat word
    ],
)
def test_no_repeat(text: str) -> None:
    assert repeat(text) == (text.split(), None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Markt elke", ("bad_repeat", "elke")),
        ("Markt elke maand @ Zaal", ("bad_repeat", "@ Zaal")),
        ("Markt elke week soep", ("bad_repeat", "soep")),
        ("Markt elke dag", ("bad_repeat", "elke dag")),
        ("Markt every year", ("bad_repeat", "every year")),
        ("Markt elke 0 weken", ("bad_repeat", "elke 0 weken")),
        ("Markt elke 53 weken", ("bad_repeat", "elke 53 weken")),
        ("Markt elke 13 maanden", ("bad_repeat", "elke 13 maanden")),
        ("Markt elke 3", ("bad_repeat", "elke 3")),
        ("Markt elke twee", ("bad_repeat", "elke twee")),
        ("Markt elke vijfde zaterdag", ("bad_repeat", "elke vijfde")),
        ("Markt elke eerste", ("bad_repeat", "eerste")),
        ("Markt elke eerste week", ("bad_repeat", "eerste week")),
        ("Markt elke week op de eerste zaterdag", ("bad_repeat", "op de eerste zaterdag")),
        ("Markt elke zaterdag", ("repeat_weekday", "elke zaterdag")),
        ("Markt every Sat", ("repeat_weekday", "every Sat")),
        ("Markt elke week tot", ("bad_until", "tot")),
        ("Markt elke week tot morgen", ("bad_until", "morgen")),
        ("Markt elke week tot 31 feb", ("bad_until", "31 feb")),
        ("Markt elke week tot 31/12/2027 @ Zaal", ("bad_until", "@ Zaal")),
        ("Markt elke week tot 2026-11-25", ("until_before_start", "2026-11-25")),
        ("Markt elke week tot 2099-01-01", ("too_far", "2099-01-01")),
        ("Markt elke week tot vr 31 dec 2026", ("weekday_mismatch", "vr 31 dec 2026")),
    ],
)
def test_repeat_refusals(text: str, expected: tuple[str, str]) -> None:
    assert reason(lambda: repeat(text)) == expected


# --- a repeat without an end ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "last"),
    [
        (date(2026, 12, 12), date(2027, 12, 11)),
        (date(2027, 1, 1), date(2027, 12, 31)),
        (date(2028, 2, 29), date(2029, 2, 28)),
        (date(2027, 3, 31), date(2028, 3, 30)),
        (date(9999, 6, 1), date.max),
    ],
)
def test_open_end_is_a_year_less_a_day(first: date, last: date) -> None:
    assert open_end(first) == last


@pytest.mark.parametrize(
    ("rule", "count"),
    [
        (Repeat("week", 1), 53),  # Saturday 12 Dec 2026 up to Saturday 11 Dec 2027
        (Repeat("week", 2), 27),
        (Repeat("month", 1), 12),
        (Repeat("month", 3), 4),
        (Repeat("month", 1, (2, 5)), 13),  # the second Saturday of Dec 2027 is the 11th
    ],
)
def test_an_open_repeat_for_a_year_stays_within_the_limit(rule: Repeat, count: int) -> None:
    first = When(at(2026, 12, 12, 10))
    until = open_end(first.start.date())
    bounded = Repeat(rule.unit, rule.interval, rule.nth_weekday, until)
    series = occurrences(first, bounded)
    assert len(series) == count < 60
    assert series[-1].start.date() <= until


@pytest.mark.parametrize(
    "word",
    [
        "zondag",
        "Zondag",
        "zo",
        "sunday",
        "morgen",
        "vandaag",
        "today",
        "volgende",
        "next",
        "december",
        "dec",
        "12/12",
        "12",
        "10u",
    ],
)
def test_words_that_name_a_day(word: str) -> None:
    assert names_a_day(word)


@pytest.mark.parametrize(
    "word", ["de", "parochiezaal", "Gent", "het", "plein", "zaal", "deze", "'t"]
)
def test_words_that_name_no_day(word: str) -> None:
    assert not names_a_day(word)


# --- occurrences --------------------------------------------------------------------------


def starts(first: When, found: Repeat | None, limit: int = 60) -> list[datetime]:
    return [o.start for o in occurrences(first, found, limit=limit)]


def test_no_repeat_is_one_occurrence() -> None:
    first = When(at(2026, 12, 12, 10))
    assert occurrences(first, None) == [first]


@pytest.mark.parametrize(
    ("first_day", "switch", "offsets"),
    [
        (date(2027, 3, 14), date(2027, 3, 28), (1, 1, 2, 2)),  # spring forward, last Sunday
        (date(2026, 10, 11), date(2026, 10, 25), (2, 2, 1, 1)),  # fall back, last Sunday
        (date(2027, 3, 20), date(2027, 3, 28), (1, 1, 2, 2)),  # a Saturday series
    ],
)
def test_weekly_series_keeps_wall_time_across_dst(
    first_day: date, switch: date, offsets: tuple[int, ...]
) -> None:
    first = When(
        datetime.combine(first_day, time(10), tzinfo=TZ),
        datetime.combine(first_day, time(16), tzinfo=TZ),
    )
    series = occurrences(first, Repeat("week", 1), limit=4)
    days = [o.start.date() for o in series]
    assert days == [first_day + timedelta(weeks=k) for k in range(4)]  # none skipped or doubled
    assert any(first_day <= switch < d for d in days)
    for o, offset in zip(series, offsets, strict=True):
        assert (o.start.hour, o.start.minute) == (10, 0)
        assert (o.end is not None) and (o.end.hour, o.end.minute) == (16, 0)
        assert o.start.utcoffset() == o.end.utcoffset() == timedelta(hours=offset)
        assert o.start.tzinfo is TZ
    instants = [o.start.astimezone(UTC) for o in series]
    gaps = {b - a for a, b in pairwise(instants)}
    assert gaps == {timedelta(days=7), timedelta(days=7, hours=offsets[1] - offsets[2])}


def test_the_example_from_the_brief_across_the_spring_switch() -> None:
    first, _ = when("za 20 mrt 2027 10:00")
    assert [s.isoformat() for s in starts(first, Repeat("week", 1), limit=3)] == [
        "2027-03-20T10:00:00+01:00",
        "2027-03-27T10:00:00+01:00",
        "2027-04-03T10:00:00+02:00",
    ]


def test_a_repeat_in_the_skipped_hour_moves_on_by_the_gap() -> None:
    first = When(at(2027, 3, 21, 2, 30), at(2027, 3, 21, 3, 15))
    series = occurrences(first, Repeat("week", 1), limit=3)
    assert [o.start.isoformat() for o in series] == [
        "2027-03-21T02:30:00+01:00",
        "2027-03-28T03:30:00+02:00",  # 02:30 does not exist that night
        "2027-04-04T02:30:00+02:00",
    ]
    assert [o.end.isoformat() for o in series if o.end] == [
        "2027-03-21T03:15:00+01:00",
        "2027-03-28T04:15:00+02:00",  # still 45 minutes, and after the start
        "2027-04-04T03:15:00+02:00",
    ]


def test_a_repeat_in_the_doubled_hour_takes_the_first() -> None:
    series = occurrences(When(at(2027, 10, 24, 2, 30)), Repeat("week", 1), limit=2)
    assert series[1].start.isoformat() == "2027-10-31T02:30:00+02:00"
    assert series[1].start.fold == 0


def test_weekly_every_n_weeks() -> None:
    first = When(at(2026, 12, 12, 10))
    assert starts(first, Repeat("week", 2), limit=3) == [
        at(2026, 12, 12, 10),
        at(2026, 12, 26, 10),
        at(2027, 1, 9, 10),
    ]


def test_month_end_is_clamped_and_not_chained() -> None:
    first = When(at(2027, 1, 31, 19, 30))
    assert [s.date() for s in starts(first, Repeat("month", 1), limit=5)] == [
        date(2027, 1, 31),
        date(2027, 2, 28),
        date(2027, 3, 31),  # back to the 31st, not stuck on the 28th
        date(2027, 4, 30),
        date(2027, 5, 31),
    ]
    leap = When(at(2028, 2, 29, 10))
    assert [s.date() for s in starts(leap, Repeat("month", 12), limit=5)] == [
        date(2028, 2, 29),
        date(2029, 2, 28),
        date(2030, 2, 28),
        date(2031, 2, 28),
        date(2032, 2, 29),
    ]
    thirtieth = When(at(2026, 12, 30, 10))
    assert [s.date() for s in starts(thirtieth, Repeat("month", 2), limit=3)] == [
        date(2026, 12, 30),
        date(2027, 2, 28),
        date(2027, 4, 30),
    ]


def test_last_saturday_across_months() -> None:
    first = When(at(2026, 12, 26, 14), at(2026, 12, 26, 17))
    series = occurrences(first, Repeat("month", 1, (-1, 5)), limit=6)
    assert [o.start.date() for o in series] == [
        date(2026, 12, 26),
        date(2027, 1, 30),
        date(2027, 2, 27),
        date(2027, 3, 27),  # the day before the spring switch
        date(2027, 4, 24),
        date(2027, 5, 29),
    ]
    assert all(o.start.hour == 14 and o.end and o.end.hour == 17 for o in series)


def test_first_saturday_every_two_months() -> None:
    first = When(at(2026, 12, 5, 10))
    assert [s.date() for s in starts(first, Repeat("month", 2, (1, 5)), limit=4)] == [
        date(2026, 12, 5),
        date(2027, 2, 6),
        date(2027, 4, 3),
        date(2027, 6, 5),
    ]


def test_fourth_weekday() -> None:
    first = When(at(2027, 1, 28, 20))  # the fourth Thursday of January 2027
    assert [s.date() for s in starts(first, Repeat("month", 1, (4, 3)), limit=3)] == [
        date(2027, 1, 28),
        date(2027, 2, 25),
        date(2027, 3, 25),
    ]


def test_until_is_inclusive() -> None:
    first = When(at(2026, 12, 12, 10))
    assert len(starts(first, Repeat("week", 1, None, date(2026, 12, 26)))) == 3
    assert len(starts(first, Repeat("week", 1, None, date(2026, 12, 25)))) == 2
    assert starts(first, Repeat("week", 1, None, date(2026, 12, 12))) == [at(2026, 12, 12, 10)]
    monthly = Repeat("month", 1, (2, 5), date(2027, 2, 13))
    assert [s.date() for s in starts(first, monthly)] == [
        date(2026, 12, 12),
        date(2027, 1, 9),
        date(2027, 2, 13),
    ]


def test_limit() -> None:
    first = When(at(2026, 12, 12, 10))
    assert len(starts(first, Repeat("week", 1))) == 60
    assert len(starts(first, Repeat("month", 1, None, date(2099, 1, 1)), limit=5)) == 5
    assert len(starts(first, Repeat("week", 1), limit=1)) == 1
    with pytest.raises(ValueError, match="limit"):
        occurrences(first, Repeat("week", 1), limit=0)


def test_occurrence_refusals() -> None:
    first = When(at(2026, 12, 12, 10))
    assert reason(lambda: occurrences(first, Repeat("week", 1, None, date(2026, 12, 11)))) == (
        "until_before_start",
        "2026-12-11",
    )
    assert reason(lambda: occurrences(first, Repeat("month", 1, (1, 5)))) == (
        "nth_mismatch",
        "2026-12-12",
    )
    assert reason(lambda: occurrences(first, Repeat("month", 1, (-1, 5)))) == (
        "nth_mismatch",
        "2026-12-12",
    )


def test_a_repeat_that_runs_into_year_9999_stops() -> None:
    first = When(datetime(9999, 12, 1, 10, tzinfo=TZ))
    assert len(occurrences(first, Repeat("week", 1))) == 5
    assert len(occurrences(first, Repeat("month", 1))) == 1


def test_programming_errors_are_not_when_errors() -> None:
    with pytest.raises(ValueError, match="ZoneInfo"):
        occurrences(When(datetime(2026, 12, 12, 10, tzinfo=UTC)), None)
    with pytest.raises(ValueError, match="aware"):
        When(datetime(2026, 12, 12, 10))
    with pytest.raises(ValueError, match="after"):
        When(at(2026, 12, 12, 10), at(2026, 12, 12, 10))
    with pytest.raises(ValueError, match="interval"):
        Repeat("week", 0)
    with pytest.raises(ValueError, match="nth_weekday"):
        Repeat("month", 1, (5, 5))
    with pytest.raises(ValueError, match="nth_weekday"):
        Repeat("week", 1, (1, 5))


# --- every reason is raised somewhere ------------------------------------------------------


def test_every_reason_is_reachable() -> None:
    first = When(at(2026, 12, 12, 10))
    examples: list[Callable[[], object]] = [
        lambda: when("Markt"),
        lambda: when("31/2 10u"),
        lambda: when("vr 12 dec 10u"),
        lambda: when("12 dec Markt"),
        lambda: when("12 dec 25:00"),
        lambda: when("12 dec 16u-10u"),
        lambda: when("28 mrt 2027 02:30"),
        lambda: when("1/1/2020 10u"),
        lambda: when("1/1/2062 10u"),
        lambda: repeat("x elke dag"),
        lambda: repeat("x elke zaterdag"),
        lambda: repeat("x elke week tot morgen"),
        lambda: repeat("x elke week tot 1/1/2020"),
        lambda: occurrences(first, Repeat("month", 1, (1, 5))),
    ]
    assert sorted(reason(call)[0] for call in examples) == sorted(REASONS)
    assert len(set(REASONS)) == len(REASONS)


# --- properties ----------------------------------------------------------------------------

_MORE_WORDS = """
elke every iedere week weken maand maanden month months eerste laatste last first
tot to until t/m en met van de om op on the of - – @ am pm a.m. u h : / . ,
vandaag morgen overmorgen today tomorrow volgende next deze this komende coming
tussen between and uur 's ’s middags avonds morgens namiddags nachts at from
0 1 2 9 10 12 13 24 29 30 31 59 60 99 2026 2027 2028 9999 0000
10:00 10u 10u30 10.30 16:00 10:00-16:00 10-16u 12/12 31/12/2027 2027-03-28 02:30
１２ ١٢ ߁ 10am 4pm 10:5 25:00 12.12. 1e 2de 3rd
"""
_VOCABULARY = [
    *(name for names in _MONTH_NAMES for name in names),
    *(name for names in _WEEKDAY_NAMES for name in names),
    *_MORE_WORDS.split(),
]
_WORD = st.one_of(st.sampled_from(_VOCABULARY), st.text(max_size=8))
_ANY_NOW = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9980, 1, 1), timezones=st.just(TZ)
)


def only_when_errors(words: list[str], now: datetime) -> None:
    for call in (parse_when, split_repeat):
        try:
            call(words, now=now, tz=TZ)
        except WhenError as error:
            assert error.reason in REASONS


@settings(max_examples=600, deadline=None)
@given(st.lists(_WORD, max_size=10), _ANY_NOW)
def test_likely_words_give_a_when_or_a_when_error(words: list[str], now: datetime) -> None:
    only_when_errors(words, now)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(), max_size=6))
def test_any_unicode_gives_a_when_or_a_when_error(words: list[str]) -> None:
    only_when_errors(words, NOW)


_PATTERNS = [
    "EEE d MMM yyyy HH:mm",  # as letsbot.i18n shows event times
    "EEEE d MMMM yyyy H:mm",
    "d MMM HH:mm",
    "d/M HH:mm",
    "dd-MM-yyyy HH.mm",
    "yyyy-MM-dd HH:mm",
    "EEE d MMM yyyy h:mma",
]


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(min_value=datetime(2026, 11, 26, 12, 1), max_value=datetime(2027, 11, 26, 12, 0)),
    st.sampled_from(_PATTERNS),
    st.sampled_from(["nl", "en"]),
    st.integers(min_value=1, max_value=600),
)
def test_round_trip_through_babel(
    moment: datetime, pattern: str, locale: str, minutes: int
) -> None:
    moment = moment.replace(second=0, microsecond=0)
    start = moment.replace(tzinfo=TZ)
    end = start + timedelta(minutes=minutes)
    text = str(format_datetime(moment, pattern, locale=locale))
    end_text = str(format_datetime(end, "HH:mm", locale=locale))
    try:
        found, rest = parse_when([*text.split(), "tot", end_text, "Markt"], now=NOW, tz=TZ)
    except WhenError as error:
        # Only the skipped spring hour, and ends past midnight or in the skipped hour.
        assert error.reason in ("no_such_time", "end_before_start"), (text, error.reason)
        return
    assert found.start == start and found.start.fold == 0
    assert found.end is not None and found.end.time() == end.time()
    assert rest == ["Markt"]


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(min_value=datetime(2026, 11, 27), max_value=datetime(2036, 1, 1)),
    st.sampled_from(["week", "month"]),
    st.integers(min_value=1, max_value=12),
    st.one_of(st.none(), st.integers(min_value=-1, max_value=4).filter(bool)),
    st.one_of(st.none(), st.integers(min_value=0, max_value=800)),
    st.integers(min_value=1, max_value=80),
)
def test_occurrence_properties(
    moment: datetime,
    unit: str,
    interval: int,
    nth: int | None,
    until_days: int | None,
    limit: int,
) -> None:
    start = moment.replace(second=0, microsecond=0, tzinfo=TZ)
    first = When(start)
    nth_weekday = (nth, start.weekday()) if nth and unit == "month" else None
    until = None if until_days is None else start.date() + timedelta(days=until_days)
    rule = Repeat("week" if unit == "week" else "month", interval, nth_weekday, until)
    try:
        series = occurrences(first, rule, limit=limit)
    except WhenError as error:
        assert error.reason == "nth_mismatch" and nth_weekday is not None
        return
    assert series[0] == first
    assert 1 <= len(series) <= limit
    days = [o.start.date() for o in series]
    assert days == sorted(set(days))
    assert until is None or days[-1] <= until
    for k, o in enumerate(series):
        assert o.start.tzinfo is TZ
        wall = o.start.replace(tzinfo=None)
        if (wall.hour, wall.minute) != (start.hour, start.minute):
            assert o.start.utcoffset() == timedelta(hours=2)  # moved out of the skipped hour
        if unit == "week":
            assert days[k] == days[0] + timedelta(weeks=interval * k)
        else:
            months = (days[k].year - days[0].year) * 12 + days[k].month - days[0].month
            assert months == interval * k
            if nth_weekday is not None:
                assert days[k].weekday() == start.weekday()
            else:
                assert days[k].day == days[0].day or days[k].day < days[0].day >= 29
