"""Contributions (/bijdrage, /bijdragen): rules typed in both languages, the announcement
before each run, each period booked once (restart, clock jump, two processes), the
members skipped, a proposal that carries a rule, and market days (/markt)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, text

from adapters.console import render
from letsbot.clock import VirtualClock
from storage.check import ledger_problems
from storage.database import make_engine
from tests.support import Driver, make_settings
from tests.telegram_api import FakeTelegram
from tests.test_cli import letsbot
from tests.test_clock import add_market, libfaketime, posted
from tests.test_outage import GROUP, LetsbotRun, server

__all__ = ["server"]  # the fixture

BRUSSELS = ZoneInfo("Europe/Brussels")
YEARLY = "/bijdrage 12 per jaar op 15/12 jaarbijdrage"


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=BRUSSELS)  # type: ignore[misc]


def sound(driver: Driver) -> None:
    assert ledger_problems(driver.engine, driver.settings.group_limits) == []


@pytest.fixture
def group(engine: Engine) -> Driver:
    """admin DU-001, an DU-002, bo DU-003 (English), lies DU-004; no one too new to pay."""
    driver = Driver(engine, make_settings(contributions={"new_member_days": 0}))
    driver.member("an")
    driver.member("bo", language="en")
    driver.member("lies", "Lies Peeters")
    return driver


def contribution_rows(driver: Driver) -> list[tuple[int, int, int, str]]:
    """(payer number, receiver number, amount, description) of each group booking."""
    with driver.engine.connect() as connection:
        found = connection.execute(
            text(
                "SELECT p.number, r.number, t.amount, t.description FROM transfers t"
                " JOIN members p ON p.id = t.payer_id JOIN members r ON r.id = t.receiver_id"
                " WHERE t.kind = 'group' ORDER BY t.id"
            )
        ).all()
        connection.rollback()
    return [tuple(row) for row in found]  # type: ignore[misc]


def runs(driver: Driver) -> list[tuple[int, str, str, int, int]]:
    with driver.engine.connect() as connection:
        found = connection.execute(
            text(
                "SELECT contribution_id, step, outcome, count, total FROM contribution_runs"
                " ORDER BY id"
            )
        ).all()
        connection.rollback()
    return [tuple(row) for row in found]  # type: ignore[misc]


# typing a rule ---------------------------------------------------------------------


def test_a_yearly_contribution_is_announced_booked_and_reported(group: Driver) -> None:
    out = group.say("admin", YEARLY)
    assert out == (
        "[dm admin] Bewaard. Bijdrage #1 (jaarbijdrage): 12 pluimen per lid, per jaar,"
        " op 15 december\n"
        "  De eerste keer: 15 dec 2026 09:00. De groep hoort het nu, en telkens 7 dagen voor ze geboekt"
        " wordt. Alle bijdragen:"
        " /bijdragen\n"
        "[group] Nieuw: Bijdrage #1 (jaarbijdrage): 12 pluimen per lid, per jaar, op 15 december.\n"
        "  De eerste keer: 15 dec 2026 09:00."
    )
    # Announced 7 days before (announce_days), at the run's time of day; not a minute early.
    assert group.advance(local(2026, 12, 8, 8, 59)) == ""
    announced = group.advance(local(2026, 12, 8, 9, 0))
    assert announced == (
        "[group] Bijdrage #1 (jaarbijdrage): op 15 dec 2026 09:00 betaalt elk actief lid"
        " 12 pluimen aan de kas. Wie vertrekt, betaalt niet."
    )
    assert group.count("transfers") == 0
    assert group.advance(local(2026, 12, 15, 8, 59)) == ""
    booked = group.advance(local(2026, 12, 15, 9, 0))
    assert booked.count("[group]") == 1
    assert (
        "[group] Bijdrage #1 (jaarbijdrage) is geboekt: 4 leden betaalden samen 48 pluimen"
        " aan de kas. Overgeslagen: 0." in booked
    )
    assert (
        "[dm an] Bijdrage #1: je betaalde 12 pluimen aan de kas voor: jaarbijdrage."
        " Je saldo is nu -12 pluimen." in booked
    )
    assert (
        "[dm bo] Contribution #1: you paid 12 pluimen to the group account for: jaarbijdrage."
        " Your balance is now -12 pluimen." in booked
    )
    assert contribution_rows(group) == [
        (n, 0, 12, "jaarbijdrage (bijdrage #1, 2026)") for n in (1, 2, 3, 4)
    ]
    assert runs(group) == [(1, "announce", "posted", 0, 0), (1, "run", "booked", 4, 48)]
    sound(group)
    # Next year's is announced and booked in turn, once each.
    later = group.advance(local(2027, 12, 16, 0, 0))
    assert later.count("op 15 dec 2027 09:00 betaalt elk actief lid") == 1
    assert later.count("is geboekt: 4 leden") == 1
    assert group.balance("an") == -24
    assert "jaarbijdrage (bijdrage #1, 2027)" in group.say("an", "/overzicht")
    sound(group)


def test_days_as_people_type_them(group: Driver) -> None:
    out = group.say("admin", "/bijdrage 10 per jaar vanaf 1/3 werking")
    assert "Bijdrage #1 (werking): 10 pluimen per lid, per jaar, op 1 maart" in out
    # The same name again, corrected: both would be booked, so the first must go first.
    out = group.say("admin", "/bijdrage 14 per jaar op 15/01 Werking")
    assert "Er loopt al een bijdrage met die omschrijving: Bijdrage #1 (werking)" in out
    assert "/bijdrage 1 stop" in out and group.count("contributions") == 1
    out = group.say("admin", "/bijdrage 11 per jaar op de 15de januari kas")
    assert "Bijdrage #2 (kas): 11 pluimen per lid, per jaar, op 15 januari" in out
    out = group.say("admin", "/bijdrage 12 per jaar op 15.01 zaal")
    assert "Bijdrage #3 (zaal): 12 pluimen per lid, per jaar, op 15 januari" in out
    asked = group.say("admin", "/bijdrage stop 3")  # the other order
    assert "Wil je deze bijdrage stoppen? Bijdrage #3" in asked
    group.say("admin", "nee")
    assert "Wil je deze bijdrage stoppen? Bijdrage #2" in group.say(
        "admin", "/bijdrage 2 verwijder"
    )
    group.say("admin", "nee")
    out = group.say("admin", "/bijdrage 2 per maand, op de eerste, werking maand")
    assert "Bijdrage #4 (werking maand): 2 pluimen per lid, per maand, op de 1e" in out
    assert "Zeg welke bijdrage, met haar nummer" in group.say("admin", "/bijdrage stop")
    assert "Wat wil je met bijdrage 2?" in group.say("admin", "/bijdrage #2")


def test_the_list_shows_the_next_run(group: Driver) -> None:
    assert "Er zijn geen bijdragen aan de kas." in group.say("an", "/bijdragen")
    assert "/bijdrage 12 per jaar op 15/01 jaarbijdrage" in group.say("admin", "/bijdragen")
    group.say("admin", YEARLY)
    group.say("admin", "/bijdrage 2 per maand op 1 werking")
    out = group.say("an", "/bijdragen")
    assert out == (
        "[dm an] Bijdragen aan de kas:\n"
        "  Bijdrage #1 (jaarbijdrage): 12 pluimen per lid, per jaar, op 15 december\n"
        "    volgende keer: 15 dec 2026 09:00\n"
        "  Bijdrage #2 (werking): 2 pluimen per lid, per maand, op de 1e\n"
        "    volgende keer: 1 jan 2027 09:00\n"
        "  Wie vertrekt, betaalt niet."
    )
    out = group.say("bo", "/contributions")
    assert "Contribution #2 (werking): 2 pluimen per member, per month, on day 1" in out
    assert "next time: 1 Jan 2027 09:00" in out


def test_in_english_with_per_mille(group: Driver) -> None:
    group.say("admin", "/lang en")
    out = group.say("admin", "/contribution 2 + 10 permille balance per year on 1/1 yearly fee")
    assert "Saved. Contribution #1 (yearly fee): 2 pluimen plus 10 permille of the balance" in out
    assert "per year, on 1 January" in out
    out = group.say("admin", "/contribution 1 monthly on 28 running costs")
    assert "Contribution #2 (running costs): 1 pluim per member, per month, on day 28" in out
    out = group.say("admin", "/contribution 1 per month on the 2nd hall rent")
    assert "Contribution #3 (hall rent): 1 pluim per member, per month, on day 2" in out
    before = group.snapshot()
    out = group.say("admin", "/contribution 1 per month on the 31st x")
    assert out == (
        "[dm admin] This is not a day of the month: 31st. Choose a day from 1 to 28"
        " (every month has it), for example: on 1."
    )
    out = group.say("admin", "/contribution 1 per week x")
    assert out.startswith("[dm admin] Say how often: per year or per month")
    assert group.snapshot() == before
    assert group.count("contributions") == 3


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("/bijdrage", "Zet er een bedrag bij, bijvoorbeeld:\n  /bijdrage 12 per jaar op 15/01"),
        ("/bijdrage 12 jaarbijdrage", "Zeg hoe vaak: per jaar of per maand"),
        ("/bijdrage 12 per week x", "Zeg hoe vaak: per jaar of per maand"),
        ("/bijdrage twaalf per jaar x", "/bijdrage 12 per jaar op 15/01 jaarbijdrage"),
        ("/bijdrage 12 per jaar op 31/02 x", "Dit is geen dag van het jaar: 31/02."),
        ("/bijdrage 12 per jaar op morgen x", "Dit is geen dag van het jaar: morgen."),
        ("/bijdrage 12 per maand op 30 x", "Dit is geen dag van de maand: 30."),
        ("/bijdrage 12 per maand op de 29ste x", "Dit is geen dag van de maand: 29ste."),
        ("/bijdrage 12 per jaar op 15/01", "/bijdrage 12 per jaar op 15/01 jaarbijdrage"),
        ("/bijdrage 5 promille x per jaar a", "Na promille komt saldo of omzet"),
        ("/bijdrage 9 pauze", "Bijdrage 9 bestaat niet. De nummers staan in /bijdragen."),
        ("/contribution 12 per year on 15-13 fee", "Dit is geen dag van het jaar: 15-13."),
        ("/bijdrage 12 per jaar op 1 februari 2027 x", "Zonder jaartal, alsjeblieft: 2027."),
        ("/bijdrage 12 per jaar op 1/2/2027 x", "Zonder jaartal, alsjeblieft: 1/2/2027."),
        ("/bijdrage 3 per maand op 1 dec werking", "zeg alleen de dag (1 tot 28), zonder maand"),
        ("/bijdrage 5 per maand op 1 per jaar dubbel", "Zeg één keer hoe vaak"),
        ("/bijdrage 10 + 2 promille saldo + 3 promille omzet 30 dagen x", "één promille-deel"),
        (
            "/bijdrage 12 per jaar op de 32ste januari x",
            "Dit is geen dag van het jaar: 32ste januari.",
        ),
    ],
)
def test_bad_input_is_explained_and_changes_nothing(group: Driver, typed: str, said: str) -> None:
    before = group.snapshot()
    out = group.say("admin", typed)
    assert said in out
    assert "[group]" not in out
    assert group.snapshot() == before
    assert group.count("contributions") == 0


def test_only_coordinators_make_or_change_one(group: Driver) -> None:
    assert group.say("an", YEARLY) == "[dm an] Dat kan alleen een coördinator."
    group.say("admin", YEARLY)
    assert group.say("an", "/bijdrage 1 stop") == "[dm an] Dat kan alleen een coördinator."
    assert group.say("an", "/bijdragen").count("Bijdrage #1") == 1


# pausing, resuming, ending -----------------------------------------------------------


def test_paused_books_nothing_and_resumed_skips_the_periods_it_missed(group: Driver) -> None:
    group.say("admin", "/bijdrage 2 per maand op 10 werking")
    out = group.say("admin", "/bijdrage 1 pauze")
    assert "[group] Stilgelegd: Bijdrage #1 (werking)" in out
    assert "Dat kan niet: bijdrage #1 ligt stil." in group.say("admin", "/bijdrage 1 pauze")
    assert "ligt stil" in group.say("an", "/bijdragen")
    assert "bijdrage" not in group.advance(local(2027, 1, 20, 12, 0)).lower()
    assert contribution_rows(group) == []
    assert "[group] Hervat: Bijdrage #1" in group.say("admin", "/bijdrage #1 hervat")
    # Resumed on 20 January: 10 December and 10 January are not booked now.
    assert group.bot.scheduled_work() == []
    group.advance(local(2027, 2, 10, 9, 0))
    assert contribution_rows(group) == [
        (n, 0, 2, "werking (bijdrage #1, februari 2027)") for n in (1, 2, 3, 4)
    ]
    asked = group.say("admin", "/bijdrage 1 stop")
    assert "Wil je deze bijdrage stoppen? Bijdrage #1 (werking)" in asked
    assert "[group]" not in asked  # nothing yet: a stop is for good, so it is asked first
    assert "loopt verder" in group.say("admin", "nee")
    assert "volgende keer" in group.say("an", "/bijdragen")
    group.say("admin", "/bijdrage 1 stop")
    ended = group.say("admin", "ja")
    assert "[group] Gestopt: Bijdrage #1 (werking)" in ended
    assert "Gedaan door admin (DU-001)." in ended
    assert "Dat kan niet: bijdrage #1 is gestopt." in group.say("admin", "/bijdrage 1 hervat")
    assert "Dat kan niet: bijdrage #1 is gestopt." in group.say("admin", "/bijdrage 1 stop")
    group.advance(local(2027, 6, 1, 0, 0))
    assert len(contribution_rows(group)) == 4
    assert "Er zijn geen bijdragen" in group.say("an", "/bijdragen")
    sound(group)


# who pays ------------------------------------------------------------------------------


def test_new_leaving_and_limited_members_are_skipped(engine: Engine) -> None:
    driver = Driver(
        engine,
        make_settings(contributions={"new_member_days": 30}, limits={"min_balance": -20}),
    )
    driver.member("an")
    driver.member("bo")
    driver.member("cas")
    driver.say("an", "/betaal DU-003 15 fiets")
    driver.say("an", "ja")  # an at -15: 12 more would break the hard limit of -20
    driver.say("admin", "/bijdrage 12 per jaar op 15/01 jaarbijdrage")
    driver.clock.set(local(2027, 1, 10, 12, 0))
    driver.member("dirk")  # joined five days before the run: too new
    driver.say("cas", "/uitstappen")
    driver.say("cas", "ja")  # leaving
    booked = driver.advance(local(2027, 1, 15, 9, 0))
    # admin and bo pay; an is refused by the limit; cas leaves; dirk is too new.
    assert [(p, a) for p, _, a, _ in contribution_rows(driver)] == [(1, 12), (3, 12)]
    assert "2 leden betaalden samen 24 pluimen aan de kas. Overgeslagen: 1." in booked
    assert (
        "[dm admin] Bijdrage #1: 1 lid overgeslagen door een harde grens:\n"
        "    - An (DU-002): 12 pluimen zou het saldo van -15 pluimen op -27 pluimen brengen,"
        " en het mag niet lager dan -20 pluimen" in booked
    )
    assert (
        "[dm an] Bijdrage #1 (jaarbijdrage): deze keer betaalde je niet. 12 pluimen zou je"
        " saldo van -15 pluimen op -27 pluimen brengen, en het mag niet lager dan -20 pluimen."
        in booked
    )
    assert "[dm dirk]" not in booked
    sound(driver)


def test_a_run_no_one_can_pay_says_why(group: Driver) -> None:
    group.say("admin", "/bijdrage 5000 per maand op 2 te veel")
    out = group.advance(local(2026, 12, 2, 9, 0))
    assert (
        "Bijdrage #1 (te veel): deze keer betaalde niemand. Iedereen (4) werd overgeslagen" in out
    )
    assert "0 leden" not in out and "is geboekt" not in out
    assert "[dm an] Bijdrage #1 (te veel): deze keer betaalde je niet." in out
    group.say("admin", "/bijdrage 1 promille saldo per maand op 3 promille")
    out = group.advance(local(2026, 12, 3, 9, 0))
    assert "Elk bedrag kwam, afgerond op hele eenheden, op 0." in out
    assert contribution_rows(group) == []


def test_soft_limits_book_and_warn_the_member_and_the_coordinators(engine: Engine) -> None:
    settings = make_settings(
        contributions={"new_member_days": 0}, limits={"soft": True, "min_balance": -20}
    )
    driver = Driver(engine, settings)
    driver.member("an")
    driver.say("admin", "/bijdrage 30 per maand op 2 werking")
    out = driver.advance(local(2026, 12, 2, 9, 0))
    assert driver.balance("an") == -30
    assert "[dm an] Let op: je saldo (-30 pluimen) staat nu onder de grens van -20 pluimen" in out
    assert "[dm admin] Bijdrage #1: 2 leden staan nu buiten een zachte grens:" in out
    assert "    - An (DU-002) staat op -30 pluimen (grens -20 pluimen)" in out
    sound(driver)


def test_a_run_where_no_one_pays_says_so(engine: Engine) -> None:
    driver = Driver(engine, make_settings(contributions={"new_member_days": 30}))
    driver.member("an")
    driver.say("admin", "/bijdrage 3 per maand op 2 werking")
    out = driver.advance(local(2026, 12, 2, 9, 0))
    assert "Bijdrage #1 (werking): deze keer betaalde niemand." in out
    assert "Wie korter dan 30 dagen lid is, en wie vertrekt, betaalt niet." in out
    assert "0 leden" not in out
    assert contribution_rows(driver) == []


# claimed once ----------------------------------------------------------------------------


def test_a_restart_never_books_a_period_twice(group: Driver) -> None:
    group.say("admin", YEARLY)
    group.clock.set(local(2026, 12, 15, 9, 30))  # the bot was down at 09:00
    restarted = Driver(group.engine, group.settings, clock=group.clock)
    posted = "\n".join(render(o) for o in restarted.bot.scheduled_work())
    assert "is geboekt: 4 leden" in posted
    assert "op 15 dec 2026 09:00 betaalt" not in posted  # too late to announce: booked
    again = Driver(group.engine, group.settings, clock=group.clock)
    assert again.bot.scheduled_work() == []
    assert group.bot.scheduled_work() == []
    assert len(contribution_rows(group)) == 4
    sound(group)


def test_a_clock_jump_ahead_and_back_books_each_period_once(group: Driver) -> None:
    group.say("admin", "/bijdrage 3 per maand op 1 werking")
    posts = [group.advance(local(2026, 12, 20, 12, 0))]
    group.clock.set(local(2027, 1, 1, 10, 0))  # the clock jumps 12 days ahead
    posts.append("\n".join(render(o) for o in group.bot.scheduled_work()))
    assert "is geboekt: 4 leden" in posts[-1]
    group.clock.set(local(2026, 12, 20, 12, 5))  # and is put right
    for hours in range(0, 24 * 16, 5):  # the real days up to and past 1 January
        group.clock.set(local(2026, 12, 20, 12, 5) + timedelta(hours=hours))
        posts.append("\n".join(render(o) for o in group.bot.scheduled_work()))
    everything = "\n".join(posts)
    assert everything.count("is geboekt") == 1
    # The jump booked 1 January before its announcement was due; booked, it is not
    # announced afterwards.
    assert "op 1 jan 2027 09:00 betaalt" not in everything
    assert len(contribution_rows(group)) == 4
    later = group.advance(local(2027, 2, 1, 9, 0))
    assert later.count("op 1 feb 2027 09:00 betaalt") == 1
    assert later.count("is geboekt") == 1
    assert len(contribution_rows(group)) == 8
    sound(group)


def test_two_bots_on_one_postgresql_book_each_member_once(pg_url: str) -> None:
    first = Driver(make_engine(pg_url), make_settings(contributions={"new_member_days": 0}))
    for name in ("an", "bo", "cas", "dirk", "els"):
        first.member(name)
    first.say("admin", "/bijdrage 5 per maand op 1 werking")
    first.say("admin", "/bijdrage 1 per jaar op 1/1 jaarbijdrage")
    clock = VirtualClock(local(2027, 1, 1, 9, 0))
    bots = [Driver(make_engine(pg_url), first.settings, clock=clock) for _ in range(2)]
    barrier = threading.Barrier(2)
    posted: list[list[str]] = [[], []]
    failed: list[BaseException] = []

    def run(index: int) -> None:
        try:
            for _ in range(5):  # both tick again and again, as their timers would
                barrier.wait(timeout=30)
                posted[index] += [render(o) for o in bots[index].bot.scheduled_work()]
        except BaseException as error:  # reported below, not lost in the thread
            failed.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failed == []
    everything = "\n".join(posted[0] + posted[1])
    assert everything.count("[group] Bijdrage #1 (werking) is geboekt: 6 leden") == 1
    assert everything.count("[group] Bijdrage #2 (jaarbijdrage) is geboekt: 6 leden") == 1
    rows = contribution_rows(first)
    assert len(rows) == 12
    assert len({(payer, description) for payer, _, _, description in rows}) == 12
    assert ledger_problems(first.engine, first.settings.group_limits) == []
    with first.engine.connect() as connection:
        claims = connection.execute(
            text("SELECT count(*) FROM contribution_runs WHERE step = 'run'")
        ).scalar_one()
    assert claims == 2
    for driver in (first, *bots):
        driver.engine.dispose()


# carried by a proposal --------------------------------------------------------------------


def test_a_clock_put_back_before_the_rule_announces_nothing(group: Driver) -> None:
    group.say("admin", "/bijdrage 3 per maand op 10 werking")
    group.clock.set(local(2026, 11, 5, 12, 0))  # before the rule was made (1 December)
    assert "werking" not in "\n".join(render(o) for o in group.bot.scheduled_work())
    assert group.count("contribution_runs") == 0
    later = group.advance(local(2026, 12, 10, 9, 0))  # the clock back in step
    assert later.count("op 10 dec 2026 09:00 betaalt") == 1
    assert later.count("is geboekt") == 1
    sound(group)


def test_an_accepted_proposal_starts_its_rule(group: Driver) -> None:
    out = group.say(
        "an", "/voorstel Jaarbijdrage voor de kas bijdrage: 12 per jaar op 15/12 jaarbijdrage"
    )
    assert (
        "Met dit voorstel: Bijdrage #1 (jaarbijdrage): 12 pluimen per lid, per jaar, op 15 december."
        " Dat begint alleen als het voorstel aangenomen wordt." in out
    )
    assert "[group] Nieuw voorstel #1" in out
    assert "geldt alleen als voorstel #1 aangenomen wordt" in group.say("lies", "/bijdragen")
    assert "starts only if proposal #1 is accepted" in group.say("bo", "/bijdragen")
    assert "With this proposal: Contribution #1 (jaarbijdrage)" in group.say("bo", "/proposal 1")
    # Not active while the vote runs: its day passes without a booking.
    group.advance(local(2026, 12, 7, 12, 0))
    for name in ("an", "bo", "lies"):
        out = group.say(name, "/stem 1 voor")
    assert "Aangenomen, dus vanaf nu geldt: Bijdrage #1 (jaarbijdrage)" in out
    assert "De eerste keer: 15 dec 2026 09:00." in out
    group.advance(local(2026, 12, 15, 9, 0))
    assert len(contribution_rows(group)) == 4
    # A coordinator may end what the group decided, but asked first and never quietly.
    asked = group.say("admin", "/bijdrage 1 stop")
    assert "De groep besliste ze met voorstel #1." in asked
    ended = group.say("admin", "ja")
    assert "[group] Gestopt: Bijdrage #1 (jaarbijdrage)" in ended
    assert "Gedaan door admin (DU-001). De groep besliste ze met voorstel #1." in ended
    sound(group)


def test_a_rejected_or_undecided_proposal_starts_nothing(group: Driver) -> None:
    group.say("an", "/voorstel Maandbijdrage bijdrage: 2 per maand op 1 werking")
    out = group.say("bo", "/stem 1 tegen")
    out += group.say("lies", "/stem 1 tegen")  # the outcome is certain: closed early
    assert "Verworpen." in out
    assert "Niet aangenomen: bijdrage #1 begint niet." in out
    # No one votes on the second: not decided at its deadline.
    group.say("an", "/voorstel Jaarbijdrage bijdrage: 12 per jaar op 1/1 jaarbijdrage")
    closed = group.advance(local(2026, 12, 9, 12, 0))
    assert "Uitslag voorstel #2" in closed
    assert "Niet aangenomen: bijdrage #2 begint niet." in closed
    # A withdrawn one neither.
    group.say("an", "/voorstel Weekbijdrage bijdrage: 1 per maand op 5 x")
    group.say("an", "/voorstel_intrekken 3")
    group.advance(local(2027, 2, 1, 12, 0))
    assert contribution_rows(group) == []
    assert "Er zijn geen bijdragen" in group.say("an", "/bijdragen")
    with group.engine.connect() as connection:
        statuses = (
            connection.execute(text("SELECT status FROM contributions ORDER BY id")).scalars().all()
        )
    assert statuses == ["rejected", "rejected", "rejected"]


def test_a_deadline_before_the_rule_is_the_deadline_and_a_title_may_say_bijdrage(
    group: Driver,
) -> None:
    out = group.say("an", "/voorstel Jaarbijdrage tot 20/12 18:00 bijdrage: 12 per jaar kas")
    assert "Jaarbijdrage" in out and "tot 20/12" not in out
    assert "20 dec 2026 18:00" in out
    assert "Met dit voorstel: Bijdrage #1 (kas)" in out
    out = group.say("an", "/voorstel Over de bijdrage: moet die omhoog?")
    assert "Over de bijdrage: moet die omhoog?" in out
    out = group.say("bo", "/voorstel Kas2 bijdrage:12 per jaar op 1/2 x")
    assert "With this proposal: Contribution #2 (x)" in out
    out = group.say("lies", "/voorstel Kas3 BIJDRAGE : 12 per jaar op 1/4 x")
    assert "Met dit voorstel: Bijdrage #3 (x)" in out
    assert group.count("contributions") == 3


def test_a_proposal_blocks_nothing_and_never_starts_a_twin(group: Driver) -> None:
    group.say("lies", "/voorstel Blokkeer tot 1/12/2030 09:00 bijdrage: 12 per jaar op 1/1 kas")
    out = group.say("admin", "/bijdrage 12 per jaar op 1/1 jaarbijdrage")
    assert "Bewaard. Bijdrage #2 (jaarbijdrage)" in out
    for name in ("an", "bo", "lies"):
        out = group.say(name, "/stem 1 voor")
    assert "Aangenomen, maar bijdrage #2 vraagt al hetzelfde op dezelfde dag" in out
    group.advance(local(2027, 1, 2, 12, 0))
    assert len(contribution_rows(group)) == 4  # once, not twice
    sound(group)


def test_a_proposal_with_a_bad_rule_or_options_is_refused(group: Driver) -> None:
    before = group.snapshot()
    out = group.say("an", "/voorstel Maandbijdrage bijdrage: 2 per week x")
    assert "Zeg hoe vaak: per jaar of per maand" in out
    out = group.say("an", "/voorstel Bijdrage? | ja | nee bijdrage: 2 per maand x")
    assert "ja/nee-vraag" in out
    out = group.say("an", "/voorstel bijdrage: 2 per maand x")
    assert "Zet eerst wat je voorstelt" in out
    out = group.say("an", "/voorstel Kas bijdrage: 12 per jaar op 1/5")
    assert "/voorstel Jaarbijdrage voor de kas bijdrage: 12 per jaar op 15/01" in out
    assert "/bijdrage 12" not in out  # a member can't use /bijdrage: the proposal's example
    assert group.snapshot() == before
    assert group.count("proposals") == 0 and group.count("contributions") == 0


# market days ---------------------------------------------------------------------------------


def test_market_day_counts_who_came_and_the_payment_is_one_copy(group: Driver) -> None:
    group.say("admin", "/activiteit nieuw markt 12/12 10:00 Ruilmarkt")
    group.say("admin", "ja")
    group.say("an", "/ikkom 1")
    group.say("lies", "/ikkom 1")
    group.say("bo", "/notgoing 1")
    out = group.say("admin", "/markt 1")
    assert "Zeggen dat ze komen: 2. Zeggen dat ze niet komen: 1." in out
    early = group.say("admin", "/massa kas aan activiteit 1 5 helpers")
    assert "Let op: activiteit 1 is nog niet geweest (12 dec 2026 10:00)" in early
    group.say("admin", "nee")
    group.advance(local(2026, 12, 13, 12, 0))
    out = group.say("admin", "/markt 1")
    assert "Zeiden dat ze kwamen: 2. Zeiden dat ze niet kwamen: 1." in out
    assert "Wie kwam: An (DU-002), Lies Peeters (DU-004)" in out
    copy = out.splitlines()[-1].strip()
    assert copy == "/massa kas aan activiteit 1 5 helpers Ruilmarkt"
    out = group.say("admin", copy.replace(" 5 ", " 8 "))
    assert "2 boekingen, samen 16 pluimen" in out
    group.say("admin", "ja")
    assert [(p, r, a) for p, r, a, _ in contribution_rows(group)] == [(0, 2, 8), (0, 4, 8)]
    sound(group)
    # Paid: /markt says so, and the same run again is pointed out before its Ja.
    out = group.say("admin", "/markt 1")
    assert "Al geboekt voor wie kwam: massabetaling #" in out and "helpers Ruilmarkt" in out
    again = group.say("admin", copy.replace(" 5 ", " 8 "))
    assert "Let op: dezelfde massabetaling (#" in again and "is al geboekt" in again
    group.say("admin", "nee")
    group.say("admin", "/lang en")
    out = group.say("admin", "/market 1")
    assert "/bulk group to event 1 5 helpers Ruilmarkt" in out
    assert "Say which number" in group.say("admin", "/market")
    assert group.say("an", "/markt 7") == "[dm an] Dat kan alleen een coördinator."
    assert (
        group.say("admin", "/markt 7")
        == "[dm admin] There is no event 7. The numbers are in /events."
    )
    assert group.count("transfers") == 2


def test_a_cancelled_event_pays_no_one(group: Driver) -> None:
    group.say("admin", "/activiteit nieuw markt 12/12 10:00 Wintermarkt")
    group.say("admin", "ja")
    group.say("an", "/ikkom 1")
    group.say("admin", "/activiteit annuleer 1 sneeuw")
    group.say("admin", "ja")
    out = group.say("admin", "/markt 1")
    assert "Deze activiteit is afgelast: er is niemand om te betalen." in out
    assert "/massa" not in out
    out = group.say("admin", "/massa kas aan activiteit 1 5 helpers")
    assert "is afgelast: daar betaal ik niemand voor. Niets geboekt." in out
    group.say("admin", "/activiteit nieuw markt 19/12 10:00 Lentemarkt")
    group.say("admin", "ja")
    out = group.say("admin", "/massa kas aan activiteit 2 5 helpers")
    assert "Nog niemand zei dat hij of zij naar activiteit 2 komt: er is niets te boeken." in out
    assert group.count("transfers") == 0


# a console script, and letsbot check after it ------------------------------------------------

SCRIPT = """\
# members join in December; the yearly contribution is booked on 15 January
@2026-12-01 09:00
admin: /start
an: /aanmelden An Peeters
bo: /aanmelden Bo Janssens
admin: /goedkeuren DU-002
admin: /goedkeuren 3
admin: /bijdrage 12 per jaar op 15/01 jaarbijdrage
an: /bijdragen

@2027-01-16 12:00
an: /saldo
"""


def test_a_console_script_and_letsbot_check_after_the_run(ready: Path) -> None:
    (ready / "scenario.txt").write_text(SCRIPT, encoding="utf-8")
    result = letsbot("console", "--script", "scenario.txt", cwd=ready)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "volgende keer: 15 jan 2027 09:00" in out
    assert "Wie korter dan 30 dagen lid is, en wie vertrekt, betaalt niet." in out
    assert "[group] Bijdrage #1 (jaarbijdrage): op 15 jan 2027 09:00 betaalt elk actief lid" in out
    assert (
        "[group] Bijdrage #1 (jaarbijdrage) is geboekt: 3 leden betaalden samen 36 pluimen" in out
    )
    assert "[dm an] Bijdrage #1: je betaalde 12 pluimen aan de kas" in out
    check = letsbot("check", cwd=ready)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.startswith("OK: 3 members, 3 transfers"), check.stdout
    exported = letsbot("export", "transfers", cwd=ready)
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.count(",group,") == 3 or exported.stdout.count("group") >= 3
    assert "jaarbijdrage (bijdrage #1, 2027)" in exported.stdout


# the timer of a real process, its wall clock jumping under libfaketime --------------------


@pytest.mark.slow  # about 2 minutes: the run is due on a whole minute, the timer's period is 30 s
async def test_a_real_process_books_a_period_once_when_its_clock_is_put_back(
    server: FakeTelegram, sqlite_url: str, tmp_path: Path
) -> None:
    """``letsbot run`` starts with its wall clock 40 s past a run's due time: the run is
    booked at once. The clock is put right, so the due time comes again in real time;
    the rounds after it book nothing more."""
    library = libfaketime()
    now = datetime.now(UTC)
    due = (now + timedelta(seconds=65)).replace(second=0, microsecond=0)  # 5 to 65 s ahead
    local_due = due.astimezone(BRUSSELS)
    if (local_due.day, local_due.month) == (29, 2):
        pytest.skip("a yearly contribution can't fall on 29 February")
    offset = tmp_path / "faketime"
    ahead = round((due - now).total_seconds()) + 40
    offset.write_text(f"+{ahead}\n", encoding="utf-8")  # the clock starts past the due time
    engine = make_engine(sqlite_url)
    seeding = Driver(engine, make_settings(), clock=VirtualClock(now - timedelta(days=2)))
    seeding.member("an")
    seeding.member("bo")
    typed = f"/bijdrage 3 per jaar op {local_due:%d/%m} werking"
    assert "Bewaard" in seeding.say("admin", typed)
    # Its reminder falls due a minute after the run, in real time only: it shows that a
    # round ran after the clock, put right, passed the run's due time again.
    add_market(engine, "Daarna", due + timedelta(hours=2, seconds=60))
    run = await LetsbotRun.start(
        server,
        sqlite_url,
        tmp_path,
        env={
            "LD_PRELOAD": str(library),
            "FAKETIME_TIMESTAMP_FILE": str(offset),
            "FAKETIME_NO_CACHE": "1",  # read the file at every call: the clock can jump
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",  # the event loop's time runs on
            "LETSBOT_CONTRIBUTIONS__RUN_TIME": f"{local_due:%H:%M}",
            "LETSBOT_CONTRIBUTIONS__NEW_MEMBER_DAYS": "0",
        },
    )

    def booked() -> int:
        return len([s for s in server.sent_to(GROUP) if "is geboekt" in s.text])

    try:
        await server.wait_for(booked, timeout=20)  # the first round, at start
        assert posted(server, "Daarna") == 0
        offset.write_text("+0\n", encoding="utf-8")  # the clock is put right
        try:
            await server.wait_for(lambda: posted(server, "Daarna"), timeout=160)
        except TimeoutError:
            raise AssertionError("no round after the due time:\n" + run.output) from None
        assert run.process.returncode is None
    finally:
        status = await run.end()
    assert status == 0, run.output
    assert run.output.count("the wall clock went back") == 1
    assert booked() == 1
    assert "3 leden betaalden samen 9 pluimen" in next(
        s.text for s in server.sent_to(GROUP) if "is geboekt" in s.text
    )
    assert [(p, a) for p, _, a, _ in contribution_rows(seeding)] == [(1, 3), (2, 3), (3, 3)]
    assert ledger_problems(engine, seeding.settings.group_limits) == []
    engine.dispose()


def test_the_same_contribution_typed_twice_is_refused(group: Driver) -> None:
    group.say("admin", "/bijdrage 1 per maand op 1 werking")
    before = group.count("contributions")
    reply = group.say("admin", "/bijdrage 1 per maand op de 1e werking")
    assert "Bijdrage #1 vraagt al hetzelfde op dezelfde dag" in reply
    assert group.count("contributions") == before
    assert "Bewaard" in group.say("admin", "/bijdrage 1 per maand op 2 zaalhuur")


def test_new_counts_from_the_approval_not_the_application(engine: Engine) -> None:
    """A candidate who waited a month for the intake talk is new when approved."""
    driver = Driver(
        engine,
        make_settings(contributions={"new_member_days": 30, "announce_days": 0}),
        clock=VirtualClock(local(2026, 10, 1, 9, 0)),
    )
    driver.member("an")
    driver.say("fred", "/aanmelden Fred Claes")  # applies on 1 October
    driver.say("admin", "/bijdrage 1 per maand op 1 werking")
    driver.clock.set(local(2026, 10, 31, 20, 0))
    driver.say("admin", "/goedkeuren fred")  # approved the evening before the run
    driver.advance(local(2026, 11, 1, 9, 0))
    assert driver.balance("an") == -1
    assert driver.balance("fred") == 0  # a member for 13 hours: too new to pay
    driver.advance(local(2026, 12, 1, 9, 0))
    assert driver.balance("fred") == -1  # a month on, he pays


def test_a_day_as_the_bot_writes_it(group: Driver) -> None:
    assert "Bewaard" in group.say("admin", "/bijdrage 12 per jaar op 15 januari jaarbijdrage")
    assert "15 januari" in group.say("an", "/bijdragen")


def test_a_proposal_carrying_a_rule_that_runs_already_is_refused(group: Driver) -> None:
    group.say("admin", YEARLY)
    reply = group.say("an", "/voorstel Jaarbijdrage bijdrage: 12 per jaar op 15/12 jaarbijdrage")
    assert "Bijdrage #1 vraagt al hetzelfde op dezelfde dag" in reply
    assert group.count("proposals") == 0
