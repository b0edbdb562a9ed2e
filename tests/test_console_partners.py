"""Two groups trade from two terminals: ``letsbot console`` with partner groups runs
their endpoint and the sender beside the chat, as ``letsbot run`` does.

Two real console processes, each on its own SQLite file, typed into as a person
types; they pay each other over HTTP on 127.0.0.1.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.console import Console
from letsbot.domain import Identity
from letsbot.messages import Outgoing, ToPerson
from tests.support import Driver
from tests.test_cli import letsbot

CONFIG = """\
[group]
name = "{name}"
coordinators = ["console:{coordinator}"]
code_prefix = "{prefix}"

[currency]
name = "{unit}"
plural = "{units}"
units_per_hour = {per_hour}

[storage]
url = "sqlite:///{folder}/letsbot.db"

[partners]
listen = "127.0.0.1:{port}"
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Terminal:
    """``letsbot console`` in a process, typed into line by line; all it printed, kept."""

    def __init__(self, folder: Path) -> None:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("LETSBOT_")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app", "--config", str(folder / "bot.toml"), "console"],
            cwd=folder,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=environment,
        )
        self.printed = ""
        self.changed = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        while chunk := self.process.stdout.read(1):
            with self.changed:
                self.printed += chunk
                self.changed.notify_all()

    def type(self, line: str) -> int:
        """Types ``line``; how much was printed before it."""
        assert self.process.stdin is not None
        with self.changed:
            before = len(self.printed)
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return before

    def wait_for(self, words: str, after: int = 0, timeout: float = 30) -> str:
        """What was printed after ``after``, once it holds ``words``."""
        with self.changed:
            found = self.changed.wait_for(lambda: words in self.printed[after:], timeout)
            assert found, f"{words!r} not printed; printed:\n{self.printed[after:]}"
            return self.printed[after:]

    def quit(self) -> int:
        self.type(":quit")
        return self.process.wait(timeout=30)


def setting_up(folder: Path, **values: object) -> None:
    folder.mkdir()
    (folder / "bot.toml").write_text(CONFIG.format(folder=folder, **values), encoding="utf-8")
    done = letsbot("db", "upgrade", cwd=folder)
    assert done.returncode == 0, done.stderr


def key_of(folder: Path) -> str:
    done = letsbot("partner", "key", cwd=folder)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def terminals(tmp_path: Path) -> Iterator[tuple[Terminal, Terminal]]:
    durme, gent = tmp_path / "durme", tmp_path / "gent"
    ports = {"DU": free_port(), "GE": free_port()}
    setting_up(
        durme,
        name="LETS Durme",
        coordinator="jan",
        prefix="DU",
        unit="pluim",
        units="pluimen",
        per_hour=60,
        port=ports["DU"],
    )
    setting_up(
        gent,
        name="LETS Gent",
        coordinator="tine",
        prefix="GE",
        unit="munt",
        units="munten",
        per_hour=40,
        port=ports["GE"],
    )
    for here, there, name, prefix, per_hour, units in (
        (durme, gent, "LETS Gent", "GE", "40", "munten"),
        (gent, durme, "LETS Durme", "DU", "60", "pluimen"),
    ):
        added = letsbot(
            *("partner", "add", prefix, "--name", name),
            *("--url", f"http://127.0.0.1:{ports[prefix]}", "--key", key_of(there)),
            *("--units-per-hour", per_hour, "--unit", units, "--cap", "1000"),
            cwd=here,
        )
        assert added.returncode == 0, added.stderr
    opened = [Terminal(gent), Terminal(durme)]
    try:
        yield opened[1], opened[0]
    finally:
        for terminal in opened:
            if terminal.process.poll() is None:
                terminal.process.kill()
                terminal.process.wait()


def test_two_terminals_pay_each_other(terminals: tuple[Terminal, Terminal]) -> None:
    durme, gent = terminals
    gent.wait_for("tine> ", gent.type("tine"))  # its prompt: it reads the next line now
    gent.wait_for("Je saldo", gent.type("/saldo"))  # Tine is a member of Gent now
    durme.wait_for("jan> ", durme.type("jan"))
    asked = durme.wait_for("voor: soep?", durme.type("/betaal GE-002 30 soep"))
    # The name comes from Gent's bot, asked before Ja/Nee; on a machine so busy that
    # it takes longer than the bot waits (2 s), the question says it couldn't.
    assert "tine krijgt daar 20 munten" in asked or "kon niet nagekeken worden" in asked
    assert "aan tine (GE-002, LETS Gent) voor: soep?" in asked or "nagekeken" in asked
    before = durme.type("ja")
    received = gent.wait_for("soep")  # Tine's receipt, printed when it comes
    assert "[dm tine]" in received and "20 munten" in received
    told = durme.wait_for("Aangekomen", before)
    assert "tine (GE-002) kreeg 20 munten" in told
    assert "Je saldo is nu -30 pluimen" in told
    assert durme.quit() == 0
    assert gent.quit() == 0


def test_a_taken_address_is_one_clear_line(
    terminals: tuple[Terminal, Terminal], tmp_path: Path
) -> None:
    """A second console on the same group can't listen too: said, and nothing else."""
    durme, _ = terminals
    durme.wait_for("jan> ", durme.type("jan"))
    durme.wait_for("Je saldo", durme.type("/saldo"))  # the first one listens
    second = letsbot("console", cwd=tmp_path / "durme", stdin="jan\n:quit\n")
    assert second.returncode != 0
    assert "partners.listen 127.0.0.1:" in second.stderr and "can't listen there" in second.stderr
    assert "Traceback" not in second.stderr


def test_the_console_holds_on_its_way_as_the_hub_does(driver: Driver) -> None:
    """Shown only when nothing overtakes it: a payment that arrives at once is one message."""
    out = io.StringIO()
    console = Console(driver.bot, out)
    jan = ToPerson(Identity("console", "jan"))
    console.show([Outgoing(jan, "onderweg 1", held_as="pay-1")])
    console.show([Outgoing(jan, "Aangekomen 1", overtakes="pay-1")])
    console.show([Outgoing(jan, "onderweg 2", held_as="pay-2")])
    assert out.getvalue() == "[dm jan] Aangekomen 1\n"
    console.release_all()  # at the end: what is still held is shown
    assert out.getvalue().split("\n")[-2] == "[dm jan] onderweg 2"
