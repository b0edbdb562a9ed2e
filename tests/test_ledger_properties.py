"""Stateful property tests: the real bot on a real SQLite file, driven at random.

A hypothesis state machine lets people join and be approved, pay (/pay or
/betaal, in the group or privately), ask for payment (/vraagbetaling), lets
the coordinator book for others (/boeken), reverse bookings (/terugboeken) and
change limits (/limiet), and lets members leave (/uitstappen) and settle
toward zero. Amounts include ones over the limits and malformed ones.

Several members' questions wait at once, some in the group, some in direct
chats. They are answered in every way a member can: a typed word (in the
right chat or the wrong one, words that only count in a direct chat, ordinary
chat), ``/ja 12``, a button or reaction and a reply (an Incoming with
``answers``), the same answer twice, two answers to one question at the same
moment from two threads through the one Bot on the one SQLite file, and
answers after the clock has moved past ``group.confirmation_timeout``. Some
rules leave several questions open about one account and then answer them
all, so that a confirmation meets balances that moved after it was asked; the
same booking is asked to be reversed twice; committed messages are delivered
again.

Beside the bot runs a small, independent model of the LETS rules and of which
question an answer belongs to. After every message the bot's outcome (and the
question it closed, or the questions it asked about) must be the one the model
predicts, and after every step the database must agree with the model
(members, balances, limits, every question with its chat and status, every
transfer) and satisfy the ledger's invariants: balances sum to zero, each
cached balance equals the sum of its transfers
(``storage.check.ledger_problems``), no hard limit is broken, and every
booking matches exactly one question that its payer (or, for /boeken and
/terugboeken, the coordinator) accepted. A message that is refused (or
ignored, or a redelivered duplicate, or answered with "which one?") must
change nothing.
"""

from __future__ import annotations

import atexit
import copy
import dataclasses
import re
import shutil
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
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
from letsbot.messages import Incoming, Outgoing, Result, ToChat, ToPerson
from storage.check import ledger_problems
from storage.database import make_engine, upgrade
from tests.support import START, Driver, make_settings

ADMIN = "admin"  # the coordinator configured in make_settings()
KAS = "kas"  # the group account, number 0; no console identity
# A bare "ja" in a group answers only a question asked there this long ago or less.
GROUP_ANSWER_WINDOW = timedelta(minutes=10)
NAMES = ("ann", "bert", "cis", "dirk", "els")
GROUP_MIN, GROUP_MAX = -200, 200
MISSING = 99  # a member number nobody has
GROUP, DIRECT = "group", "direct"  # where a question waits: the group, or the asked one's chat

pytestmark = pytest.mark.slow  # two stateful runs of 10 to 20 s each

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
# Typed answers. In a direct chat each of these answers; in a group only the
# unmistakable ones count and the rest ("ok", "j") is conversation.
YES_WORDS = ("ja", "j", "yes", "ok", "Ja!", "1", "y", "oké")
NO_WORDS = ("nee", "n", "no", "neen", "2", "Nee.")
GROUP_WORDS = {"ja", "yes", "nee", "neen", "no"}
# How an answer reaches the bot: typed; "/ja 12"; a bare "/ja"; a Telegram
# button or Matrix reaction ("ja"/"nee" with Incoming.answers); a reply to the
# question's message (a typed word with Incoming.answers).
FORMS = ("typed", "typed", "command", "bare", "button", "reply")
NAMED_FORMS = ("command", "button", "reply")
THEN = st.sampled_from(["yes", "no", "later"])
HOURS = st.sampled_from([1, 6, 23, 24, 25, 49])  # 24: exactly the confirmation timeout
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


def counts_in_group(word: str) -> bool:
    return word.strip().rstrip(".!").lower() in GROUP_WORDS


# --- the model -------------------------------------------------------------------


@dataclass
class Account:
    number: int
    status: str  # candidate | active | leaving | inactive
    balance: int = 0
    low: int | None = None  # per-member override
    high: int | None = None
    group: bool = False
    traded: bool = False  # ever paid or was paid: may not simply apply again after leaving


@dataclass
class Question:
    id: int  # the bot's number for it (Outgoing.question)
    asked: str
    requester: str  # who put it: a new one from them to ``asked`` replaces this one
    action: str  # pay | request | book | reverse | leave | reject (payer: the candidate)
    chat: str  # GROUP, or DIRECT: the asked person's direct chat
    expires: datetime
    payer: str = ""
    receiver: str = ""
    amount: int = 0
    transfer: int | None = None
    status: str = "open"  # open | accepted | declined | expired | superseded


@dataclass
class Booked:
    id: int
    payer: str
    receiver: str
    amount: int
    reverses: int | None = None
    reversed: bool = False


@dataclass(frozen=True)
class Answer:
    """One answer as a member gives it."""

    name: str
    yes: bool
    chat: str  # GROUP or DIRECT (the sender's own direct chat)
    text: str
    named: int | None = None  # the number in "/ja 12"
    answers: int | None = None  # Incoming.answers: a button, reaction or reply


@dataclass
class Expect:
    """What the model predicts for one answer."""

    outcome: str
    question: int | None = None  # the question it closed (Result.answered)
    which: tuple[int, ...] = ()  # the questions shown again with "which one?"
    booked: Booked | None = None


@dataclass
class Model:
    """The LETS rules, and which question an answer belongs to, independently of the bot."""

    soft: bool
    timeout: timedelta
    now: datetime
    accounts: dict[str, Account] = field(default_factory=dict)
    questions: dict[int, Question] = field(default_factory=dict)  # every one ever asked
    transfers: list[Booked] = field(default_factory=list)  # transfer id n is transfers[n - 1]

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

    def open_questions(self) -> list[Question]:
        return [q for q in self.questions.values() if q.status == "open"]

    def ask(self, question: Question) -> None:
        """A new question replaces an open, unexpired one only as a correction.

        Of one's own command (same action and people, in that chat), or, put to
        someone else, the very same question sent twice (same amount too; the
        descriptions here are always the same).
        """
        assert question.id not in self.questions

        def key(q: Question) -> tuple[object, ...]:
            who = (q.asked, q.requester, q.action, q.payer, q.receiver, q.transfer, q.chat)
            own = question.requester == question.asked
            return who if own else (*who, q.amount)

        for other in self.open_questions():
            if other.expires > self.now and key(other) == key(question):
                other.status = "superseded"
        self.questions[question.id] = question

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
            account.traded = True
            if account.status == "leaving" and account.balance == 0:
                account.status = "inactive"
        return booked

    def predict(self, answer: Answer) -> Expect:
        """What ``answer`` does, applied to the model."""
        command = answer.text.startswith("/")
        in_group = answer.chat == GROUP
        # In a group only clear words answer, unless the message replies to the question.
        strict = in_group and answer.answers is None
        if not command and strict and not counts_in_group(answer.text):
            return Expect("ignored")  # conversation
        number = answer.named if answer.named is not None else answer.answers
        if answer.name not in self.accounts:  # a stranger
            return Expect("ignored" if in_group and not command else "refused")
        if number is not None:
            # Exactly that question: theirs, open, and answered where it was asked.
            question = self.questions.get(number)
            if question is None or question.asked != answer.name:
                # A reply in a group to someone else's question is conversation.
                return Expect("ignored" if in_group and answer.answers is not None else "refused")
            if question.status != "open" or question.chat != answer.chat:
                return Expect("refused")
            return self.apply(question, answer)
        here = sorted(
            (q for q in self.open_questions() if q.asked == answer.name and q.chat == answer.chat),
            key=lambda q: q.id,
        )
        if not here:
            return Expect("ignored" if in_group and not command else "refused")
        live = [q for q in here if q.expires > self.now]
        if in_group and not command and answer.answers is None:
            # A bare word in a group answers only a question asked there in the last minutes.
            fresh = [q for q in live if self.now - self.asked_at(q) <= GROUP_ANSWER_WINDOW]
            if live and not fresh:
                return Expect("ignored")
            live = fresh
        own_in_group = [
            q
            for q in self.open_questions()
            if q.asked == answer.name and q.chat == GROUP and q.expires > self.now
        ]
        slipped_in = [
            q
            for q in live
            if q.requester != answer.name
            and any(self.asked_at(o) <= self.asked_at(q) for o in own_in_group)
        ]
        if len(live) > 1 or (slipped_in and not in_group):
            return Expect("which", which=tuple(q.id for q in live))
        target = live[0] if live else here[-1]
        # The newest question in this chat answered already: this word repeats that
        # answer; the older one waiting is shown again, not answered.
        newest = max(
            (
                q
                for q in self.questions.values()
                if q.asked == answer.name and q.chat == answer.chat
            ),
            key=lambda q: q.id,
        )
        if live and newest.id > target.id:
            return Expect("which", which=(target.id,))
        return self.apply(target, answer)

    def asked_at(self, question: Question) -> datetime:
        return question.expires - self.timeout

    def apply(self, question: Question, answer: Answer) -> Expect:
        if question.expires <= self.now:
            question.status = "expired"
            return Expect("expired", question.id)
        if not self.is_member(answer.name):
            return Expect("refused")
        if not answer.yes:
            question.status = "declined"
            return Expect("applied", question.id)
        if question.action == "reject":
            candidate = self.accounts[question.payer]
            if candidate.status != "candidate":  # refused is final: closed
                question.status = "expired"
                return Expect("refused")
            question.status = "accepted"
            candidate.status = "inactive"
            return Expect("applied", question.id)
        if question.action == "leave":
            question.status = "accepted"
            account = self.accounts[answer.name]
            account.status = "inactive" if account.balance == 0 else "leaving"
            return Expect("applied", question.id)
        refused = (
            not self.can_trade(question.payer)
            or not self.can_trade(question.receiver)
            or (question.transfer is not None and self.transfers[question.transfer - 1].reversed)
            or self.blocked(question.payer, question.receiver, question.amount)
        )
        if refused:  # refused is final: the question is closed
            question.status = "expired"
            return Expect("refused")
        question.status = "accepted"
        return Expect("applied", question.id, booked=self.book(question))


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
        assert self.driver.clock.now() == START
        self.model = Model(self.soft, self.settings.group.confirmation_timeout, START)
        self.model.accounts[KAS] = Account(0, "active", group=True)
        self.committed: list[Incoming] = []  # a redelivery of these is a duplicate
        self.send(ADMIN, "/start", "applied")  # the configured coordinator becomes #1
        self.model.accounts[ADMIN] = Account(1, "active")

    def teardown(self) -> None:
        self.engine.dispose()
        self.folder.cleanup()

    @property
    def accounts(self) -> dict[str, Account]:
        return self.model.accounts

    # --- talking to the bot -------------------------------------------------------

    def send(self, name: str, words: str, expect: str, *, group: bool = False) -> Result:
        incoming = self.driver.incoming(name, words, group=group)
        return self.deliver(incoming, expect)

    def deliver(self, incoming: Incoming, expect: str) -> Result:
        before = self.driver.snapshot()
        result = self.driver.send(incoming)
        self.noted(incoming, result)
        if result.outcome in ("ignored", "duplicate", "which"):
            assert self.driver.snapshot() == before, (
                f"{incoming.text!r} was {result.outcome} but changed the ledger"
            )
        if result.outcome in ("expired", "refused"):  # at most the question is closed
            after = self.driver.snapshot()
            assert {k: v for k, v in after.items() if k != "pending"} == {
                k: v for k, v in before.items() if k != "pending"
            }
        assert result.outcome == expect, (
            f"{incoming.sender.user_id}: {incoming.text!r}: expected {expect},"
            f" got {result.outcome}: {[to_plain(o.text) for o in result.replies]}"
        )
        if result.outcome in ("applied", "which", "expired"):
            self.committed.append(incoming)
        return result

    def noted(self, incoming: Incoming, result: Result) -> None:
        replies = [to_plain(o.text) for o in result.replies]
        where = "group" if incoming.chat.is_group else "dm"
        answers = "" if incoming.answers is None else f" (answers {incoming.answers})"
        note(
            f"{incoming.sender.user_id}@{where}: {incoming.text!r}{answers}"
            f" -> {result.outcome} {replies}"
        )

    def asked(self, result: Result, name: str, chat: str) -> int:
        """The question ``result`` put to ``name``, checked to be asked in ``chat``."""
        asking = [o for o in result.replies if o.question is not None]
        assert len(asking) == 1, [to_plain(o.text) for o in result.replies]
        self.check_place(asking[0], name, chat)
        assert asking[0].question is not None
        return asking[0].question

    @staticmethod
    def check_place(outgoing: Outgoing, name: str, chat: str) -> None:
        assert outgoing.asked is not None and outgoing.asked.user_id == name
        target = outgoing.target
        if chat == GROUP:
            assert isinstance(target, ToChat) and target.chat.is_group, target
        elif isinstance(target, ToChat):
            assert not target.chat.is_group and target.chat.chat_id == name, target
        else:
            assert isinstance(target, ToPerson) and target.identity.user_id == name, target

    def incoming_for(self, answer: Answer) -> Incoming:
        """As the console (typed, /ja) or an adapter (button, reaction, reply) hands it over."""
        incoming = self.driver.incoming(answer.name, answer.text, group=answer.chat == GROUP)
        if answer.answers is not None:
            incoming = dataclasses.replace(incoming, answers=answer.answers)
        return incoming

    def answer(self, answer: Answer) -> Result:
        """Give ``answer``; the bot must do what the model predicts."""
        expect = self.model.predict(answer)
        incoming = self.incoming_for(answer)
        result = self.deliver(incoming, expect.outcome)
        self.check_answer(answer, result, expect)
        return result

    def check_answer(self, answer: Answer, result: Result, expect: Expect) -> None:
        replies = [to_plain(o.text) for o in result.replies]
        assert result.outcome == expect.outcome, (answer, result.outcome, expect, replies)
        assert result.answered == expect.question, (answer, result.answered, expect, replies)
        if expect.outcome == "which":
            shown = tuple(o.question for o in result.replies if o.question is not None)
            assert shown == expect.which, (answer, shown, expect.which, replies)
            for outgoing in result.replies[1:]:
                self.check_place(outgoing, answer.name, answer.chat)
        if expect.booked is not None:
            first = replies[0]
            assert first.startswith(("Geboekt", "Booked")), first
            assert f"#{expect.booked.id}:" in first, (expect.booked, first)

    def at_once(self, answers: tuple[Answer, Answer]) -> list[Result]:
        """Two answers handled at the same moment, by two threads through the one Bot.

        Whichever runs first, the outcomes must be those the model predicts for
        one order or the other, and both orders leave the same state.
        """
        incomings = [self.incoming_for(a) for a in answers]
        predicted: list[tuple[Model, list[Expect]]] = []
        for order in ((0, 1), (1, 0)):
            model = copy.deepcopy(self.model)
            expects: dict[int, Expect] = {}
            for index in order:
                expects[index] = model.predict(answers[index])
            predicted.append((model, [expects[0], expects[1]]))
        # The rules after this step draw from the model: it must not depend on the winner.
        assert predicted[0][0] == predicted[1][0], "two answers whose order matters"
        barrier = threading.Barrier(2, timeout=60)
        results: list[Result | None] = [None, None]
        errors: list[BaseException] = []

        def run(index: int) -> None:
            try:
                barrier.wait()
                results[index] = self.driver.bot.handle(incomings[index])
            except BaseException as error:  # reported in the main thread
                errors.append(error)

        threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors, errors
        done = [r for r in results if r is not None]
        assert len(done) == 2, "an answer never came back"
        for incoming, result in zip(incomings, done, strict=True):
            self.noted(incoming, result)
        seen = [(r.outcome, r.answered) for r in done]
        fitting = [
            (model, expects)
            for model, expects in predicted
            if [(e.outcome, e.question) for e in expects] == seen
        ]
        assert fitting, f"{seen} fits neither order: {[e for _, e in predicted]}"
        model, expects = fitting[0]
        self.model = model
        for answer, result, expect in zip(answers, done, expects, strict=True):
            self.check_answer(answer, result, expect)
        for incoming, result in zip(incomings, done, strict=True):
            if result.outcome in ("applied", "which", "expired"):
                self.committed.append(incoming)
        return done

    # --- choosing -----------------------------------------------------------------------

    def pick(self, data: st.DataObject, good: list[Any], other: list[Any], label: str) -> Any:
        """Mostly one of ``good``; sometimes anything from ``other``."""
        if good and (not other or data.draw(st.integers(0, 4), label=f"{label} odd?") > 0):
            return data.draw(st.sampled_from(good), label=label)
        return data.draw(st.sampled_from(other), label=label)

    def numbers(self) -> list[int]:
        return [*sorted(a.number for a in self.accounts.values()), MISSING]

    def traders(self, but: str | None = None) -> list[str]:
        return [k for k in self.accounts if k != but and self.model.is_member(k)]

    def numbers_of(self, keys: list[str]) -> list[int]:
        return [self.accounts[k].number for k in keys]

    def draw_answer(
        self,
        data: st.DataObject,
        name: str,
        yes: bool,
        chat: str,
        question: int | None,
        forms: tuple[str, ...] = FORMS,
    ) -> Answer:
        """``name`` answers in ``chat``, in one of ``forms``; ``question``: the one they mean."""
        form = data.draw(st.sampled_from(forms), label="form")
        if form in ("typed", "bare"):
            if form == "bare":
                word = data.draw(st.sampled_from(["/ja", "/yes"] if yes else ["/nee", "/no"]))
            else:
                word = data.draw(st.sampled_from(YES_WORDS if yes else NO_WORDS), label="word")
            return Answer(name, yes, chat, word)
        if question is None:  # mostly one of theirs that waits; sometimes any, or none
            theirs = [q.id for q in self.model.open_questions() if q.asked == name]
            everything = [*sorted(self.model.questions), len(self.model.questions) + 7]
            question = self.pick(data, sorted(theirs), everything, "question")
        if form == "command":
            verb = data.draw(st.sampled_from(["/ja", "/yes"] if yes else ["/nee", "/no"]))
            return Answer(name, yes, chat, f"{verb} {question}", named=question)
        if form == "button":
            return Answer(name, yes, chat, "ja" if yes else "nee", answers=question)
        word = data.draw(st.sampled_from(YES_WORDS if yes else NO_WORDS), label="reply")
        return Answer(name, yes, chat, word, answers=question)

    def then(self, data: st.DataObject, question: int, how: str) -> None:
        """Answer the question just asked, where it was asked, now or not yet; sometimes
        twice (a double tap, or two devices at the same moment)."""
        if how == "later":
            return
        if data.draw(st.integers(0, 3), label="twice?") == 0:
            together, same = data.draw(st.booleans()), data.draw(st.booleans())
            self.twice(data, self.model.questions[question], how == "yes", together, same)
            return
        asked = self.model.questions[question]
        self.answer(self.draw_answer(data, asked.asked, how == "yes", asked.chat, question))

    def confirm(self, data: st.DataObject, question: int) -> None:
        """Yes to exactly ``question``, where it was asked."""
        asked = self.model.questions[question]
        self.answer(self.draw_answer(data, asked.asked, True, asked.chat, question, NAMED_FORMS))

    # --- asking ---------------------------------------------------------------------------

    def ask_pay(
        self, payer: str, number: int, amount: tuple[str, int | None], **how: Any
    ) -> int | None:
        """``payer`` sends /pay (or /betaal) to member ``number``; the question, if asked."""
        receiver = self.model.by_number(number)
        typed, value = amount
        ok = (
            self.model.is_member(payer)
            and receiver is not None
            and value is not None
            and receiver != payer
            and self.model.can_trade(receiver)
            and not self.model.blocked(payer, receiver, value)
        )
        group = how.get("group", False)
        command = f"{how.get('word', '/betaal')} {code(number)} {typed} soep en brood"
        if not ok:
            self.send(payer, command, "refused", group=group)
            return None
        assert receiver is not None and value is not None
        chat = GROUP if group else DIRECT
        result = self.send(payer, command, "applied", group=group)
        question = Question(
            self.asked(result, payer, chat),
            payer,
            payer,
            "pay",
            chat,
            self.model.now + self.model.timeout,
            payer=payer,
            receiver=receiver,
            amount=value,
        )
        self.model.ask(question)
        return question.id

    def ask_request(
        self, receiver: str, number: int, amount: tuple[str, int | None], *, group: bool = False
    ) -> int | None:
        """``receiver`` asks member ``number`` to pay; the question to the payer, if asked."""
        payer = self.model.by_number(number)
        typed, value = amount
        ok = (
            self.model.is_member(receiver)
            and payer is not None
            and value is not None
            and payer != receiver
            and not self.accounts[payer].group
            and self.model.can_trade(payer)
            and not self.model.blocked(payer, receiver, value)
        )
        command = f"/vraagbetaling {code(number)} {typed} fietsherstelling"
        if not ok:
            self.send(receiver, command, "refused", group=group)
            return None
        assert payer is not None and value is not None
        result = self.send(receiver, command, "applied", group=group)
        # Wherever it was typed, the payer is asked in their own direct chat.
        question = Question(
            self.asked(result, payer, DIRECT),
            payer,
            receiver,
            "request",
            DIRECT,
            self.model.now + self.model.timeout,
            payer=payer,
            receiver=receiver,
            amount=value,
        )
        self.model.ask(question)
        return question.id

    def ask_admin(self, command: str, group: bool, action: str, **details: Any) -> int:
        """The coordinator's /boeken or /terugboeken, accepted: the question to confirm."""
        chat = GROUP if group else DIRECT
        result = self.send(ADMIN, command, "applied", group=group)
        question = Question(
            self.asked(result, ADMIN, chat),
            ADMIN,
            ADMIN,
            action,
            chat,
            self.model.now + self.model.timeout,
            **details,
        )
        self.model.ask(question)
        return question.id

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
        account = self.accounts.get(name)
        if account is not None and (account.status, account.traded) == ("inactive", False):
            # Turned down, or left without ever trading: applies again, same number.
            self.send(name, f"{word} {name.title()} Peeters", "applied")
            account.status = "candidate"
            return
        if account is not None:
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
        target = self.model.by_number(number)
        arg = str(number) if verb == "/approve" else code(number)
        if target is None or self.accounts[target].status != "candidate":
            self.send(ADMIN, f"{verb} {arg}", "refused")
            return
        if verb == "/weigeren":  # asked first: the rejection waits for Ja
            self.ask_admin(f"{verb} {arg}", False, "reject", payer=target)
            return
        self.send(ADMIN, f"{verb} {arg}", "applied")
        self.accounts[target].status = "active"

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
        receivers = [
            a.number for k, a in self.accounts.items() if k != payer and self.model.can_trade(k)
        ]
        number = self.pick(data, receivers, self.numbers(), "receiver")
        question = self.ask_pay(payer, number, amount, word=word, group=group)
        if question is not None:
            self.then(data, question, how)

    @rule(data=st.data(), amount=AMOUNTS, group=st.booleans(), how=THEN)
    def request(
        self, data: st.DataObject, amount: tuple[str, int | None], group: bool, how: str
    ) -> None:
        receiver = self.pick(data, self.traders(), [*NAMES, ADMIN], "asker")
        number = self.pick(data, self.numbers_of(self.traders(receiver)), self.numbers(), "payer")
        question = self.ask_request(receiver, number, amount, group=group)
        if question is not None:
            self.then(data, question, how)

    @rule(data=st.data(), amount=AMOUNTS, group=st.booleans(), how=THEN)
    def book(
        self, data: st.DataObject, amount: tuple[str, int | None], group: bool, how: str
    ) -> None:
        """The coordinator books between two members (or from the group account)."""
        payer_number = self.pick(data, self.numbers_of(self.traders()), self.numbers(), "payer")
        payer = self.model.by_number(payer_number)
        receiver_number = self.pick(
            data, self.numbers_of(self.traders(payer)), self.numbers(), "receiver"
        )
        receiver = self.model.by_number(receiver_number)
        typed, value = amount
        command = f"/boeken {code(payer_number)} {code(receiver_number)} {typed} tuinwerk"
        if (
            payer is None
            or receiver is None
            or value is None
            or payer == receiver
            or not self.model.can_trade(payer)
            or not self.model.can_trade(receiver)
            or self.model.blocked(payer, receiver, value)
        ):
            self.send(ADMIN, command, "refused", group=group)
            return
        question = self.ask_admin(
            command, group, "book", payer=payer, receiver=receiver, amount=value
        )
        self.then(data, question, how)

    @precondition(lambda self: len(self.traders()) >= 3)
    @rule(
        data=st.data(),
        amounts=st.lists(st.integers(1, 200), min_size=2, max_size=3),
        share=st.sampled_from(["payer", "receiver"]),
    )
    def crossing_questions(self, data: st.DataObject, amounts: list[int], share: str) -> None:
        """Several open questions about one account, then each answered yes by its number.

        Each was allowed when asked; the later answers must see the balances
        the earlier ones left, and be refused when a limit would now break.
        """
        shared = data.draw(st.sampled_from(self.traders()), label=f"shared {share}")
        asked: list[int] = []
        for amount in amounts:
            other = data.draw(st.sampled_from(self.traders(shared)), label="other party")
            payer, receiver = (shared, other) if share == "payer" else (other, shared)
            if data.draw(st.booleans(), label="by request?"):
                done = self.ask_request(
                    receiver, self.accounts[payer].number, (str(amount), amount)
                )
            else:
                group = data.draw(st.booleans(), label="in the group?")
                done = self.ask_pay(
                    payer, self.accounts[receiver].number, (str(amount), amount), group=group
                )
            if done is not None:
                asked.append(done)
        for question in reversed(asked):
            self.confirm(data, question)

    @precondition(lambda self: len(self.traders()) >= 3)
    @rule(
        data=st.data(),
        amounts=st.lists(st.integers(1, 80), min_size=2, max_size=3),
        own=st.booleans(),
    )
    def many_ask_one(self, data: st.DataObject, amounts: list[int], own: bool) -> None:
        """Several members ask one member to pay (and they have a payment of their own
        open, in the same direct chat): a bare "ja" asks which one and books nothing;
        then each is answered by its number, a button or a reply, in some order."""
        payer = data.draw(st.sampled_from(self.traders()), label="asked")
        others = self.traders(payer)
        askers = data.draw(
            st.lists(st.sampled_from(others), min_size=1, max_size=len(amounts), unique=True),
            label="askers",
        )
        asked = [
            self.ask_request(asker, self.accounts[payer].number, (str(amount), amount))
            for asker, amount in zip(askers, amounts, strict=False)
        ]
        if own:
            receiver = data.draw(st.sampled_from(others), label="own payment to")
            asked.append(self.ask_pay(payer, self.accounts[receiver].number, ("5", 5)))
        yes = data.draw(st.booleans(), label="bare answer says yes")
        word = data.draw(st.sampled_from(YES_WORDS if yes else NO_WORDS), label="word")
        self.answer(Answer(payer, yes, DIRECT, word))
        waiting = [q for q in asked if q is not None and self.model.questions[q].status == "open"]
        for question in data.draw(st.permutations(waiting), label="order"):
            yes = data.draw(st.booleans(), label="says yes")
            self.answer(self.draw_answer(data, payer, yes, DIRECT, question, NAMED_FORMS))

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
            return  # the group account pays only by a coordinator's /boeken
        if by_request and receiver != KAS:
            done = self.ask_request(receiver, self.accounts[payer].number, (str(amount), amount))
        else:
            done = self.ask_pay(payer, self.accounts[receiver].number, (str(amount), amount))
        if done is not None:
            self.confirm(data, done)

    @precondition(lambda self: bool(self.model.transfers))
    @rule(data=st.data(), times=st.integers(2, 3))
    def reverse_twice(self, data: st.DataObject, times: int) -> None:
        """The same booking asked to be reversed more than once: each asking replaces the
        last, and of the answers to all of them only the last question's may book."""
        transfer_id = data.draw(
            st.sampled_from([t.id for t in self.model.transfers]), label="transfer"
        )
        asked = [
            self.reverse_id(transfer_id, f"{transfer_id} dubbel geboekt") for _ in range(times)
        ]
        for question in asked:
            if question is not None:
                self.confirm(data, question)

    @rule(
        data=st.data(),
        form=st.sampled_from(
            ["{id} foute ontvanger", "#{id} dubbel", "{id} fout", "{id}", "x{id} fout"]
        ),
        group=st.booleans(),
        how=THEN,
    )
    def reverse(self, data: st.DataObject, form: str, group: bool, how: str) -> None:
        ids = [t.id for t in self.model.transfers]
        open_ids = [t.id for t in self.model.transfers if t.reverses is None and not t.reversed]
        transfer_id = self.pick(data, open_ids, [*ids, 0, len(ids) + 1, 9999], "transfer")
        question = self.reverse_id(transfer_id, form.format(id=transfer_id), group=group)
        if question is not None:
            self.then(data, question, how)

    def reverse_id(self, transfer_id: int, words: str, *, group: bool = False) -> int | None:
        """The coordinator sends /terugboeken; the question to confirm, if asked."""
        command = f"/terugboeken {words}"
        valid = re.match(r"#?[0-9]+ \S", words) is not None
        exists = 1 <= transfer_id <= len(self.model.transfers)
        original = self.model.transfers[transfer_id - 1] if valid and exists else None
        if (
            original is None
            or original.reverses is not None
            or original.reversed
            or self.model.blocked(original.receiver, original.payer, original.amount)
        ):
            self.send(ADMIN, command, "refused", group=group)
            return None
        return self.ask_admin(
            command,
            group,
            "reverse",
            payer=original.receiver,
            receiver=original.payer,
            amount=original.amount,
            transfer=original.id,
        )

    @rule(data=st.data(), low=LOWS, high=HIGHS, short=st.booleans())
    def limit(self, data: st.DataObject, low: str, high: str, short: bool) -> None:
        number = self.pick(data, self.numbers()[1:-1], self.numbers(), "member")
        target = self.model.by_number(number)
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

    @rule(
        data=st.data(),
        word=st.sampled_from(["/uitstappen", "/leave"]),
        group=st.sampled_from([False, False, False, True]),
        how=THEN,
    )
    def leave(self, data: st.DataObject, word: str, group: bool, how: str) -> None:
        # The coordinator stays: without them nobody could approve or correct.
        name = self.pick(data, [k for k in NAMES if self.model.is_member(k)], list(NAMES), "leaver")
        if group or not self.model.is_member(name) or self.accounts[name].status == "leaving":
            self.send(name, word, "refused", group=group)  # only in a direct chat
            return
        result = self.send(name, word, "applied")
        question = Question(
            self.asked(result, name, DIRECT),
            name,
            name,
            "leave",
            DIRECT,
            self.model.now + self.model.timeout,
        )
        self.model.ask(question)
        self.then(data, question.id, how)

    @rule(data=st.data(), yes=st.booleans(), chat=st.sampled_from([GROUP, DIRECT]))
    def answer_later(self, data: st.DataObject, yes: bool, chat: str) -> None:
        """Someone answers, in some chat, in some form: the right question, the wrong
        chat, someone else's question, a closed one, conversation."""
        waiting = sorted({q.asked for q in self.model.open_questions()})
        name = self.pick(data, waiting, [*NAMES, ADMIN], "who answers")
        places = sorted({q.chat for q in self.model.open_questions() if q.asked == name})
        chat = self.pick(data, places, [chat], "chat")
        self.answer(self.draw_answer(data, name, yes, chat, None))

    @precondition(lambda self: bool(self.model.open_questions()))
    @rule(data=st.data(), together=st.booleans(), same=st.booleans())
    def answer_twice(self, data: st.DataObject, together: bool, same: bool) -> None:
        """One question answered twice: a double tap, a button and a typed word, two devices.

        ``together``: at the same moment, from two threads; else one after the other.
        """
        open_ids = sorted(q.id for q in self.model.open_questions())
        question = self.model.questions[data.draw(st.sampled_from(open_ids), label="question")]
        self.twice(data, question, data.draw(st.booleans(), label="says yes"), together, same)

    def twice(
        self, data: st.DataObject, question: Question, yes: bool, together: bool, same: bool
    ) -> None:
        # Answers at the same moment say the same and both name the question (or are
        # one answer delivered twice), so that either order leaves the same state:
        # the steps after this one must not depend on which thread won.
        forms = NAMED_FORMS if together and not same else FORMS
        first = self.draw_answer(data, question.asked, yes, question.chat, question.id, forms)
        if same:
            second = first  # the same answer, delivered again with another event id
        else:
            if not together:
                yes = data.draw(st.booleans(), label="second says yes")
            second = self.draw_answer(data, question.asked, yes, question.chat, question.id, forms)
        applied_before = len(self.model.transfers)
        if together:
            results = self.at_once((first, second))
        else:
            results = [self.answer(first), self.answer(second)]
        closing = [r for r in results if r.outcome == "applied" and r.answered == question.id]
        assert len(closing) <= 1, "one question was applied twice"
        assert len(self.model.transfers) - applied_before <= 1

    @precondition(lambda self: bool(self.model.open_questions()))
    @rule(data=st.data(), seconds=st.sampled_from([-1, 0, 1, 3600]), yes=st.booleans())
    def answer_at_the_deadline(self, data: st.DataObject, seconds: int, yes: bool) -> None:
        """The clock moves to just before, at or after a question's expiry; then it is
        answered. From its expiry on the answer says so, closes it and books nothing."""
        question = self.model.questions[
            data.draw(st.sampled_from(sorted(q.id for q in self.model.open_questions())))
        ]
        moment = max(self.model.now, question.expires + timedelta(seconds=seconds))
        self.driver.advance(moment)
        self.model.now = moment
        self.answer(self.draw_answer(data, question.asked, yes, question.chat, question.id))

    @rule(hours=HOURS)
    def time_passes(self, hours: int) -> None:
        """The clock moves on; questions older than the confirmation timeout expire."""
        moment = self.model.now + timedelta(hours=hours)
        self.driver.advance(moment)
        self.model.now = moment

    @precondition(lambda self: len(self.committed) > 1)
    @rule(data=st.data())
    def redeliver(self, data: st.DataObject) -> None:
        """A platform delivers a handled message again: nothing happens."""
        incoming = data.draw(st.sampled_from(self.committed[1:]), label="redelivered")
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
            questions = {
                row.id: (row.status, row.number, row.action, row.platform, row.chat_id)
                for row in connection.execute(
                    text(
                        "SELECT q.id, q.status, m.number, q.action, q.platform, q.chat_id"
                        " FROM pending q JOIN members m ON m.id = q.asked_id"
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
            for t in self.model.transfers
        ]
        assert questions == {
            q.id: (
                q.status,
                number[q.asked],
                q.action,
                "console",
                "group" if q.chat == GROUP else None,
            )
            for q in self.model.questions.values()
        }

    @invariant()
    def every_booking_was_accepted_once(self) -> None:
        """Each transfer matches exactly one accepted question: its payer's (/pay,
        /vraagbetaling), or the coordinator's who booked it (/boeken, /terugboeken)."""
        kinds = {"pay": "payment", "request": "request", "book": "booking", "reverse": "reversal"}
        with self.engine.connect() as connection:
            booked = Counter(
                tuple(row)
                for row in connection.execute(
                    text(
                        "SELECT kind, payer_id, receiver_id, amount, reverses_id, booked_by_id"
                        " FROM transfers"
                    )
                )
            )
            accepted = connection.execute(
                text(
                    "SELECT q.action, q.asked_id, q.payer_id, q.receiver_id, q.amount,"
                    " q.transfer_id, m.role FROM pending q JOIN members m ON m.id = q.asked_id"
                    " WHERE q.status = 'accepted' AND q.action NOT IN ('leave', 'reject')"
                )
            ).all()
            connection.rollback()
        for row in accepted:
            if row.action in ("pay", "request"):
                assert row.asked_id == row.payer_id, row
            else:
                assert row.role == "coordinator", row
        # What a leaving member gives the group account is booked as their rest.
        with self.engine.connect() as connection:
            kas = connection.execute(text("SELECT id FROM members WHERE number = 0")).scalar()
            connection.rollback()

        def kind(name: str, receiver_id: int) -> str:
            given = receiver_id == kas and name in ("payment", "request", "booking", "rest")
            return "to the group account" if given else name

        seen = Counter((kind(k, to), by, to, *rest) for k, by, to, *rest in booked.elements())
        expected = Counter(
            (kind(kinds[r.action], r.receiver_id), *r[2:4], r.amount, r.transfer_id, r.asked_id)
            for r in accepted
        )
        assert seen == expected

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
