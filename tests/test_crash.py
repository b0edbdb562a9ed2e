"""Killed at random moments (SIGKILL), the bot never loses or doubles a booking.

The real console process is driven line by line; after every kill the ledger
check passes, every payment the member saw confirmed is booked exactly once,
and nothing is booked that the member did not confirm.
"""

from __future__ import annotations

import os
import queue
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from storage.check import ledger_problems
from storage.database import make_engine
from tests.support import make_settings
from tests.test_cli import CONFIG, letsbot

SETUP = """\
admin: /start
an: /aanmelden An
bo: /aanmelden Bo
admin: /goedkeuren 2
admin: /goedkeuren 3
"""
KILLS = 20
BOOKED = re.compile(r"Geboekt: #\d+: je betaalde 1 pluim aan Bo \(DU-003\) voor (p\d+-\d+)\.")


class Console:
    """``letsbot console`` as a person types into it: a line at a time."""

    def __init__(self, cwd: Path) -> None:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("LETSBOT_")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app", "console"],
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=environment,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.type("an")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def type(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def wait_for(self, pattern: re.Pattern[str], seen: set[str]) -> str:
        while True:
            line = self.lines.get(timeout=60)
            for match in pattern.finditer(line):
                seen.add(match.group(1))
            if "Geboekt" in line or "Betaal" in line:
                return line

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


@pytest.mark.slow  # 12 to 20 s of processes killed and started again
def test_sigkill_at_random_moments_loses_and_doubles_nothing(tmp_path: Path) -> None:
    (tmp_path / "bot.toml").write_text(CONFIG, encoding="utf-8")
    assert letsbot("db", "upgrade", cwd=tmp_path).returncode == 0
    assert letsbot("console", "--script", "-", cwd=tmp_path, stdin=SETUP).returncode == 0
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'letsbot.db'}")
    rng = random.Random(20261126)
    confirmed: set[str] = set()  # "ja" typed
    seen: set[str] = set()  # a booking the member saw
    for run in range(KILLS):
        console = Console(tmp_path)
        for k in range(rng.randint(1, 6)):
            description = f"p{run}-{k}"
            console.type(f"/betaal 3 1 {description}")
            console.wait_for(BOOKED, seen)  # the question
            console.type("ja")
            confirmed.add(description)
            if rng.random() < 0.4:
                break  # killed right after "ja": booked or not, never twice
            console.wait_for(BOOKED, seen)
        console.kill()
        assert ledger_problems(engine, make_settings().group_limits) == []  # letsbot check
    engine.dispose()
    with sqlite3.connect(tmp_path / "var" / "letsbot.db") as db:
        booked = [row[0] for row in db.execute("SELECT description FROM transfers")]
    assert len(booked) == len(set(booked)), "a payment was booked twice"
    assert seen <= set(booked), "a booking the member saw is missing"
    assert set(booked) <= confirmed, "something was booked that nobody confirmed"
    assert len(seen) >= KILLS  # the test did real work
