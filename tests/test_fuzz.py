"""Whatever a member types, no handler fails and a refusal changes nothing."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from letsbot.registry import REGISTRY
from storage.database import make_engine, upgrade
from tests.support import Driver, make_settings

WORDS = sorted({c.name for c in REGISTRY.commands} | {c.nl for c in REGISTRY.commands})
NASTY = [
    "0",
    "-5",
    "1e9",
    "NaN",
    "١٢٣",
    "１２",
    "9" * 40,
    "DU-002",
    "DU-999",
    "du2",
    "@an",
    "@nobody",
    "#fiets",
    "<b>x</b>",
    "**x**",
    "'; DROP TABLE members; --",
    "%s%n{0}{name}",
    "12/12",
    "10:00",
    "elke",
    "tot",
    "|",
    "@",
    "prijs:",
    "x" * 600,
]
ARGUMENT = st.one_of(st.sampled_from(NASTY), st.text(min_size=1, max_size=30))


@pytest.fixture(scope="module")
def fuzz_driver() -> Iterator[Driver]:
    """One database for the whole module: members who can try everything."""
    folder = Path(tempfile.mkdtemp())
    path = folder / "fuzz.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    driver = Driver(engine, make_settings())
    driver.member("an")
    driver.member("bo", language="en")
    driver.say("an", "/betaal 3 10 soep")
    driver.say("an", "ja")
    yield driver
    engine.dispose()
    shutil.rmtree(folder)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    who=st.sampled_from(["an", "bo", "admin", "stranger"]),
    word=st.sampled_from(WORDS),
    args=st.lists(ARGUMENT, max_size=6),
    group=st.booleans(),
)
def test_no_command_fails_and_refusals_change_nothing(
    fuzz_driver: Driver, who: str, word: str, args: list[str], group: bool
) -> None:
    before = fuzz_driver.snapshot()
    text = " ".join([f"/{word}", *args])
    out = fuzz_driver.say(who, text, group=group)
    result = fuzz_driver.last
    assert result is not None
    assert result.outcome != "failed", (text, out)
    assert "Traceback" not in out
    if result.outcome == "refused":
        assert result.replies, text
        assert fuzz_driver.snapshot() == before, text
    # Leave no question open for the next example to answer by accident.
    if any(o.choices for o in result.replies):
        fuzz_driver.say(who, "nee")


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=200), group=st.booleans())
def test_any_text_at_all(fuzz_driver: Driver, text: str, group: bool) -> None:
    result = fuzz_driver.send(fuzz_driver.incoming("an", text, group=group))
    assert result.outcome != "failed", text
