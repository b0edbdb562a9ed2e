"""Replies a first-time member can act on: who booked for them, help as it is typed,
hours at the group's rate, the language by its name, and examples that exist.

Each test says something as a member would and checks the reply understood it (or
asked the right question) and changed exactly what it should.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from tests.support import Driver, make_settings


@pytest.fixture
def club(db_url: str) -> Iterator[Driver]:
    """admin DU-001 (coordinator), an DU-002, jan DU-003; all Dutch."""
    from storage.database import make_engine

    engine = make_engine(db_url)
    driver = Driver(engine, make_settings())
    driver.member("an", "An Peeters")
    driver.member("jan", "Jan De Smet")
    yield driver
    engine.dispose()


def count(engine: Engine, table: str) -> int:
    with engine.connect() as connection:
        value = connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
        connection.rollback()
    return int(value)


def test_a_booking_for_a_member_says_who_booked_it(club: Driver) -> None:
    club.say("admin", "/boeken DU-002 DU-003 10 soep")
    told = club.say("admin", "ja")
    assert "[dm an] Geboekt door admin (DU-001): #1: je betaalde 10 pluimen aan Jan" in told
    assert "[dm jan] Geboekt door admin (DU-001): #1: je kreeg 10 pluimen van An" in told


def test_a_reversal_says_what_was_undone_and_why(club: Driver) -> None:
    club.say("admin", "/boeken DU-002 DU-003 10 soep")
    club.say("admin", "ja")
    club.say("admin", "/terugboeken 1 dubbel <b>")
    told = club.say("admin", "ja")
    assert "Geboekt: #2: admin (DU-001) draaide transactie #1 terug (reden: dubbel <b>)." in told
    assert "Je kreeg 10 pluimen terug van Jan De Smet (DU-003). Je saldo is nu 0" in told
    assert "Je gaf 10 pluimen terug aan An Peeters (DU-002). Je saldo is nu 0" in told


@pytest.mark.parametrize(
    ("typed", "amount"),
    [("2 uur", 120), ("1,5 uur", 90), ("2u", 120), ("1 hour", 60), ("0,25 uur", 15)],
)
def test_hours_are_paid_at_the_groups_rate(club: Driver, typed: str, amount: int) -> None:
    reply = club.say("an", f"/betaal jan {typed} tuinwerk")
    assert f"is bij ons {amount} pluimen" in reply
    assert f"Betaal {amount} pluimen aan Jan De Smet (DU-003) voor: tuinwerk?" in reply
    club.say("an", "ja")
    assert count(club.engine, "transfers") == 1


def test_dollars_are_read_as_the_groups_unit(club: Driver) -> None:
    reply = club.say("an", "/betaal jan $30 soep")
    assert "niet in euro. Ik lees het als 30 pluimen." in reply
    assert "voor: soep?" in reply


@pytest.mark.parametrize(("said", "language"), [("engels", "en"), ("English", "en")])
def test_the_language_by_its_name(club: Driver, said: str, language: str) -> None:
    assert club.say("an", f"/taal {said}") == "[dm an] I will speak English with you from now on."
    assert club.say("an", "/lang nederlands") == "[dm an] Ik spreek voortaan Nederlands met je."


def test_the_short_help_shows_commands_as_typed(club: Driver) -> None:
    reply = club.say("an", "/hulp")
    assert "<" not in reply  # no <placeholders>
    assert "/betaal DU-001 30 soep\n    Betaal een lid." in reply
    everything = club.say("an", "/hulp alles")
    assert "/betaal <lid> <bedrag> <omschrijving>" in everything


def test_coordinator_examples_name_what_exists(club: Driver) -> None:
    club.say("rosa", "/aanmelden Rosa Wouters")  # DU-004, waiting
    club.say("an", "/betaal jan 5 soep")
    club.say("an", "ja")
    reply = club.say("admin", "/hulp")
    assert "/goedkeuren DU-004" in reply
    assert "/weigeren DU-004 geen onthaalgesprek gehad" in reply
    assert "/terugboeken 1 dubbel betaald" in reply
    assert "DU-007" not in reply


def test_a_lone_member_is_shown_an_account_that_exists(sqlite_url: str) -> None:
    from storage.database import make_engine

    engine = make_engine(sqlite_url)
    driver = Driver(engine, make_settings())
    reply = driver.say("admin", "hallo")
    assert "/betaal DU-000 30 soep" in reply and "DU-007" not in reply
    engine.dispose()


def test_a_stranger_asking_help_in_the_group_gets_one_line(club: Driver) -> None:
    for word in ("/hulp", "/help"):
        reply = club.say("eva", word, group=True)
        assert reply == (
            "[group] Wil je lid worden van LETS Durme? Stuur me een privébericht met "
            "/aanmelden en je naam."
        )


def test_a_want_that_names_a_member_and_an_amount_is_asked_about(club: Driver) -> None:
    reply = club.say("jan", "/vraag an 10 soep")
    assert "Om An Peeters (DU-002) te vragen je te betalen, stuur:" in reply
    assert "/vraagbetaling an 10 soep" in reply
    assert count(club.engine, "listings") == 0
    club.say("jan", "/vraag Wie helpt 2 uur in de tuin")
    assert count(club.engine, "listings") == 1


@pytest.mark.parametrize(("said", "meant"), [("ik kom", "/ikkom"), ("Ik kom niet", "/ikkomniet")])
def test_i_come_without_a_slash(club: Driver, said: str, meant: str) -> None:
    reply = club.say("an", said)
    assert f"Dat is de opdracht {meant}." in reply


def test_an_event_without_a_title_is_called_by_its_kind(club: Driver) -> None:
    reply = club.say("admin", "/activiteit nieuw markt 12/12 10:00-16:00")
    assert "Markt, za 12 dec 2026 10:00-16:00" in reply
    club.say("admin", "ja")
    listed = club.say("an", "/activiteiten")
    assert "Markt #1, za 12 dec 2026 10:00-16:00\n" in listed
    assert "komen)" not in listed
    club.say("jan", "/ikkom 1")
    assert "(1 komt)" in club.say("an", "/activiteiten")
    assert "1 lid komt." in club.say("an", "/activiteit 1")


def test_a_cancelled_event_counts_no_one_coming(club: Driver) -> None:
    club.say("admin", "/activiteit nieuw markt 12/12 10:00-16:00 Wintermarkt")
    club.say("admin", "ja")
    club.say("jan", "/ikkom 1")
    club.say("admin", "/activiteit annuleer 1")
    club.say("admin", "ja")
    shown = club.say("admin", "/activiteit 1")
    assert "Deze activiteit is afgelast." in shown
    assert "komt" not in shown
    assert "Hadden gezegd dat ze kwamen (ze kregen bericht): Jan De Smet (DU-003)" in shown
    assert "Jij komt" not in club.say("jan", "/activiteit 1")


def test_a_turned_down_candidate_is_welcomed_again(club: Driver) -> None:
    club.say("rosa", "/aanmelden Rosa Wouters")
    club.say("admin", "/weigeren rosa")
    club.say("admin", "ja")
    for said in ("hallo", "ik wil meedoen"):
        assert "Wil je lid worden?" in club.say("rosa", said)


def test_approving_a_misspelt_candidate_speaks_of_candidates(club: Driver) -> None:
    club.say("rosa", "/aanmelden Rosa Wouters")
    assert club.say("admin", "/goedkeuren rosaa") == (
        "[dm admin] Ik vind geen kandidaat met de naam rosaa. Bedoel je Rosa Wouters "
        "(DU-004)? Wie wacht, staat in /kandidaten."
    )
    assert club.say("admin", "/goedkeuren xyzzy") == (
        "[dm admin] Ik vind geen kandidaat met de naam xyzzy. Wie wacht, staat in /kandidaten."
    )


def test_answering_a_replaced_question_says_so(club: Driver) -> None:
    club.say("an", "/betaal jan 5 soep")
    club.say("an", "/betaal jan 6 soep")  # replaces question 1
    reply = club.say("an", "/ja 1")
    assert "Vraag #1 geldt niet meer: er kwam een nieuwere vraag in de plaats." in reply
    club.say("an", "nee")
    assert "Vraag #2 is al beantwoord met Nee." in club.say("an", "/ja 2")
    assert count(club.engine, "transfers") == 0


@pytest.mark.parametrize(
    "name",
    [
        "Kas",
        "Groeps Rekening",
        "Groepskas",
        "An Peeters (coördinator)",
        "LETS Durme",
        "Vergeten lid",
    ],
)
def test_names_that_pass_for_the_group_account_or_a_coordinator_are_refused(
    club: Driver, name: str
) -> None:
    reply = club.say("mal", f"/aanmelden {name}")
    assert "kan geen naam van een lid zijn" in reply
    assert count(club.engine, "members") == 4  # the group account, admin, an, jan


@pytest.mark.parametrize(
    "said",
    [
        "ik ben Marie Claes",
        "Hallo, ik heet Marie Claes",
        "Hallo ik ben Marie Claes en ik wil graag meedoen",
        "mijn naam is Marie Claes",
        "aanmelden Marie Claes",
    ],
)
def test_a_strangers_name_in_a_sentence_and_a_ja_join(club: Driver, said: str) -> None:
    assert "Wil je lid worden als Marie Claes? Antwoord dan met Ja" in club.say("marie", said)
    assert "Dank je, Marie Claes! Je bent nu kandidaat-lid" in club.say("marie", "ja hoor")


def test_a_no_to_the_offered_name_forgets_it(club: Driver) -> None:
    club.say("marie", "ik ben Marie Claes")
    assert "Goed, ik heb niets gedaan." in club.say("marie", "nee")
    assert "Hoe heet je?" in club.say("marie", "ja")
    assert count(club.engine, "members") == 4


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("2 u", "2 uur is bij ons 120 pluimen (een uur is 60 pluimen)."),
        ("0,01 uur", "0,01 uur is bij ons 1 pluim, afgerond (een uur is 60 pluimen)."),
        ("1 uur", "1 uur is bij ons 60 pluimen.\n"),
    ],
)
def test_hours_as_typed_and_rounded(club: Driver, typed: str, said: str) -> None:
    assert said in club.say("an", f"/betaal jan {typed} tuinwerk")


def test_a_thousand_hours_is_never_a_thousand_pluimen(club: Driver) -> None:
    reply = club.say("an", "/betaal jan 1.000 uur tuinwerk")
    assert "Dat gaat niet" in reply and "1.000 pluimen" not in reply
    assert count(club.engine, "pending") == 0


def test_what_the_group_account_pays_is_no_trade(club: Driver) -> None:
    club.say("admin", "/boeken kas an 100 geschenk")
    club.say("admin", "ja")
    assert "Leden die ruilden: 0" in club.say("an", "/statistiek")


def test_a_candidates_help_in_the_group_goes_privately(club: Driver) -> None:
    club.say("rosa", "/aanmelden Rosa Wouters")
    reply = club.say("rosa", "/hulp", group=True)
    assert "[dm rosa] Je aanvraag bij LETS Durme is ontvangen (code DU-004)." in reply
    assert "Wil je lid worden" not in reply


def test_ik_kom_names_the_event_meant(club: Driver) -> None:
    for typed in (
        "/activiteit nieuw markt 5/12 10:00 Ruilmarkt",
        "/activiteit nieuw markt 19/12 10u",
    ):
        club.say("admin", typed)
        club.say("admin", "ja")
    club.say("admin", "/activiteit nieuw Kerstmarkt 19/12 14u")
    club.say("admin", "ja")
    assert club.say("an", "ik kom naar de kerstmarkt").endswith("\n  /ikkom 3")
    assert club.say("an", "ik kom niet naar de ruilmarkt").endswith("\n  /ikkomniet 1")
    assert club.say("an", "ik kom 2").endswith("\n  /ikkom 2")
    assert club.count("rsvps") == 0  # pointed at, never signed up


def test_a_market_named_by_its_title_and_a_place_without_a_title(club: Driver) -> None:
    reply = club.say(
        "admin", "/activiteit nieuw Kerstmarkt za 19/12 van 10 tot 16u in zaal Ons Huis"
    )
    assert "Markt: Kerstmarkt, za 19 dec 2026 10:00-16:00 @ zaal Ons Huis" in reply
    club.say("admin", "nee")
    reply = club.say("admin", "/activiteit nieuw markt za 19/12 om 14 uur in het Buurthuis")
    assert "Markt, za 19 dec 2026 14:00 @ het Buurthuis\n  (1) Ja" in reply


def test_the_group_reads_who_signed_up(club: Driver) -> None:
    club.say("admin", "/activiteit nieuw markt 5/12 10:00 Ruilmarkt")
    club.say("admin", "ja")
    assert club.say("an", "/ikkom 1", group=True).startswith(
        "[group] Genoteerd: An Peeters (DU-002) komt naar Markt #1"
    )
    assert club.say("jan", "/ikkom 1").startswith("[dm jan] Genoteerd: je komt naar Markt #1")


def test_vote_examples_name_an_open_proposal(club: Driver) -> None:
    club.say("an", "/voorstel Markt op zaterdag")
    club.say("an", "/voorstel Soep op de markt")
    club.say("an", "/voorstel_intrekken 1")  # withdrawn: no longer one to vote on
    assert "Bijvoorbeeld: /stem 2 voor" in club.say("jan", "/hulp stem")


def test_a_candidate_corrects_their_name(club: Driver) -> None:
    club.say("jos", "/aanmelden jos")
    reply = club.say("jos", "/aanmelden Jos Van Damme")
    assert "[dm jos] Goed, je naam is nu Jos Van Damme (code DU-004)." in reply
    assert "[dm admin] Kandidaat Jos (DU-004) heet nu Jos Van Damme." in reply
    assert "kan geen naam van een lid zijn" in club.say("jos", "/aanmelden Kas")
    assert "Jos Van Damme (DU-004)" in club.say("admin", "/kandidaten")


def test_a_day_in_a_sentence_is_no_event_number(club: Driver) -> None:
    club.say("admin", "/activiteit nieuw markt 12/12 om 14u")
    club.say("admin", "ja")
    asked = club.say(
        "admin", "/activiteit nieuw kerstmarkt zaterdag 19/12 van 10 tot 16u in de parochiezaal"
    )
    assert "Markt: kerstmarkt, za 19 dec 2026 10:00-16:00 @ de parochiezaal" in asked
    club.say("admin", "ja")
    assert club.say("an", "ik kom naar de kerstmarkt").endswith("\n  /ikkom 2")
    assert club.say("an", "ik kom naar de markt op 12 december").endswith("\n  /ikkom 1")


@pytest.mark.parametrize(
    ("said", "meant"),
    [
        ("Mijn saldo", "/saldo"),
        ("wanneer is de markt?", "/activiteiten"),
        ("hoe vraag ik geld aan iemand", "/vraagbetaling"),
        ("vraag an 20 voor eieren", "/vraagbetaling"),
    ],
)
def test_what_a_question_asks_for(club: Driver, said: str, meant: str) -> None:
    assert f"Dat is de opdracht {meant}." in club.say("jan", said)


def test_not_understanding_gets_the_help(club: Driver) -> None:
    assert club.say("an", "ik snap het niet").startswith("[dm an] Opdrachten van LETS Durme:")


def test_names_as_typed_on_a_phone(club: Driver) -> None:
    assert "Dank je, Jos De Smet!" in club.say("jos", "/aanmelden jos de smet")
    assert "Dank je, Fien Claes!" in club.say("fien", "/aanmelden <Fien Claes>")


@pytest.mark.parametrize(
    "name",
    [
        "Jan (DU–003)",
        "Jan (DU‐003)",
        "Jan (DU-OO3)",
        "Jan DU003",
        "Jan du3",
        "ㅤ",
        "Penningmeester",
        "Kim (koördinator)",
        "Moderator Mia",
    ],
)
def test_names_that_pass_for_a_code_or_a_role_are_refused(club: Driver, name: str) -> None:
    assert "Typ gewoon je voor- en achternaam." in club.say("mal", f"/aanmelden {name}")
    assert count(club.engine, "members") == 4


@pytest.mark.parametrize("name", ["De Smet Jan", "Jan De Smet Junior"])
def test_a_name_another_member_has_in_it_is_pointed_out(club: Driver, name: str) -> None:
    told = club.say("mal", f"/aanmelden {name}")
    assert "Let op: die naam heeft al Jan De Smet (DU-003)" in told


def test_a_candidate_renamed_as_a_member_is_pointed_out(club: Driver) -> None:
    club.say("rik", "/aanmelden Rik Stoop")
    told = club.say("rik", "/aanmelden An Peeters")
    assert "Kandidaat Rik Stoop (DU-004) heet nu An Peeters." in told
    assert "Let op: die naam heeft al An Peeters (DU-002)" in told


def test_a_negation_is_no_name(club: Driver) -> None:
    assert "Wil je lid worden als" not in club.say("mal", "ik ben geen Jan De Smet")


def test_a_turned_down_candidate_applies_again_under_the_name_offered(club: Driver) -> None:
    club.say("k", "/aanmelden Karel Kandidaat")
    club.say("admin", "/weigeren DU-004")
    club.say("admin", "ja")
    assert "Wil je lid worden als Karel Claes?" in club.say("k", "Karel Claes")
    told = club.say("k", "ja")
    assert "Dank je, Karel Claes!" in told
    assert "Karel Claes (DU-004) meldt zich opnieuw aan" in told


def test_yes_with_the_number_without_a_slash_answers_that_question(club: Driver) -> None:
    """Two questions open, "ja 7" (as people type it) is /ja 7; in the group it is talk."""
    club.say("admin", "/vraagbetaling DU-002 5 appels")
    club.say("jan", "/vraagbetaling DU-002 6 peren")
    assert "Welke bedoel je?" in club.say("an", "ja")
    with club.engine.connect() as connection:
        [(peren,)] = connection.execute(
            text("SELECT id FROM pending WHERE description = 'peren'")
        ).all()
        connection.rollback()
    assert "appels" not in club.say("an@group", f"ja {peren}")  # the group: nothing
    said = club.say("an", f"Ja {peren}!")
    assert "Geboekt" in said and "peren" in said
    assert club.balance("an") == -6 and club.balance("jan") == 6
