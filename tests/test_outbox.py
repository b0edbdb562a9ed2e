"""The outbox: what the bot says is written with what it tells, and sent after a crash.

A booking's "Geboekt" is stored in the transaction of the booking; a process
killed between the commit and the send sends it after its restart (Telegram:
at least once). Rows are leased, so two processes never both send one.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from app.run import build_hub
from letsbot.clock import SystemClock, VirtualClock
from letsbot.domain import EventKind, Identity
from letsbot.messages import (
    Chat,
    ChatKind,
    Choice,
    Outgoing,
    ToAllGroups,
    ToChat,
    ToPerson,
)
from letsbot.outbox import HOLD, LEASE, MAX_ATTEMPTS, Outbox, decode, encode
from storage.check import ledger_problems
from storage.database import make_engine
from storage.uow import SqlUnitOfWork
from tests.support import START, Driver, make_settings
from tests.telegram_api import FakeTelegram, Person
from tests.test_cli import CONFIG, letsbot
from tests.test_telegram import BOB, CATO, FAST, GROUP, Harness, LetsbotRun, settings_for

ANN = Identity("console", "an")


def rows(engine: Engine) -> list[tuple[int, str, bool]]:
    """(id, body, sent) of every outbox row."""
    with engine.connect() as connection:
        found = connection.execute(
            text("SELECT id, body, sent_at IS NOT NULL FROM outbox ORDER BY id")
        ).all()
        connection.rollback()
    return [(int(r[0]), str(r[1]), bool(r[2])) for r in found]


def test_every_field_of_a_message_survives_the_outbox() -> None:
    message = Outgoing(
        ToChat(Chat("matrix", "!room:x", ChatKind.GROUP)),
        "**Betaal** 3 pluimen? ✓",
        (Choice("Ja", "yes"), Choice("Nee", "no")),
        Identity("matrix", "@an:x"),
        "$event",
        secret=True,
        question=12,
        language="nl",
    )
    # Every field is set here (a new field of Outgoing must be added to the outbox too).
    blank = Outgoing(ToAllGroups(), "")
    # Not kept: the picture, the row's own id, and the hub's hold (sent at once after a restart).
    not_kept = {"image", "outbox_id", "held_as", "overtakes"}
    kept = {f.name for f in dataclasses.fields(Outgoing)} - not_kept
    assert [name for name in kept if getattr(message, name) == getattr(blank, name)] == []
    for each in (message, Outgoing(ToAllGroups(), "x"), Outgoing(ToPerson(ANN), "y")):
        assert decode(encode(each)) == each
    assert decode(encode(message), 7).outbox_id == 7


def test_a_booking_and_its_replies_are_written_in_one_transaction(db_url: str) -> None:
    engine = make_engine(db_url)
    group = Driver(engine, make_settings())
    group.member("an")
    group.member("bo")
    before = {row[0] for row in rows(engine)}
    assert all(sent for _, _, sent in rows(engine))  # what the driver showed is marked sent

    bot = group.bot
    question = bot.handle(group.incoming("an", "/betaal 3 30 soep"))
    booked = bot.handle(group.incoming("an", "ja"))
    replies = question.replies + booked.replies
    assert all(reply.outbox_id is not None for reply in replies)
    unsent = {row[0]: row[1] for row in rows(engine) if not row[2] and row[0] not in before}
    assert sorted(unsent) == sorted(r.outbox_id for r in replies if r.outbox_id is not None)
    assert [decode(unsent[r.outbox_id]) for r in replies if r.outbox_id] == replies
    assert any("Geboekt: #1" in decode(body).text for body in unsent.values())

    # A refusal changes nothing and confirms nothing: sent directly, not kept.
    refused = bot.handle(group.incoming("an", "/betaal 3 abc soep"))
    assert [r.outbox_id for r in refused.replies] == [None]
    assert len(rows(engine)) == len(before) + len(replies)

    bot.delivered([r.outbox_id for r in replies if r.outbox_id is not None])
    assert rows(engine)[-1][1:] == ("", True)  # sent: the text is not kept
    engine.dispose()


def test_a_reminder_is_queued_with_its_claim(driver: Driver) -> None:
    now = driver.clock.now()
    with SqlUnitOfWork(driver.engine).transaction() as store:
        store.events.add_event(
            series_id=None,
            kind=EventKind.MARKET,
            title="Ruilmarkt",
            place=None,
            starts_at=now + timedelta(hours=2, minutes=1),
            ends_at=None,
            created_by_id=store.members.group_account().id,
            at=now,
        )
    driver.clock.set(now + timedelta(minutes=2))
    posts = driver.bot.scheduled_work()
    assert [p.text.startswith("Herinnering") for p in posts] == [True]
    assert [(decode(body), sent) for i, body, sent in rows(driver.engine)] == [(posts[0], False)]
    assert driver.bot.scheduled_work() == []  # claimed: a restart posts it not again
    # ...but sends it: the outbox still holds it for the next process.
    later = Outbox(SqlUnitOfWork(driver.engine), VirtualClock(driver.clock.now() + LEASE * 2))
    assert later.unsent(["telegram", "matrix"]) == posts


def test_results_and_digests_are_queued_with_their_claim(driver: Driver) -> None:
    driver.member("an")
    driver.say("an", "/aanbod Verse eieren #eten")
    driver.say("admin", "/voorstel Picknick in juni")
    posts = driver.bot.catch_up(START + timedelta(days=8), driver.clock.set)
    texts = "\n".join(p.text for p in posts)
    assert "Picknick" in texts and "eieren" in texts  # the result and the weekly digest
    unsent = {i: decode(body) for i, body, sent in rows(driver.engine) if not sent}
    assert [unsent[p.outbox_id or 0] for p in posts] == posts


def test_the_console_leaves_nothing_unsent(tmp_path: Path) -> None:
    """What the console printed is marked sent: a later `letsbot run` sends none of it."""
    (tmp_path / "bot.toml").write_text(CONFIG, encoding="utf-8")
    script = (
        "admin: /start\nan: /aanmelden An\nadmin: /goedkeuren 2\n"
        "@2026-12-01 09:00\nadmin: /activiteit nieuw markt 2/12 10:00 Ruilmarkt\nadmin: ja\n"
        "@2026-12-02 09:00\n"
    )
    assert letsbot("db", "upgrade", cwd=tmp_path).returncode == 0
    done = letsbot("console", "--script", "-", cwd=tmp_path, stdin=script)
    assert done.returncode == 0, done.stderr
    assert "Herinnering" in done.stdout  # a reminder was posted on the way
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'letsbot.db'}")
    kept = rows(engine)
    engine.dispose()
    assert len(kept) > 5 and all(sent for _, _, sent in kept)


def test_two_processes_never_both_take_a_message(db_url: str) -> None:
    engine = make_engine(db_url)
    uow = SqlUnitOfWork(engine)
    clock = VirtualClock(START)
    first, second = Outbox(uow, clock), Outbox(uow, clock)
    with uow.transaction() as store:
        queued = first.queue(store, [Outgoing(ToPerson(Identity("telegram", "200")), "Geboekt")])
    assert second.unsent(["telegram"]) == []  # the writer holds it
    clock.set(clock.now() + LEASE - timedelta(seconds=1))
    first.keep([queued[0].outbox_id or 0])  # still queued there: the lease is renewed
    clock.set(clock.now() + LEASE - timedelta(seconds=1))
    assert second.unsent(["telegram"]) == []
    assert second.unsent(["matrix"]) == []
    clock.set(clock.now() + LEASE)  # the writer died: its lease ran out
    assert second.unsent(["telegram"]) == queued
    assert first.unsent(["telegram"]) == []  # now the second holds it
    for _ in range(MAX_ATTEMPTS):  # a send that keeps failing is given up
        clock.set(clock.now() + LEASE * 2)
        second.unsent(["telegram"])
    clock.set(clock.now() + LEASE * 2)
    assert second.unsent(["telegram"]) == []
    assert [sent for _, _, sent in rows(engine)] == [True]  # given up, and logged
    engine.dispose()


# Telegram: the real hub and adapter ------------------------------------------------


async def test_what_a_dead_process_left_unsent_is_sent_at_start_once(tg: Harness) -> None:
    tg.server.person(BOB)
    crashed = Outbox(SqlUnitOfWork(tg.engine), VirtualClock(SystemClock().now() - LEASE * 2))
    with SqlUnitOfWork(tg.engine).transaction() as store:
        crashed.queue(
            store,
            [
                Outgoing(ToPerson(Identity("telegram", str(BOB.id))), "Geboekt: #7 (lost)"),
                Outgoing(ToAllGroups(), "Herinnering: Markt #1 (lost)"),
                Outgoing(ToPerson(ANN), "for the console, not for Telegram"),
            ],
        )
    await tg.start()
    await tg.server.reply_containing(BOB.id, "Geboekt: #7 (lost)")
    await tg.server.reply_containing(GROUP, "Herinnering: Markt #1 (lost)")
    await tg.stop()  # marks what was sent
    assert [sent for _, _, sent in rows(tg.engine)] == [True, True, False]
    await tg.start()  # a restart sends them not again
    await tg.settle(BOB)
    await tg.stop()
    assert len([s for s in tg.server.sent_to(BOB.id) if "(lost)" in s.text]) == 1
    assert len([s for s in tg.server.sent_to(GROUP) if "(lost)" in s.text]) == 1
    assert [sent for _, _, sent in rows(tg.engine)][2] is False  # left for a console process


async def test_a_held_message_waits_and_is_never_sent_once_overtaken(tg: Harness) -> None:
    """A partner payment's "on its way" waits: its "arrived" overtakes it, else it goes."""
    tg.server.person(BOB)
    bob = ToPerson(Identity("telegram", str(BOB.id)))
    hub = build_hub(tg.settings, tg.engine, SystemClock(), tunings={"telegram": FAST})
    outbox = hub.bot.outbox  # type: ignore[attr-defined]
    await hub.start()
    try:
        with SqlUnitOfWork(tg.engine).transaction() as store:
            held = outbox.queue(
                store,
                [
                    Outgoing(bob, "onderweg 1", held_as="pay-1"),
                    Outgoing(bob, "onderweg 2", held_as="pay-2"),
                ],
            )
        for outgoing in held:
            hub.post(outgoing)
        with SqlUnitOfWork(tg.engine).transaction() as store:
            [arrived] = outbox.queue(store, [Outgoing(bob, "Aangekomen 1", overtakes="pay-1")])
        hub.post(arrived)
        await tg.server.reply_containing(BOB.id, "onderweg 2")  # after the hold
    finally:
        await hub.stop()  # would send what is still held
    said = [s.text for s in tg.server.sent_to(BOB.id)]
    assert said == ["Aangekomen 1", "onderweg 2"]
    assert [sent for _, _, sent in rows(tg.engine)] == [True, True, True]  # none left to send


def test_a_held_message_a_dead_process_left_is_sent_after_the_hold(db_url: str) -> None:
    engine = make_engine(db_url)
    uow = SqlUnitOfWork(engine)
    clock = VirtualClock(START)
    with uow.transaction() as store:
        Outbox(uow, clock).queue(store, [Outgoing(ToPerson(ANN), "onderweg", held_as="pay-1")])
    later = Outbox(uow, clock)
    clock.set(START + HOLD / 2)
    assert later.unsent(["console"]) == []  # still held by the process that wrote it
    clock.set(START + HOLD + timedelta(seconds=1))
    assert [o.text for o in later.unsent(["console"])] == ["onderweg"]  # not LEASE later
    engine.dispose()


# a real `letsbot run`, killed while replies are in flight ----------------------------

KILLS = 3
PAYMENTS = 6  # per run
PAYMENTS_BOOKED = text("SELECT description FROM transfers WHERE kind = 'payment'")
CONFIRMED = re.compile(r"Geboekt: #\d+: .* voor (p\d+-\d+)\.$", re.MULTILINE)


def confirmations(server: FakeTelegram, person: Person) -> list[str]:
    """The description of each booking confirmation the person received, in order."""
    return [m[1] for s in server.sent_to(person.id) for m in CONFIRMED.finditer(s.text)]


def in_flight(server: FakeTelegram, person: Person, run: int) -> int:
    """Confirmations of this run the bot has started to send the person."""
    return sum(
        1
        for method, params in server.calls
        if method == "sendMessage"
        and params.get("chat_id") == str(person.id)
        and "Geboekt" in str(params.get("text"))
        and f"p{run}-" in str(params.get("text"))
    )


@pytest.mark.slow  # about a minute: each restart waits for the dead process's leases
async def test_sigkill_between_commit_and_reply_loses_no_confirmation(
    sqlite_url: str, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_url)
    setup = Driver(engine, make_settings())
    setup.say("admin", "/start")
    for number, person in ((2, BOB), (3, CATO)):
        name = f"{person.first_name} {person.last_name}"
        setup.send(setup.incoming(str(person.id), f"/aanmelden {name}", platform="telegram"))
        setup.say("admin", f"/goedkeuren {number}")
    server = FakeTelegram()
    await server.start()
    server.group(GROUP)
    server.person(BOB)
    server.person(CATO)
    # Telegram takes its time: a kill lands while replies are still on their way.
    server.send_delay = 0.15
    rng = random.Random(20261203)
    outputs: list[str] = []
    try:
        for run in range(KILLS):
            process = await LetsbotRun.start(server, sqlite_url, tmp_path)
            for k in range(PAYMENTS):
                server.say(BOB, None, f"/betaal DU-003 1 p{run}-{k}")
                server.say(BOB, None, "ja")
            target = rng.randint(1, PAYMENTS - 2)
            await server.wait_for(
                lambda: in_flight(server, BOB, run) >= target,  # noqa: B023
                timeout=30,
            )
            process.process.kill()
            await process.end()
            outputs.append(process.output)
        process = await LetsbotRun.start(server, sqlite_url, tmp_path)
        with engine.connect() as connection:
            booked = [row[0] for row in connection.execute(PAYMENTS_BOOKED)]
            connection.rollback()
        # Every booking's confirmation reaches its payer: the restarts sent what was lost.
        await server.wait_for(
            lambda: set(booked) <= set(confirmations(server, BOB)),
            timeout=LEASE.total_seconds() + 30,
        )
        process.process.terminate()
        assert await process.end() == 0
        outputs.append(process.output)
    finally:
        await server.close()
    assert len(booked) == len(set(booked)) >= KILLS  # nothing booked twice, real work done
    assert ledger_problems(engine, make_settings().group_limits) == []
    # The kills did land between a commit and its reply: the outbox sent what was left.
    assert any("outbox: sending" in output for output in outputs)
    engine.dispose()


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
