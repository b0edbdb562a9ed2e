"""Stateful property tests: the real bot on a real SQLite file, driven at random.

A hypothesis state machine lets people join and be approved, pay (/pay or
/betaal, then ja/nee, now or later), ask for payment (/vraagbetaling), lets the
coordinator reverse bookings (/terugboeken) and change limits (/limiet), and
lets members leave (/uitstappen) and settle toward zero. Amounts include ones
over the limits and malformed ones. Some rules leave several questions open
about one account and then answer them all, so that a confirmation meets
balances that moved after it was asked; the same booking is asked to be
reversed twice; applied messages are delivered again.

Beside the bot runs a small, independent model of the LETS rules. After every
command the bot's outcome must be the one the model predicts, and after every
step the database must agree with the model (members, balances, limits, open
questions, every transfer) and satisfy the ledger's invariants: balances sum
to zero, each cached balance equals the sum of its transfers
(``storage.check.ledger_problems``), no hard limit is broken. A command that
is refused (or ignored, or a redelivered duplicate) must change nothing.
"""

from __future__ import annotations

import atexit
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from sqlalchemy import text

from letsbot.markup import to_plain
from letsbot.messages import Incoming, Result
from storage.check import ledger_problems
from storage.database import make_engine, upgrade
from tests.support import Driver, make_settings

ADMIN = "admin"  # the coordinator configured in make_settings()
KAS = "kas"  # the group account, number 0; no console identity
NAMES = ("ann", "bert", "cis", "dirk", "els")
GROUP_MIN, GROUP_MAX = -200, 200
MISSING = 99  # a member number nobody has

RUN = settings(
    max_examples=50,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# --- one migrated SQLite file, copied for every example ------------------------

_template: Path | None = None


def template_db() -> Path:
    global _template
    if _template is None:
        folder = Path(tempfile.mkdtemp(prefix="letsbot-props-"))
        atexit.register(shutil.rmtree, folder, True)
        path = folder / "template.db"
        engine = make_engine(f"sqlite:///{path}")
        upgrade(engine)
        engine.dispose()  # folds the WAL into the file
        _template = path
    return _template


# --- inputs --------------------------------------------------------------------

# (text as typed, value in minor units or None when the bot must refuse it)
AMOUNTS = st.one_of(
    st.integers(1, 120).map(lambda n: (str(n), n)),
    st.integers(1, 60).map(lambda n: (str(n), n)),
    st.integers(121, 450).map(lambda n: (str(n), n)),
    st.sampled_from(
        [
            ("0", None),
            ("-5", None),
            ("12,5", None),  # the group's unit has no decimals
            ("1.5", None),
            ("abc", None),
            ("1e3", None),
            ("NaN", None),
            ("١٢", None),  # Arabic-Indic digits
            ("１２", None),  # full-width digits
            ("100001", None),  # above limits.max_transfer
            ("100000", 100000),
            ("007", 7),
        ]
    ),
)
LOWS = st.one_of(
    st.integers(-400, 0).map(str),
    st.sampled_from(["standaard", "default", "abc", "50", "-1,5", "--3"]),
)
HIGHS = st.one_of(
    st.integers(0, 400).map(str),
    st.sampled_from(["standaard", "default", "xyz", "-5", "1.5"]),
)
YES = st.sampled_from(["ja", "j", "yes", "ok", "Ja!"])
NO = st.sampled_from(["nee", "n", "no", "neen"])
THEN = st.sampled_from(["yes", "no", "later"])
_SIGNED = re.compile(r"-?[0-9]{1,15}", re.ASCII)


def limit_value(word: str) -> tuple[bool, int | None]:
    """(valid, value) of a limit as /limiet reads it; None means the group's default."""
    if word.lower() in ("standaard", "default"):
        return True, None
    if _SIGNED.fullmatch(word):
        return True, int(word)
    return False, None


def code(number: int) -> str:
    return f"DU-{number:03d}"


# --- the model -------------------------------------------------------------------


@dataclass
class Account:
    number: int
    status: str  # candidate | active | leaving | inactive
    balance: int = 0
    low: int | None = None  # per-member override
    high: int | None = None
    group: bool = False


@dataclass
class Question:
    id: int  # creation order: an answer goes to the newest open question
    asked: str
    action: str  # pay | request | reverse | leave
    payer: str = ""
    receiver: str = ""
    amount: int = 0
    transfer: int | None = None

    @property
    def requester(self) -> str:
        return self.receiver if self.action == "request" else self.asked


@dataclass
class Booked:
    id: int
    payer: str
    receiver: str
    amount: int
    reverses: int | None = None
    reversed: bool = False


class LedgerMachine(RuleBasedStateMachine):
    soft = False

    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.TemporaryDirectory(prefix="letsbot-example-")
        path = Path(self.folder.name) / "letsbot.db"
        shutil.copy(template_db(), path)
        self.engine = make_engine(f"sqlite:///{path}")
        self.settings = make_settings(
            limits={"min_balance": GROUP_MIN, "max_balance": GROUP_MAX, "soft": self.soft},
            market={"msgs_per_hour": 10_000},  # the model has no limit on requests per hour
        )
        self.driver = Driver(self.engine, self.settings)
        self.accounts: dict[str, Account] = {KAS: Account(0, "active", group=True)}
        self.questions: list[Question] = []  # open ones
        self.transfers: list[Booked] = []  # transfer id n is self.transfers[n - 1]
        self.applied: list[Incoming] = []
        self.asked = 0
        self.send(ADMIN, "/start", "applied")  # the configured coordinator becomes #1
        self.accounts[ADMIN] = Account(1, "active")

    def teardown(self) -> None:
        self.engine.dispose()
        self.folder.cleanup()

    # --- talking to the bot -------------------------------------------------------

    def send(self, name: str, words: str, expect: str, *, group: bool = False) -> Result:
        incoming = self.driver.incoming(name, words, group=group)
        return self.deliver(incoming, expect)

    def deliver(self, incoming: Incoming, expect: str) -> Result:
        before = self.driver.snapshot()
        result = self.driver.send(incoming)
        replies = [to_plain(o.text) for o in result.replies]
        note(f"{incoming.sender.user_id}: {incoming.text!r} -> {result.outcome} {replies}")
        if result.outcome in ("refused", "ignored", "duplicate"):
            assert self.driver.snapshot() == before, (
                f"{incoming.text!r} was {result.outcome} but changed the ledger"
            )
        assert result.outcome == expect, (
            f"{incoming.sender.user_id}: {incoming.text!r}: expected {expect},"
            f" got {result.outcome}: {replies}"
        )
        if result.outcome == "applied":
            self.applied.append(incoming)
        return result

    # --- the rules of the model -----------------------------------------------------

    def by_number(self, number: int) -> str | None:
        for key, account in self.accounts.items():
            if account.number == number:
                return key
        return None

    def is_member(self, key: str) -> bool:
        account = self.accounts.get(key)
        return account is not None and not account.group and account.status in ("active", "leaving")

    def can_trade(self, key: str) -> bool:
        account = self.accounts[key]
        return account.group or account.status in ("active", "leaving")

    def low(self, account: Account) -> int:
        return GROUP_MIN if account.low is None else account.low

    def high(self, account: Account) -> int:
        return GROUP_MAX if account.high is None else account.high

    def blocked(self, payer_key: str, receiver_key: str, amount: int) -> bool:
        """Would moving ``amount`` break a rule that refuses (hard, or leaving)?"""
        payer, receiver = self.accounts[payer_key], self.accounts[receiver_key]
        if not payer.group:
            after = payer.balance - amount
            if payer.status == "leaving":
                if after < 0:
                    return True
            elif after < self.low(payer) and not self.soft:
                return True
        if not receiver.group:
            after = receiver.balance + amount
            if receiver.status == "leaving":
                if after > 0:
                    return True
            elif after > self.high(receiver) and not self.soft:
                return True
        return False

    def ask(self, asked: str, action: str, **details: Any) -> None:
        """A new question replaces the open ones the same person put to ``asked``."""
        self.asked += 1
        question = Question(self.asked, asked, action, **details)
        self.questions = [
            q for q in self.questions if (q.asked, q.requester) != (asked, question.requester)
        ]
        self.questions.append(question)

    def latest(self, key: str) -> Question | None:
        mine = [q for q in self.questions if q.asked == key]
        return max(mine, key=lambda q: q.id) if mine else None

    def book(self, question: Question) -> Booked:
        booked = Booked(
            len(self.transfers) + 1,
            question.payer,
            question.receiver,
            question.amount,
            question.transfer,
        )
        self.transfers.append(booked)
        if question.transfer is not None:
            self.transfers[question.transfer - 1].reversed = True
        self.accounts[question.payer].balance -= question.amount
        self.accounts[question.receiver].balance += question.amount
        for key in (question.payer, question.receiver):
            account = self.accounts[key]
            if account.status == "leaving" and account.balance == 0:
                account.status = "inactive"
        return booked

    def answer(self, name: str, yes: bool, word: str, *, group: bool = False) -> None:
        """``name`` says ja/nee; predict and check what happens."""
        question = self.latest(name) if name in self.accounts else None
        if question is None:
            self.send(name, word, "ignored" if group else "refused", group=group)
            return
        if not self.is_member(name):
            self.send(name, word, "refused", group=group)
            return
        if question.action == "leave":
            self.send(name, word, "applied", group=group)
            self.questions.remove(question)
            if yes:
                account = self.accounts[name]
                account.status = "inactive" if account.balance == 0 else "leaving"
            return
        if not yes:
            self.send(name, word, "applied", group=group)
            self.questions.remove(question)
            return
        refused = (
            not self.can_trade(question.payer)
            or not self.can_trade(question.receiver)
            or (question.transfer is not None and self.transfers[question.transfer - 1].reversed)
            or self.blocked(question.payer, question.receiver, question.amount)
        )
        if refused:  # the question stays open
            self.send(name, word, "refused", group=group)
            return
        result = self.send(name, word, "applied", group=group)
        self.questions.remove(question)
        booked = self.book(question)
        first = to_plain(result.replies[0].text)
        assert first.startswith(("Geboekt: ", "Booked: ")), first
        assert f"#{booked.id}:" in first, (booked, first)

    def then(self, data: st.DataObject, name: str, how: str) -> None:
        if how == "later":
            return
        yes = how == "yes"
        word = data.draw(YES if yes else NO, label="answer")
        self.answer(name, yes, word)

    def pick(self, data: st.DataObject, good: list[Any], other: list[Any], label: str) -> Any:
        """Mostly one of ``good``; sometimes anything from ``other``."""
        if good and (not other or data.draw(st.integers(0, 4), label=f"{label} odd?") > 0):
            return data.draw(st.sampled_from(good), label=label)
        return data.draw(st.sampled_from(other), label=label)

    def numbers(self) -> list[int]:
        return [*sorted(a.number for a in self.accounts.values()), MISSING]

    # --- rules ------------------------------------------------------------------------

    @initialize(count=st.integers(0, len(NAMES)))
    def first_members(self, count: int) -> None:
        """Some people join and are approved before the rest begins."""
        for name in NAMES[:count]:
            self.join(name, english=False)
            self.approve_number(self.accounts[name].number, "/approve")

    @rule(name=st.sampled_from((*NAMES, ADMIN)), english=st.booleans())
    def join(self, name: str, english: bool) -> None:
        word = "/join" if english else "/aanmelden"
        if name in self.accounts:
            self.send(name, f"{word} {name.title()} Peeters", "refused")
            return
        self.send(name, f"{word} {name.title()} Peeters", "applied")
        number = max(a.number for a in self.accounts.values()) + 1
        self.accounts[name] = Account(number, "candidate")
        assert self.driver.number(name) == number

    @rule(data=st.data(), verb=st.sampled_from(["/approve", "/goedkeuren", "/weigeren"]))
    def approve(self, data: st.DataObject, verb: str) -> None:
        candidates = [a.number for a in self.accounts.values() if a.status == "candidate"]
        self.approve_number(self.pick(data, candidates, self.numbers(), "candidate"), verb)

    def approve_number(self, number: int, verb: str) -> None:
        target = self.by_number(number)
        arg = str(number) if verb == "/approve" else code(number)
        if target is None or self.accounts[target].status != "candidate":
            self.send(ADMIN, f"{verb} {arg}", "refused")
            return
        self.send(ADMIN, f"{verb} {arg}", "applied")
        self.accounts[target].status = "inactive" if verb == "/weigeren" else "active"

    def ask_pay(self, payer: str, number: int, amount: tuple[str, int | None], **how: Any) -> bool:
        """``payer`` sends /pay (or /betaal) to member ``number``; True if a question was asked."""
        receiver = self.by_number(number)
        typed, value = amount
        ok = (
            self.is_member(payer)
            and receiver is not None
            and value is not None
            and receiver != payer
            and self.can_trade(receiver)
            and not self.blocked(payer, receiver, value)
        )
        command = f"{how.get('word', '/betaal')} {code(number)} {typed} soep en brood"
        if not ok:
            self.send(payer, command, "refused", group=how.get("group", False))
            return False
        assert receiver is not None and value is not None
        self.send(payer, command, "applied", group=how.get("group", False))
        self.ask(payer, "pay", payer=payer, receiver=receiver, amount=value)
        return True

    def ask_request(self, receiver: str, number: int, amount: tuple[str, int | None]) -> bool:
        """``receiver`` asks member ``number`` to pay; True if the payer was asked."""
        payer = self.by_number(number)
        typed, value = amount
        ok = (
            self.is_member(receiver)
            and payer is not None
            and value is not None
            and payer != receiver
            and not self.accounts[payer].group
            and self.can_trade(payer)
            and not self.blocked(payer, receiver, value)
        )
        command = f"/vraagbetaling {code(number)} {typed} fietsherstelling"
        if not ok:
            self.send(receiver, command, "refused")
            return False
        assert payer is not None
        self.send(receiver, command, "applied")
        self.ask(payer, "request", payer=payer, receiver=receiver, amount=value)
        return True

    def traders(self, but: str | None = None) -> list[str]:
        return [k for k in self.accounts if k != but and self.is_member(k)]

    def numbers_of(self, keys: list[str]) -> list[int]:
        return [self.accounts[k].number for k in keys]

    @rule(
        data=st.data(),
        word=st.sampled_from(["/pay", "/betaal"]),
        amount=AMOUNTS,
        group=st.booleans(),
        how=THEN,
    )
    def pay(
        self,
        data: st.DataObject,
        word: str,
        amount: tuple[str, int | None],
        group: bool,
        how: str,
    ) -> None:
        payer = self.pick(data, self.traders(), [*NAMES, ADMIN], "payer")
        receivers = [a.number for k, a in self.accounts.items() if k != payer and self.can_trade(k)]
        number = self.pick(data, receivers, self.numbers(), "receiver")
        if self.ask_pay(payer, number, amount, word=word, group=group):
            self.then(data, payer, how)

    @rule(data=st.data(), amount=AMOUNTS, how=THEN)
    def request(self, data: st.DataObject, amount: tuple[str, int | None], how: str) -> None:
        receiver = self.pick(data, self.traders(), [*NAMES, ADMIN], "asker")
        number = self.pick(data, self.numbers_of(self.traders(receiver)), self.numbers(), "payer")
        if self.ask_request(receiver, number, amount):
            self.then(data, self.by_number(number) or "", how)

    @precondition(lambda self: len(self.traders()) >= 3)
    @rule(
        data=st.data(),
        amounts=st.lists(st.integers(1, 200), min_size=2, max_size=3),
        share=st.sampled_from(["payer", "receiver"]),
    )
    def crossing_questions(self, data: st.DataObject, amounts: list[int], share: str) -> None:
        """Several open questions about one account, then all answered yes.

        Each was allowed when asked; the later answers must see the balances
        the earlier ones left, and be refused when a limit would now break.
        """
        shared = data.draw(st.sampled_from(self.traders()), label=f"shared {share}")
        asked: list[str] = []
        for amount in amounts:
            other = data.draw(st.sampled_from(self.traders(shared)), label="other party")
            payer, receiver = (shared, other) if share == "payer" else (other, shared)
            if data.draw(st.booleans(), label="by request?"):
                done = self.ask_request(
                    receiver, self.accounts[payer].number, (str(amount), amount)
                )
            else:
                done = self.ask_pay(payer, self.accounts[receiver].number, (str(amount), amount))
            if done:
                asked.append(payer)
        for payer in reversed(asked):
            self.answer(payer, True, "ja")

    @precondition(lambda self: any(a.status == "leaving" for a in self.accounts.values()))
    @rule(data=st.data(), whole=st.booleans(), by_request=st.booleans())
    def settle(self, data: st.DataObject, whole: bool, by_request: bool) -> None:
        """A leaving member moves toward zero: part of the way, or exactly to zero."""
        leaving = [k for k, a in self.accounts.items() if a.status == "leaving"]
        name = data.draw(st.sampled_from(leaving), label="leaving")
        balance = self.accounts[name].balance
        amount = abs(balance) if whole else data.draw(st.integers(1, abs(balance)), label="part")
        other = data.draw(st.sampled_from([KAS, *self.traders(name)]), label="other party")
        payer, receiver = (name, other) if balance > 0 else (other, name)
        if payer == KAS:
            return  # the group account pays only start credits
        if by_request and receiver != KAS:
            done = self.ask_request(receiver, self.accounts[payer].number, (str(amount), amount))
        else:
            done = self.ask_pay(payer, self.accounts[receiver].number, (str(amount), amount))
        if done:
            self.answer(payer, True, "ja")

    @precondition(lambda self: bool(self.transfers))
    @rule(data=st.data(), times=st.integers(2, 3))
    def reverse_twice(self, data: st.DataObject, times: int) -> None:
        """The same booking asked to be reversed more than once; only one may stand."""
        transfer_id = data.draw(st.sampled_from([t.id for t in self.transfers]), label="transfer")
        for _ in range(times):
            self.reverse_id(transfer_id, f"{transfer_id} dubbel geboekt")
        for _ in range(times):
            self.answer(ADMIN, True, "ja")

    @rule(
        data=st.data(),
        form=st.sampled_from(
            ["{id} foute ontvanger", "#{id} dubbel", "{id} fout", "{id}", "x{id} fout"]
        ),
        how=THEN,
    )
    def reverse(self, data: st.DataObject, form: str, how: str) -> None:
        ids = [t.id for t in self.transfers]
        open_ids = [t.id for t in self.transfers if t.reverses is None and not t.reversed]
        transfer_id = self.pick(data, open_ids, [*ids, 0, len(ids) + 1, 9999], "transfer")
        if self.reverse_id(transfer_id, form.format(id=transfer_id)):
            self.then(data, ADMIN, how)

    def reverse_id(self, transfer_id: int, words: str) -> bool:
        """The coordinator sends /terugboeken; True if they were asked to confirm."""
        command = f"/terugboeken {words}"
        valid = re.match(r"#?[0-9]+ \S", words) is not None
        exists = 1 <= transfer_id <= len(self.transfers)
        original = self.transfers[transfer_id - 1] if valid and exists else None
        if (
            original is None
            or original.reverses is not None
            or original.reversed
            or self.blocked(original.receiver, original.payer, original.amount)
        ):
            self.send(ADMIN, command, "refused")
            return False
        self.send(ADMIN, command, "applied")
        self.ask(
            ADMIN,
            "reverse",
            payer=original.receiver,
            receiver=original.payer,
            amount=original.amount,
            transfer=original.id,
        )
        return True

    @rule(data=st.data(), low=LOWS, high=HIGHS, short=st.booleans())
    def limit(self, data: st.DataObject, low: str, high: str, short: bool) -> None:
        number = self.pick(data, self.numbers()[1:-1], self.numbers(), "member")
        target = self.by_number(number)
        command = f"/limiet {code(number)} {low}" + ("" if short else f" {high}")
        (low_ok, low_value), (high_ok, high_value) = limit_value(low), limit_value(high)
        if short or target is None or self.accounts[target].group or not low_ok or not high_ok:
            self.send(ADMIN, command, "refused")
            return
        account = self.accounts[target]
        eff_low = GROUP_MIN if low_value is None else low_value
        eff_high = GROUP_MAX if high_value is None else high_value
        if eff_low > 0 or eff_high < 0 or eff_low > eff_high:
            self.send(ADMIN, command, "refused")
            return
        if not eff_low <= account.balance <= eff_high and not self.soft:
            self.send(ADMIN, command, "refused")
            return
        self.send(ADMIN, command, "applied")
        account.low, account.high = low_value, high_value

    @rule(data=st.data(), word=st.sampled_from(["/uitstappen", "/leave"]), how=THEN)
    def leave(self, data: st.DataObject, word: str, how: str) -> None:
        # The coordinator stays: without them nobody could approve or correct.
        name = self.pick(data, [k for k in NAMES if self.is_member(k)], list(NAMES), "leaver")
        if not self.is_member(name) or self.accounts[name].status == "leaving":
            self.send(name, word, "refused")
            return
        self.send(name, word, "applied")
        self.ask(name, "leave")
        self.then(data, name, how)

    @rule(data=st.data(), yes=st.booleans(), group=st.booleans())
    def answer_later(self, data: st.DataObject, yes: bool, group: bool) -> None:
        waiting = sorted({q.asked for q in self.questions})
        name = self.pick(data, waiting, [*NAMES, ADMIN], "who answers")
        word = data.draw(YES if yes else NO, label="answer")
        self.answer(name, yes, word, group=group)

    @precondition(lambda self: len(self.applied) > 1)
    @rule(data=st.data())
    def redeliver(self, data: st.DataObject) -> None:
        """A platform delivers an applied message again: nothing happens."""
        incoming = data.draw(st.sampled_from(self.applied[1:]), label="redelivered")
        self.deliver(incoming, "duplicate")

    # --- invariants ---------------------------------------------------------------------

    @invariant()
    def ledger_is_sound(self) -> None:
        assert ledger_problems(self.engine, self.settings.group_limits) == []

    @invariant()
    def database_matches_model(self) -> None:
        with self.engine.connect() as connection:
            members = {
                row.number: (row.status, row.balance, row.min_balance, row.max_balance)
                for row in connection.execute(
                    text("SELECT number, status, balance, min_balance, max_balance FROM members")
                )
            }
            transfers = [
                tuple(row)
                for row in connection.execute(
                    text(
                        "SELECT t.id, p.number, r.number, t.amount, t.reverses_id"
                        " FROM transfers t JOIN members p ON p.id = t.payer_id"
                        " JOIN members r ON r.id = t.receiver_id ORDER BY t.id"
                    )
                )
            ]
            open_questions = {
                row[0]: row[1]
                for row in connection.execute(
                    text(
                        "SELECT m.number, count(*) FROM pending q"
                        " JOIN members m ON m.id = q.asked_id"
                        " WHERE q.status = 'open' GROUP BY m.number"
                    )
                )
            }
            connection.rollback()
        assert members == {
            a.number: (a.status, a.balance, a.low, a.high) for a in self.accounts.values()
        }
        number = {key: a.number for key, a in self.accounts.items()}
        assert transfers == [
            (t.id, number[t.payer], number[t.receiver], t.amount, t.reverses)
            for t in self.transfers
        ]
        expected_open: dict[int, int] = {}
        for question in self.questions:
            asked = number[question.asked]
            expected_open[asked] = expected_open.get(asked, 0) + 1
        assert open_questions == expected_open

    @invariant()
    def balances_obey_the_rules(self) -> None:
        """Checked on the stored rows, independently of ledger_problems."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT number, status, balance, min_balance, max_balance, is_group_account"
                    " FROM members"
                )
            ).all()
            connection.rollback()
        assert sum(row.balance for row in rows) == 0
        for row in rows:
            if row.status == "inactive":
                assert row.balance == 0, row  # closed only at zero
            if row.status == "leaving":
                assert row.balance != 0, row  # a leaving member at zero is closed
            if row.is_group_account or self.soft or row.status == "inactive":
                continue
            low = GROUP_MIN if row.min_balance is None else row.min_balance
            high = GROUP_MAX if row.max_balance is None else row.max_balance
            assert low <= row.balance <= high, row


class SoftLedgerMachine(LedgerMachine):
    """limits.soft = true: limits only warn; leaving members still only move toward zero."""

    soft = True


TestLedger = LedgerMachine.TestCase
TestLedger.settings = RUN
TestSoftLedger = SoftLedgerMachine.TestCase
TestSoftLedger.settings = RUN
