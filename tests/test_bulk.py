"""Mass payments (/massa, /bulk): the preview's figures for each amount rule, limits,
skipping, the group account's exemption, both languages, and what bad input gets."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from letsbot.markup import to_plain
from storage.check import ledger_problems
from tests.support import Driver, make_settings
from tests.test_cli import letsbot


@pytest.fixture
def four(driver: Driver) -> Driver:
    """admin DU-001, an DU-002, bo DU-003 (English), lies DU-004 (Lies Peeters)."""
    driver.member("an")
    driver.member("bo", language="en")
    driver.member("lies", "Lies Peeters")
    return driver


def sound(driver: Driver) -> None:
    assert ledger_problems(driver.engine, driver.settings.group_limits) == []


def pay(driver: Driver, name: str, to: str, amount: int) -> None:
    driver.say(name, f"/betaal {to} {amount} ruil")
    assert "Geboekt" in driver.say(name, "ja")


def rows(driver: Driver) -> list[tuple[int, int, int, str, str]]:
    """(payer number, receiver number, amount, kind, description) of each transfer."""
    with driver.engine.connect() as connection:
        found = connection.execute(
            text(
                "SELECT p.number, r.number, t.amount, t.kind, t.description FROM transfers t"
                " JOIN members p ON p.id = t.payer_id JOIN members r ON r.id = t.receiver_id"
                " ORDER BY t.id"
            )
        ).all()
        connection.rollback()
    return [tuple(row) for row in found]  # type: ignore[misc]


def group_rows(driver: Driver) -> list[tuple[int, int, int]]:
    return [(p, r, a) for p, r, a, kind, _ in rows(driver) if kind == "group"]


def plain(out: str) -> str:
    return to_plain(out)


def test_fixed_amount_from_the_group_account_to_everyone(four: Driver) -> None:
    out = four.say("admin", "/massa kas aan iedereen 10 nieuwjaarsgeschenk", group=True)
    assert out == (
        "[dm admin] Voorbeeld van de massabetaling: Groepsrekening (DU-000) aan iedereen"
        " (4 leden).\n"
        "  Bedrag per lid: 10 pluimen\n"
        "  Omschrijving: nieuwjaarsgeschenk\n"
        "  4 boekingen, samen 40 pluimen. Kleinste bedrag 10 pluimen, grootste 10 pluimen.\n"
        "  Wil je deze 4 boekingen doen?\n"
        "  (1) Ja  (2) Nee"
    )
    assert four.count("transfers") == 0
    out = four.say("admin", "ja")
    assert "[dm admin] Geboekt: massabetaling #1, 4 boekingen, samen 40 pluimen." in out
    assert (
        "[dm an] Massabetaling #1: je kreeg 10 pluimen van Groepsrekening (DU-000) voor:"
        " nieuwjaarsgeschenk. Je saldo is nu 10 pluimen." in out
    )
    assert (
        "[dm bo] Mass payment #1: you received 10 pluimen from Group account (DU-000) for:"
        " nieuwjaarsgeschenk. Your balance is now 10 pluimen." in out
    )
    assert out.count("[group]") == 1
    assert (
        "[group] Massabetaling #1: Groepsrekening (DU-000) aan iedereen (4 leden),"
        " 4 boekingen, samen 40 pluimen, voor: nieuwjaarsgeschenk" in out
    )
    assert out.count("[dm an]") == 1 and out.count("[dm lies]") == 1
    assert group_rows(four) == [(0, 1, 10), (0, 2, 10), (0, 3, 10), (0, 4, 10)]
    # The run is in every booking's description, in the group's language.
    assert {r[4] for r in rows(four)} == {"nieuwjaarsgeschenk (massabetaling #1)"}
    assert four.balance("an") == 10
    sound(four)
    # A second "ja" books nothing more.
    again = four.say("admin", "ja")
    assert "Er staat geen vraag voor je open" in again or "al beantwoord" in again
    assert four.count("transfers") == 4
    # In the member's history, with the run.
    assert "nieuwjaarsgeschenk (massabetaling #1)" in four.say("an", "/overzicht")


def test_many_to_one_and_nee_books_nothing(four: Driver) -> None:
    out = four.say("admin", "/massa iedereen aan kas 12 jaarbijdrage 2027")
    assert "Voorbeeld van de massabetaling: iedereen (4 leden) aan Groepsrekening (DU-000)" in out
    assert "4 boekingen, samen 48 pluimen" in out
    before = four.snapshot()
    out = four.say("admin", "nee")
    assert "niets" in out.lower() or "niet" in out.lower()
    after = four.snapshot()
    assert after["transfers"] == before["transfers"] == []
    assert after["members"] == before["members"]
    four.say("admin", "/massa iedereen aan kas 12 jaarbijdrage 2027")
    out = four.say("admin", "ja")
    assert "[dm an] Massabetaling #2: je betaalde 12 pluimen aan Groepsrekening (DU-000)" in out
    assert group_rows(four) == [(1, 0, 12), (2, 0, 12), (3, 0, 12), (4, 0, 12)]
    assert four.balance("an") == -12
    sound(four)


def test_a_list_of_codes_and_names(four: Driver) -> None:
    out = four.say("admin", "/massa kas aan DU-002, lies peeters en DU-003 30 helpers repaircafé")
    assert "An (DU-002), Lies Peeters (DU-004), Bo (DU-003) (3 leden)" in out
    assert "3 boekingen, samen 90 pluimen" in out
    four.say("admin", "ja")
    assert group_rows(four) == [(0, 2, 30), (0, 3, 30), (0, 4, 30)]
    # Also from many named members to one.
    four.say("admin", "/massa an en bo aan kas 5 terug")
    four.say("admin", "ja")
    assert group_rows(four)[3:] == [(2, 0, 5), (3, 0, 5)]
    # The one side named among the many too: left out, and not shown as one of them.
    out = four.say("admin", "/massa kas aan DU-000, an en bo 1 x")
    assert "aan An (DU-002), Bo (DU-003) (2 leden)" in out
    # A member whose account is the one side is told who booked it and their balance.
    four.say("admin", "/massa an aan bo en lies 2 bloemen")
    out = four.say("admin", "ja")
    assert (
        "[dm an] Massabetaling #" in out
        and "van jouw rekening is samen 4 pluimen betaald aan 2 leden, voor: bloemen\n"
        "  Geboekt door admin (DU-001). Je saldo is nu 21 pluimen."
        in out
    )
    sound(four)


def test_per_mille_of_balance_rounds_half_up_and_skips_negative_balances(four: Driver) -> None:
    pay(four, "an", "DU-003", 500)  # an -500, bo 500
    pay(four, "lies", "DU-001", 1250)  # lies -1250, admin 1250
    out = plain(four.say("admin", "/massa iedereen aan kas 3 promille saldo bijdrage"))
    # bo: 500 x 3/1000 = 1.5 -> 2; admin: 3.75 -> 4; an and lies are below zero: 0.
    assert (
        "Bedrag per lid: 3 promille van het saldo, afgerond (een negatief saldo telt als 0)" in out
    )
    assert "2 boekingen, samen 6 pluimen. Kleinste bedrag 2 pluimen, grootste 4 pluimen." in out
    assert "2 leden komen op 0 uit: voor hen wordt niets geboekt." in out
    four.say("admin", "ja")
    assert group_rows(four) == [(1, 0, 4), (3, 0, 2)]
    sound(four)


def test_fixed_plus_per_mille(four: Driver) -> None:
    pay(four, "an", "DU-003", 500)
    out = plain(four.say("admin", "/massa iedereen aan kas 10 + 3 promille saldo bijdrage"))
    assert "Bedrag per lid: 10 pluimen plus 3 promille van het saldo" in out
    assert "4 boekingen, samen 42 pluimen. Kleinste bedrag 10 pluimen, grootste 12 pluimen." in out


def test_per_mille_of_turnover_over_days(four: Driver) -> None:
    pay(four, "an", "DU-003", 700)  # long ago: outside the period
    four.clock.set(four.clock.now() + timedelta(days=40))
    pay(four, "an", "DU-003", 250)  # an and bo: 250 each
    pay(four, "lies", "DU-001", 1250)  # lies and admin: 1250 each
    four.say("admin", "/massa kas aan DU-002 DU-003 1 verschil")  # group bookings: no turnover
    four.say("admin", "ja")
    out = plain(four.say("admin", "/massa iedereen aan kas 10 promille omzet 30 dagen bijdrage"))
    assert "10 promille van de omzet (betaald en ontvangen) van de laatste 30 dagen" in out
    # an, bo: 2.5 -> 3; admin, lies: 12.5 -> 13.
    assert "4 boekingen, samen 32 pluimen. Kleinste bedrag 3 pluimen, grootste 13 pluimen." in out
    four.say("admin", "ja")
    assert group_rows(four)[2:] == [(1, 0, 13), (2, 0, 3), (3, 0, 3), (4, 0, 13)]
    sound(four)


def test_whole_units_with_decimals(engine: Engine) -> None:
    driver = Driver(engine, make_settings(currency={"decimals": 2}))
    driver.member("an")
    driver.say("admin", "/betaal DU-002 1,50 x")
    driver.say("admin", "ja")  # an 150 minor units (1,50)
    out = plain(driver.say("admin", "/massa iedereen aan kas 1000 promille saldo alles"))
    # 1000 per mille of 1,50 is 1,50: rounded half up to whole units, 2,00.
    assert "Kleinste bedrag 2,00 pluimen, grootste 2,00 pluimen" in out


def test_a_hard_limit_skips_that_member_and_books_the_rest(engine: Engine) -> None:
    driver = Driver(engine, make_settings(limits={"max_balance": 100}))
    driver.member("an")
    driver.member("bo")
    pay(driver, "an", "DU-003", 95)  # bo 95
    out = plain(driver.say("admin", "/massa kas aan iedereen 10 geschenk"))
    assert "Overgeslagen (1); de anderen worden wel geboekt:" in out
    assert (
        "  - Bo (DU-003): 10 pluimen zou het saldo van 95 pluimen op 105 pluimen brengen, en het"
        " mag niet hoger dan 100 pluimen" in out
    )
    assert "2 boekingen, samen 20 pluimen" in out
    out = driver.say("admin", "ja")
    assert "Overgeslagen: 1." in out
    assert "[dm bo]" not in out
    assert group_rows(driver) == [(0, 1, 10), (0, 2, 10)]
    assert driver.balance("bo") == 95
    sound(driver)


def test_the_one_accounts_hard_limit_refuses_the_whole_run(four: Driver) -> None:
    before = four.snapshot()
    out = plain(four.say("admin", "/massa DU-002 aan iedereen 600 verhuis"))
    assert (
        "Niets geboekt: An (DU-002) kan samen 1.800 pluimen niet dragen zonder een harde grens"
        " te breken (hoogstens 1.500 pluimen). Dan gaat de hele massabetaling niet door." in out
    )
    assert four.snapshot() == before
    # Typed in the group, the refusal that tells An's room goes to the coordinator only.
    out = four.say("admin", "/massa DU-002 aan iedereen 600 verhuis", group=True)
    assert out.startswith("[dm admin] Niets geboekt: An (DU-002)") and "[group]" not in out
    # The group account is exempt from limits: it may go as far below zero as it must.
    four.say("admin", "/massa kas aan iedereen 1000 start")
    assert "Geboekt" in four.say("admin", "ja")
    assert four.balance("an") == 1000
    sound(four)


def test_two_coordinators_with_the_same_preview_book_it_once(engine: Engine) -> None:
    coordinators = {"coordinators": ["console:admin", "console:kim"]}
    driver = Driver(engine, make_settings(group=coordinators))
    driver.member("an")
    driver.say("kim", "/start")
    driver.say("admin", "/massa kas aan iedereen 5 koffie")
    driver.say("kim", "/massa kas aan iedereen 5 koffie")
    assert "Geboekt: massabetaling" in driver.say("admin", "ja")
    out = driver.say("kim", "ja")
    assert "Niets geboekt: dezelfde massabetaling (#" in out and "is intussen al geboekt" in out
    assert driver.balance("an") == 5
    # Named in another order, the same run is still the same run.
    driver.say("admin", "/massa kas aan an en kim 2 thee")
    driver.say("admin", "ja")
    assert "Let op: dezelfde massabetaling" in driver.say(
        "admin", "/massa kas aan kim en an 2 thee"
    )
    # A /massa refused afterwards lets that preview go: a "ja" books nothing unseen.
    driver.say("admin", "/massa kas aan iedereen 0 x")
    assert "Geboekt" not in driver.say("admin", "ja")
    assert driver.balance("an") == 7
    sound(driver)


def test_soft_limits_book_and_warn(engine: Engine) -> None:
    coordinators = {"coordinators": ["console:admin", "console:kim"]}
    settings = make_settings(limits={"soft": True, "min_balance": -100}, group=coordinators)
    driver = Driver(engine, settings)
    driver.member("an")
    driver.say("kim", "/start")
    out = plain(driver.say("admin", "/massa iedereen aan kas 150 bijdrage"))
    assert (
        "3 leden komen over een zachte grens; dat wordt toch geboekt.\n"
        "    - admin (DU-001)\n    - An (DU-002)\n    - kim (DU-003)" in out
    )
    out = driver.say("admin", "ja")
    assert "[dm an] Let op: je saldo (-150 pluimen) staat nu onder de grens van -100 pluimen" in out
    # The other coordinators get one list; the one who booked read it in the preview.
    assert "[dm kim] Massabetaling #" in out and "3 leden staan nu buiten een zachte grens" in out
    assert "    - An (DU-002) staat op -150 pluimen (grens -100 pluimen)" in out
    assert "Saldo buiten de grens" not in out  # the coordinator read it in the preview
    assert driver.balance("an") == -150
    sound(driver)


def test_a_leaving_member_may_only_move_toward_zero(four: Driver) -> None:
    pay(four, "bo", "DU-002", 50)  # an +50
    four.say("an", "/uitstappen")
    four.say("an", "ja")
    out = plain(four.say("admin", "/massa kas aan vertrekkers 5 x"))
    assert "Er is niets te boeken: iedereen wordt overgeslagen.\n    - An (DU-002): vertrekt" in out
    out = plain(four.say("admin", "/massa kas aan an en bo 5 x"))
    assert "  - An (DU-002): vertrekt, het saldo mag alleen nog naar 0 toe (nu 50 pluimen)" in out
    four.say("admin", "nee")
    out = plain(four.say("admin", "/massa vertrekkers aan kas 50 rest"))
    assert "Voorbeeld van de massabetaling: de vertrekkers (1 lid) aan Groepsrekening" in out
    out = four.say("admin", "ja")
    assert four.balance("an") == 0
    assert "[dm an] Je rekening bij LETS Durme is gesloten." in out
    sound(four)


def test_a_stale_preview_is_checked_again_at_ja(four: Driver) -> None:
    pay(four, "an", "DU-003", 500)
    four.say("admin", "/massa iedereen aan kas 10 promille saldo bijdrage")  # bo pays 5
    pay(four, "an", "DU-003", 500)  # bo now has 1000: 10
    out = plain(four.say("admin", "ja"))
    assert "Sinds het voorbeeld is er iets veranderd (saldi of leden). Er is niets geboekt." in out
    assert "1 boeking, 10 pluimen" in out  # the new preview, asked again
    assert group_rows(four) == []
    four.say("admin", "ja")
    assert group_rows(four) == [(3, 0, 10)]
    sound(four)


def test_those_who_come_to_an_event(four: Driver) -> None:
    four.say("admin", "/activiteit nieuw repaircafé 12/12 10:00-16:00 Repair Café @ Buurthuis")
    four.say("admin", "ja")
    four.say("an", "/ikkom 1")
    four.say("lies", "/ikkom 1")
    four.say("bo", "/notgoing 1")
    out = four.say("admin", "/massa kas aan activiteit 1 20 helpers")
    assert "aan wie naar activiteit 1 komt (2 leden)" in out
    four.say("admin", "ja")
    assert group_rows(four) == [(0, 2, 20), (0, 4, 20)]


def test_in_english(four: Driver) -> None:
    four.say("admin", "/lang en")
    out = plain(four.say("admin", "/bulk everyone to group 12 yearly contribution"))
    assert "Preview of the mass payment: everyone (4 members) to Group account (DU-000)." in out
    assert "4 bookings, 12 pluimen in all" not in out  # a total, not each
    assert "4 bookings, 48 pluimen in all. Smallest amount 12 pluimen, largest 12 pluimen." in out
    out = plain(four.say("admin", "yes"))
    assert "Booked: mass payment #1, 4 bookings, 48 pluimen in all. Skipped: 0." in out
    # The group line and the descriptions stay in the group's language.
    assert "Massabetaling #1: iedereen (4 leden) aan Groepsrekening (DU-000)" in out
    out = plain(four.say("admin", "/bulk group to everyone 2 + 5 permille turnover 30 days x"))
    assert "5 permille of the turnover (paid and received) of the last 30 days" in out


def test_a_member_is_refused(four: Driver) -> None:
    before = four.snapshot()
    assert "Dat kan alleen een coördinator." in four.say("an", "/massa kas aan iedereen 10 x")
    assert "coordinator" in four.say("bo", "/bulk group to everyone 10 x")
    assert four.snapshot() == before


BAD = [
    ("/massa", "Zo doe je een massabetaling"),
    ("/massa kas iedereen 10 x", "Zo doe je een massabetaling"),
    ("/massa aan iedereen 10 x", "Zo doe je een massabetaling"),
    ("/massa kas aan", "Zo doe je een massabetaling"),
    ("/massa kas aan iedereen", "Zet er een bedrag bij"),
    ("/massa kas aan iedereen 10", "Zet er een omschrijving bij"),
    ("/massa kas aan iedereen tien x", "Dit is geen geldig bedrag"),
    ("/massa kas aan iedereen 0 x", "bedrag"),
    ("/massa kas aan iedereen -5 x", "bedrag"),
    ("/massa kas aan iedereen 99999999 x", "bedrag"),
    ("/massa kas aan DU-002 10 x", "gewone boeking. Zo:\n  /boeken DU-000 DU-002 10 x"),
    ("/massa an aan an 10 zelf", "Van en aan dezelfde rekening (An (DU-002)): dat kan niet."),
    ("/massa kas aan kas 10 zelf", "Van en aan dezelfde rekening"),
    ("/massa de kas aan allemaal 0 x", "bedrag"),  # read as the group account and everyone
    ("/massa van de kas aan alle leden -1 x", "bedrag"),
    ("/massabetaling kas aan iedereen 0 x", "bedrag"),
    ("/massa kas aan an,bo,lies 0 x", "bedrag"),  # a list without spaces is read
    ("/massa an aan an en bo 5 x", "gewone boeking. Zo:\n  /boeken DU-002 DU-003 5 x"),
    ("/massa iedereen aan kas 5 promille van het saldo", "Zet er een omschrijving bij"),
    ("/massa iedereen aan kernleden 10 x", "Eén kant moet de kas of één lid zijn"),
    ("/massa kas aan vertrekkers 10 x", "Bij de vertrekkers hoort nu niemand"),
    ("/massa kas aan DU-099 DU-002 10 x", "DU-099"),
    ("/massa kas aan Lise DU-002 10 x", "Bedoel je Lies Peeters (DU-004)?"),
    ("/massa kas aan iedreen 10 x", "Ik vind geen lid dat “iedreen” heet. Bedoel je iedereen?"),
    ("/massa vertrekers aan kas 10 x", "Bedoel je vertrekkers?"),
    ("/massa kas aan activiteit 7 10 x", "Activiteit 7 bestaat niet"),
    ("/massa kas aan activiteit x 10 x", "Zeg welk nummer de activiteit heeft"),
    ("/massa iedereen aan kas 5 promille x", "Na promille komt saldo of omzet"),
    ("/massa iedereen aan kas 0 promille saldo x", "Dit is geen geldige promille: 0"),
    ("/massa iedereen aan kas 2000 promille saldo x", "Dit is geen geldige promille: 2000"),
    ("/massa iedereen aan kas 10 + saldo x", "Dit is geen geldige promille"),
    (
        "/massa kas aan iedereen 10 +",
        "Na + komt een promille, bijvoorbeeld: 10 + 5 promille saldo.",
    ),
    ("/massa iedereen aan kas 5 promille omzet x", "Zeg over hoeveel dagen de omzet telt"),
    ("/massa iedereen aan kas 5 promille omzet 0 dagen x", "Zeg over hoeveel dagen"),
    ("/massa iedereen aan kas 5 promille omzet 99999 dagen x", "Zeg over hoeveel dagen"),
    ("/massa iedereen aan kas 5 promille omzet 30 x", "Zeg over hoeveel dagen"),
    ("/massa iedereen aan kas 5 promille saldo", "Zet er een omschrijving bij"),
    ("/massa iedereen aan kas 10 " + "x" * 201, "te lang"),
    ("/massa iedereen aan kas 5 promille saldo x", "Er is niets te boeken"),
    (
        "/massa kas aan iedereen 99999 x",
        "- admin (DU-001): 99.999 pluimen zou het saldo van 0 pluimen op 99.999 pluimen brengen,"
        " en het mag niet hoger dan 1.500 pluimen",
    ),
]


@pytest.mark.parametrize(("typed", "said"), BAD)
def test_bad_input_is_explained_and_changes_nothing(four: Driver, typed: str, said: str) -> None:
    before = four.snapshot()
    out = plain(four.say("admin", typed))
    assert said in out, out
    assert "Traceback" not in out
    assert four.snapshot() == before


def test_stats_count_no_group_bookings_as_trade(four: Driver) -> None:
    four.say("admin", "/massa kas aan iedereen 10 x")
    four.say("admin", "ja")
    out = plain(four.say("admin", "/statistiek"))
    assert "Samen: 0 pluimen; aantal transacties: 0." in out
    assert "Groepsboekingen (massabetalingen, geen ruil): 4, samen 40 pluimen." in out
    assert "Leden die ruilden: 0 van de 4." in out
    assert {kind for *_, kind, _ in rows(four)} == {"group"}


BULK_SCRIPT = """\
# a year's contribution from everyone, then the helpers of a repair café paid
@2026-12-01 09:00
admin: /start
an: /aanmelden An Peeters
bo: /aanmelden Bo Janssens
admin: /goedkeuren DU-002
admin: /goedkeuren 3
an: /betaal DU-003 300 fiets
an: ja

@2026-12-01 10:00
admin@group: /massa iedereen aan kas 2 + 10 promille saldo jaarbijdrage
admin: ja
admin: /massa kas aan an en DU-003 30 helpers repaircafé
admin: ja
"""


def test_a_console_script_and_letsbot_check_after_the_runs(ready: Path) -> None:
    (ready / "scenario.txt").write_text(BULK_SCRIPT, encoding="utf-8")
    result = letsbot("console", "--script", "scenario.txt", cwd=ready)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # admin 0 -> 2; an -300 -> 2 (a negative balance adds nothing); bo 300 -> 2 + 3.
    assert "3 boekingen, samen 9 pluimen. Kleinste bedrag 2 pluimen, grootste 5 pluimen." in out
    assert "[group] Massabetaling #" in out
    assert "[dm bo] Massabetaling #" in out
    check = letsbot("check", cwd=ready)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.startswith("OK: 3 members, 6 transfers"), check.stdout
    # The export names each booking's kind, and the run in its description.
    exported = letsbot("export", "transfers", cwd=ready)
    assert exported.returncode == 0, exported.stderr
    table = list(csv.DictReader(io.StringIO(exported.stdout)))
    kinds = [(row["from"], row["to"], row["amount"], row["kind"]) for row in table]
    assert kinds[-5:] == [
        ("DU-001", "DU-000", "2", "group"),
        ("DU-002", "DU-000", "2", "group"),
        ("DU-003", "DU-000", "5", "group"),
        ("DU-000", "DU-002", "30", "group"),
        ("DU-000", "DU-003", "30", "group"),
    ]
    assert table[-1]["description"] == "helpers repaircafé (massabetaling #3)"


def test_help_explains_it_with_examples(four: Driver) -> None:
    out = plain(four.say("admin", "/hulp massa"))
    assert out.startswith("[dm admin] /massa <van> aan <aan> <bedrag> <omschrijving>")
    assert "2 promille omzet 365 dagen" in out
    assert "/massa kas aan iedereen 10 nieuwjaarsgeschenk" in out
    assert "/massa kas aan iedereen 10 nieuwjaarsgeschenk" in plain(four.say("admin", "/hulp"))
    out = plain(four.say("bo", "/help"))
    assert "/bulk" not in out  # not a coordinator
    four.say("admin", "/lang en")
    assert "2 permille turnover 365 days" in plain(four.say("admin", "/help bulk"))


def test_a_new_run_replaces_the_open_preview(four: Driver) -> None:
    four.say("admin", "/massa kas aan iedereen 10 x")
    out = four.say("admin", "/massa kas aan iedereen 20 x")
    assert "Je vorige vraag, die nog open stond, is vervallen." in out
    four.say("admin", "ja")
    assert group_rows(four) == [(0, 1, 20), (0, 2, 20), (0, 3, 20), (0, 4, 20)]
    sound(four)


def test_who_everyone_is_is_read_again_at_the_ja(four: Driver) -> None:
    """A member approved, or one leaving, between the preview and the Ja: a new preview."""
    assert "(4 leden)" in four.say("admin", "/massa kas aan iedereen 4 lentegeschenk")
    four.say("cas", "/aanmelden Cas Claes")
    four.say("admin", "/goedkeuren cas")
    again = four.say("admin", "ja")
    assert "Sinds het voorbeeld is er iets veranderd" in again and "(5 leden)" in again
    assert four.count("transfers") == 0
    four.say("bo", "/leave")
    four.say("bo", "yes")
    again = four.say("admin", "ja")
    assert "Sinds het voorbeeld is er iets veranderd" in again and "(4 leden)" in again
    assert "Geboekt: massabetaling" in four.say("admin", "ja")
    assert four.balance("cas") == 4 and four.balance("bo") == 0
    sound(four)
