"""A PostgreSQL outage: stopped (fast and immediate shutdown) and started again.

The shared server is never touched: each test starts a throwaway cluster of
its own (initdb, pg_ctl) on a free loopback port and stops it at will. The
real ``letsbot run`` process serves the Telegram API on loopback
(tests/telegram_api.py) from that database. During the outage every command
gets the "try again in a moment" reply; the process lives on; afterwards
payments work and nothing is booked twice. The timer's scheduled work logs
the outage, retries, and posts a reminder that fell due meanwhile, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from app.run import serve
from letsbot.clock import SystemClock
from letsbot.domain import EventKind
from letsbot.i18n import catalog
from storage.check import ledger_problems
from storage.database import make_engine, upgrade
from storage.uow import SqlUnitOfWork
from tests.support import make_settings
from tests.telegram_api import TOKEN, FakeTelegram, Person, Sent
from tests.test_matrix import Harness, Synapse, synapse, until

__all__ = ["synapse"]  # the fixture

PG_BIN = Path(os.environ.get("LETSBOT_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
GROUP = -4001
ANN = Person(100, "Ann", "Coord", username="ann_coord")  # telegram:100 is a coordinator
BOB = Person(200, "Bob", "Peeters", username="bobp")
CATO = Person(300, "Cato", "Janssens", username="cato_j")
BUSY = catalog("nl")["error.busy"]
BOOKED = re.compile(
    r"Geboekt: #\d+: je betaalde 1 pluim aan Ann Coord \(DU-001\) voor (\S+)\.$", re.M
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """A PostgreSQL server of our own, in a temporary directory, on a free port.

    PostgreSQL refuses to run as root; as root the binaries run as the
    ``postgres`` user in a directory that user owns.
    """

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="letsbot-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
        )

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str) -> None:
        command = [str(PG_BIN / program), *args]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120, cwd=self.root)

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
            " -c max_connections=20 -c shared_buffers=16MB"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-o", options,
                  "-w", "-t", "60", "start")  # fmt: skip

    def stop(self, mode: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def _missing() -> str | None:
    for program in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / program).is_file():
            return f"no PostgreSQL server binaries in {PG_BIN} (set LETSBOT_TEST_PG_BIN)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: can't start PostgreSQL as another user"
    return None


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    cluster = Cluster()
    try:
        cluster.start()
        engine = make_engine(cluster.url)
        upgrade(engine)
        engine.dispose()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
async def server() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    await server.start()
    server.group(GROUP)
    server.person(ANN)
    server.person(BOB)
    server.person(CATO)
    yield server
    await server.close()


@dataclass
class LetsbotRun:
    """``letsbot run`` in a child process, serving Telegram from the cluster's database."""

    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls, server: FakeTelegram, url: str, folder: Path, env: dict[str, str] | None = None
    ) -> LetsbotRun:
        config = folder / "bot.toml"
        config.write_text(
            "[group]\n"
            'name = "LETS Durme"\n'
            'code_prefix = "DU"\n'
            'coordinators = ["telegram:100"]\n'
            "[storage]\n"
            f'url = "{url}"\n'
            "[telegram]\n"
            "enabled = true\n"
            f'base_url = "{server.base_url}"\n'
            f"group_chat_ids = [{GROUP}]\n",
            encoding="utf-8",
        )
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "app", "--config", str(config), "run"),
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "LETSBOT_TELEGRAM__TOKEN": TOKEN, **(env or {})},
        )
        run = cls(process)
        run.reader = asyncio.create_task(run._read())
        async with asyncio.timeout(30):
            while not any(" ready: " in line for line in run.lines):
                assert process.returncode is None, run.output
                await asyncio.sleep(0.05)
        return run

    async def _read(self) -> None:
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self.lines.append(line.decode())

    @property
    def output(self) -> str:
        return "".join(self.lines)

    async def end(self) -> int:
        self.process.terminate()
        try:
            return await asyncio.wait_for(self.process.wait(), 20)
        finally:
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()
            if self.reader is not None:
                await self.reader


async def ask(server: FakeTelegram, person: Person, line: str, expect: str) -> Sent:
    """``person`` writes ``line`` in their direct chat; the bot's next reply there with ``expect``."""
    before = len(server.sent_to(person.id))
    server.say(person, None, line)
    found = await server.wait_for(
        lambda: [s for s in server.sent_to(person.id)[before:] if expect in s.text], 20
    )
    return found[0]


async def reply(server: FakeTelegram, person: Person, line: str) -> str:
    """``person`` writes ``line``; the text of the bot's next reply in their direct chat."""
    return (await ask(server, person, line, "")).text


async def wait_until(condition: Callable[[], bool], timeout: float = 20) -> None:
    """Poll ``condition()`` (a quick query) until it holds, within ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


async def pay(server: FakeTelegram, description: str) -> None:
    """Bob pays Ann 1 pluim and confirms; the database is up."""
    await ask(server, BOB, f"/betaal DU-001 1 {description}", "Betaal 1 pluim")
    await ask(server, BOB, "ja", f"voor {description}.")


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_commands_during_an_outage_are_told_to_try_again_and_nothing_is_lost(
    cluster: Cluster, server: FakeTelegram, tmp_path: Path, mode: str
) -> None:
    run = await LetsbotRun.start(server, cluster.url, tmp_path)
    engine = make_engine(cluster.url)
    try:
        await ask(server, ANN, "/start", "Welkom bij LETS Durme")
        await ask(server, BOB, "/aanmelden Bob Peeters", "kandidaat-lid")
        await ask(server, ANN, "/goedkeuren DU-002", "is nu lid")
        await pay(server, "voor")

        # A command in flight when the server goes down: its transaction waits on
        # a row lock that another connection holds, then the server stops.
        await ask(server, BOB, "/betaal DU-001 1 vlucht", "Betaal 1 pluim")
        blocker = engine.connect()
        blocker.execute(text("SELECT id FROM members FOR UPDATE"))
        server.say(BOB, None, "ja")
        waiting = text("SELECT count(*) FROM pg_locks WHERE NOT granted")
        await wait_until(lambda: blocker.execute(waiting).scalar_one() > 0)
        before = len(server.sent_to(BOB.id))
        await asyncio.to_thread(cluster.stop, mode)
        blocker.invalidate()
        assert (await server.next_to(BOB.id, before, timeout=20)).text == BUSY

        # Commands while it is down: each gets "try again", none is lost silently.
        for line in ("/saldo", "/betaal DU-001 1 tijdens", "ja", "/overzicht"):
            assert await reply(server, BOB, line) == BUSY
        # Someone the bot has not met yet (the adapter would note their @username first).
        assert await reply(server, CATO, "/aanmelden Cato Janssens") == BUSY
        assert await reply(server, BOB, "/betaal @cato_j 1 naam") == BUSY  # an unknown @handle
        assert run.process.returncode is None

        await asyncio.to_thread(cluster.start)
        # The question from before the outage is still open: "ja" books it now, once.
        await ask(server, BOB, "ja", "voor vlucht.")
        await pay(server, "na")
        assert "Je saldo: -3 pluimen" in await reply(server, BOB, "/saldo")
        assert await reply(server, BOB, "ja") == catalog("nl")["confirm.nothing"]
        assert run.process.returncode is None
    finally:
        status = await run.end()
    assert status == 0, run.output
    assert "Traceback" not in run.output, run.output

    seen = [m[1] for s in server.sent_to(BOB.id) for m in BOOKED.finditer(s.text)]
    with engine.connect() as connection:
        booked = [
            row[0]
            for row in connection.execute(
                text("SELECT description FROM transfers WHERE kind = 'payment' ORDER BY id")
            )
        ]
        connection.rollback()
    assert booked == ["voor", "vlucht", "na"]
    assert seen == booked  # every booking confirmed to Bob once, none that he didn't see
    assert ledger_problems(engine, make_settings().group_limits) == []  # letsbot check
    engine.dispose()


async def test_a_reminder_due_during_the_outage_is_posted_once_after_it(
    cluster: Cluster, server: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    """The composition root of ``letsbot run`` in this process, its timer every 0.2 s."""
    caplog.set_level(logging.INFO)
    settings = make_settings(
        telegram={
            "enabled": True,
            "token": TOKEN,
            "base_url": server.base_url,
            "group_chat_ids": [GROUP],
        }
    )
    engine = make_engine(cluster.url)
    stop = asyncio.Event()
    serving = asyncio.create_task(
        serve(settings, engine, SystemClock(), stop, check_every=timedelta(seconds=0.2))
    )

    def ran() -> int:
        """How many rounds of scheduled work the timer has run."""
        return sum("executed successfully" in r.getMessage() for r in caplog.records)

    try:
        await wait_until(lambda: ran() >= 1)
        now = SystemClock().now()
        due = now + timedelta(seconds=3)  # the reminder 2 hours ahead falls due in 3 s
        with SqlUnitOfWork(engine).transaction() as store:
            store.events.add_event(
                series_id=None,
                kind=EventKind.MARKET,
                title="Ruilmarkt",
                place=None,
                starts_at=due + timedelta(hours=2),
                ends_at=None,
                created_by_id=store.members.group_account().id,
                at=now,
            )
        await asyncio.to_thread(cluster.stop, "fast")
        assert SystemClock().now() < due, "stopping PostgreSQL took too long for this test"

        def failed_after_due() -> bool:
            return any(
                "reminders wait for the next round" in r.getMessage()
                and r.created > due.timestamp()
                for r in caplog.records
            )

        await wait_until(failed_after_due)
        assert not [s for s in server.sent_to(GROUP) if "Herinnering" in s.text]
        assert not serving.done()

        await asyncio.to_thread(cluster.start)
        await server.reply_containing(GROUP, "Herinnering", timeout=20)
        after = ran()
        await wait_until(lambda: ran() >= after + 5)  # five more rounds
        assert len([s for s in server.sent_to(GROUP) if "Herinnering" in s.text]) == 1
        assert scalar(engine, "SELECT count(*) FROM reminders WHERE offset_seconds = 7200") == 1
        assert not serving.done()
    finally:
        stop.set()
        await asyncio.wait_for(serving, 20)
        engine.dispose()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings and all(r.exc_info is None for r in warnings)  # logged, no tracebacks


def scalar(engine: Engine, sql: str) -> int:
    with engine.connect() as connection:
        value = connection.execute(text(sql)).scalar_one()
        connection.rollback()
    return int(value)


async def test_the_matrix_sync_loop_lives_through_an_outage(
    cluster: Cluster, synapse: Synapse, tmp_path: Path
) -> None:
    """Matrix stores its sync checkpoint after each batch: with the database down that
    write fails, and the loop must go on (from the token it holds) rather than stop."""
    engine = make_engine(cluster.url)
    # with PostgreSQL the encryption keys' folder is configured
    mx = Harness(synapse, engine, matrix={"store_path": tmp_path / "matrix"})
    logging.getLogger().addHandler(mx.log)
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("nio").setLevel(logging.WARNING)
    ann = await mx.person("Ann")
    mx.coordinators.append(f"matrix:{ann.user_id}")
    try:
        await mx.start()
        room = await ann.dm(mx.bot_id)
        await ann.ask(room, "/start", "Welkom bij LETS Durme")

        await asyncio.to_thread(cluster.stop, "fast")
        await ann.ask(room, "/saldo", BUSY)
        await until(lambda: any("checkpoint" in line for line in mx.log.lines), what="the log")
        await ann.ask(room, "/overzicht", BUSY)  # the loop still reads

        await asyncio.to_thread(cluster.start)
        await ann.ask(room, "/saldo", "Je saldo: 0 pluimen")
        assert mx.task is not None and not mx.task.done()
        busy = [e for e in ann.notices(room) if e["content"]["body"] == BUSY]
        assert len(busy) == 2  # each command told once: no batch handled twice
    finally:
        logging.getLogger().removeHandler(mx.log)
        if mx.task is not None and not mx.task.done():
            await mx.stop()
        await ann.close()
        engine.dispose()


def test_a_connection_lost_at_commit_is_told_honestly(pg_url: str) -> None:
    """PostgreSQL drops the connection at the COMMIT of a payment: the member hears that
    it may or may not have gone through (not "nothing changed"), and a retry books once."""
    from sqlalchemy import event

    from tests.support import Driver

    engine = make_engine(pg_url)
    driver = Driver(engine, make_settings())
    driver.member("an")
    driver.member("bo")
    driver.say("an", "/betaal 3 10 soep")
    killer = make_engine(pg_url)
    armed = [True]

    @event.listens_for(engine, "commit")
    def kill_at_commit(connection: object) -> None:
        if armed[0]:
            armed[0] = False
            pid = connection.connection.dbapi_connection.info.backend_pid  # type: ignore[attr-defined]
            with killer.begin() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

    out = driver.say("an", "ja")
    assert out == f"[dm an] {catalog('nl')['error.unsure']}"
    assert driver.last is not None and driver.last.outcome == "unsure"
    assert driver.count("transfers") == 0  # killed before the commit: not stored
    assert "Geboekt" in driver.say("an", "ja")  # the question is still open: once
    assert driver.count("transfers") == 1 and driver.balance("an") == -10
    killer.dispose()
    engine.dispose()
