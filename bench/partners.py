"""Benchmark 9: trade between groups, two ``letsbot run`` processes on loopback.

LETS Durme (pluimen, 60 an hour) and LETS Gent (munten, 40 an hour) are
partners; each bot serves its own loopback Bot API (tests/telegram_api.py)
and its own database, and they pay each other over signed HTTP on 127.0.0.1.

- An inter-group payment, from the payer's ``ja`` to both receipts (the
  payer's "Aangekomen" in Durme's Telegram and the receiver's in Gent's),
  against a local payment in Durme from its ``ja`` to both receipts (the
  payer's and the receiver's), the two alternated; target: ratio ≤ 2.
- 100 members of each group pay a member of the other at once (the questions
  first, then every ``ja`` at once): every payment arrives, both receipts
  sent, no error logged; afterwards ``letsbot check`` passes on both
  databases and the two mirror each other (``mirror_problems``).

``pair`` is also what tests/test_partners_crash.py kills and starts again.
Run alone: ``python -m bench --only partners``.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import text

from adapters.telegram import Tuning
from app.cli import main as letsbot
from app.partners import signing_key
from bench.process import BotProcess, write_config
from bench.report import Row, median, quantile
from bench.seed import add_member
from bench.telegram import TelegramThread
from letsbot.config import load_settings
from storage.database import make_engine, upgrade
from tests.telegram_api import TOKEN, FakeTelegram, Person, Sent

BENCH = "9 partners"
TARGET_RATIO = 2.0
# Seconds between two measured payments: each makes three or four messages, and the
# bot keeps to Telegram's 30 messages a second (its limiter would hold receipts back).
PACE = 0.15
TELEGRAM_RATE = Tuning().overall_rate  # messages a second the bot sends at most
WIDE = 10**9
T = TypeVar("T")


@dataclass(frozen=True)
class GroupSpec:
    name: str
    prefix: str
    unit: str
    units: str
    per_hour: int
    first_person: int  # Telegram ids of its members start here


DURME = GroupSpec("LETS Durme", "DU", "pluim", "pluimen", 60, 10_000)
GENT = GroupSpec("LETS Gent", "GE", "munt", "munten", 40, 20_000)


@dataclass
class Side:
    """One group: its config, database, loopback Bot API and (when running) its bot."""

    spec: GroupSpec
    config: Path
    url: str
    port: int
    telegram: TelegramThread
    people: list[Person]
    numbers: dict[int, int]  # Telegram id -> member number
    bot: BotProcess | None = None
    bots: list[BotProcess] = field(default_factory=list)  # every process it ran, for its log

    @property
    def fake(self) -> FakeTelegram:
        return self.telegram.fake

    def code(self, person: Person) -> str:
        return f"{self.spec.prefix}-{self.numbers[person.id]:03d}"

    def start(self) -> None:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("LETSBOT_")}
        self.bot = BotProcess(self.config)
        self.bot.env = environment
        self.bots.append(self.bot)
        self.bot.start()
        self.bot.wait_for(r"telegram ready: ")
        self.bot.wait_for(r"partner endpoint on ")

    def kill(self) -> None:
        """SIGKILL: no clean stop, nothing flushed."""
        assert self.bot is not None and self.bot.process is not None
        self.bot.process.kill()
        self.bot.process.wait(timeout=30)
        self.bot.stop()  # reaps the reader; the process is gone already

    def stop(self) -> None:
        if self.bot is not None:
            self.bot.stop()
            self.bot = None

    def say(self, person: Person, words: str) -> float:
        """``person`` writes to the bot; time.monotonic() when the update was queued."""

        def write() -> float:
            self.fake.say(person, None, words)
            return time.monotonic()

        return self.telegram.call(write)

    def sent_to(self, person: Person) -> list[Sent]:
        return self.telegram.call(self.fake.sent_to, person.id)

    def wait(self, found: Callable[[], T], timeout: float = 30) -> T:
        """``found()`` once truthy, looked at after every change on this Bot API."""
        return self.telegram.run(self.fake.wait_for(found, timeout), timeout + 5)

    def wait_for_text(self, person: Person, words: str, after: int, timeout: float = 30) -> Sent:
        """The first message to ``person`` after their first ``after`` containing ``words``."""

        def found() -> Sent | None:
            return next((s for s in self.fake.sent_to(person.id)[after:] if words in s.text), None)

        return self.wait(found, timeout)

    def errors(self) -> list[str]:
        return [line for bot in self.bots for line in bot.errors()]

    def check(self) -> int:
        """``letsbot check``: 0 when the ledger is sound."""
        with contextlib.redirect_stdout(io.StringIO()):
            return letsbot(["--config", str(self.config), "check"])


def prepare(
    folder: Path, spec: GroupSpec, url: str, members: int, telegram: TelegramThread
) -> Side:
    """A migrated database with ``members`` members (Telegram identities), a config."""
    folder.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    try:
        upgrade(engine)
        people = [
            Person(spec.first_person + n, f"Lid{n}", language_code="nl") for n in range(members)
        ]
        with engine.begin() as connection:
            for n, person in enumerate(people, start=1):
                add_member(
                    connection,
                    n,
                    platform="telegram",
                    user_id=str(person.id),
                    language="nl",
                    created_at=datetime.now(UTC),
                )
    finally:
        engine.dispose()
    for person in people:
        telegram.call(telegram.fake.person, person)
    port = free_port()
    (folder / "telegram.token").write_text(TOKEN, encoding="utf-8")
    config = write_config(
        folder / "bot.toml",
        {
            "group": {"name": spec.name, "code_prefix": spec.prefix, "language": "nl"},
            "currency": {"name": spec.unit, "plural": spec.units, "units_per_hour": spec.per_hour},
            "limits": {"min_balance": -WIDE, "max_balance": WIDE, "max_transfer": 100_000},
            "storage": {"url": url},
            "partners": {"listen": f"127.0.0.1:{port}", "key_file": "partner.key"},
            "telegram": {
                "enabled": True,
                "base_url": telegram.fake.base_url,
                "token_file": str(folder / "telegram.token"),
            },
        },
    )
    numbers = {person.id: n for n, person in enumerate(people, start=1)}
    return Side(spec, config, url, port, telegram, people, numbers)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def public_key(side: Side) -> str:
    settings = load_settings(side.config)
    engine = make_engine(side.url)
    try:
        return signing_key(settings, side.config, engine).public
    finally:
        engine.dispose()


def partner(side: Side, other: Side) -> None:
    """``letsbot partner add`` on ``side`` for ``other``, with a cap no test reaches."""
    words = [
        *("--config", str(side.config), "partner", "add", other.spec.prefix),
        *("--name", other.spec.name, "--url", f"http://127.0.0.1:{other.port}"),
        *("--key", public_key(other), "--units-per-hour", str(other.spec.per_hour)),
        *("--unit", other.spec.units, "--cap", str(WIDE)),
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        assert letsbot(words) == 0, words


@contextlib.contextmanager
def pair(folder: Path, members: int, gent_url: str | None = None) -> Iterator[tuple[Side, Side]]:
    """Durme (SQLite) and Gent (SQLite, or ``gent_url``), partners, both bots running."""
    with TelegramThread(FakeTelegram()) as durme_api, TelegramThread(FakeTelegram()) as gent_api:
        durme = prepare(
            folder / "durme", DURME, f"sqlite:///{folder / 'durme.db'}", members, durme_api
        )
        gent = prepare(
            folder / "gent", GENT, gent_url or f"sqlite:///{folder / 'gent.db'}", members, gent_api
        )
        partner(durme, gent)
        partner(gent, durme)
        try:
            durme.start()
            gent.start()
            yield durme, gent
        finally:
            durme.stop()
            gent.stop()


def rows_of(url: str, query: str) -> list[tuple[Any, ...]]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            found = [tuple(row) for row in connection.execute(text(query))]
            connection.rollback()
        return found
    finally:
        engine.dispose()


def converted(amount: int, payer: GroupSpec, receiver: GroupSpec) -> int:
    """letsbot.partners.convert for these whole units: rounded down, through hours."""
    return amount * receiver.per_hour // payer.per_hour


def mirror_problems(a: Side, b: Side) -> list[str]:
    """Every way the two databases fail to mirror each other; [] when they do.

    Each payment ``a`` booked as arrived is booked once in ``b``, under the same
    id, with the converted amount and a transfer of that amount; each one ``a``
    booked back is booked nowhere in ``b``; nothing is booked twice; ``b`` books
    nothing ``a`` never sent; the trade balances are what the payments make them.
    """
    problems: list[str] = []
    for payer, receiver in ((a, b), (b, a)):
        sent = rows_of(
            payer.url, "SELECT payment_id, state, amount, their_amount FROM partner_outgoing"
        )
        got = rows_of(
            receiver.url,
            "SELECT i.payment_id, i.status, t.amount FROM partner_incoming i"
            " LEFT JOIN transfers t ON t.id = i.transfer_id",
        )
        where = f"{payer.spec.prefix}→{receiver.spec.prefix}"
        ids = [row[0] for row in got]
        if len(ids) != len(set(ids)):
            problems.append(f"{where}: a payment id received twice")
        there = {payment_id: (status, amount) for payment_id, status, amount in got}
        for payment_id, state, amount, theirs in sent:
            if theirs != converted(amount, payer.spec, receiver.spec):
                problems.append(f"{where} {payment_id}: {amount} became {theirs}")
            status, booked = there.get(payment_id, (None, None))
            if state == "booked" and (status, booked) != ("booked", theirs):
                problems.append(f"{where} {payment_id}: booked here, there {status} {booked}")
            if state == "reversed" and status == "booked":
                problems.append(f"{where} {payment_id}: booked back here, booked there")
            if state == "sending":
                problems.append(f"{where} {payment_id}: still on its way")
        unknown = set(there) - {row[0] for row in sent}
        if unknown:
            problems.append(f"{where}: {len(unknown)} received that were never sent")
    balances = {}
    for side, other in ((a, b), (b, a)):
        [(balance,)] = rows_of(
            side.url,
            "SELECT m.balance FROM members m JOIN partners p ON p.account_id = m.id"
            f" WHERE p.prefix = '{other.spec.prefix}'",
        )
        [(out,)] = rows_of(
            side.url,
            "SELECT coalesce(sum(amount), 0) FROM partner_outgoing WHERE state <> 'reversed'",
        )
        [(came,)] = rows_of(
            side.url,
            "SELECT coalesce(sum(t.amount), 0) FROM partner_incoming i"
            " JOIN transfers t ON t.id = i.transfer_id WHERE i.status = 'booked'",
        )
        if balance != out - came:
            problems.append(
                f"{side.spec.prefix}: trade balance {balance}, payments say {out - came}"
            )
        balances[side.spec.prefix] = balance
    # In hours, one group's balance is the other's, the other way.
    if balances[a.spec.prefix] * b.spec.per_hour != -balances[b.spec.prefix] * a.spec.per_hour:
        problems.append(f"trade balances {balances} don't mirror")
    return problems


def pay(
    payer_side: Side, payer: Person, code: str, amount: int, description: str
) -> tuple[float, int]:
    """``/betaal`` and, once asked, ``ja``: when ``ja`` was written, and the payer's
    messages before it."""
    before = len(payer_side.sent_to(payer))
    payer_side.say(payer, f"/betaal {code} {amount} {description}")
    payer_side.wait_for_text(payer, asked(description), before)
    before = len(payer_side.sent_to(payer))
    return payer_side.say(payer, "ja"), before


def asked(description: str) -> str:
    """What the question for the payment ``description`` ends with (not an earlier
    question sent again from the outbox after a crash)."""
    return f"voor: {description}?"


def one_latency(durme: Side, gent: Side, n: int, local: bool) -> float:
    """Seconds from ``ja`` to the last of both receipts."""
    payer, other = durme.people[0], durme.people[1]
    receiver_side = durme if local else gent
    receiver = other if local else gent.people[0]
    description = f"{'lokaal' if local else 'over'}{n}"
    seen = len(receiver_side.sent_to(receiver))
    said, before = pay(durme, payer, receiver_side.code(receiver), 3, description)
    told = durme.wait_for_text(payer, description if local else "Aangekomen", before)
    got = receiver_side.wait_for_text(receiver, description, seen)
    return max(told.at, got.at) - said


def concurrent(durme: Side, gent: Side, count: int, timeout: float) -> dict[str, Any]:
    """``count`` members of each group pay a member of the other, all at once."""
    plans = []
    for n in range(count):
        plans.append((durme, durme.people[n], gent, gent.people[n], 3, f"dg{n}"))
        plans.append((gent, gent.people[n], durme, durme.people[n], 2, f"gd{n}"))
    before = {(side.spec.prefix, p.id): len(side.sent_to(p)) for side, p, *_ in plans}
    seen = {(side.spec.prefix, r.id): len(side.sent_to(r)) for _, _, side, r, *_ in plans}
    for side in (durme, gent):
        mine = [(p, f"/betaal {o.code(r)} {a} {d}") for s, p, o, r, a, d in plans if s is side]

        def ask_all(said: list[tuple[Person, str]] = mine, fake: FakeTelegram = side.fake) -> None:
            for person, words in said:
                fake.say(person, None, words)

        side.telegram.call(ask_all)
    for side, person, _, _, _, description in plans:
        key = (side.spec.prefix, person.id)
        side.wait_for_text(person, asked(description), before[key], timeout)
    before = {(side.spec.prefix, p.id): len(side.sent_to(p)) for side, p, *_ in plans}
    started = time.monotonic()
    for side in (durme, gent):
        people = [p for s, p, *_ in plans if s is side]

        def confirm_all(people: list[Person] = people, fake: FakeTelegram = side.fake) -> None:
            for person in people:
                fake.say(person, None, "ja")

        side.telegram.call(confirm_all)
    errors: list[str] = []
    last = started
    deadline = started + timeout
    for side, payer, other, receiver, _, description in plans:
        try:
            told = side.wait_for_text(
                payer,
                "Aangekomen",
                before[(side.spec.prefix, payer.id)],
                deadline - time.monotonic(),
            )
            got = other.wait_for_text(
                receiver,
                description,
                seen[(other.spec.prefix, receiver.id)],
                deadline - time.monotonic(),
            )
        except TimeoutError:
            errors.append(f"{description}: no receipt within {timeout:g} s")
            continue
        last = max(last, told.at, got.at)
    return {"payments": len(plans), "errors": errors, "seconds": last - started}


def measure(folder: Path, *, samples: int, count: int) -> tuple[list[Row], dict[str, Any]]:
    details: dict[str, Any] = {}
    with pair(folder / "partners", max(count, 2)) as (durme, gent):
        for n in range(2):  # warm both paths: first imports, first connections
            one_latency(durme, gent, -1 - n, local=True)
            one_latency(durme, gent, -1 - n, local=False)
        local, across = [], []
        for n in range(samples):
            local.append(one_latency(durme, gent, n, local=True))
            time.sleep(PACE)
            across.append(one_latency(durme, gent, n, local=False))
            time.sleep(PACE)
        burst = concurrent(durme, gent, count, timeout=120)
        problems = mirror_problems(durme, gent)
        checks = [durme.check(), gent.check()]
        logged = durme.errors() + gent.errors()
    details.update(
        local_s=local,
        across_s=across,
        concurrent=burst,
        mirror_problems=problems,
        checks=checks,
        bot_errors=logged[:20],
    )
    ratio = median(across) / median(local)
    # After the ja's each bot sends 2 messages a payment (arrived, a receipt; "on its
    # way" only for one not answered within outbox.HOLD), TELEGRAM_RATE a second:
    # about the least the burst can take.
    least = 2 * count / TELEGRAM_RATE
    failed = len(burst["errors"]) + len(problems) + len(logged) + sum(1 for c in checks if c)
    rows = [
        Row(
            BENCH,
            "partners_payment_median_ms",
            "inter-group payment, ja to both receipts (vs local payment), median",
            1000 * median(across),
            "ms",
            1000 * median(local),
            ratio,
            f"ratio <= {TARGET_RATIO:g}",
            ratio <= TARGET_RATIO,
        ),
        Row(
            BENCH,
            "partners_payment_p95_ms",
            "inter-group payment, ja to both receipts (vs local payment), p95",
            1000 * quantile(across, 0.95),
            "ms",
            1000 * quantile(local, 0.95),
            quantile(across, 0.95) / quantile(local, 0.95),
        ),
        Row(
            BENCH,
            "partners_concurrent_s",
            f"{count} payments each way at once: ja to the last receipt"
            f" (vs {2 * count} messages a bot at {TELEGRAM_RATE:g}/s)",
            burst["seconds"],
            "s",
            least,
            burst["seconds"] / least,
        ),
        Row(
            BENCH,
            "partners_concurrent_errors",
            f"{count} each way at once: errors (no receipt, mirror, check, logged)",
            failed,
            "count",
            target="0",
            met=failed == 0,
        ),
    ]
    return rows, details
