"""Which question an answer belongs to, and that it is applied once.

A question belongs to the chat it was asked in: a typed answer only answers
the asked person's open question there, a button, reaction or reply
(``Incoming.answers``) and ``/ja 12`` answer exactly their question, and of
two answers to one question at the same moment exactly one applies. Through
the console driver on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import text

from adapters.console import render
from letsbot.dispatcher import Bot
from letsbot.domain import Identity
from letsbot.markup import to_plain
from letsbot.messages import Chat, ChatKind, Incoming, Outcome, Result, ToAllGroups
from storage.database import make_engine
from storage.uow import SqlUnitOfWork
from tests.support import Driver, make_settings

ALREADY = "Die vraag is net al beantwoord."
ANSWERED_YES = "Vraag #1 is al beantwoord met Ja."


@pytest.fixture
def club(db_url: str) -> Iterator[Driver]:
    """admin DU-001 (coordinator), alice DU-002, bob DU-003; all Dutch."""
    engine = make_engine(db_url)
    driver = Driver(engine, make_settings())
    driver.member("alice")
    driver.member("bob")
    yield driver
    engine.dispose()


def ask(club: Driver, name: str, command: str, *, group: bool = False) -> int:
    """``name`` sends ``command``; the number of the question it put (the newest)."""
    result = club.send(club.incoming(name, command, group=group))
    assert result.outcome is Outcome.APPLIED, shown(result)
    with club.engine.connect() as connection:
        newest = connection.execute(text("SELECT max(id) FROM pending")).scalar_one()
        connection.rollback()
    return int(newest)


def shown(result: Result) -> str:
    return "\n".join(render(o) for o in result.replies)


def pending(club: Driver) -> dict[int, str]:
    """Every question's status, by number."""
    with club.engine.connect() as connection:
        rows = connection.execute(text("SELECT id, status FROM pending")).all()
        connection.rollback()
    return {row.id: row.status for row in rows}


def transfers(club: Driver) -> list[tuple[int, int, int]]:
    """(payer number, receiver number, amount) of every transfer, in order."""
    with club.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT p.number, r.number, t.amount FROM transfers t"
                " JOIN members p ON p.id = t.payer_id JOIN members r ON r.id = t.receiver_id"
                " ORDER BY t.id"
            )
        ).all()
        connection.rollback()
    return [tuple(row) for row in rows]


_presses = iter(range(1, 1_000_000))


def press(name: str, yes: bool, question: int, *, group: bool = False) -> Incoming:
    """A tap on a question's Ja or Nee button, as the Telegram adapter hands it over
    (a Matrix reaction 👍/👎 differs only in its event id): the word typed by the
    presser in the chat where the button is, naming the question it belongs to."""
    chat = Chat("console", "group" if group else name, ChatKind.GROUP if group else ChatKind.DIRECT)
    return Incoming(
        platform="console",
        event_id=f"cb:{next(_presses)}",
        chat=chat,
        sender=Identity("console", name),
        sender_name=name,
        text="ja" if yes else "nee",
        answers=question,
    )


# --- 1. a question belongs to its chat --------------------------------------------------


def test_a_ja_in_the_group_answers_only_the_question_asked_there(club: Driver) -> None:
    mine = ask(club, "alice", "/betaal DU-003 10 koffie", group=True)
    theirs = ask(club, "bob", "/vraagbetaling DU-002 40 fietsherstelling")

    # Bob's request is newer, but it waits in Alice's direct chat: her "ja" in the
    # group is about her own payment.
    out = club.say("alice", "ja", group=True)
    assert "Geboekt: #1: Alice (DU-002) → Bob (DU-003), 10 pluimen, koffie" in out
    assert transfers(club) == [(2, 3, 10)]
    assert pending(club) == {mine: "accepted", theirs: "open"}

    # In her direct chat Bob's request is the only question: "ja" books it.
    out = club.say("alice", "ja")
    assert "Geboekt: #2: je betaalde 40 pluimen aan Bob (DU-003) voor fietsherstelling." in out
    assert transfers(club) == [(2, 3, 10), (2, 3, 40)]
    assert pending(club) == {mine: "accepted", theirs: "accepted"}


# --- 2. in a group only unmistakable words count --------------------------------------


def test_a_bare_ja_in_the_group_hours_later_pays_nothing(club: Driver) -> None:
    """Asked at ten, a "ja" at six answers someone's chat question, or is a vote's "1"."""
    question = ask(club, "alice", "/betaal bob 200 tuinwerk", group=True)
    club.advance(club.clock.now() + timedelta(hours=8))
    before = club.snapshot()
    out = club.say("alice", "ja", group=True)
    assert "[group]" not in out
    assert "[dm alice] Je “ja” of “nee” in de groep telt niet meer" in out
    assert club.say("alice", "1", group=True) == ""  # a bare "1" in a group answers nothing
    assert club.snapshot() == before
    # A reply to the question, its button, or /ja with its number still answer it.
    assert "Geboekt" in club.say("alice", f"/ja {question}", group=True)


def test_a_question_mark_makes_no_answer(club: Driver) -> None:
    ask(club, "bob", "/vraagbetaling alice 50 soep")
    before = club.snapshot()
    for said in ("ja?", "ja ??", "ok?", "👍?", "1?", "nee?"):
        assert "Antwoord met Ja of Nee" in club.say("alice", said), said
    assert club.snapshot() == before


def test_a_ja_in_private_doesnt_pay_a_request_that_slipped_in_after_ones_own(
    club: Driver,
) -> None:
    ask(club, "alice", "/betaal bob 10 brood", group=True)
    ask(club, "bob", "/vraagbetaling alice 300 x")
    before = club.snapshot()
    out = club.say("alice", "ja")
    assert "Er staat ook een vraag van jou open in de groep. Welke bedoel je?" in out
    assert "Betalen?" in out  # the request, shown with its own number to answer
    assert club.snapshot() == before


def test_the_same_request_again_says_it_was_just_paid(club: Driver) -> None:
    ask(club, "bob", "/vraagbetaling alice 30 soep")
    assert "Geboekt" in club.say("alice", "ja")
    club.say("bob", "/vraagbetaling alice 30 soep")
    assert club.last is not None
    asked = [to_plain(r.text) for r in club.last.replies if r.question is not None]
    assert asked and asked[0].startswith("Je betaalde Bob (DU-003) net al 30 pluimen"), asked


def test_conversation_in_the_group_answers_nothing(club: Driver) -> None:
    question = ask(club, "alice", "/betaal DU-003 30 soep", group=True)
    before = club.snapshot()
    result = club.send(club.incoming("alice", "ok", group=True))
    assert (result.outcome, result.replies) == (Outcome.IGNORED, [])
    assert club.snapshot() == before
    assert pending(club) == {question: "open"}

    # Declined there, asked again privately: a "ja" in the group answers
    # nothing and says nothing.
    club.send(club.incoming("alice", "nee", group=True))
    private = ask(club, "alice", "/betaal DU-003 30 soep")
    before = club.snapshot()
    result = club.send(club.incoming("alice", "ja", group=True))
    assert result.replies == []
    assert result.outcome is Outcome.IGNORED
    assert club.snapshot() == before
    assert transfers(club) == []
    assert pending(club) == {question: "declined", private: "open"}


# --- 3. several questions in one chat ----------------------------------------------


def test_two_questions_in_one_chat_are_answered_by_number(club: Driver) -> None:
    first = ask(club, "bob", "/vraagbetaling DU-002 40 fietsherstelling")
    second = ask(club, "admin", "/vraagbetaling DU-002 25 eieren")
    before = club.snapshot()

    # A bare "ja" could mean either: the bot asks which, shows both, books nothing.
    result = club.send(club.incoming("alice", "ja"))
    assert result.outcome is Outcome.WHICH
    out = shown(result)
    assert "[dm alice] Er staan hier 2 vragen voor je open. Welke bedoel je?" in out
    assert f"Vraag {first}: Bob (DU-003) vraagt 40 pluimen van je" in out
    assert f"Vraag {second}: admin (DU-001) vraagt 25 pluimen van je" in out
    assert [o.question for o in result.replies if o.question] == [first, second]
    assert club.snapshot() == before

    # Someone else's question: refused, nothing changes.
    result = club.send(club.incoming("bob", f"/ja {second}"))
    assert result.outcome is Outcome.REFUSED
    assert "Die vraag is niet aan jou gesteld. Er is niets gebeurd." in shown(result)
    assert club.snapshot() == before

    # Alice's own question, but typed in the group while it waits in her direct chat.
    result = club.send(club.incoming("alice", f"/ja {second}", group=True))
    assert result.outcome is Outcome.REFUSED
    assert "Die vraag stelde ik je in je privégesprek met mij: antwoord daar" in shown(result)
    assert club.snapshot() == before

    # By number, in her direct chat: exactly that one.
    out = club.say("alice", f"/ja {second}")
    assert "Geboekt: #1: je betaalde 25 pluimen aan admin (DU-001) voor eieren." in out
    assert transfers(club) == [(2, 1, 25)]
    assert pending(club) == {first: "open", second: "accepted"}


# --- 4. a button, reaction or reply answers exactly its question --------------------


@pytest.mark.parametrize("group", [False, True], ids=["direct", "group"])
def test_a_button_answers_its_own_question_not_the_newest(club: Driver, group: bool) -> None:
    if group:
        older = ask(club, "alice", "/betaal DU-003 40 fiets", group=True)
    else:
        older = ask(club, "bob", "/vraagbetaling DU-002 40 fiets")
    # The buttons under the question's message name it (adapters key them on this).
    assert club.last is not None
    assert [o.question for o in club.last.replies if o.asked] == [older]
    # Newer, in her direct chat (in a group each member has one open question at most:
    # their own, and a new one of their own replaces it).
    newer = ask(club, "admin", "/vraagbetaling DU-002 25 eieren")
    result = club.send(press("alice", True, older, group=group))
    assert result.outcome is Outcome.APPLIED
    assert result.answered == older
    assert "Geboekt: #1: je betaalde 40 pluimen aan Bob (DU-003) voor fiets." in shown(result)
    assert transfers(club) == [(2, 3, 40)]
    assert pending(club) == {older: "accepted", newer: "open"}


def test_a_reply_to_an_older_question_answers_that_one(club: Driver) -> None:
    older = ask(club, "bob", "/vraagbetaling DU-002 40 fiets")
    newer = ask(club, "admin", "/vraagbetaling DU-002 25 eieren")
    # As the Matrix and Telegram adapters hand over a reply to the question's message.
    reply = dataclasses.replace(club.incoming("alice", "nee"), answers=older)
    result = club.send(reply)
    assert (result.outcome, result.answered) == (Outcome.APPLIED, older)
    assert "[dm bob] Alice (DU-002) heeft je betaalverzoek geweigerd." in shown(result)
    assert pending(club) == {older: "declined", newer: "open"}
    assert transfers(club) == []


# --- 5. a double tap ----------------------------------------------------------------------


def test_a_double_tap_books_once(club: Driver) -> None:
    question = ask(club, "alice", "/betaal DU-003 30 soep", group=True)
    first = club.send(press("alice", True, question, group=True))
    assert first.outcome is Outcome.APPLIED
    assert "Geboekt: #1" in shown(first)
    before = club.snapshot()
    second = club.send(press("alice", True, question, group=True))
    assert second.outcome is Outcome.REFUSED
    assert ANSWERED_YES in shown(second)
    assert club.snapshot() == before
    assert transfers(club) == [(2, 3, 30)]


# --- 6. two answers at the same moment: exactly one applies -----------------------------


@dataclass(frozen=True)
class Race:
    """A question for ``who``, put by ``ask``; ``check`` sees what both answers said."""

    who: str
    ask: Callable[[Driver], None]
    check: Callable[[Driver, list[str]], None]


def _count(lines: list[str], fragment: str) -> int:
    return sum(fragment in line for line in lines)


def _ask_pay(club: Driver) -> None:
    club.say("alice", "/betaal DU-003 30 soep")


def _check_pay(club: Driver, lines: list[str]) -> None:
    assert transfers(club) == [(2, 3, 30)]
    assert _count(lines, "[dm bob] Geboekt: #1") == 1


def _ask_request(club: Driver) -> None:
    club.say("bob", "/vraagbetaling DU-002 30 fiets")


def _check_request(club: Driver, lines: list[str]) -> None:
    assert transfers(club) == [(2, 3, 30)]
    assert _count(lines, "[dm bob] Geboekt: #1") == 1


def _ask_book(club: Driver) -> None:
    club.say("admin", "/boeken DU-002 DU-003 30 tuinwerk")


def _check_book(club: Driver, lines: list[str]) -> None:
    assert transfers(club) == [(2, 3, 30)]
    assert _count(lines, "[dm alice] Geboekt door admin (DU-001): #1") == 1


def _ask_reverse(club: Driver) -> None:
    club.say("alice", "/betaal DU-003 30 soep")
    club.say("alice", "ja")
    club.say("admin", "/terugboeken 1 verkeerd lid")


def _check_reverse(club: Driver, lines: list[str]) -> None:
    assert transfers(club) == [(2, 3, 30), (3, 2, 30)]
    assert (club.balance("alice"), club.balance("bob")) == (0, 0)


def _ask_leave(club: Driver) -> None:
    club.say("alice", "/uitstappen")


def _check_leave(club: Driver, lines: list[str]) -> None:
    assert _count(lines, "[dm admin] Alice (DU-002) stapt uit") == 1
    assert _count(lines, "[dm alice] Je rekening bij LETS Durme is gesloten") == 1


def _ask_forget(club: Driver) -> None:
    club.say("bob", "/betaal DU-002 30 soep")
    club.say("bob", "ja")
    club.say("alice", "/vergeetmij")  # the 30 she holds goes to the group account


def _check_forget(club: Driver, lines: list[str]) -> None:
    assert transfers(club) == [(3, 2, 30), (2, 0, 30)]
    assert _count(lines, "[dm admin] Een lid vroeg om vergeten te worden") == 1


def _ask_event(club: Driver) -> None:
    club.say("admin", "/activiteit nieuw markt 12/12 10:00-16:00 Kerstmarkt @ Buurthuis")


def _check_event(club: Driver, lines: list[str]) -> None:
    assert club.count("events") == 1
    assert _count(lines, "[group] Nieuwe activiteit: Markt #1: Kerstmarkt") == 1


def _ask_bulk(club: Driver) -> None:
    club.say("admin", "/massa kas aan iedereen 10 nieuwjaar")


def _check_bulk(club: Driver, lines: list[str]) -> None:
    assert transfers(club) == [(0, 1, 10), (0, 2, 10), (0, 3, 10)]
    assert _count(lines, "[dm alice] Massabetaling #1") == 1
    assert _count(lines, "[group] Massabetaling #1") == 1


RACES = {
    "pay": Race("alice", _ask_pay, _check_pay),
    "request": Race("alice", _ask_request, _check_request),
    "book": Race("admin", _ask_book, _check_book),
    "reverse": Race("admin", _ask_reverse, _check_reverse),
    "leave": Race("alice", _ask_leave, _check_leave),
    "forget": Race("alice", _ask_forget, _check_forget),
    "event": Race("admin", _ask_event, _check_event),
    "bulk": Race("admin", _ask_bulk, _check_bulk),
}


@pytest.mark.parametrize("action", list(RACES))
def test_two_answers_at_the_same_moment_apply_once(club: Driver, action: str) -> None:
    """Two bots on one database get a "ja" and a tap on Ja for one question at once."""
    race = RACES[action]
    race.ask(club)
    with club.engine.connect() as connection:
        question = connection.execute(
            text("SELECT id, action FROM pending WHERE status = 'open'")
        ).one()
        connection.rollback()
    assert question.action == action
    engine = make_engine(str(club.engine.url.render_as_string(hide_password=False)))
    try:
        bots = [club.bot, Bot(club.settings, SqlUnitOfWork(engine), club.clock)]
        for bot in bots:  # connected before the race, so both start at once
            with bot.uow.transaction():
                pass
        answers = [club.incoming(race.who, "ja"), press(race.who, True, question.id)]
        barrier = threading.Barrier(2, timeout=30)
        results: list[Result | None] = [None, None]

        def answer(index: int) -> None:
            barrier.wait()
            results[index] = bots[index].handle(answers[index])

        threads = [threading.Thread(target=answer, args=(i,)) for i in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        engine.dispose()
    done = [r for r in results if r is not None]
    assert len(done) == 2
    lines = [render(o) for r in done for o in r.replies]
    race.check(club, lines)
    assert sum(isinstance(o.target, ToAllGroups) for r in done for o in r.replies) == (
        1 if action in ("event", "bulk") else 0
    )
    outcomes = sorted(r.outcome for r in done)
    assert outcomes == [Outcome.APPLIED, Outcome.REFUSED], lines
    applied = next(r for r in done if r.outcome is Outcome.APPLIED)
    assert applied.answered == question.id
    refused = next(r for r in done if r.outcome is Outcome.REFUSED)
    said = to_plain(refused.replies[0].text)
    # One forgotten a moment ago is a stranger now: their "ja" is asked for a name.
    assert said.startswith(
        (ALREADY, "Vraag #", "Er staat geen vraag voor je open", "Fijn! Hoe heet")
    ), said
    if action == "forget":  # the questions about a forgotten member go with them
        assert question.id not in pending(club)
    else:
        assert pending(club)[question.id] == "accepted"
