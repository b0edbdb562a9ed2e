"""Members answer and type as people do: "ja hoor", "nee dank je", "/betalen".

An open question takes every common way to say yes or no in a direct chat;
anything else there gets "Antwoord met Ja of Nee", never "only commands". A
mistyped command gets the command it most likely meant, with an example.
A group keeps its strict words (tests/test_consent.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from letsbot.questions import parse_answer
from storage.database import make_engine
from tests.support import Driver, make_settings

YES = [
    "ja", "Ja", "JA", "jaa", "ja hoor", "Ja hoor!", "ja graag", "ja, graag", "ja ja", "jep",
    "jawel", "oké", "ok", "OK dank je wel", "okay", "goed", "goed zo", "prima", "zeker",
    "akkoord", "doe maar", "is goed", "👍", "yes", "yes please", "yep", "1",
]  # fmt: skip
NO = [
    "nee", "Nee", "neen", "nee hoor", "Nee hoor.", "nee dank je", "nee, bedankt", "nee nee",
    "annuleer", "annuleren", "stop", "laat maar", "liever niet", "niet doen", "👎", "no",
    "no thanks", "nope", "cancel", "2", "nee, toch niet", "neen sorry", "nee, vergissing",
]  # fmt: skip
NEITHER = [
    "hallo", "ja maar ik wil 40", "ja nee", "misschien", "wat?", "ik betaal morgen", "30",
    "jan", "neeja", "ja ik weet het niet zo goed eigenlijk",
]  # fmt: skip


@pytest.mark.parametrize("said", YES)
def test_yes_as_people_say_it(said: str) -> None:
    assert parse_answer(said) is True


@pytest.mark.parametrize("said", NO)
def test_no_as_people_say_it(said: str) -> None:
    assert parse_answer(said) is False


@pytest.mark.parametrize("said", NEITHER)
def test_no_answer_is_guessed(said: str) -> None:
    assert parse_answer(said) is None


@pytest.mark.parametrize("said", ["ja hoor", "ok", "👍", "nee dank je", "stop", "graag"])
def test_a_group_keeps_its_strict_words(said: str) -> None:
    assert parse_answer(said, in_group=True) is None


@pytest.fixture
def club(db_url: str) -> Iterator[Driver]:
    """admin DU-001, an DU-002, jan DU-003; all Dutch."""
    engine = make_engine(db_url)
    driver = Driver(engine, make_settings())
    driver.member("an")
    driver.member("jan")
    yield driver
    engine.dispose()


def transfers(engine: Engine) -> int:
    with engine.connect() as connection:
        count = connection.execute(text("SELECT count(*) FROM transfers")).scalar_one()
        connection.rollback()
    return int(count)


@pytest.mark.parametrize(("said", "booked"), [("ja hoor", 1), ("jep", 1), ("nee dank je", 0)])
def test_a_plain_answer_books_or_cancels(club: Driver, said: str, booked: int) -> None:
    club.say("an", "/betaal DU-003 5 soep")
    reply = club.say("an", said)
    assert transfers(club.engine) == booked
    assert reply.startswith("[dm an] Geboekt" if booked else "[dm an] Geannuleerd")


def test_other_words_while_a_question_is_open_ask_for_ja_or_nee(club: Driver) -> None:
    club.say("an", "/betaal DU-003 5 soep")
    assert club.say("an", "hallo?") == (
        "[dm an] Er staat nog een vraag voor je open:\n"
        "  Betaal 5 pluimen aan Jan (DU-003) voor: soep?\n"
        "  Antwoord met Ja of Nee."
    )
    assert transfers(club.engine) == 0
    assert club.say("an", "ja").startswith("[dm an] Geboekt")  # still open, still answerable


def test_without_an_open_question_other_words_point_at_commands(club: Driver) -> None:
    assert club.say("an", "ik betaal morgen").startswith("[dm an] Dat is de opdracht /betaal.")
    assert club.say("an", "ik weet het niet").startswith("[dm an] Dat begrijp ik niet goed.")


def test_a_plain_answer_in_a_group_stays_conversation(club: Driver) -> None:
    club.say("an", "/betaal DU-003 5 soep", group=True)
    assert club.say("an", "ja hoor", group=True) == ""
    assert transfers(club.engine) == 0


@pytest.mark.parametrize(
    ("typed", "meant", "example"),
    [
        ("/betalne DU-003 5 soep", "/betaal", "/betaal DU-"),
        ("/betaa DU-003 5 soep", "/betaal", "/betaal DU-"),
        ("/saldoo", "/saldo", "/saldo"),
        ("/Overzichtt", "/overzicht", "/overzicht"),
        ("/ik kom 1", "/ikkom", "/ikkom"),  # the words of a command typed apart
        ("/ik kom niet 1", "/ikkomniet", "/ikkomniet"),
    ],
)
def test_a_mistyped_command_gets_the_one_meant(
    club: Driver, typed: str, meant: str, example: str
) -> None:
    word = typed.split()[0]
    reply = club.say("an", typed)
    assert reply.startswith(f"[dm an] Die opdracht ken ik niet: {word}. Bedoel je {meant}? ")
    assert f"Bijvoorbeeld: {example}" in reply
    assert transfers(club.engine) == 0


def test_a_member_is_not_pointed_at_a_coordinators_command(club: Driver) -> None:
    reply = club.say("an", "/goedkeure 3")
    assert reply == "[dm an] Die opdracht ken ik niet: /goedkeure. Stuur /hulp voor de lijst."


def test_an_english_member_gets_the_english_word(club: Driver) -> None:
    club.member("kim", "Kim", language="en")
    reply = club.say("kim", "/balanse")
    assert reply.startswith("[dm kim] I don't know that command: /balanse. Did you mean /balance?")


def test_nothing_close_gets_the_list(club: Driver) -> None:
    assert club.say("an", "/xyzzy") == (
        "[dm an] Die opdracht ken ik niet: /xyzzy. Stuur /hulp voor de lijst."
    )


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("saldo", "/saldo"),
        ("Saldo", "/saldo"),
        ("Saldo?", "/saldo"),
        ("wat is mijn saldo", "/saldo"),
        ("betaal 3 5 soep", "/betaal 3 5 soep"),
        ("betaal lies 30 voor soep", "/betaal lies 30 voor soep"),
        ("vraag fiets", "/vraag fiets"),
        ("taal engels", "/taal engels"),
    ],
)
def test_a_command_without_its_slash_is_pointed_at(club: Driver, typed: str, meant: str) -> None:
    reply = club.say("an", typed)
    word = meant.split()[0]
    assert reply.startswith(f"[dm an] Dat is de opdracht {word}. Typ ze met een / vooraan, zo:\n  ")
    assert reply.endswith(meant) or " " not in meant  # their own words, with the slash
    assert transfers(club.engine) == 0  # shown, not run: "vraag ..." would post to the group
    assert club.count("listings") == 0


@pytest.mark.parametrize("typed", ["help", "hulp", "Hulp?"])
def test_help_without_its_slash_is_the_help(club: Driver, typed: str) -> None:
    assert club.say("an", typed).startswith("[dm an] Opdrachten van LETS Durme:")


def test_a_coordinators_word_without_slash_is_not_suggested_to_a_member(club: Driver) -> None:
    assert club.say("an", "goedkeuren 3").startswith("[dm an] Dat begrijp ik niet goed.")


def test_a_slash_with_a_space_is_the_command(club: Driver) -> None:
    assert club.say("an", "/ saldo") == club.say("an", "/saldo")


@pytest.mark.parametrize("said", ["hallo", "ik wil meedoen", "Goedendag, hoe werkt dit?"])
def test_a_strangers_first_words_get_the_welcome(club: Driver, said: str) -> None:
    assert club.say("lies", said) == club.say("lies", "/start")
    assert club.say("lies", said).startswith("[dm lies] Welkom bij")


@pytest.mark.parametrize(
    "typed", ["Maria Janssens", "maria janssens", "Jan De Smet", "Élise Van den Broeck"]
)
def test_a_name_typed_alone_by_a_stranger_offers_to_join_with_it(club: Driver, typed: str) -> None:
    before = club.snapshot()
    assert club.say("maria", typed) == (
        f"[dm maria] Wil je lid worden als {typed}? Antwoord dan met Ja, of stuur:\n  /aanmelden {typed}"
    )
    assert club.last is not None
    assert [(c.label, c.answer) for c in club.last.replies[0].choices] == [
        (f"Aanmelden als {typed}", f"/aanmelden {typed}")
    ]
    assert club.snapshot() == before  # nothing until the command is sent or tapped


def test_a_stranger_who_says_ja_to_the_welcome_is_asked_their_name(club: Driver) -> None:
    club.say("maria", "hallo")
    assert "Hoe heet je? Typ je voor- en achternaam" in club.say("maria", "ja hoor")
    assert "Er staat geen vraag voor je open" in club.say("maria", "nee")


def test_a_name_introduced_in_words_is_the_name(club: Driver) -> None:
    assert "Dank je, Jos De Smet!" in club.say("jos", "/aanmelden ik ben Jos De Smet")
    assert "Thank you, Ann Lee!" in club.say("ann", "/join my name is Ann Lee")


@pytest.mark.parametrize("said", ["hallo", "Hallo!", "hoe werkt dat?", "dag allemaal"])
def test_a_members_greeting_gets_the_short_list(club: Driver, said: str) -> None:
    out = club.say("an", said)
    assert "Zo werkt het:" in out and "/saldo" in out, out


@pytest.mark.parametrize("said", ["dank je wel!", "Bedankt", "merci", "dank u"])
def test_thanks_get_a_kind_word(club: Driver, said: str) -> None:
    before = club.snapshot()
    assert club.say("an", said) == "[dm an] Graag gedaan!"
    assert club.snapshot() == before


def test_a_stranger_in_a_group_is_conversation(club: Driver) -> None:
    assert club.say("lies", "hallo allemaal", group=True) == ""


@pytest.fixture
def neighbours(db_url: str) -> Iterator[Driver]:
    """admin DU-001; Lies Peeters DU-002, Jan De Smet DU-003, Jan Peeters DU-004,
    Anne-Marie Vermeulen DU-005, Élise Van den Broeck DU-006; all Dutch."""
    engine = make_engine(db_url)
    driver = Driver(engine, make_settings())
    for name, full in [
        ("lies", "Lies Peeters"),
        ("jan", "Jan De Smet"),
        ("jp", "Jan Peeters"),
        ("am", "Anne-Marie Vermeulen"),
        ("el", "Élise Van den Broeck"),
    ]:
        driver.member(name, full)
    yield driver
    engine.dispose()


@pytest.mark.parametrize(
    ("typed", "who"),
    [
        ("Lies", "Lies Peeters (DU-002)"),
        ("lies", "Lies Peeters (DU-002)"),
        ("LIES,", "Lies Peeters (DU-002)"),
        ("@lies", "Lies Peeters (DU-002)"),
        ("smet", "Jan De Smet (DU-003)"),
        ("De Smet", "Jan De Smet (DU-003)"),
        ("jan de smet", "Jan De Smet (DU-003)"),
        ("Anne-Marie", "Anne-Marie Vermeulen (DU-005)"),
        ("anne", "Anne-Marie Vermeulen (DU-005)"),
        ("marie vermeulen", "Anne-Marie Vermeulen (DU-005)"),
        ("Peeters Jan", "Jan Peeters (DU-004)"),  # the last name first, as lists write it
        ("peeters lies", "Lies Peeters (DU-002)"),
        ("elise", "Élise Van den Broeck (DU-006)"),
        ("broeck", "Élise Van den Broeck (DU-006)"),
        ("van den broeck", "Élise Van den Broeck (DU-006)"),
    ],
)
def test_a_member_is_found_by_name(neighbours: Driver, typed: str, who: str) -> None:
    payer = "lies" if "Anne-Marie" in who else "am"
    out = neighbours.say(payer, f"/betaal {typed} 30 soep")
    assert f"aan {who} voor: soep?" in out


def test_a_named_payment_books_the_named_member_and_keeps_the_description(
    neighbours: Driver,
) -> None:
    neighbours.say("am", "/betaal Jan De Smet 30 verse soep")
    out = neighbours.say("am", "ja")
    assert "Jan De Smet (DU-003)" in out and "verse soep" in out
    assert neighbours.balance("jan") == 30 and neighbours.balance("jp") == 0


def test_several_members_with_a_name_are_listed_with_their_codes(neighbours: Driver) -> None:
    before = neighbours.snapshot()
    out = neighbours.say("lies", "/betaal jan 30 soep")
    assert out == (
        "[dm lies] Er zijn 2 leden die jan heten. Welke bedoel je?"
        " Stuur de juiste opdracht (of tik erop):\n"
        "  /betaal DU-003 30 soep (Jan De Smet)\n"
        "  /betaal DU-004 30 soep (Jan Peeters)"
    )
    assert neighbours.last is not None
    (refused,) = neighbours.last.replies
    assert [(c.label, c.answer) for c in refused.choices] == [
        ("Jan De Smet (DU-003)", "/betaal DU-003 30 soep"),
        ("Jan Peeters (DU-004)", "/betaal DU-004 30 soep"),
    ]
    assert neighbours.snapshot() == before
    # The code alone, as if answering the question: what to put before it.
    assert "Zet de opdracht ervoor, bijvoorbeeld:\n  /betaal DU-003 30 soep" in (
        neighbours.say("lies", "DU-003")
    )
    # Tapping one runs it as typed: the payment is asked, nothing else.
    assert neighbours.snapshot() == before
    assert "Jan De Smet (DU-003)" in neighbours.say("lies", "/betaal DU-003 30 soep")
    # In the group: the list of commands, no buttons there for anyone to press.
    neighbours.say("lies", "nee")
    neighbours.say("lies", "/betaal jan 30 soep", group=True)
    assert neighbours.last is not None
    assert all(not reply.choices for reply in neighbours.last.replies)
    # Lies Peeters who types "peeters" means the other Peeters; An doesn't know which.
    assert "aan Jan Peeters (DU-004)" in neighbours.say("lies", "/betaal peeters 30 soep")
    assert "Er zijn 2 leden die peeters heten" in neighbours.say("am", "/betaal peeters 30 soep")


def test_several_with_a_whole_name_get_commands_that_work(neighbours: Driver) -> None:
    neighbours.say("dup", "/aanmelden Lies Peeters")  # a candidate with Lies's name, DU-007
    # A candidate is no one to pay yet: Lies is meant.
    assert "aan Lies Peeters (DU-002)" in neighbours.say("am", "/betaal lies peeters 5 soep")
    neighbours.say("am", "nee")
    # A coordinator approving by that name means the candidate.
    assert "is nu lid" in neighbours.say("admin", "/goedkeuren lies peeters")
    out = neighbours.say("am", "/betaal lies peeters 5 soep")
    assert "/betaal DU-002 5 soep (Lies Peeters)" in out
    assert "/betaal DU-007 5 soep (Lies Peeters)" in out
    assert "Lies Peeters (DU-002)" in neighbours.say("am", "/betaal DU-002 5 soep")


def test_the_group_account_by_its_whole_name(neighbours: Driver) -> None:
    assert "aan Groepsrekening (DU-000)" in neighbours.say("am", "/betaal groepsrekening 5 x")
    neighbours.say("am", "nee")
    assert "aan Groepsrekening (DU-000)" in neighbours.say("am", "/betaal Group account 5 x")
    neighbours.say("am", "nee")
    for nickname in ("kas", "groep", "Groepskas"):  # as /massa names it; no member may be called so
        assert "aan Groepsrekening (DU-000)" in neighbours.say("am", f"/betaal {nickname} 5 x")
        neighbours.say("am", "nee")
    assert "Ik weet niet welk lid je bedoelt met groeps" in neighbours.say(
        "am", "/betaal groeps 5 x"
    )


def test_a_mistyped_name_gets_the_closest_names(neighbours: Driver) -> None:
    before = neighbours.snapshot()
    out = neighbours.say("am", "/betaal Lise 30 soep")
    assert "Ik weet niet welk lid je bedoelt met Lise" in out
    assert "Bedoel je" in out and "Lies Peeters (DU-002)" in out
    assert neighbours.snapshot() == before
    out = neighbours.say("am", "/betaal zorro 30 soep")
    assert "Ik weet niet welk lid je bedoelt met zorro" in out and "Bedoel je" not in out


@pytest.mark.parametrize("typed", ["de", "van", "den", "Van den"])
def test_a_surname_particle_names_no_one(neighbours: Driver, typed: str) -> None:
    out = neighbours.say("lies", f"/betaal {typed} 30 soep")
    assert "Ik weet niet welk lid je bedoelt" in out


def test_names_work_for_balance_messages_and_coordinators(neighbours: Driver) -> None:
    neighbours.say("admin", "/limiet Jan De Smet -200 300")
    assert "Jan De Smet" in neighbours.say("admin", "/saldo jan de smet")
    out = neighbours.say("lies", "/bericht anne hallo, ik breng morgen de soep")
    assert "Anne-Marie Vermeulen" in out
    neighbours.say("admin", "/boeken lies Élise 5 hulp")
    assert "Élise Van den Broeck (DU-006)" in neighbours.say("admin", "ja")
    assert neighbours.balance("el") == 5


def test_a_forgotten_members_old_name_finds_no_one(neighbours: Driver) -> None:
    neighbours.say("el", "/vergeetmij")
    assert "vergeten" in neighbours.say("el", "ja")
    out = neighbours.say("lies", "/betaal elise 5 x")
    assert "Ik weet niet welk lid je bedoelt met elise" in out


@pytest.mark.parametrize(
    ("typed", "amount", "description"),
    [
        ("lies 30 soep", "30 pluimen", "soep"),
        ("lies 30 pluimen soep", "30 pluimen", "soep"),
        ("lies 30 pluim soep", "30 pluimen", "soep"),
        ("lies 30pluimen soep", "30 pluimen", "soep"),
        ("lies 30 Pluimen. soep", "30 pluimen", "soep"),
        ("lies 30,00 soep", "30 pluimen", "soep"),
        ("lies 30,- soep", "30 pluimen", "soep"),
        ("lies 1.000 verhuis", "1.000 pluimen", "verhuis"),
        ("lies 30 voor soep", "30 pluimen", "soep"),
        ("lies 30 voor", "30 pluimen", "voor"),
        ("30 aan lies voor soep", "30 pluimen", "soep"),
        ("30 pluimen aan Lies Peeters voor verse soep", "30 pluimen", "verse soep"),
        ("30 aan jan de smet voor soep", "30 pluimen", "soep"),
        ("30 aan lies soep", "30 pluimen", "soep"),
    ],
)
def test_amounts_as_people_write_them(
    neighbours: Driver, typed: str, amount: str, description: str
) -> None:
    out = neighbours.say("am", f"/betaal {typed}")
    assert f"Betaal {amount} aan " in out and f"voor: {description}?" in out
    assert "euro" not in out


@pytest.mark.parametrize(
    "typed", ["lies €30 soep", "lies € 30 soep", "lies 30€ soep", "lies 30 euro soep"]
)
def test_euros_are_read_as_pluimen_with_a_gentle_word(neighbours: Driver, typed: str) -> None:
    out = neighbours.say("am", f"/betaal {typed}")
    assert "Bij ons betaal je in pluimen, niet in euro. Ik lees het als 30 pluimen." in out
    assert "Betaal 30 pluimen aan Lies Peeters (DU-002) voor: soep?" in out


def test_the_amount_copied_from_a_reply_is_read_as_shown(neighbours: Driver) -> None:
    neighbours.say("admin", "/limiet lies -5000 5000")
    neighbours.say("admin", "/limiet am -5000 5000")
    neighbours.say("am", "/betaal lies 1.500 verhuis")
    assert "1.500 pluimen" in neighbours.say("am", "ja")
    assert neighbours.balance("lies") == 1500


def test_the_directory_filters_on_a_word_and_pages(neighbours: Driver) -> None:
    out = neighbours.say("lies", "/leden peeters")
    assert out.startswith("[dm lies] Leden met “peeters” (2):")
    assert "Lies Peeters (DU-002)" in out and "Jan Peeters (DU-004)" in out
    assert "Jan De Smet" not in out
    assert "Élise Van den Broeck" in neighbours.say("lies", "/leden elise")  # no accents needed
    assert "DU-003" in neighbours.say("lies", "/leden du-003")
    out = neighbours.say("lies", "/leden zorro")
    assert "Ik vind geen lid met “zorro”" in out and neighbours.last is not None
    assert neighbours.last.outcome == "refused"


def test_a_large_directory_is_paged(db_url: str) -> None:
    engine = make_engine(db_url)
    driver = Driver(engine, make_settings())
    driver.say("admin", "/start")
    for n in range(60):
        driver.say(f"p{n}", f"/aanmelden Persoon {chr(65 + n // 26)}{chr(97 + n % 26)}")
        driver.say("admin", f"/goedkeuren DU-{n + 2:03d}")
    first = driver.say("admin", "/leden")
    assert "Pagina 1 van 2. Verder: /leden 2" in first
    assert first.count("\n") == 51  # header, then 50 members, then the way on
    second = driver.say("admin", "/leden 2")
    assert "Persoon Ch" in second and "Verder" not in second  # the 60th
    assert "Pagina 1 van 2. Verder: /leden persoon 2" in driver.say("admin", "/leden persoon")
    engine.dispose()


@pytest.mark.parametrize("typed", ["/start", "/hulp"])
def test_start_and_help_in_the_group_go_privately(neighbours: Driver, typed: str) -> None:
    out = neighbours.say("lies", typed, group=True)
    assert out.startswith("[dm lies] ")
    assert out.endswith("[group] Ik heb je de hulp privé gestuurd.")
    assert out.count("[group]") == 1
