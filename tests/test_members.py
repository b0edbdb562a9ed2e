"""Joining, approval, the directory, languages, leaving and help."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from storage.database import make_engine
from tests.support import Driver, make_settings


def test_join_makes_a_candidate_and_tells_coordinators(driver: Driver) -> None:
    driver.say("admin", "/start")
    out = driver.say("an", "/aanmelden An Peeters")
    assert (
        "[dm an] Dank je, An Peeters! Je bent nu kandidaat-lid van LETS Durme, met code DU-002"
        in out
    )
    assert (
        "[dm admin] Nieuwe kandidaat: An Peeters (DU-002). Na het onthaalgesprek: /goedkeuren DU-002"
        in out
    )


def test_join_in_english_speaks_english(driver: Driver) -> None:
    driver.say("admin", "/start")
    out = driver.say("ann", "/join Ann Smith")
    assert "[dm ann] Thank you, Ann Smith! You are now a candidate member" in out
    # The coordinator keeps their own language.
    assert "[dm admin] Nieuwe kandidaat: Ann Smith (DU-002)" in out


def test_join_only_in_a_direct_chat(driver: Driver) -> None:
    out = driver.say("an", "/aanmelden An", group=True)
    assert "in een privégesprek" in out
    assert driver.count("members") == 1  # the group account only
    assert driver.last is not None and driver.last.outcome == "refused"


def test_join_needs_a_name_and_refuses_a_second_time(driver: Driver) -> None:
    assert "Zet je naam achter de opdracht" in driver.say("an", "/aanmelden")
    assert "Put your name after the command" in driver.say("an", "/join")
    driver.say("an", "/aanmelden An")
    assert "Je aanvraag loopt al (code DU-001)" in driver.say("an", "/aanmelden An")


def test_candidates_cannot_trade(driver: Driver) -> None:
    driver.say("an", "/aanmelden An")
    assert "nog niet goedgekeurd" in driver.say("an", "/saldo")
    assert "nog niet goedgekeurd" in driver.say("an", "/balance")  # an chose Dutch
    driver.say("ann", "/join Ann")
    # An English word is no choice of language: the group's Dutch, and a hint, once.
    out = driver.say("ann", "/help")
    assert "Opdrachten van LETS Durme" in out and "Prefer English? Type /lang en." in out
    assert "Prefer English" not in driver.say("ann", "/help")
    assert "nog niet goedgekeurd" in driver.say("ann", "/balance")
    driver.say("ann", "/lang en")
    assert "not been approved yet" in driver.say("ann", "/saldo")


def test_approve_books_start_credit_and_welcomes(engine: Engine) -> None:
    driver = Driver(engine, make_settings(limits={"start_credit": 100}))
    driver.say("admin", "/start")  # admin gets start credit too
    driver.say("an", "/aanmelden An")
    out = driver.say("admin", "/goedkeuren du-2")
    assert "[dm admin] An (DU-002) is nu lid." in out
    assert (
        "[dm an] Welkom bij LETS Durme, An! Je bent nu lid, met code DU-002. Je saldo: 100 pluimen."
        in out
    )
    assert driver.balance("an") == 100
    assert driver.balance("admin") == 100
    assert "Groepsrekening (DU-000): -200 pluimen" in driver.say("an", "/leden")


def test_only_coordinators_approve(driver: Driver) -> None:
    driver.member("an")
    driver.say("bo", "/aanmelden Bo")
    before = driver.snapshot()
    assert "Dat kan alleen een coördinator." in driver.say("an", "/goedkeuren 3")
    assert driver.snapshot() == before


def test_approve_refuses_non_candidates(driver: Driver) -> None:
    driver.member("an")
    assert "An (DU-002) is geen kandidaat" in driver.say("admin", "/goedkeuren 2")
    assert "Er is geen lid met code DU-009" in driver.say("admin", "/goedkeuren 9")
    said = driver.say("admin", "/goedkeuren XX-2")  # a code, of no group the bot knows
    assert "Er is geen lid met code XX-002: onze codes beginnen met DU" in said


def test_reject(driver: Driver) -> None:
    driver.say("admin", "/start")
    driver.say("an", "/aanmelden An")
    out = driver.say("admin", "/weigeren 2 nog geen gesprek")
    assert out == (
        "[dm admin] De aanvraag van An (DU-002) weigeren? An (DU-002) krijgt daar meteen"
        " bericht van.\n  (1) Ja  (2) Nee"
    )
    assert "de aanvraag blijft open" in driver.say("admin", "nee")
    assert "Je aanvraag" in driver.say("an", "/start")  # still a candidate
    driver.say("admin", "/weigeren An nog geen gesprek")
    out = driver.say("admin", "ja")
    assert "De aanvraag van An (DU-002) is geweigerd." in out
    assert "[dm an] Je aanvraag bij LETS Durme is niet aanvaard: nog geen gesprek" in out
    # Turned down is not "no longer a member": An may apply again later.
    assert "geen actief lid" not in driver.say("an", "/start")
    assert "Wil je lid worden?" in driver.say("an", "/start")
    out = driver.say("an", "/aanmelden An")
    assert "Je bent nu kandidaat-lid van LETS Durme, met code DU-002" in out
    assert "[dm admin] An (DU-002) meldt zich opnieuw aan; de vorige aanvraag werd geweigerd" in out
    driver.say("admin", "/goedkeuren 2")
    assert "Je saldo: 0 pluimen" in driver.say("an", "/saldo")


def test_a_member_who_traded_and_left_may_not_just_apply_again(driver: Driver) -> None:
    driver.member("an")
    driver.member("bo")
    driver.say("an", "/betaal 3 5 soep")
    driver.say("an", "ja")
    driver.say("bo", "/betaal 2 5 terug")
    driver.say("bo", "ja")
    driver.say("an", "/uitstappen")
    driver.say("an", "ja")
    assert "Je lidmaatschap (DU-002) is gestopt" in driver.say("an", "/aanmelden An")


def test_directory_with_and_without_open_bookkeeping(engine: Engine) -> None:
    driver = Driver(engine, make_settings(group={"open_bookkeeping": False}))
    driver.member("an")
    driver.member("bo")
    out = driver.say("an", "/leden", group=True)
    assert out.startswith("[dm an] Leden van LETS Durme (3), en de groepsrekening:")
    assert "Bo (DU-003)" in out and "pluimen" not in out
    assert "admin (DU-001) (coördinator): 0 pluimen" in driver.say("admin", "/leden")


def test_language_choice_is_remembered(driver: Driver) -> None:
    driver.member("an")
    assert "I will speak English with you from now on." in driver.say("an", "/taal en")
    assert "Your balance: 0 pluimen" in driver.say("an", "/saldo")
    assert "Ik spreek voortaan Nederlands met je." in driver.say("an", "/lang nl")
    assert "Kies nl of en" in driver.say("an", "/taal fr")


def test_a_language_chosen_before_joining_stays(driver: Driver) -> None:
    driver.say("admin", "/start")
    assert "I will remember your language" in driver.say("an", "/taal en")
    # A Dutch command word after it doesn't undo the choice.
    assert "You are now a candidate member" in driver.say("an", "/aanmelden An Peeters")
    assert "[dm an] Welcome to LETS Durme, An Peeters!" in driver.say("admin", "/goedkeuren 2")
    assert "Your balance: 0 pluimen" in driver.say("an", "/saldo")
    # Someone who changed their mind: /vergeetmij drops the choice, all there was.
    driver.say("bo", "/lang en")
    assert "keeps nothing (more) about you" in driver.say("bo", "/vergeetmij")
    assert "Je bent nu kandidaat-lid" in driver.say("bo", "/aanmelden Bo")


def test_a_candidate_with_a_members_name_is_pointed_out(driver: Driver) -> None:
    driver.member("an", "An Peeters")
    out = driver.say("eve", "/aanmelden an  PEETERS")
    assert (
        "[dm admin] Nieuwe kandidaat: an PEETERS (DU-003). Na het onthaalgesprek:"
        " /goedkeuren DU-003 of /weigeren DU-003\n"
        "  Let op: die naam heeft al An Peeters (DU-002)."
    ) in out
    assert "Let op" not in driver.say("bo", "/aanmelden Bo Peeters")


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("Lies Maes (DU-004)", "Je naam bevat tekens die ik niet kan gebruiken."),
        ("DU-003", "Je naam bevat tekens die ik niet kan gebruiken."),
        ("30", "Je naam bevat tekens die ik niet kan gebruiken."),
        ("L\u0456es Maes", "Je naam bevat tekens die ik niet kan gebruiken."),  # Cyrillic і
        ("Groepsrekening", "“Groepsrekening” kan geen naam van een lid zijn"),
        ("De Coördinator", "“De Coördinator” kan geen naam van een lid zijn"),
        ("Group Account", "“Group Account” kan geen naam van een lid zijn"),
    ],
)
def test_a_name_that_passes_for_something_else_is_refused(
    driver: Driver, typed: str, said: str
) -> None:
    driver.say("admin", "/start")
    before = driver.snapshot()
    assert said in driver.say("mal", f"/aanmelden {typed}")
    assert driver.snapshot() == before


def test_names_in_other_scripts_and_with_accents_are_names(driver: Driver) -> None:
    driver.say("admin", "/start")
    for name, who in (("Нина Петрова", "nina"), ("Zoë Ødegård", "zoe"), ("Anne-Marie", "am")):
        assert "kandidaat-lid" in driver.say(who, f"/aanmelden {name}")


def test_help_depends_on_role(driver: Driver) -> None:
    stranger = driver.say("zoe", "/hulp")
    assert "/aanmelden An Peeters" in stranger and "/betaal" not in stranger
    driver.member("an")
    member = driver.say("an", "/hulp")
    assert "/betaal DU-001 30 soep" in member and "<" not in member
    assert "/goedkeuren" not in member and "/aanmelden" not in member
    order = [
        member.index(word)
        for word in ("/betaal ", "/saldo\n", "/overzicht\n", "/aanbiedingen ", "/activiteiten")
    ]
    assert order == sorted(order)  # what members do most, money first
    assert "/aanbod " not in member and "/hulp alles" in member
    everything = driver.say("an", "/hulp alles")
    order = [
        everything.index(word)
        for word in ("/betaal ", "/aanbod ", "/activiteiten", "/voorstel ", "/hulp ")
    ]
    assert order == sorted(order)  # money first, the account last
    driver.say("admin", "/lang en")
    coordinator = driver.say("admin", "/help")
    assert "For coordinators:" in coordinator and "\n  /approve " in coordinator
    one = driver.say("an", "/hulp betaal")
    assert "Bijvoorbeeld: /betaal DU-001 30 soep" in one  # a member who exists
    assert "Die opdracht ken ik niet: vlieg" in driver.say("an", "/hulp vlieg")


def test_unknown_commands_and_chatter(driver: Driver) -> None:
    driver.member("an")
    assert "Die opdracht ken ik niet: /vlieg" in driver.say("an", "/vlieg")
    assert driver.say("an", "hallo allemaal", group=True) == ""
    assert "/aanbiedingen ladder" in driver.say("an", "hallo, ik zoek een ladder")
    assert "Dat begrijp ik niet goed." in driver.say("an", "hallo, weet jij dat?")
    assert driver.say("an", "/saldo@letsbot").startswith("[dm an] Je saldo")


def test_configured_coordinator_is_active_from_the_first_message(driver: Driver) -> None:
    out = driver.say("admin", "/saldo")
    assert "Je saldo: 0 pluimen" in out
    assert "Voor coördinatoren:" in driver.say("admin", "/hulp")


def test_leave_at_zero_closes_at_once(driver: Driver) -> None:
    driver.member("an")
    assert "(1) Ja  (2) Nee" in driver.say("an", "/uitstappen")
    out = driver.say("an", "ja")
    assert "Je rekening bij LETS Durme is gesloten." in out
    assert "[dm admin] An (DU-002) stapt uit, met saldo 0 pluimen." in out
    assert "geen actief lid meer" in driver.say("an", "/saldo")


def test_leave_can_be_cancelled(driver: Driver) -> None:
    driver.member("an")
    driver.say("an", "/uitstappen")
    assert "Goed, je blijft lid." in driver.say("an", "nee")
    assert "Je saldo: 0 pluimen" in driver.say("an", "/saldo")


def test_leaving_member_moves_only_toward_zero_then_closes(driver: Driver) -> None:
    driver.member("an")
    driver.member("bo")
    driver.say("bo", "/betaal 2 50 les")
    driver.say("bo", "ja")
    driver.say("an", "/uitstappen")
    out = driver.say("an", "ja")
    assert "Je stapt uit. Je saldo is 50 pluimen" in out
    # The room /saldo shows is what leaving allows: paying down to zero, receiving nothing.
    assert "Je kunt nog 50 pluimen betalen en 0 pluimen ontvangen." in driver.say("an", "/saldo")
    seen = driver.say("admin", "/saldo an")  # a coordinator looks: about An, not "je"
    assert "An (DU-002) stapt uit: bij saldo nul wordt de rekening gesloten." in seen
    assert "Je stapt uit" not in seen
    assert "stapt uit, en dan mag het saldo alleen nog naar nul toe" in driver.say(
        "bo", "/betaal 2 10 x"
    )
    out = driver.say("an", "/betaal 3 60 x")
    assert "je stapt uit, dus je saldo mag alleen nog naar nul toe" in out
    assert "Je kan nog 50 pluimen betalen." in out
    driver.say("an", "/betaal 3 50 terug")
    out = driver.say("an", "ja")
    assert "Je saldo is nu 0 pluimen." in out
    assert "[dm admin] De rekening van An (DU-002) staat op nul en is gesloten." in out
    assert "geen actief lid meer" in driver.say("an", "/saldo")


# The group never loses its last coordinator

LAST = "Je bent de laatste coördinator van LETS Durme"


def configured(engine: Engine, *names: str, before: Driver | None = None) -> Driver:
    """The bot with ``names`` in group.coordinators, each having spoken once.

    ``before``: the bot this one replaces on the same database (a restart with a
    new configuration); its clock and message ids carry on.
    """
    settings = make_settings(group={"coordinators": [f"console:{n}" for n in names]})
    driver = (
        Driver(engine, settings)
        if before is None
        else Driver(engine, settings, before.clock, _ids=before._ids)
    )
    for name in names:
        driver.say(name, "/start")
    driver._admin_spoke = True
    return driver


def status(engine: Engine, name: str) -> str:
    with engine.connect() as connection:
        found = connection.execute(
            text(
                "SELECT m.status FROM members m JOIN identities i ON i.member_id = m.id"
                " WHERE i.user_id = :name"
            ),
            {"name": name},
        ).scalar_one()
        connection.rollback()
    return str(found)


def test_the_last_coordinator_cant_leave_or_be_forgotten(db_url: str) -> None:
    engine = make_engine(db_url)
    driver = configured(engine, before=configured(engine, "admin"))
    before = driver.snapshot()
    for command in ("/uitstappen", "/vergeetmij"):
        out = driver.say("admin", command)
        assert out.startswith(f"[dm admin] {LAST}"), out
        assert (
            "in group.coordinators in bot.toml te zetten (bijvoorbeeld telegram:123456789)" in out
        )
        assert driver.snapshot() == before
    assert "Je bent de laatste coördinator van LETS Durme" in driver.say("admin", "/leave")
    assert "is niet gestopt" in driver.say("admin", "/vergeet 1")  # only closed accounts
    assert driver.snapshot() == before
    engine.dispose()


def test_of_two_coordinators_who_leave_together_the_second_is_refused(db_url: str) -> None:
    engine = make_engine(db_url)
    driver = configured(engine, before=configured(engine, "admin", "co"))
    assert "(1) Ja  (2) Nee" in driver.say("admin", "/uitstappen")
    assert "(1) Ja  (2) Nee" in driver.say("co", "/vergeetmij")  # both asked while two
    assert "Je rekening bij LETS Durme is gesloten." in driver.say("admin", "ja")
    before = driver.snapshot()
    assert driver.say("co", "ja").startswith(f"[dm co] {LAST}")
    after = driver.snapshot()
    assert {k: v for k, v in after.items() if k != "pending"} == {
        k: v for k, v in before.items() if k != "pending"
    }
    # Refused is final: the question is closed, a later "ja" changes nothing.
    assert "Er staat geen vraag voor je open" in driver.say("co", "ja")
    engine.dispose()


def test_a_configured_coordinator_is_told_to_be_taken_out_of_the_settings_first(
    driver: Driver,
) -> None:
    driver.member("an")
    before = driver.snapshot()
    assert "Je staat als coördinator in de instellingen van de bot" in driver.say(
        "admin", "/uitstappen"
    )
    assert driver.snapshot() == before


@pytest.mark.parametrize("balance", [0, 30])
def test_a_configured_coordinator_whose_account_closed_comes_back(
    engine: Engine, balance: int
) -> None:
    first = configured(engine, "admin", "co")
    first.member("an")
    if balance:
        first.say("an", f"/betaal 2 {balance} soep")
        first.say("an", "ja")
    # co was a coordinator, was left out of the configuration, and left.
    later = configured(engine, "admin", before=first)
    later.say("co", "/uitstappen")
    left = later.say("co", "ja")
    assert ("is gesloten" if balance == 0 else "Je stapt uit") in left
    assert status(engine, "co") == ("inactive" if balance == 0 else "leaving")
    # Named in the configuration again: an active coordinator from the next message.
    again = configured(engine, "admin", "co", before=later)
    assert f"Je saldo: {balance} pluimen" in again.say("co", "/saldo")
    assert "co (DU-002) (coördinator)" in again.say("co", "/leden")
    assert "Voor coördinatoren:" in again.say("co", "/hulp")
    assert status(engine, "co") == "active"


def test_a_configured_coordinator_who_was_forgotten_starts_afresh(engine: Engine) -> None:
    later = configured(engine, "admin", before=configured(engine, "admin", "co"))
    later.say("co", "/uitstappen")
    later.say("co", "ja")
    later.say("admin", "/vergeet 2")
    assert "is vergeten" in later.say("admin", "ja")
    again = configured(engine, "admin", "co", before=later)
    assert "co (DU-003) (coördinator)" in again.say("co", "/leden")


def test_candidates_who_applied_before_any_coordinator_wrote_are_shown_to_the_first(
    driver: Driver,
) -> None:
    driver.say("an", "/aanmelden An Peeters")  # no coordinator has written yet: no one is told
    driver.say("bo", "/aanmelden Bo Janssens")
    out = driver.say("admin", "/saldo")
    assert "[dm admin] Kandidaten die wachten op een onthaalgesprek (2):" in out
    assert "An Peeters (DU-001)" in out and "Bo Janssens (DU-002)" in out
    assert "Na het gesprek: /goedkeuren DU-001 of /weigeren DU-001" in out
    assert "Kandidaten" not in driver.say("admin", "/saldo")  # once, on the first message


def test_candidates_lists_who_waits(driver: Driver) -> None:
    driver.say("admin", "/start")
    assert driver.say("admin", "/kandidaten") == "[dm admin] Er wachten geen kandidaten."
    driver.say("an", "/aanmelden An Peeters")
    out = driver.say("admin", "/kandidaten", group=True)  # answered privately
    assert out.startswith("[dm admin] Kandidaten die wachten op een onthaalgesprek (1):")
    assert "An Peeters (DU-002)" in out
    assert "Je aanvraag is nog niet goedgekeurd" in driver.say("an", "/kandidaten")
    driver.say("admin", "/lang en")
    english = driver.say("admin", "/candidates")
    assert "Candidates waiting for their intake talk (1)" in english
