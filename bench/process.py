"""``letsbot run`` as a subprocess: its config, its log lines as they come, its memory."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy

from bench.seed import add_member
from letsbot.config import Settings
from storage.database import make_engine, upgrade
from storage.tables import members

WIDE = 10**9  # limits no benchmark payment reaches


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def write_config(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in values.items())
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def base_sections(database: Path, language: str = "en") -> dict[str, dict[str, Any]]:
    """A group with limits wide enough for any benchmark, on the SQLite file ``database``."""
    return {
        "group": {"name": "LETS Bench", "code_prefix": "DU", "language": language},
        "limits": {"min_balance": -WIDE, "max_balance": WIDE, "max_transfer": 100_000},
        "storage": {"url": f"sqlite:///{database}"},
        "market": {"max_active": 10_000, "msgs_per_hour": 10_000},
        "governance": {"early_close": False},
    }


def settings_of(sections: dict[str, Any]) -> Settings:
    """The Settings a config of these sections gives (platform sections left out)."""
    kept: dict[str, Any] = {k: v for k, v in sections.items() if k not in ("matrix", "telegram")}
    return Settings(**kept)


def letsbot_command() -> list[str]:
    """The installed ``letsbot`` entry point of this interpreter's environment."""
    script = Path(sys.executable).parent / "letsbot"
    if script.exists():
        return [str(script)]
    found = shutil.which("letsbot")
    return [found] if found else [sys.executable, "-m", "app"]


def migrated_database(path: Path) -> Path:
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


def add_members(
    path: Path, platform: str, user_ids: list[str], *, language: str = "en"
) -> list[int]:
    """Active members with one identity each, numbered after the ones there; their numbers.

    Made with Core inserts, as an approval would leave them (balance 0).
    """
    engine = make_engine(f"sqlite:///{path}")
    made: list[int] = []
    try:
        with engine.begin() as connection:
            last = connection.execute(sqlalchemy.select(sqlalchemy.func.max(members.c.number)))
            number = int(last.scalar_one() or 0)
            for user_id in user_ids:
                number += 1
                add_member(
                    connection,
                    number,
                    platform=platform,
                    user_id=user_id,
                    language=language,
                    created_at=datetime.now(UTC),
                )
                made.append(number)
    finally:
        engine.dispose()
    return made


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) a process used so far; None: this process."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU time of some processes over a stretch of wall time, as % of one core."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = pids
        self.start = {name: cpu_seconds(pid) for name, pid in pids.items()}
        self.started = time.perf_counter()

    def shares(self) -> dict[str, float]:
        wall = time.perf_counter() - self.started
        return {
            name: 100 * (cpu_seconds(pid) - self.start[name]) / wall
            for name, pid in self.pids.items()
        }


class BotProcess:
    """``letsbot --config CONFIG run``, its stderr read line by line as it comes."""

    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.env = {**os.environ, **(env or {})}
        self.lines: list[tuple[float, str]] = []  # (perf_counter when read, line)
        self._queue: queue.Queue[tuple[float, str] | None] = queue.Queue()
        self.process: subprocess.Popen[str] | None = None
        self.started = 0.0
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [*letsbot_command(), "--config", str(self.config), "run"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        for line in self.process.stderr:
            self._queue.put((time.perf_counter(), line.rstrip("\n")))
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float = 60) -> float:
        """Seconds from the process start to the first line matching ``pattern``."""
        wanted = re.compile(pattern)
        for at, line in self.lines:
            if wanted.search(line):
                return at - self.started
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"no line matching {pattern!r} in {timeout} s:\n{self.tail()}")
            try:
                item = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if item is None:
                raise RuntimeError(f"letsbot run exited before {pattern!r}:\n{self.tail()}")
            self.lines.append(item)
            if wanted.search(item[1]):
                return item[0] - self.started

    def drain(self) -> None:
        """Take in the lines logged so far."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is None:
                return
            self.lines.append(item)

    def tail(self, count: int = 30) -> str:
        self.drain()
        return "\n".join(line for _, line in self.lines[-count:])

    def rss_mb(self) -> float:
        """Resident memory (VmRSS) in MB."""
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text(encoding="utf-8")
        match = re.search(r"^VmRSS:\s+(\d+)\s+kB", status, re.MULTILINE)
        if match is None:
            raise RuntimeError("no VmRSS in /proc/<pid>/status")
        return int(match[1]) / 1024

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM (a clean stop), then SIGKILL if it hangs; the exit status."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)
        self.drain()
        code = self.process.returncode
        self.process = None
        return int(code)

    def errors(self) -> list[str]:
        """Logged errors and tracebacks."""
        self.drain()
        return [line for _, line in self.lines if " ERROR " in line or "Traceback" in line]

    def warnings(self) -> list[str]:
        self.drain()
        return [line for _, line in self.lines if " WARNING " in line]
