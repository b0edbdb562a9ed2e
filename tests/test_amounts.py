import pytest
from hypothesis import given
from hypothesis import strategies as st

from letsbot.amounts import AmountError, Currency

PLUIM = Currency("pluim", "pluimen", 0)
EURO_LIKE = Currency("dukaat", "dukaten", 2)


@pytest.mark.parametrize(
    ("text", "expected"), [("30", 30), (" 7 ", 7), ("0030", 30), ("100000", 100000)]
)
def test_whole_amounts(text: str, expected: int) -> None:
    assert PLUIM.parse(text, 100000) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1,5", 150), ("1.50", 150), ("2", 200), ("2,0", 200), ("1.000,50", 100050), ("30,-", 3000)],
)
def test_decimal_amounts(text: str, expected: int) -> None:
    assert EURO_LIKE.parse(text, 10**9) == expected


@pytest.mark.parametrize("text", ["1.000", "1,500", "2.500"])
def test_three_digits_after_one_separator_are_refused_where_there_are_cents(text: str) -> None:
    """'1.000' is a thousand to a Fleming and one to an Englishman: never guessed."""
    with pytest.raises(AmountError) as refused:
        EURO_LIKE.parse(text, 10**9)
    assert refused.value.reason == "decimals"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("abc", "format"),
        ("-5", "format"),
        ("+5", "format"),
        ("1e3", "format"),
        ("NaN", "format"),
        ("Infinity", "format"),
        ("1_000", "format"),
        ("1.000.000", "too_large"),  # thousands as the bot writes them: a million
        ("1..000", "format"),
        ("1.00.0", "format"),
        ("1.000,5", "whole"),
        ("1,500", "whole"),  # one and a half to a Fleming, 1500 to an Englishman
        ("1,000", "whole"),
        ("0.500", "whole"),
        ("١٢٣", "format"),  # Arabic-Indic digits
        ("１２", "format"),  # full-width digits
        ("߁", "format"),  # NKo digit one: int() would accept it
        ("", "format"),
        ("1,5", "whole"),  # pluimen are whole
        ("0", "zero"),
        ("0,0", "zero"),
        ("-30,-", "format"),
        ("100001", "too_large"),
        ("9" * 40, "too_large"),  # digits only: too many of them
    ],
)
def test_refused(text: str, reason: str) -> None:
    with pytest.raises(AmountError) as refused:
        PLUIM.parse(text, 100000)
    assert refused.value.reason == reason


def test_signed_limits() -> None:
    assert PLUIM.parse_signed("-1500") == -1500
    assert PLUIM.parse_signed("0") == 0
    assert EURO_LIKE.parse_signed("-2,5") == -250


@given(st.text(max_size=20))
def test_anything_parses_to_a_positive_bounded_int_or_is_refused(text: str) -> None:
    try:
        value = PLUIM.parse(text, 100000)
    except AmountError:
        return
    assert isinstance(value, int) and 0 < value <= 100000
    assert text.strip().isascii()


def test_unit_names() -> None:
    assert PLUIM.unit_name(1) == "pluim"
    assert PLUIM.unit_name(2) == "pluimen"
    assert EURO_LIKE.unit_name(100) == "dukaat"
    assert EURO_LIKE.unit_name(150) == "dukaten"
