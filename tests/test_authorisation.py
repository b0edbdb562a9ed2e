"""Who may do what: every coordinator command, tried by everyone else, changes nothing."""

from __future__ import annotations

import pytest

from letsbot.registry import REGISTRY, Who
from tests.support import Driver

COORDINATOR_LINES = [
    f"/{command.nl} 2 3 5 x" for command in REGISTRY.commands if command.who is Who.COORDINATOR
] + [
    "/activiteit nieuw markt 12/12 10:00 Ruilmarkt",
    "/activiteit annuleer 1",
    "/activiteit verplaats 1 19/12 10:00",
]


@pytest.fixture
def everyone(driver: Driver) -> Driver:
    """admin; an, a member; lea, leaving with a balance; cand, a candidate; zoe, nobody."""
    driver.member("an")
    driver.member("lea")
    driver.say("an", "/betaal 3 20 soep")
    driver.say("an", "ja")
    driver.say("lea", "/uitstappen")
    driver.say("lea", "ja")
    driver.say("cand", "/aanmelden Cand")
    driver.say("admin", "/activiteit nieuw markt 12/12 10:00 Ruilmarkt")
    driver.say("admin", "ja")
    return driver


@pytest.mark.parametrize("line", COORDINATOR_LINES)
@pytest.mark.parametrize("who", ["an", "lea", "cand", "zoe"])
@pytest.mark.parametrize("group", [False, True])
def test_coordinator_commands_are_refused_to_others(
    everyone: Driver, line: str, who: str, group: bool
) -> None:
    before = everyone.snapshot()
    out = everyone.say(who, line, group=group)
    assert everyone.last is not None and everyone.last.outcome == "refused", out
    assert everyone.snapshot() == before
    assert "coördinator" in out or "lid" in out or "aanvraag" in out


@pytest.mark.parametrize(
    ("who", "line"),
    [("zoe", "/aanmelden Zoe"), ("an", "/uitstappen"), ("admin", "/aanmelden Admin")],
)
def test_direct_chat_commands_are_refused_in_the_group(
    everyone: Driver, who: str, line: str
) -> None:
    before = everyone.snapshot()
    out = everyone.say(who, line, group=True)
    assert "in een privégesprek met mij" in out
    assert everyone.snapshot() == before


def test_members_cannot_answer_for_each_other_or_a_coordinator(everyone: Driver) -> None:
    everyone.say("admin", "/boeken 2 3 5 x")
    before = everyone.snapshot()
    for who in ("an", "lea", "cand", "zoe"):
        everyone.say(who, "ja")
        everyone.say(who, "ja", group=True)
    assert everyone.snapshot() == before
