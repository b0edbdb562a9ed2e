"""Events, RSVPs and reminders, driven by a virtual clock (no test waits for real time)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, text

from adapters.console import render
from letsbot.clock import VirtualClock
from storage.database import make_engine
from tests.support import Driver, make_settings

BRUSSELS = ZoneInfo("Europe/Brussels")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=BRUSSELS)  # type: ignore[misc]


@pytest.fixture
def group(driver: Driver) -> Driver:
    """admin (coordinator), an and bo; the clock at Tue 1 Dec 2026 09:00 in Brussels."""
    driver.member("an")
    driver.member("bo", language="en")
    return driver


def market(driver: Driver, when: str = "12/12 10:00-16:00") -> str:
    driver.say("admin", f"/activiteit nieuw markt {when} Ruilmarkt @ Parochiezaal")
    return driver.say("admin", "ja")


def test_a_coordinator_schedules_and_the_group_is_told(group: Driver) -> None:
    out = group.say("admin", "/activiteit nieuw markt 12/12 10:00-16:00 Ruilmarkt @ Parochiezaal")
    assert out == (
        "[dm admin] Deze activiteit opslaan?\n"
        "  Markt #0: Ruilmarkt, za 12 dec 2026 10:00-16:00 @ Parochiezaal\n"
        "  (1) Ja  (2) Nee"
    )
    assert group.count("events") == 0
    out = group.say("admin", "ja")
    assert (
        "[dm admin] Opgeslagen (1x): Markt #1: Ruilmarkt, za 12 dec 2026 10:00-16:00 @ Parochiezaal"
        in out
    )
    assert (
        "[group] Nieuwe activiteit: Markt #1: Ruilmarkt, za 12 dec 2026 10:00-16:00 @ Parochiezaal\n  Kom je? Stuur /ikkom 1"
        in out
    )


def test_declining_saves_nothing(group: Driver) -> None:
    group.say("admin", "/activiteit nieuw markt 12/12 10:00 Ruilmarkt")
    assert "Niet opgeslagen." in group.say("admin", "nee")
    assert group.count("events") == 0


def test_only_coordinators_schedule(group: Driver) -> None:
    before = group.snapshot()
    assert "Dat kan alleen een coördinator." in group.say(
        "an", "/activiteit nieuw markt 12/12 10:00 x"
    )
    assert "Only a coordinator can do that." in group.say("bo", "/event cancel 1")
    assert group.snapshot() == before


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/activiteit nieuw feest 12/12 10:00 x", "Zeg eerst wat voor activiteit"),
        ("/activiteit nieuw markt 12/12 Ruilmarkt", "when."),
        ("/activiteit nieuw markt 12/12 10:00", "Zet er een omschrijving bij"),
        ("/activiteit 99", "Activiteit #99 bestaat niet."),
        ("/activiteit", "Zeg welke activiteit je bedoelt"),
    ],
)
def test_bad_event_commands_are_explained(group: Driver, command: str, expected: str) -> None:
    out = group.say("admin", command)
    if expected == "when.":
        assert group.last is not None and group.last.outcome == "refused"
        assert "Bijvoorbeeld" in out or "For example" in out
    else:
        assert expected in out
    assert group.count("events") == 0


@pytest.mark.parametrize(
    ("command", "example"),
    [
        ("/activiteit verplaats", "/activiteit verplaats 12 19/12 10:00"),
        ("/activiteit verplaats 1", "/activiteit verplaats 1 19/12 10:00"),
        ("/activiteit verplaats 1 19/12", "/activiteit verplaats 1 19/12 10:00"),
        ("/activiteit verplaats 1 31/13 10:00", "/activiteit verplaats 1 19/12 10:00"),
        ("/activiteit verplaats 1 19/12 10:00 Ruilmarkt", "/activiteit verplaats 1 19/12 10:00"),
        ("/event move 1 1/12/2026 07:00", "/event move 1 19/12 10:00"),
        ("/activiteit annuleer", "/activiteit annuleer 12 te weinig vrijwilligers"),
        ("/event cancel soon", "/event cancel 12 too few volunteers"),
        ("/activiteit", "/activiteit 12"),
        ("/activiteit morgen", "/activiteit 12"),
        ("/ikkom", "/ikkom 12"),
        ("/notgoing", "/notgoing 12"),
    ],
)
def test_a_refusal_shows_the_subcommand_that_was_typed(
    group: Driver, command: str, example: str
) -> None:
    market(group)
    before = group.snapshot(), group.count("events")
    who = "bo" if command == "/notgoing" else "admin"  # bo speaks English
    out = group.say(who, command)
    assert group.last is not None and group.last.outcome == "refused"
    assert out.endswith(f"\n  {example}"), out
    assert "/activiteit nieuw" not in out and "/event add" not in out
    assert (group.snapshot(), group.count("events")) == before


def test_an_event_that_took_place_cant_be_moved(group: Driver) -> None:
    market(group, "12/12 10:00-16:00")
    group.advance(local(2026, 12, 12, 11, 0))  # the market has begun
    before = dump_events(group)
    out = group.say("admin", "/activiteit verplaats 1 19/12 10:00")
    assert out == (
        "[dm admin] Activiteit #1 is al begonnen of voorbij; die kan niet meer verplaatst worden."
        " Plan een nieuwe, bijvoorbeeld:\n"
        "  /activiteit nieuw markt 12/12 10:00-16:00 Ruilmarkt @ Parochiezaal"
    )
    group.advance(local(2026, 12, 13, 9, 0))
    assert "Event #1 has already started or is over" in group.say(
        "admin", "/event move 1 19/12 10:00"
    )
    assert dump_events(group) == before
    assert group.advance(local(2026, 12, 20, 9, 0)) == ""  # no reminders of a moved market


def dump_events(driver: Driver) -> list[tuple[object, ...]]:
    with driver.engine.connect() as connection:
        found = [tuple(row) for row in connection.execute(text("SELECT * FROM events"))]
        connection.rollback()
    return found


def test_list_rsvp_and_details(group: Driver) -> None:
    market(group)
    out = group.say("an", "/activiteiten")
    assert "Markt #1: Ruilmarkt, za 12 dec 2026 10:00-16:00 @ Parochiezaal (0 komen)" in out
    assert "Genoteerd: je komt naar Markt #1" in group.say("an", "/ikkom 1")
    assert "Noted: you are coming to Market #1: Ruilmarkt, Sat 12 Dec 2026" in group.say(
        "bo", "/going 1"
    )
    group.say("bo", "/notgoing 1")
    out = group.say("an", "/activiteit 1")
    assert "Aantal leden dat komt: 1." in out and "Jij komt." in out and "Wie komt" not in out
    assert "Wie komt: An (DU-002)" in group.say("admin", "/activiteit 1")
    assert "(1 coming)" in group.say("bo", "/events")


def test_reminders_at_each_offset_then_cancel(group: Driver) -> None:
    market(group, "12/12 10:00-16:00")
    market(group, "19/12 10:00-16:00")
    posted = group.advance(local(2026, 12, 12, 12, 0))
    assert posted.splitlines() == [
        "[group] Herinnering: Markt #1: Ruilmarkt, za 12 dec 2026 10:00-16:00 @ Parochiezaal begint over 1 week.",
        "[group] Herinnering: Markt #1: Ruilmarkt, za 12 dec 2026 10:00-16:00 @ Parochiezaal begint over 1 dag.",
        "[group] Herinnering: Markt #1: Ruilmarkt, za 12 dec 2026 10:00-16:00 @ Parochiezaal begint over 2 uur.",
        "[group] Herinnering: Markt #2: Ruilmarkt, za 19 dec 2026 10:00-16:00 @ Parochiezaal begint over 1 week.",
    ]
    with group.engine.connect() as connection:
        dues = (
            connection.execute(
                text("SELECT due_at FROM reminders WHERE event_id = 1 ORDER BY due_at")
            )
            .scalars()
            .all()
        )
    assert [str(d)[:16] for d in dues] == [
        "2026-12-05 09:00",
        "2026-12-11 09:00",
        "2026-12-12 07:00",
    ]
    out = group.say("admin", "/activiteit annuleer 2 te weinig kramen")
    assert (
        "[group] Afgelast: Markt #2: Ruilmarkt, za 19 dec 2026 10:00-16:00 @ Parochiezaal\n  Reden: te weinig kramen"
        in out
    )
    assert group.advance(local(2026, 12, 20, 0, 0)) == ""


def test_a_moved_event_is_reminded_at_its_new_time_only(group: Driver) -> None:
    market(group, "12/12 10:00-16:00")
    out = group.say("admin", "/activiteit verplaats 1 19/12 14:00")
    assert (
        "[group] Verplaatst: Markt #1: Ruilmarkt, za 19 dec 2026 14:00-20:00 @ Parochiezaal (was za 12 dec 2026 10:00-16:00)"
        in out
    )
    posted = group.advance(local(2026, 12, 19, 13, 0))
    assert [line.split(" begint ")[1] for line in posted.splitlines()] == [
        "over 1 week.",
        "over 1 dag.",
        "over 2 uur.",
    ]
    assert all("19 dec 2026 14:00" in line for line in posted.splitlines())


def test_restart_inside_grace_posts_the_missed_reminder_once(group: Driver) -> None:
    market(group, "12/12 10:00-16:00")  # the 2h reminder is due at 08:00
    group.advance(local(2026, 12, 12, 7, 0))
    group.clock.set(local(2026, 12, 12, 9, 0))  # the bot was down from 07:00 to 09:00
    restarted = Driver(group.engine, group.settings, clock=group.clock)
    posted = [render(o) for o in restarted.bot.scheduled_work()]
    assert posted == [
        "[group] Herinnering (wat laat verstuurd): Markt #1: Ruilmarkt, za 12 dec 2026 10:00-16:00 @ Parochiezaal begint over 1 uur."
    ]
    assert restarted.bot.scheduled_work() == []
    assert group.bot.scheduled_work() == []


def test_restart_outside_grace_posts_nothing(engine: Engine) -> None:
    driver = Driver(engine, make_settings(reminders={"offsets": ["1d"], "grace": "6h"}))
    market(driver, "12/12 10:00-16:00")  # due 11 Dec 10:00
    driver.clock.set(local(2026, 12, 11, 16, 30))  # down until 6.5 hours after
    assert driver.bot.scheduled_work() == []
    with engine.connect() as connection:
        outcome = connection.execute(text("SELECT outcome FROM reminders")).scalar_one()
    assert outcome == "skipped"


def test_weekly_series_across_dst_keeps_local_time(engine: Engine) -> None:
    settings = make_settings(reminders={"offsets": ["1d", "2h"]})
    driver = Driver(engine, settings, clock=VirtualClock(local(2026, 10, 14, 12, 0)))
    driver.say("admin", "/activiteit nieuw repaircafe 17/10 10:00 Repaircafé elke week tot 7/11")
    assert "4 keer" in driver.say("admin", "ja") or driver.count("events") == 4
    with engine.connect() as connection:
        starts = (
            connection.execute(text("SELECT starts_at FROM events ORDER BY id")).scalars().all()
        )
    local_starts = [
        (s if isinstance(s, datetime) else datetime.fromisoformat(str(s)))
        .replace(tzinfo=UTC)
        .astimezone(BRUSSELS)
        .strftime("%d/%m %H:%M")
        for s in starts
    ]
    assert local_starts == ["17/10 10:00", "24/10 10:00", "31/10 10:00", "07/11 10:00"]
    posted = driver.advance(local(2026, 11, 8, 0, 0))
    lines = posted.splitlines()
    assert len(lines) == 8  # two reminders for each of four, none skipped or doubled
    # The 1-day reminder of 31/10 falls on 30/10 at 10:00 local, after the change.
    with engine.connect() as connection:
        dues = (
            connection.execute(
                text("SELECT due_at FROM reminders WHERE offset_seconds = 86400 ORDER BY due_at")
            )
            .scalars()
            .all()
        )
    hours = [
        (d if isinstance(d, datetime) else datetime.fromisoformat(str(d)))
        .replace(tzinfo=UTC)
        .astimezone(BRUSSELS)
        .hour
        for d in dues
    ]
    assert hours == [10, 10, 10, 10]


def test_two_processes_post_each_reminder_once(pg_url: str) -> None:
    settings = make_settings()
    first = Driver(make_engine(pg_url), settings)
    market(first, "12/12 10:00-16:00")
    clock = VirtualClock(local(2026, 12, 12, 8, 30))  # all three reminders due, 2h one on time
    bots = [Driver(make_engine(pg_url), settings, clock=clock) for _ in range(2)]
    barrier = threading.Barrier(2)
    posted: list[list[str]] = [[], []]

    def run(index: int) -> None:
        barrier.wait(timeout=30)
        posted[index] = [render(o) for o in bots[index].bot.scheduled_work()]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    everything = posted[0] + posted[1]
    assert len(everything) == 1  # the 2h reminder; 7d and 1d are past their grace
    assert "begint over 2 uur" in everything[0] or "begint over 1 uur" in everything[0]
    with first.engine.connect() as connection:
        rows = connection.execute(text("SELECT count(*) FROM reminders")).scalar_one()
    assert rows == 3  # one posted, two skipped, each claimed once


SCRIPT = """\
@2026-12-01 09:00
admin: /start
admin: /activiteit nieuw repaircafé za 12 dec 13u-17u Repaircafé @ Buurthuis
admin: ja
an: /aanmelden An
admin: /goedkeuren 2
an@group: /ikkom 1
@2026-12-12 18:00
admin: /activiteit annuleer 1
"""


def test_console_script_reminds_in_order(engine: Engine) -> None:
    from io import StringIO

    from adapters.console import Console, parse_script

    settings = make_settings()
    clock = VirtualClock(local(2026, 12, 1, 9, 0))
    out = StringIO()
    driver = Driver(engine, settings, clock=clock)
    Console(driver.bot, out, clock).run_script(parse_script(SCRIPT.splitlines(), settings.tz))
    group_lines = [line for line in out.getvalue().splitlines() if line.startswith("[group]")]
    assert group_lines == [
        "[group] Nieuwe activiteit: Repaircafé #1: Repaircafé, za 12 dec 2026 13:00-17:00 @ Buurthuis",
        "[group] Genoteerd: je komt naar Repaircafé #1: Repaircafé, za 12 dec 2026 13:00-17:00 @ Buurthuis",
        "[group] Herinnering: Repaircafé #1: Repaircafé, za 12 dec 2026 13:00-17:00 @ Buurthuis begint over 1 week.",
        "[group] Herinnering: Repaircafé #1: Repaircafé, za 12 dec 2026 13:00-17:00 @ Buurthuis begint over 1 dag.",
        "[group] Herinnering: Repaircafé #1: Repaircafé, za 12 dec 2026 13:00-17:00 @ Buurthuis begint over 2 uur.",
    ]
    assert "[dm admin] Activiteit #1 is al voorbij." in out.getvalue()  # nothing to cancel
