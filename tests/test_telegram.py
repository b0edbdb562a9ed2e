"""The Telegram adapter end to end: the real PTB Application, our composition root
(``app.run.serve``, and ``letsbot run`` itself), a real SQLite database, and a
Bot API server on loopback (tests/telegram_api.py) that plays Telegram and its people.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, text

from adapters.telegram import TEXT_LIMIT, Tuning, split_markup, units
from app.run import build_hub, serve
from letsbot.clock import SystemClock
from letsbot.config import Settings
from letsbot.domain import EventKind
from letsbot.hub import TransportError
from letsbot.i18n import catalog
from letsbot.markup import to_html, to_plain
from letsbot.messages import Outgoing, ToAllGroups
from storage.database import make_engine
from storage.platform import SqlPlatformStore
from storage.uow import SqlUnitOfWork
from tests.support import make_settings
from tests.telegram_api import (
    BOT_USERNAME,
    GROUP_ANONYMOUS_BOT,
    TOKEN,
    FakeTelegram,
    Person,
    Sent,
)

GROUP = -4001
SUPERGROUP = -1004001
OTHER_GROUP = -4999
ANN = Person(100, "Ann", "Coord", username="ann_coord")  # telegram:100 is a coordinator
BOB = Person(200, "Bob", "Peeters", username="bobp")
CATO = Person(300, "Cato", "Janssens")  # no @username
# Telegram's limits, with the per-group window shrunk from a minute to a second.
FAST = Tuning(group_rate=20, group_period=1.0, backoff_start=0.05, backoff_max=0.5)


def settings_for(server: FakeTelegram) -> Settings:
    return make_settings(
        group={"coordinators": ["telegram:100"]},
        telegram={
            "enabled": True,
            "token": TOKEN,
            "base_url": server.base_url,
            "group_chat_ids": [GROUP],
        },
    )


@dataclass
class Harness:
    """The bot as ``letsbot run`` composes it, started and stopped at will."""

    server: FakeTelegram
    engine: Engine
    settings: Settings
    tuning: Tuning = FAST
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def polls(self) -> int:
        return sum(1 for method, _ in self.server.calls if method == "getUpdates")

    async def start(self) -> None:
        before = self.polls()
        self.stop_event = asyncio.Event()
        self.task = asyncio.create_task(
            serve(
                self.settings,
                self.engine,
                SystemClock(),
                self.stop_event,
                tunings={"telegram": self.tuning},
            )
        )
        task = self.task
        await self.server.wait_for(lambda: self.polls() > before or task.done(), timeout=10)
        if task.done():
            task.result()

    async def stop(self) -> None:
        assert self.task is not None
        self.stop_event.set()
        await asyncio.wait_for(self.task, 10)

    # reading the database
    def scalar(self, sql: str, **params: object) -> int:
        with self.engine.connect() as connection:
            value = connection.execute(text(sql), params).scalar_one()
            connection.rollback()
        return int(value)

    def balance(self, person: Person) -> int:
        return self.scalar(
            "SELECT m.balance FROM members m JOIN identities i ON i.member_id = m.id"
            " WHERE i.platform = 'telegram' AND i.user_id = :user_id",
            user_id=str(person.id),
        )

    def payments(self) -> int:
        return self.scalar("SELECT count(*) FROM transfers WHERE kind = 'payment'")

    # conversations
    async def ask(
        self, person: Person, chat_id: int | None, line: str, expect: str, timeout: float = 5.0
    ) -> Sent:
        """``person`` writes ``line``; the bot's next message there that contains ``expect``."""
        where = person.id if chat_id is None else chat_id
        before = len(self.server.sent_to(where))
        self.server.say(person, chat_id, line)
        found = await self.server.wait_for(
            lambda: [s for s in self.server.sent_to(where)[before:] if expect in s.text], timeout
        )
        return found[0]

    async def member(self, person: Person, full_name: str) -> str:
        """``person`` joins in their direct chat and Ann approves them; their member code."""
        await self.ask(person, None, f"/aanmelden {full_name}", "kandidaat-lid")
        notice = await self.server.reply_containing(ANN.id, f"Nieuwe kandidaat: {full_name}")
        match = re.search(r"\((DU-\d+)\)", notice.text)
        assert match is not None
        await self.ask(ANN, None, f"/goedkeuren {match[1]}", "is nu lid")
        await self.server.reply_containing(person.id, f"Welkom bij LETS Durme, {full_name}!")
        return match[1]

    async def group_with_bob(self) -> None:
        """Ann (coordinator) and Bob (member) have started the bot; it serves GROUP."""
        self.server.person(ANN)
        self.server.person(BOB)
        await self.start()
        await self.ask(ANN, None, "/start", "Welkom bij LETS Durme")
        await self.member(BOB, "Bob Peeters")

    async def settle(self, person: Person) -> None:
        """Wait until everything sent before is handled: updates are handled in order."""
        await self.ask(person, None, "/start", "")


@pytest.fixture
async def tg(engine: Engine) -> AsyncIterator[Harness]:
    server = FakeTelegram()
    await server.start()
    server.group(GROUP)
    harness = Harness(server, engine, settings_for(server))
    yield harness
    if harness.task is not None and not harness.task.done():
        await harness.stop()
    await server.close()


# the scenarios ------------------------------------------------------------


async def test_a_reminder_missed_while_down_is_posted_in_the_group_at_start(tg: Harness) -> None:
    tg.server.person(ANN)
    now = SystemClock().now()
    with SqlUnitOfWork(tg.engine).transaction() as store:
        store.events.add_event(
            series_id=None,
            kind=EventKind.MARKET,
            title="Ruilmarkt",
            place=None,
            starts_at=now + timedelta(minutes=90),  # the 2-hour reminder was due 30 min ago
            ends_at=None,
            created_by_id=store.members.group_account().id,
            at=now - timedelta(days=10),
        )
    await tg.start()
    posted = await tg.server.reply_containing(GROUP, "Herinnering (wat laat verstuurd): Markt #1")
    assert "Ruilmarkt" in posted.text
    await tg.stop()
    await tg.start()  # a restart posts it not again
    await tg.settle(ANN)
    assert len([s for s in tg.server.sent_to(GROUP) if "Herinnering" in s.text]) == 1


async def test_join_approval_and_a_payment_confirmed_by_button(
    tg: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    server = tg.server
    await tg.group_with_bob()
    ready = [r.getMessage() for r in caplog.records if " ready: " in r.getMessage()]
    assert ready == [f"telegram ready: @{BOT_USERNAME}, groups {GROUP}"]

    # Bob pays Ann in the group: addressed to the bot, Ann named by her @username.
    payment = server.say(BOB, GROUP, f"/betaal@{BOT_USERNAME} @ann_coord 30 soep")
    question = await server.reply_containing(GROUP, "Betaal 30 pluimen aan Ann Coord (DU-001)")
    assert question.text == (
        "Vraag voor Bob Peeters (DU-002):\nBetaal 30 pluimen aan Ann Coord (DU-001) voor: soep?"
    )
    assert question.reply_to == payment["message_id"]
    assert question.buttons == [("Ja", "yes:200:1"), ("Nee", "no:200:1")]  # Bob, question 1

    # Only Bob may answer.
    server.press(ANN, question, "Ja")
    await server.wait_for(lambda: server.answers)
    assert server.answers[-1]["text"] == "Deze vraag is niet voor jou."
    assert server.answers[-1]["show_alert"] is True
    assert tg.payments() == 0 and "reply_markup" in server.current(question)

    server.press(BOB, question, "Ja")
    booked = await server.reply_containing(GROUP, "Geboekt:")
    assert "Bob Peeters (DU-002) → Ann Coord (DU-001), 30 pluimen, soep" in booked.text
    bob_told = await server.reply_containing(BOB.id, "Geboekt:")
    ann_told = await server.reply_containing(ANN.id, "Geboekt:")
    assert bob_told.text.endswith("Je saldo is nu -30 pluimen.")
    assert ann_told.text.endswith("Je saldo is nu 30 pluimen.")
    assert tg.balance(BOB) == -30 and tg.balance(ANN) == 30

    # The question now shows the answer, without buttons.
    answered = server.current(question)
    assert answered["text"] == question.text + "\n\nAntwoord: Ja"
    assert "reply_markup" not in answered
    assert len(server.answers) == 2

    # The command menu, in both languages, from the registry and the catalogs.
    menus = {c["language_code"]: c["commands"] for c in server.commands}
    assert set(menus) == {None, "en"}
    assert {"command": "betaal", "description": catalog("nl")["cmd.pay.help"]} in menus[None]
    assert {"command": "pay", "description": catalog("en")["cmd.pay.help"]} in menus["en"]
    assert all(c["command"] != "goedkeuren" for c in menus[None])  # coordinators only
    assert TOKEN not in caplog.text  # httpx logs every URL at INFO: redacted


async def test_an_edited_pay_message_never_pays_again(tg: Harness) -> None:
    server = tg.server
    await tg.group_with_bob()
    payment = server.say(BOB, GROUP, "/betaal DU-001 10 soep")
    question = await server.reply_containing(GROUP, "Betaal 10 pluimen")
    server.press(BOB, question, "Ja")
    await server.reply_containing(GROUP, "Geboekt:")

    server.edit(payment, "/betaal DU-001 100 soep")
    await tg.settle(BOB)
    assert not [s for s in server.sent_to(GROUP) if "100 pluimen" in s.text]
    assert tg.payments() == 1 and tg.balance(BOB) == -10


async def test_an_update_redelivered_after_a_restart_does_nothing(tg: Harness) -> None:
    server = tg.server
    await tg.group_with_bob()
    payment = server.say(BOB, GROUP, "/betaal DU-001 10 soep")
    question = await server.reply_containing(GROUP, "Betaal 10 pluimen")
    press = server.press(BOB, question, "Ja")
    await server.reply_containing(GROUP, "Geboekt:")
    await tg.stop()

    # Telegram delivers both updates again (the offset was lost in a crash), and
    # the crash came before the adapter noted that the question was answered.
    server.redeliver(server.update_of(payment))
    server.redeliver(server.update_of_query(press))
    with tg.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO platform_state (platform, key, value, updated_at)"
                " VALUES ('telegram', 'asking:1', :value, CURRENT_TIMESTAMP)"
            ),
            {"value": f"{GROUP}:{question.message_id}:nl"},
        )
    in_group = len(server.sent_to(GROUP))
    await tg.start()
    await tg.settle(BOB)
    assert tg.payments() == 1 and tg.balance(BOB) == -10
    assert server.sent_to(GROUP)[in_group:] == []  # no second question, no second booking
    # The press did reach the core (which knew its event id) and tried to show the answer again.
    assert ("editMessageText", 400) in server.refused


async def test_a_direct_message_telegram_refuses_is_held_behind_a_start_link(
    tg: Harness,
) -> None:
    server = tg.server
    server.person(ANN, started=False)  # the coordinator never pressed Start
    await tg.start()

    server.say(ANN, GROUP, "/saldo")  # answered privately
    link = await server.reply_containing(GROUP, f"https://t.me/{BOT_USERNAME}?start=held")
    assert link.text == (
        "Ann Coord, ik kan je nog geen privébericht sturen. Tik op deze link en dan op Start,"
        f" dan krijg je mijn antwoord: https://t.me/{BOT_USERNAME}?start=held"
    )
    mention = link.message["entities"][0]
    assert mention["type"] == "text_mention" and mention["user"]["id"] == ANN.id
    assert ("sendMessage", 403) in server.refused
    assert tg.scalar("SELECT count(*) FROM held_messages WHERE delivered_at IS NULL") == 1

    server.say(ANN, None, "/start held")  # the link opens the chat with /start held
    held = await server.reply_containing(ANN.id, "Je saldo: 0 pluimen")
    welcome = await server.reply_containing(ANN.id, "Dag Ann Coord!")
    assert held.message_id < welcome.message_id
    assert tg.scalar("SELECT count(*) FROM held_messages WHERE delivered_at IS NULL") == 0


async def test_a_flood_limit_is_waited_out_and_the_message_arrives_once(tg: Harness) -> None:
    server = tg.server
    server.person(BOB)
    await tg.start()
    server.flood(GROUP, retry_after=1)
    started = time.monotonic()
    server.say(BOB, GROUP, "/x1")
    reply = await server.reply_containing(GROUP, "/x1", timeout=10)
    assert reply.at - started >= 1.0
    assert ("sendMessage", 429) in server.refused
    await tg.settle(BOB)
    assert [s.text for s in server.sent_to(GROUP)] == [
        "Die opdracht ken ik niet: /x1. Stuur /hulp voor de lijst."
    ]


async def test_a_group_that_became_a_supergroup_keeps_working(tg: Harness) -> None:
    server = tg.server
    server.person(BOB)
    await tg.start()
    # The group is upgraded while a command from it is in hand: the reply bounces
    # with migrate_to_chat_id and goes to the supergroup.
    server.migrate(GROUP, SUPERGROUP, announce=False)
    server.say(BOB, GROUP, "/x1")
    await server.reply_containing(SUPERGROUP, "/x1")
    assert ("sendMessage", 400) in server.refused
    assert (
        tg.scalar("SELECT value FROM platform_state WHERE key = :key", key=f"moved:{GROUP}")
        == SUPERGROUP
    )
    await tg.ask(BOB, SUPERGROUP, "/x2", "/x2")

    await tg.stop()
    await tg.start()
    await tg.ask(BOB, SUPERGROUP, "/x3", "/x3")
    assert not [s for s in server.sent_to(SUPERGROUP) if "werk alleen in die groep" in s.text]


async def test_the_service_message_of_a_migration_is_followed(tg: Harness) -> None:
    server = tg.server
    server.person(BOB)
    await tg.start()
    server.migrate(GROUP, SUPERGROUP)  # Telegram tells the bot in both chats
    await tg.ask(BOB, SUPERGROUP, "/x1", "Die opdracht ken ik niet: /x1.")
    assert server.sent_to(GROUP) == []


async def test_a_burst_of_40_replies_to_one_group_arrives_complete_and_in_order(
    tg: Harness,
) -> None:
    server = tg.server
    server.person(BOB)
    await tg.start()
    for number in range(40):
        server.say(BOB, GROUP, f"/x{number}")
    replies = await server.wait_for(
        lambda: server.sent_to(GROUP) if len(server.sent_to(GROUP)) >= 40 else None, timeout=20
    )
    assert [re.findall(r"/x(\d+)", r.text) for r in replies] == [[str(n)] for n in range(40)]
    spread = replies[-1].at - replies[0].at
    # 20 at once, then 20 per second (the per-minute window of production, shrunk).
    assert spread >= 0.9, spread
    assert ("sendMessage", 429) not in server.refused
    print(f"burst of 40: first to last {spread:.2f} s")


async def test_posts_to_all_groups_arrive_split_at_the_limit(tg: Harness) -> None:
    server = tg.server
    hub = build_hub(tg.settings, tg.engine, SystemClock(), tunings={"telegram": FAST})
    await hub.start()
    try:
        lines = [f"**{n}** " + "x" * 95 for n in range(60)]  # about 6,000 characters
        hub.post(Outgoing(ToAllGroups(), "\n".join(lines)))
        chunks = await server.wait_for(
            lambda: server.sent_to(GROUP) if len(server.sent_to(GROUP)) >= 2 else None
        )
    finally:
        await hub.stop()
    assert len(chunks) == 2 and all(units(c.text) <= TEXT_LIMIT for c in chunks)
    assert "\n".join(c.text for c in chunks) == to_plain("\n".join(lines))
    assert chunks[1].message["entities"][0] == {"type": "bold", "offset": 0, "length": 2}


async def test_a_second_bot_polling_with_the_same_token_is_logged_once(
    tg: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    server = tg.server
    server.person(BOB)
    await tg.start()
    conflict = "Conflict: terminated by other getUpdates request"
    server.fail("getUpdates", 409, conflict, times=4)
    await server.wait_for(lambda: server.refused.count(("getUpdates", 409)) == 4)
    await tg.ask(BOB, None, "/start", "Welkom bij LETS Durme")
    assert [r.getMessage() for r in caplog.records if "Conflict" in r.getMessage()] == [
        f"telegram: Conflict: {conflict}"
    ]


async def test_a_bot_started_during_an_outage_comes_up_with_telegram(
    tg: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    server = tg.server
    server.person(BOB)
    server.outage(True)
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(tg.settings, tg.engine, SystemClock(), stop, tunings={"telegram": FAST})
    )
    try:
        await server.wait_for(lambda: server.refused.count(("getMe", 502)) >= 3)
        server.outage(False)
        await tg.ask(BOB, None, "/start", "Welkom bij LETS Durme", timeout=10)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert len([r for r in caplog.records if "can't reach the Bot API" in r.getMessage()]) == 1


async def test_a_refused_token_ends_the_run_with_one_clear_line(tg: Harness) -> None:
    settings = tg.settings.model_copy(
        update={"telegram": tg.settings.telegram.model_copy(update={"token": SecretStr("1:no")})}
    )
    with pytest.raises(TransportError, match="refused the token"):
        await asyncio.wait_for(serve(settings, tg.engine, SystemClock(), asyncio.Event()), 10)


# Telegram's manners -------------------------------------------------------------------


async def test_who_and_where_the_bot_serves(tg: Harness) -> None:
    server = tg.server
    server.person(BOB)
    server.group(OTHER_GROUP, "Another group")
    await tg.start()

    # Another group: told once which group the bot serves, then silence.
    server.say(BOB, OTHER_GROUP, "/hulp")
    server.say(BOB, OTHER_GROUP, "/saldo")
    # A command for another bot, and an admin writing anonymously as the group.
    server.say(BOB, GROUP, "/start@some_other_bot")
    server.say(GROUP_ANONYMOUS_BOT, GROUP, "/saldo", sender_chat=server.chats[GROUP])
    await tg.ask(BOB, GROUP, "/x1", "/x1")

    assert [s.text for s in server.sent_to(OTHER_GROUP)] == [
        "Ik ben de bot van LETS Durme en werk alleen in die groep. Schrijf me gerust privé."
    ]
    texts = [s.text for s in server.sent_to(GROUP)]
    assert texts[0] == catalog("nl")["telegram.anonymous"]
    assert len(texts) == 2  # nothing for the other bot's command
    assert tg.scalar("SELECT count(*) FROM identities WHERE user_id = '1087968824'") == 0

    await tg.stop()
    await tg.start()
    await tg.ask(BOB, GROUP, "/x2", "/x2")
    server.say(BOB, OTHER_GROUP, "/hulp")
    await tg.ask(BOB, GROUP, "/x3", "/x3")
    assert len(server.sent_to(OTHER_GROUP)) == 1  # still quiet after a restart


async def test_members_named_by_text_mention_reply_and_username(tg: Harness) -> None:
    server = tg.server
    server.person(CATO)
    await tg.group_with_bob()
    await tg.member(CATO, "Cato Janssens")

    # A person without @username, chosen from the mention list: a text mention.
    server.say(BOB, GROUP, "/betaal Cato Janssens 5 appels", text_mentions={"Cato Janssens": CATO})
    first = await server.reply_containing(GROUP, "Betaal 5 pluimen aan Cato Janssens (DU-003)")

    # A reply to Cato's message names Cato; it replaces Bob's first question.
    said = server.say(CATO, GROUP, "Wie wil er appels?")
    second = server.say(BOB, GROUP, "/betaal 7 appels", reply_to=said)
    question = await server.reply_containing(GROUP, "Betaal 7 pluimen aan Cato Janssens (DU-003)")
    assert question.reply_to == second["message_id"]
    # Only the newest question keeps buttons (a typed "ja" would answer that one).
    await server.wait_for(lambda: "reply_markup" not in server.current(first))

    # An @username the bot never saw names nobody.
    await tg.ask(BOB, GROUP, "/betaal @nobody_here 5 x", "Ik weet niet welk lid je bedoelt")

    # The old question's button, pressed anyway, books nothing.
    server.press(BOB, first, "Ja")
    await server.wait_for(lambda: len(server.answers) == 1)
    assert server.answers[0]["text"] == catalog("nl")["telegram.not_open"]
    server.press(BOB, question, "Ja")
    await server.reply_containing(GROUP, "Geboekt:")
    assert tg.balance(CATO) == 7 and tg.payments() == 1


async def test_a_typed_answer_works_and_retires_the_buttons(tg: Harness) -> None:
    server = tg.server
    await tg.group_with_bob()
    question = await tg.ask(BOB, None, "/betaal DU-001 3 <b>koffie</b> & co", "Betaal 3 pluimen")
    assert question.text.endswith("voor: <b>koffie</b> & co?")  # shown as typed, not as markup
    assert question.buttons
    await tg.ask(BOB, None, "ja", "Geboekt:")
    await server.wait_for(lambda: "reply_markup" not in server.current(question))
    assert tg.balance(BOB) == -3


async def test_a_button_or_a_reply_answers_exactly_its_own_question(tg: Harness) -> None:
    server = tg.server
    await tg.group_with_bob()
    # Two questions wait in Bob's direct chat: his own payment, and Ann's request.
    own = await tg.ask(BOB, None, "/betaal DU-001 3 koffie", "Betaal 3 pluimen")
    await tg.ask(ANN, None, "/vraagbetaling DU-002 40 soep", "Ik heb Bob Peeters")
    request = await server.reply_containing(BOB.id, "vraagt 40 pluimen van je")
    assert request.buttons and own.buttons  # each question keeps its own buttons

    # A bare "ja" books neither: it asks which, and shows both again with buttons.
    await tg.ask(BOB, None, "ja", "Welke bedoel je?")
    again = await server.wait_for(
        lambda: (
            len(shown := [s for s in server.sent_to(BOB.id) if s.text.startswith("Vraag ")]) == 2
            and shown
        )
    )
    assert all(s.buttons for s in again)
    assert tg.payments() == 0 and tg.balance(BOB) == 0
    # The older message's buttons gave way to the ones shown again.
    await server.wait_for(lambda: "reply_markup" not in server.current(own))

    # Pressing Ja under the first question shown again pays Ann the 3 for koffie, nothing else.
    first = next(s for s in again if "3 pluimen" in s.text)
    server.press(BOB, first, "Ja")
    await server.reply_containing(BOB.id, "Geboekt: #1")
    assert tg.balance(BOB) == -3

    # A reply "nee" to Ann's request declines exactly that one.
    second = next(s for s in again if "40 pluimen" in s.text)
    server.say(BOB, None, "nee", reply_to=second)
    await server.reply_containing(ANN.id, "heeft je betaalverzoek geweigerd")
    assert tg.balance(BOB) == -3 and tg.payments() == 1
    await server.wait_for(lambda: "reply_markup" not in server.current(second))


async def test_a_ja_in_the_group_never_answers_a_request_in_the_direct_chat(tg: Harness) -> None:
    server = tg.server
    await tg.group_with_bob()
    await tg.ask(ANN, None, "/vraagbetaling DU-002 40 soep", "Ik heb Bob Peeters")
    await server.reply_containing(BOB.id, "vraagt 40 pluimen van je")
    before = len(server.sent_to(GROUP))
    server.say(BOB, GROUP, "ja")
    server.say(BOB, GROUP, "ok")
    await tg.ask(BOB, GROUP, "/x", "/x")  # everything before it was handled
    assert server.sent_to(GROUP)[before:-1] == [] and tg.balance(BOB) == 0
    await tg.ask(BOB, None, "ja", "Geboekt:")
    assert tg.balance(BOB) == -40


async def test_an_outage_is_logged_once_and_survived(
    tg: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = tg.server
    server.person(BOB)
    await tg.start()
    server.outage(True)
    await server.wait_for(lambda: server.refused.count(("getUpdates", 502)) >= 5, timeout=10)
    server.say(BOB, None, "/start")  # written during the outage
    server.outage(False)
    await server.reply_containing(BOB.id, "Welkom bij LETS Durme", timeout=10)

    ours = [r.getMessage() for r in caplog.records if r.name == "adapters.telegram"]
    assert len([m for m in ours if "can't reach the Bot API" in m]) == 1
    assert len([m for m in ours if "answers again" in m]) == 1
    assert TOKEN not in caplog.text


@dataclass
class LetsbotRun:
    """``letsbot run`` in a child process; its log lines read as they come."""

    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    async def start(
        cls, server: FakeTelegram, database_url: str, folder: Path, *, level: str = "INFO"
    ) -> LetsbotRun:
        config = folder / "bot.toml"
        config.write_text(
            "[group]\n"
            'name = "LETS Durme"\n'
            'code_prefix = "DU"\n'
            "[storage]\n"
            f'url = "{database_url}"\n'
            "[telegram]\n"
            "enabled = true\n"
            f'base_url = "{server.base_url}"\n'
            f"group_chat_ids = [{GROUP}]\n",
            encoding="utf-8",
        )
        env = {**os.environ, "LETSBOT_TELEGRAM__TOKEN": TOKEN}
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "app", "--config", str(config), "--log-level", level),
            "run",
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        run = cls(process)
        run.reader = asyncio.create_task(run._read())
        await run.wait_for(" ready: ")
        return run

    async def _read(self) -> None:
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self.lines.append(line.decode())
            self.changed.set()
            self.changed = asyncio.Event()
        self.changed.set()

    async def wait_for(self, text: str, timeout: float = 20) -> None:
        async with asyncio.timeout(timeout):
            while not any(text in line for line in self.lines):
                assert self.reader is not None and not self.reader.done(), self.output
                await self.changed.wait()

    async def end(self) -> int:
        """Wait for the process to end (killing it if it takes too long); its exit status."""
        try:
            status = await asyncio.wait_for(self.process.wait(), 20)
        finally:
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()
        if self.reader is not None:
            await self.reader
        return status

    @property
    def output(self) -> str:
        return "".join(self.lines)


async def test_letsbot_run_serves_until_sigterm_and_finishes_the_message_in_hand(
    tg: Harness, sqlite_url: str, tmp_path: Path
) -> None:
    server = tg.server
    server.person(BOB)
    run = await LetsbotRun.start(server, sqlite_url, tmp_path)
    try:
        server.flood(BOB.id, retry_after=1)
        server.say(BOB, None, "/start")
        await server.wait_for(lambda: ("sendMessage", 429) in server.refused, timeout=10)
        # The /start is handled and its reply waits out a flood limit: it is still sent.
        run.process.send_signal(signal.SIGTERM)
    finally:
        status = await run.end()
    assert status == 0, run.output
    assert server.sent_to(BOB.id)[0].text.startswith("Welkom bij LETS Durme!")
    assert f"telegram ready: @{BOT_USERNAME}, groups {GROUP}" in run.output
    assert "SIGTERM: stopping" in run.output and "letsbot: stopped" in run.output
    assert TOKEN not in run.output


async def test_an_update_in_hand_when_the_process_dies_comes_again(
    tg: Harness, sqlite_url: str, tmp_path: Path
) -> None:
    server = tg.server
    server.person(BOB)
    run = await LetsbotRun.start(server, sqlite_url, tmp_path, level="DEBUG")
    # The database is locked, so the bot can't finish handling what it fetches.
    blocker = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        server.say(BOB, None, "/aanmelden Bob Peeters")
        await run.wait_for("telegram: handling update")
        run.process.kill()  # a crash, with the update in hand
        await run.end()
    finally:
        blocker.rollback()
        blocker.close()
    assert server.confirmed == {}  # never confirmed: Telegram keeps it
    assert TOKEN not in run.output  # not even at DEBUG

    await tg.start()
    await server.reply_containing(BOB.id, "kandidaat-lid")
    await tg.settle(BOB)
    assert tg.scalar("SELECT count(*) FROM members WHERE name = 'Bob Peeters'") == 1


# splitting long replies -----------------------------------------------------------


def test_long_text_is_split_at_line_ends_within_the_limit() -> None:
    lines = [f"regel {n}: " + "x" * 90 for n in range(120)]
    chunks = split_markup("\n".join(lines))
    assert len(chunks) == 3
    assert all(units(to_plain(c)) <= TEXT_LIMIT for c in chunks)
    assert "\n".join(chunks).split("\n") == lines  # cut only between lines, nothing lost


def test_a_line_longer_than_the_limit_is_cut_inside_keeping_escapes_and_bold() -> None:
    long_line = "**" + "\\*" * 5000 + "**"
    chunks = split_markup(long_line, limit=4096)
    assert [units(to_plain(c)) for c in chunks] == [4096, 904]
    assert to_html(chunks[0]) == "<b>" + "*" * 4096 + "</b>"
    assert to_html(chunks[1]) == "<b>" + "*" * 904 + "</b>"


def test_bold_open_across_a_cut_is_reopened_and_width_counts_utf16() -> None:
    text = "**vet\n" + "😀" * 3 + "**"
    chunks = split_markup(text, limit=6)
    assert chunks == ["**vet", "**😀😀😀**"]
    assert [to_html(c) for c in chunks] == ["<b>vet</b>", "<b>😀😀😀</b>"]
    assert split_markup("kort") == ["kort"]


# the adapter's storage ------------------------------------------------------------


def test_the_platform_store_on_each_database(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        store = SqlPlatformStore(engine, "telegram", SystemClock())
        other = SqlPlatformStore(engine, "matrix", SystemClock())
        store.set_state("moved:-1", "-1001")
        store.set_state("moved:-1", "-1002")
        store.set_state("moved_x", "not under the prefix")
        store.set_state("buttons:7", "-1002:5")
        other.set_state("moved:-1", "elsewhere")
        assert store.state("moved:-1") == "-1002"
        assert store.states("moved:") == {"-1": "-1002"}  # '_' in a prefix is no wildcard
        store.set_state("buttons:7", None)
        assert store.state("buttons:7") is None and store.states("buttons:") == {}

        store.remember_handle("Bob", "200")
        store.remember_handle("bob", "201")  # the name passed to someone else
        assert store.user_for_handle("BOB") == "201" and other.user_for_handle("bob") is None

        first = store.hold("200", '{"text": "a"}')
        second = store.hold("200", '{"text": "b"}')
        store.hold("300", '{"text": "c"}')
        assert store.held("200") == [(first, '{"text": "a"}'), (second, '{"text": "b"}')]
        assert store.holding() == {"200", "300"}
        store.delivered(first)
        store.delivered(second)
        assert store.held("200") == [] and store.holding() == {"300"}
        assert store.profile("200") is None
    finally:
        engine.dispose()


async def test_a_private_message_through_the_bot_reaches_the_members_direct_chat(
    tg: Harness,
) -> None:
    await tg.group_with_bob()
    server = tg.server
    await tg.ask(
        BOB, None, "/bericht DU-001 Heb je <morgen> tijd?", "Verstuurd aan Ann Coord (DU-001)."
    )
    message = await server.reply_containing(ANN.id, "Bericht van Bob Peeters (DU-002):")
    assert "Heb je <morgen> tijd?" in message.text  # shown as typed, escaped in HTML
    assert "/bericht DU-002" in message.text


async def test_votes_are_buttons_anyone_may_press(tg: Harness) -> None:
    server = tg.server
    # Two voters: with early close Ann's Tegen alone would decide it.
    tg.settings = tg.settings.model_copy(
        update={"governance": tg.settings.governance.model_copy(update={"early_close": False})}
    )
    await tg.group_with_bob()
    server.person(CATO)  # a stranger in the group
    server.say(BOB, GROUP, "/voorstel Koffie op de markt")
    announce = await server.reply_containing(GROUP, "Nieuw voorstel #1")
    assert announce.buttons == [
        ("Voor", "/stem 1 1"),
        ("Tegen", "/stem 1 2"),
        ("Onthouding", "/stem 1 3"),
    ]

    # Ann presses Tegen: the vote is hers, the confirmation private (and on her screen).
    server.press(ANN, announce, "Tegen")
    told = await server.reply_containing(ANN.id, "Je stem op voorstel #1: Tegen.")
    assert server.answers[-1]["text"] == told.text and server.answers[-1]["show_alert"] is False
    # Bob presses too, and then changes his mind with the same buttons.
    server.press(BOB, announce, "Voor")
    await server.reply_containing(BOB.id, "Je stem op voorstel #1: Voor.")
    server.press(BOB, announce, "Onthouding")
    await server.reply_containing(BOB.id, "is gewijzigd: Onthouding")
    # A stranger's press is refused on their screen and counts nothing.
    server.press(CATO, announce, "Voor")
    await server.wait_for(lambda: len(server.answers) == 4)
    assert server.answers[-1]["show_alert"] is True and server.answers[-1]["text"]
    await tg.settle(BOB)
    assert tg.scalar("SELECT count(*) FROM votes") == 2
    assert tg.scalar("SELECT count(*) FROM votes WHERE choice = 2") == 1  # Bob: Onthouding
    # Nothing about the votes was said in the group; the buttons stay for the others.
    assert [s.text for s in server.sent_to(GROUP) if "stem" in s.text.lower()] == [announce.text]
    assert "reply_markup" in server.current(announce)
