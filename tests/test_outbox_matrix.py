"""The outbox on Matrix: a message sent again after a crash reaches the member once.

The homeserver keeps one event per transaction id, and the adapter derives an
outbox message's transaction id from its row: sent again by the next process,
it is the same transaction, so the member sees it once. A real Synapse
(tests/synapse.py) and matrix-nio members, as in tests/test_matrix.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from letsbot.clock import SystemClock, VirtualClock
from letsbot.messages import Chat, ChatKind, Outgoing, ToChat
from letsbot.outbox import LEASE, Outbox, encode
from storage.check import ledger_problems
from storage.uow import SqlUnitOfWork
from tests.support import make_settings
from tests.test_matrix import PASSWORD, Harness, group_with_ann_and_bob, mx, synapse, until
from tests.test_telegram import LetsbotRun

__all__ = ["mx", "synapse"]  # the fixtures, shared with tests/test_matrix.py


def sent(harness: Harness, outbox_id: int) -> bool:
    query = "SELECT count(*) FROM outbox WHERE id = :id AND sent_at IS NOT NULL"
    return harness.scalar(query, id=outbox_id) == 1


async def test_a_reply_sent_again_after_a_crash_reaches_the_member_once(mx: Harness) -> None:
    _, bob, _, _, bob_dm = await group_with_ann_and_bob(mx)
    await mx.stop()
    # A process that died right after its commit left this reply unsent.
    message = Outgoing(ToChat(Chat("matrix", bob_dm, ChatKind.DIRECT)), "Geboekt: #9 (once)")
    dead = Outbox(SqlUnitOfWork(mx.engine), VirtualClock(SystemClock().now() - LEASE * 2))
    with SqlUnitOfWork(mx.engine).transaction() as store:
        [queued] = dead.queue(store, [message])
    assert queued.outbox_id is not None
    await mx.start()
    await bob.reply(bob_dm, "Geboekt: #9 (once)")
    await until(lambda: sent(mx, queued.outbox_id or 0), what="the reply marked sent")
    await mx.stop()

    # Now as if the process died after the homeserver took it, before it was marked sent.
    with mx.engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE outbox SET sent_at = NULL, body = :body, lease_until = :past WHERE id = :id"
            ),
            {"body": encode(message), "past": SystemClock().now() - LEASE, "id": queued.outbox_id},
        )
    await mx.start()
    await until(lambda: sent(mx, queued.outbox_id or 0), timeout=30, what="the reply sent again")
    await bob.ask(bob_dm, "/saldo", "Je saldo")  # everything sent before it has reached Bob
    bodies = [n["content"]["body"] for n in bob.notices(bob_dm)]
    assert len([b for b in bodies if "(once)" in b]) == 1, bodies


# a real `letsbot run`, killed while replies are in flight ----------------------------

KILLS = 2
PAYMENTS = 5  # per run
CONFIRMED = re.compile(r"^Geboekt: #\d+: .* voor (p\d+-\d+)\.$", re.MULTILINE)


class SlowLink:
    """A TCP relay between the bot and the homeserver that is slow to answer.

    Requests go through at once, answers come a while later: a kill lands
    after the homeserver took a message and before the bot heard so.
    """

    def __init__(self, port: int, delay: float) -> None:
        self.target = port
        self.delay = delay
        self.confirmations = 0  # requests seen that carry a "Geboekt"
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target)
        await asyncio.gather(
            self._pipe(reader, upstream_writer, 0.0),
            self._pipe(upstream_reader, writer, self.delay),
        )

    async def _pipe(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, delay: float
    ) -> None:
        try:
            while data := await source.read(65536):
                if not delay and b"Geboekt" in data:
                    self.confirmations += 1
                if delay:
                    await asyncio.sleep(delay)
                sink.write(data)
                await sink.drain()
        except ConnectionError:
            pass
        finally:
            with contextlib.suppress(ConnectionError, RuntimeError):
                sink.close()


async def letsbot_run(mx: Harness, link: SlowLink, folder: Path) -> LetsbotRun:
    settings = mx.settings()
    rooms = ", ".join(f'"{room}"' for room in mx.rooms)
    coordinators = ", ".join(f'"{c}"' for c in settings.group.coordinators)
    config = folder / "bot.toml"
    config.write_text(
        "[group]\n"
        'name = "LETS Durme"\n'
        'code_prefix = "DU"\n'
        f"coordinators = [{coordinators}]\n"
        "[storage]\n"
        f'url = "{mx.engine.url.render_as_string(hide_password=False)}"\n'
        "[matrix]\n"
        "enabled = true\n"
        f'homeserver = "http://127.0.0.1:{link.port}"\n'
        f'user_id = "{mx.bot_id}"\n'
        f"group_rooms = [{rooms}]\n",
        encoding="utf-8",
    )
    env = {**os.environ, "LETSBOT_MATRIX__PASSWORD": PASSWORD}
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "app", "--config", str(config), "run"),
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    run = LetsbotRun(process)
    run.reader = asyncio.create_task(run._read())
    await run.wait_for(" ready: ", timeout=60)
    return run


@pytest.mark.slow  # about a minute: each restart waits for the dead process's leases
async def test_sigkill_between_commit_and_reply_confirms_each_booking_once(
    mx: Harness, tmp_path: Path
) -> None:
    _, bob, _, _, bob_dm = await group_with_ann_and_bob(mx)  # Ann DU-001, Bob DU-002
    await mx.stop()
    link = SlowLink(mx.server.port, delay=0.2)
    await link.start()
    rng = random.Random(20261203)
    outputs: list[str] = []
    try:
        for run in range(KILLS):
            process = await letsbot_run(mx, link, tmp_path)
            seen = link.confirmations
            for k in range(PAYMENTS):
                await bob.say(bob_dm, f"/betaal DU-001 1 p{run}-{k}")
                await bob.say(bob_dm, "ja")
            target = seen + rng.randint(1, PAYMENTS - 2)
            await until(
                lambda: link.confirmations >= target,  # noqa: B023
                timeout=30,
                what="replies in flight",
            )
            process.process.kill()
            await process.end()
            outputs.append(process.output)
        process = await letsbot_run(mx, link, tmp_path)
        with mx.engine.connect() as connection:  # a transaction here holds SQLite's lock
            booked = {
                str(row[0])
                for row in connection.execute(
                    text("SELECT description FROM transfers WHERE kind = 'payment'")
                )
            }
            connection.rollback()

        def confirmations() -> list[str]:
            return [
                m[1] for n in bob.notices(bob_dm) for m in CONFIRMED.finditer(n["content"]["body"])
            ]

        # Every booking's confirmation reaches its payer after the restarts...
        await until(
            lambda: booked <= set(confirmations()),
            timeout=LEASE.total_seconds() + 40,
            what=f"a confirmation of each of {sorted(booked)}",
        )
        await bob.ask(bob_dm, "/saldo", "Je saldo")  # what was sent before has arrived
        process.process.terminate()
        assert await process.end() == 0
        outputs.append(process.output)
    finally:
        await link.close()
    # ...and none twice: a message sent again is the same transaction for Synapse.
    assert sorted(confirmations()) == sorted(booked)
    assert len(booked) >= KILLS
    assert ledger_problems(mx.engine, make_settings().group_limits) == []
    assert any("outbox: sending" in output for output in outputs)  # the kills hit the window
