"""Payments, requests, corrections, limits, balances and history, in both languages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, text

from storage.check import ledger_problems
from tests.support import Driver, make_settings


@pytest.fixture
def two(driver: Driver) -> Driver:
    """admin DU-001, an DU-002 (Dutch), bo DU-003 (English)."""
    driver.member("an")
    driver.member("bo", language="en")
    return driver


def sound(driver: Driver) -> None:
    assert ledger_problems(driver.engine, driver.settings.group_limits) == []


def test_pay_asks_then_books_and_tells_both(two: Driver) -> None:
    out = two.say("an", "/betaal DU-003 30 soep", group=True)
    assert out == (
        "[group] Vraag voor An (DU-002):\n  Betaal 30 pluimen aan Bo (DU-003) voor: soep?\n"
        "  (1) Ja  (2) Nee"
    )
    assert two.count("transfers") == 0
    # The question belongs to the group, where it was asked: a "1" in the direct chat books nothing.
    assert two.say("an", "1") == (
        "[dm an] Die vraag stelde ik in de groep: antwoord daar met Ja of Nee, onder de vraag."
        " Er is niets gebeurd."
    )

    assert two.count("transfers") == 0
    assert two.say("an", "1", group=True) == ""  # a bare "1" in a group may be a vote
    out = two.say("an", "ja", group=True)
    assert (
        "[dm an] Geboekt: #1: je betaalde 30 pluimen aan Bo (DU-003) voor soep.\n"
        "  Je saldo is nu -30 pluimen." in out
    )
    assert (
        "[dm bo] Booked: #1: you got 30 pluimen from An (DU-002) for soep.\n"
        "  Your balance is now 30 pluimen." in out
    )
    assert (two.balance("an"), two.balance("bo")) == (-30, 30)
    sound(two)


def test_pay_in_english(two: Driver) -> None:
    out = two.say("bo", "/pay 2 45 bike repair")
    assert out == "[dm bo] Pay 45 pluimen to An (DU-002) for: bike repair?\n  (1) Yes  (2) No"
    out = two.say("bo", "yes")
    assert (
        "Booked: #1: you paid 45 pluimen to An (DU-002) for bike repair.\n"
        "  Your balance is now -45 pluimen." in out
    )
    assert "[dm an] Geboekt: #1" in out


def test_declining_books_nothing(two: Driver) -> None:
    two.say("an", "/betaal 3 30 soep")
    assert two.say("an", "nee") == (
        "[dm an] Geannuleerd. Er is niets geboekt.\n"
        "  (Je zei Nee op: Betaal 30 pluimen aan Bo (DU-003) voor: soep?)"
    )
    assert two.count("transfers") == 0
    assert "Er staat geen vraag voor je open" in two.say("an", "ja")


def test_only_the_person_asked_can_answer(two: Driver) -> None:
    two.say("an", "/betaal 3 30 soep", group=True)
    assert two.say("bo", "ja", group=True) == ""  # bo has nothing to answer
    assert "There is no open question for you" in two.say("bo", "yes")
    assert two.count("transfers") == 0
    two.say("an", "ja", group=True)
    assert two.count("transfers") == 1


def test_an_explicit_ja_in_the_group_says_where_the_question_waits(two: Driver) -> None:
    two.say("bo", "/vraagbetaling 2 5 thee")
    assert two.say("an", "ja", group=True) == ""  # a bare ja there is conversation
    assert two.say("an", "/ja", group=True) == (
        "[group] Die vraag stelde ik je in je privégesprek met mij: antwoord daar met Ja of Nee."
        " Er is niets gebeurd."
    )
    assert two.count("transfers") == 0
    assert "Geboekt" in two.say("an", "/ja")


def test_questions_expire(two: Driver) -> None:
    two.say("an", "/betaal 3 30 soep")
    two.clock.set(two.clock.now() + timedelta(hours=24, seconds=1))
    assert "Die vraag is verlopen. Er is niets gebeurd" in two.say("an", "ja")
    assert two.count("transfers") == 0


def test_member_named_by_mention_and_by_reply(two: Driver) -> None:
    two.say("an", "/betaal @bo 5 koffie")
    assert "Geboekt: #1: je betaalde 5 pluimen aan Bo (DU-003)" in two.say("an", "ja")
    two.say("an", "/betaal 6 appels", group=True, reply_to="bo")
    out = two.say("an", "ja", group=True)
    assert "Geboekt: #2: An (DU-002) → Bo (DU-003), 6 pluimen, appels" in out
    # A code still wins in a reply when an amount follows it.
    two.say("an", "/betaal 1 7 thee", group=True, reply_to="bo")
    out = two.say("an", "ja", group=True)
    assert "Geboekt: #3: An (DU-002) → admin (DU-001), 7 pluimen, thee" in out
    assert "@zoe is geen lid van de groep" in two.say("an", "/betaal @zoe 5 x")


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/betaal", "Zeg welk lid je bedoelt, bijvoorbeeld:\n  /betaal DU-001 30 soep"),
        ("/betaal 3", "Zet er een bedrag bij, bijvoorbeeld:\n  /betaal DU-001 30 soep"),
        ("/betaal 3 30", "Zet er een omschrijving bij"),
        ("/betaal 3 -5 x", "Dit is geen geldig bedrag: -5. Gebruik alleen cijfers"),
        ("/betaal 3 ３０ x", "Dit is geen geldig bedrag"),
        ("/betaal 3 1,5 x", "Een bedrag is een heel getal, zonder komma: 1,5 kan niet."),
        ("/betaal 3 0 x", "Het bedrag moet groter zijn dan nul"),
        ("/betaal 3 100001 x", "Dat bedrag is te groot: hoogstens 100.000 pluimen per transactie"),
        ("/betaal 2 5 x", "Je kunt jezelf niet betalen."),
        ("/betaal 9 5 x", "Er is geen lid met code DU-009"),
        ("/betaal bob 5 x", "Ik weet niet welk lid je bedoelt met bob"),
        ("/betaal 3 1501 x", "Je saldo is 0 pluimen en mag niet lager worden dan -1.500 pluimen"),
        ("/betaal 3 5 " + "x" * 201, "Je tekst is te lang: 201 tekens, hoogstens 200."),
    ],
)
def test_bad_payments_are_explained_and_change_nothing(
    two: Driver, command: str, expected: str
) -> None:
    before = two.snapshot()
    out = two.say("an", command)
    assert expected in out
    assert two.last is not None and two.last.outcome == "refused"
    assert two.snapshot() == before


def test_refusals_speak_the_members_language(two: Driver) -> None:
    assert "Say which member you mean, for example:\n  /pay DU-001 30 soup" in two.say("bo", "/pay")
    assert "Zeg welk lid je bedoelt" in two.say("an", "/pay")  # an chose Dutch


def test_receiver_maximum(engine: Engine) -> None:
    driver = Driver(engine, make_settings(limits={"max_balance": 100}))
    driver.member("an")
    driver.member("bo")
    out = driver.say("an", "/betaal 3 101 x")
    assert "het saldo van Bo (DU-003) mag niet hoger worden dan 100 pluimen" in out
    assert "Er kan nog 100 pluimen ontvangen worden" in out
    out = driver.say("an", "/betaal 3 100 x") + driver.say("an", "ja")
    assert "Er kan nu niets meer ontvangen worden." in driver.say("an", "/betaal 3 1 x")
    assert "Je kan nu niets meer ontvangen." in driver.say("bo", "/vraagbetaling 2 1 x")


def test_limit_is_checked_again_at_confirmation(two: Driver) -> None:
    two.say("an", "/betaal 3 1000 a")  # question 1
    two.say("admin", "/vraagbetaling 2 1000 b")  # question 2, in the same chat
    two.say("an", "/ja 2")  # 1000 to admin
    out = two.say("an", "/ja 1")  # the other one would now break the limit
    assert "Je saldo is -1.000 pluimen en mag niet lager worden dan -1.500 pluimen." in out
    assert "Je kan nog 500 pluimen betalen." in out
    assert two.balance("an") == -1000
    sound(two)


def test_sending_the_same_payment_twice_pays_once(two: Driver) -> None:
    two.say("an", "/betaal 3 30 soep")
    out = two.say("an", "/betaal 3 30 soep")
    assert out.startswith("[dm an] Je vorige vraag, die nog open stond, is vervallen.")
    assert "Geboekt" in two.say("an", "ja")
    assert "Er staat geen vraag voor je open" in two.say("an", "ja")
    assert two.count("transfers") == 1


def test_paying_the_same_again_soon_says_so_before_it_books(two: Driver) -> None:
    """A member who saw no "Geboekt" (a lost reply) and pays again is told first."""
    two.say("an", "/betaal 3 30 soep")
    two.say("an", "ja")
    two.clock.set(two.clock.now() + timedelta(minutes=9))
    out = two.say("an", "/betaal 3 30  Soep")
    assert out == (
        "[dm an] Je betaalde Bo (DU-003) net al 30 pluimen voor soep (#1). Nog eens betalen?\n"
        "  Betaal 30 pluimen aan Bo (DU-003) voor: Soep?\n  (1) Ja  (2) Nee"
    )
    assert two.count("transfers") == 1
    assert "Geboekt: #2" in two.say("an", "ja")  # the normal Ja books it: a second soup
    out = two.say("bo", "/pay 2 5 soup")  # in English, the other way round: not the same
    assert out.startswith("[dm bo] Pay 5 pluimen")
    two.say("bo", "yes")
    assert two.say("bo", "/pay 2 5 soup").startswith(
        "[dm bo] You just paid An (DU-002) 5 pluimen for soup (#3). Pay again?\n"
    )
    two.say("bo", "no")
    # Another amount, another description, or later than ten minutes: asked as usual.
    for line in ("/betaal 3 31 soep", "/betaal 3 30 brood", "later", "/betaal 3 30 soep"):
        if line == "later":
            two.clock.set(two.clock.now() + timedelta(minutes=11))
            continue
        assert two.say("an", line).startswith("[dm an] Betaal 3"), line
        two.say("an", "nee")
    assert two.count("transfers") == 3


def test_a_reversed_payment_may_be_paid_again_without_a_warning(two: Driver) -> None:
    two.say("an", "/betaal 3 30 soep")
    two.say("an", "ja")
    two.say("admin", "/terugboeken 1 verkeerd bedrag")
    assert "Geboekt: #2" in two.say("admin", "ja")
    assert two.say("an", "/betaal 3 30 soep").startswith("[dm an] Betaal 30 pluimen")


def test_a_different_request_waits_beside_the_earlier_one_the_same_replaces_it(
    two: Driver,
) -> None:
    two.say("an", "/vraagbetaling 3 60 tuinwerk")
    two.say("an", "/vraagbetaling 3 60 tuinwerk")  # sent twice: bo has one question
    out = two.say("an", "/vraagbetaling 3 50 tuinwerk")
    assert "vervallen" not in out
    # Bo may have read the 60: it stays, and a bare yes asks which one he means.
    assert "You have 2 open questions here. Which one do you mean?" in two.say("bo", "yes")
    assert two.count("transfers") == 0
    with two.engine.connect() as connection:
        query = text("SELECT id FROM pending WHERE status = 'open' ORDER BY id")
        open_ids = list(connection.execute(query).scalars())
    assert len(open_ids) == 2
    two.say("bo", f"/yes {open_ids[1]}")
    assert (two.balance("an"), two.balance("bo")) == (50, -50)


def test_soft_limits_book_and_warn(engine: Engine) -> None:
    driver = Driver(engine, make_settings(limits={"soft": True, "min_balance": -100}))
    driver.member("an")
    driver.member("bo")
    driver.say("an", "/betaal 3 150 fiets")
    out = driver.say("an", "ja")
    assert "Geboekt" in out
    assert "[dm an] Let op: je saldo (-150 pluimen) staat nu onder de grens van -100 pluimen" in out
    assert "[dm admin] Saldo buiten de grens: An (DU-002) staat op -150 pluimen" in out
    assert driver.balance("an") == -150
    sound(driver)


def test_request_is_confirmed_by_the_payer(two: Driver) -> None:
    out = two.say("an", "/vraagbetaling 3 60 tuinwerk")
    assert (
        "[dm bo] An (DU-002) asks you for 60 pluimen for: tuinwerk. Pay?\n  (1) Yes  (2) No" in out
    )
    assert "[dm an] Ik heb Bo (DU-003) gevraagd om 60 pluimen te betalen." in out
    assert "Er staat geen vraag voor je open" in two.say("an", "ja")  # an can't confirm it
    out = two.say("bo", "yes")
    assert "Booked: #1: you paid 60 pluimen to An (DU-002) for tuinwerk." in out
    assert "Geboekt: #1: je kreeg 60 pluimen van Bo (DU-003) voor tuinwerk." in out
    assert (two.balance("an"), two.balance("bo")) == (60, -60)


def test_declined_request_is_told_to_the_asker(two: Driver) -> None:
    two.say("an", "/vraagbetaling 3 60 tuinwerk")
    out = two.say("bo", "no")
    assert "[dm an] Bo (DU-003) heeft je betaalverzoek geweigerd." in out
    assert two.count("transfers") == 0


def test_coordinator_books_for_others(two: Driver) -> None:
    assert "Dat kan alleen een coördinator." in two.say("an", "/boeken 3 2 5 x")
    out = two.say("admin", "/boeken 3 2 45 fiets hersteld")
    assert "Boek 45 pluimen van Bo (DU-003) aan An (DU-002) voor: fiets hersteld?" in out
    out = two.say("admin", "ja")
    assert "[dm admin] Geboekt: #1: Bo (DU-003) → An (DU-002), 45 pluimen, fiets hersteld" in out
    assert "[dm bo] Booked by admin (DU-001): #1" in out
    assert "[dm an] Geboekt door admin (DU-001): #1" in out


def test_reverse_once(two: Driver) -> None:
    two.say("an", "/betaal 3 30 soep")
    two.say("an", "ja")
    assert "Zet het nummer van de transactie en de reden" in two.say("admin", "/terugboeken")
    assert "Zet er een omschrijving bij" in two.say("admin", "/terugboeken 1")
    assert "Transactie #7 bestaat niet." in two.say("admin", "/terugboeken 7 fout")
    out = two.say("admin", "/terugboeken 1 dubbel betaald")
    assert "Transactie #1 terugboeken? An (DU-002) betaalde 30 pluimen aan Bo (DU-003)" in out
    out = two.say("admin", "ja")
    assert (
        "Geboekt: #2: Bo (DU-003) → An (DU-002), 30 pluimen, Terugboeking van #1: dubbel betaald"
        in out
    )
    assert (two.balance("an"), two.balance("bo")) == (0, 0)
    assert "Transactie #1 is al teruggeboekt." in two.say("admin", "/terugboeken 1 nog eens")
    assert "#2 is zelf een terugboeking" in two.say("admin", "/terugboeken 2 terug")
    sound(two)


def test_a_reversal_asked_twice_books_once(two: Driver) -> None:
    two.say("an", "/betaal 3 30 soep")
    two.say("an", "ja")
    two.say("admin", "/terugboeken 1 eerste")
    assert "Je vorige vraag, die nog open stond, is vervallen." in two.say(
        "admin", "/terugboeken 1 tweede"
    )
    assert "Terugboeking van #1: tweede" in two.say("admin", "ja")
    assert "Er staat geen vraag voor je open" in two.say("admin", "ja")
    assert two.count("transfers") == 2


def test_limit_override(two: Driver) -> None:
    out = two.say("admin", "/limiet 2 -2000 500")
    assert "Grenzen van An (DU-002): van -2.000 pluimen tot 500 pluimen." in out
    assert "[dm an] Een coördinator heeft je grenzen aangepast" in out
    two.say("admin", "/limiet 3 standaard 2000")
    two.say("an", "/betaal 3 1800 dak")
    assert "Geboekt" in two.say("an", "ja")
    assert "De ondergrens moet nul of lager zijn" in two.say("admin", "/limiet 2 10 500")
    assert "ligt buiten die grenzen" in two.say("admin", "/limiet 2 standaard standaard")
    assert "Geef lid, ondergrens en bovengrens" in two.say("admin", "/limiet 2 -5")
    assert "Dit is geen geldige grens: veel" in two.say("admin", "/limiet 2 veel 5")
    assert "De groepsrekening heeft geen grenzen." in two.say("admin", "/limiet 0 -5 5")
    assert "Dat kan alleen een coördinator." in two.say("an", "/limiet 2 -5000 5000")
    sound(two)


def test_balance_of_others_follows_open_bookkeeping(engine: Engine) -> None:
    driver = Driver(engine, make_settings(group={"open_bookkeeping": False}))
    driver.member("an")
    driver.member("bo")
    assert "In deze groep zijn saldo's privé." in driver.say("an", "/saldo 3")
    assert "Saldo van Bo (DU-003): 0 pluimen" in driver.say("admin", "/saldo 3")
    assert "Je saldo: 0 pluimen" in driver.say("an", "/saldo 2")


def test_balance_is_private_even_when_asked_in_the_group(two: Driver) -> None:
    out = two.say("an", "/saldo", group=True)
    assert out.startswith(
        "[dm an] Je saldo: 0 pluimen\n  Grenzen: van -1.500 pluimen tot 1.500 pluimen."
    )
    assert "Saldo van Bo (DU-003)" in two.say("an", "/saldo DU-003")
    assert "Balance of the Group account (DU-000)" in two.say("bo", "/balance 0")


def test_history_pages(two: Driver) -> None:
    assert "Je hebt nog geen transacties." in two.say("an", "/overzicht")
    for n in range(12):
        two.say("an", f"/betaal 3 {n + 1} ruil {n + 1}")
        two.say("an", "ja")
    out = two.say("an", "/overzicht")
    assert out.startswith("[dm an] Je transacties (pagina 1 van 2, 12 in totaal):")
    assert "#12 1 dec 2026 09:00: -12 pluimen aan Bo (DU-003), ruil 12" in out
    assert "Meer: /overzicht 2" in out
    page2 = two.say("an", "/overzicht 2")
    assert "#1 1 dec 2026 09:00: -1 pluim aan Bo (DU-003), ruil 1" in page2
    assert "Meer:" not in page2
    assert "+12 pluimen from An (DU-002), ruil 12" in two.say("bo", "/history")
    assert "Pagina 3 bestaat niet; de laatste pagina is 2." in two.say("an", "/overzicht 3")
    assert "Geef een paginanummer" in two.say("an", "/overzicht x")


def test_long_messages_are_refused(two: Driver) -> None:
    assert "Dat is te lang: hoogstens 4000 tekens." in two.say("an", "/betaal 3 5 " + "x" * 5000)


def test_same_event_twice_books_once(two: Driver) -> None:
    two.send(two.incoming("an", "/betaal 3 30 soep", event_id="e1"))
    two.send(two.incoming("an", "ja", event_id="e2"))
    assert two.send(two.incoming("an", "ja", event_id="e2")).outcome == "duplicate"
    assert two.send(two.incoming("an", "/betaal 3 30 soep", event_id="e1")).replies == []
    assert two.count("transfers") == 1


def test_decimals(engine: Engine) -> None:
    settings = make_settings(currency={"name": "dukaat", "plural": "dukaten", "decimals": 2})
    driver = Driver(engine, settings)
    driver.member("an")
    driver.member("bo")
    driver.say("an", "/betaal 3 2,50 brood")
    assert "Je saldo is nu -2,50 dukaten." in driver.say("an", "ja")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT amount FROM transfers").scalar_one() == 250


def test_answer_in_the_group_shows_no_balance_there(two: Driver) -> None:
    two.say("an", "/betaal 3 30 soep", group=True)
    out = two.say("an", "ja", group=True)
    group_lines = [line for line in out.splitlines() if line.startswith("[group]")]
    assert group_lines == ["[group] Geboekt: #1: An (DU-002) → Bo (DU-003), 30 pluimen, soep"]
    assert "[dm an] Geboekt: #1: je betaalde 30 pluimen aan Bo (DU-003) voor soep." in out


def test_own_questions_in_two_chats_or_to_two_members_wait_side_by_side(two: Driver) -> None:
    two.say("an", "/betaal 1 8 tuinhulp")  # in the direct chat
    out = two.say("an", "/betaal 3 5 eieren", group=True)
    assert "vervallen" not in out
    assert "Geboekt: #1: je betaalde 8 pluimen aan admin (DU-001)" in two.say("an", "ja")
    assert "Geboekt: #2: An (DU-002) → Bo (DU-003), 5 pluimen" in two.say("an", "ja", group=True)
    # Two members in one chat: a bare ja asks which; a correction to the same member replaces.
    two.say("an", "/betaal 1 2 x")
    two.say("an", "/betaal 3 2 y")
    assert "Welke bedoel je?" in two.say("an", "ja")
    assert "vervallen" in two.say("an", "/betaal 3 4 y")
    assert "Welke bedoel je?" in two.say("an", "ja")  # still the two: admin's and Bo's new one
    assert two.count("transfers") == 2


def test_a_ja_after_the_newest_was_answered_answers_no_older_one(two: Driver) -> None:
    """A button, then "ja" typed as well: the second is the first again, never a Ja
    for another question still waiting in that chat."""
    two.say("an", "/betaal 1 2 x")
    two.say("an", "/betaal 3 2 y")
    newest = two.count("pending")
    assert "Geboekt: #1: je betaalde 2 pluimen aan Bo" in two.say("an", f"/ja {newest}")
    out = two.say("an", "ja")
    assert "Je laatste vraag hier (#" in out and "is al beantwoord" in out
    assert "Antwoord met /ja" in out
    assert two.count("transfers") == 1
    assert "Geboekt: #2: je betaalde 2 pluimen aan admin" in two.say("an", f"/ja {newest - 1}")
