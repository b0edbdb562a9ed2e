"""From one incoming message to its replies: exactly once, in one transaction."""

from __future__ import annotations

import importlib
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from letsbot.clock import Clock
from letsbot.config import Settings
from letsbot.context import Context
from letsbot.contributions import ContributionSchedule
from letsbot.domain import LookedUp, Member, Partner, PendingStatus, Role, Status, TransferKind
from letsbot.errors import Busy, LookUpFirst, Refusal, Unsure
from letsbot.governance_schedule import GovernanceSchedule
from letsbot.i18n import LANGUAGES, Raw, Translator
from letsbot.linking import burn_codes, may_hold_code
from letsbot.market import asks_payment
from letsbot.market_schedule import MarketSchedule
from letsbot.markup import escape
from letsbot.members import looks_like_a_name, may_apply_again, offer_to_join, waiting_candidates
from letsbot.messages import Incoming, Outcome, Outgoing, Result, ToChat, ToPerson
from letsbot.outbox import Outbox
from letsbot.ports import Store, UnitOfWork
from letsbot.posting import post
from letsbot.questions import answer as answer_question
from letsbot.questions import asked_here, parse_answer
from letsbot.registry import CAPABILITIES, REGISTRY, Command, Where, Who, standing
from letsbot.reminders import Reminders
from letsbot.text import fold, refuse_controls, strip_controls

log = logging.getLogger(__name__)

# Each capability module registers its commands when imported.
for _capability in CAPABILITIES:
    importlib.import_module(f"letsbot.{_capability}")

TEXT_LIMIT = 4000
_SLASH_SPACE = re.compile(r"^/\s+(?=\w)")
# "ja 10" in a direct chat: /ja 10, the answer to question 10 of several.
_NUMBERED_ANSWER = re.compile(r"(?i)(ja|nee|yes|no)\s+#?(\d{1,9})[.!]?")
_NO_HINT = frozenset({"lang", "yes", "no"})  # commands after which no /lang hint is given
# Words only an English speaker starts with; "help" and "ok" are Dutch too.
_ENGLISH = frozenset({"hello", "hi", "hey", "join", "english", "want", "please", "how", "does"})
_GREETINGS = frozenset(
    {"hallo", "dag", "hoi", "goeiedag", "goedendag", "goeiemorgen", "goedemorgen", "hello"}
    | {"hi", "hey", "hoe", "werkt", "dit", "dat", "het", "help", "hulp", "allemaal", "daar"}
)
_THANKS = frozenset(
    {"dank", "je", "u", "wel", "dankjewel", "dankuwel", "bedankt", "merci", "thanks", "thank"}
    | {"you", "top", "super", "fijn", "ok", "oke", "oké", "👍", "🙏", "😊", "veel"}
)
_COMMAND = re.compile(r"/(?P<word>[^\s@]+)(?:@\S*)?(?:\s+(?P<rest>.*))?", re.DOTALL)


class Bot:
    """The core: give it an Incoming, get back what to send."""

    def __init__(self, settings: Settings, uow: UnitOfWork, clock: Clock) -> None:
        self.settings = settings
        self.uow = uow
        self.clock = clock
        self.coordinators = settings.coordinator_identities
        self.translators = {
            language: Translator(language, settings.currency_spec, settings.tz)
            for language in LANGUAGES
        }
        self.outbox = Outbox(uow, clock)
        self.reminders = Reminders(
            settings, uow, clock, self.translators[settings.group.language], self.outbox
        )
        self.market = MarketSchedule(settings, uow, clock, self.translators, self.outbox)
        self.governance = GovernanceSchedule(settings, uow, clock, self.translators, self.outbox)
        self.contributions = ContributionSchedule(
            settings, uow, clock, self.translators, self.outbox
        )
        # Asks a partner group's bot who one of its member codes is ('letsbot run' sets
        # it, letsbot.partner_lookup); None: payments across show the code only.
        self.partner_lookup: Callable[[Partner, str], LookedUp] | None = None

    def scheduled_work(self) -> list[Outgoing]:
        """What falls due now (reminders, expiry notices, the digest, contributions): claimed,
        to be posted."""
        posts: list[Outgoing] = []
        for name, work in (
            ("reminders", self.reminders),
            ("market", self.market),
            ("governance", self.governance),
            ("contributions", self.contributions),
        ):
            try:
                posts += work.post_due()
            except Busy:
                log.warning("database busy or unreachable; %s wait for the next round", name)
            except Exception:
                log.exception("%s failed", name)
        return posts

    def unsent(self, platforms: Sequence[str]) -> list[Outgoing]:
        """Outbox messages left unsent (by a crash, a failed send), now claimed to be sent."""
        return self.outbox.unsent(platforms)

    def keep(self, ids: Sequence[int]) -> None:
        """Still sending these outbox messages: no other process may take them over."""
        self.outbox.keep(ids)

    def delivered(self, ids: Sequence[int]) -> None:
        """These outbox messages reached their platform."""
        self.outbox.sent(ids)

    def catch_up(self, moment: datetime, set_clock: Callable[[datetime], None]) -> list[Outgoing]:
        """Move a virtual clock to ``moment``, doing each piece of scheduled work at its time."""
        posts: list[Outgoing] = []
        while (due := self.next_due(moment)) is not None:
            set_clock(due)
            posts += self.scheduled_work()
        set_clock(moment)
        return posts + self.scheduled_work()

    def next_due(self, until: datetime) -> datetime | None:
        """When scheduled work next falls due, if before ``until``."""
        found = [
            self.reminders.next_due(until),
            self.market.next_due(until),
            self.governance.next_due(until),
            self.contributions.next_due(until),
        ]
        return min((due for due in found if due is not None), default=None)

    def handle(self, incoming: Incoming) -> Result:
        started = time.perf_counter()
        result = self._handle(incoming)
        log.info(
            "event=%s command=%s outcome=%s ms=%.1f",
            incoming.event_key,
            result.command or "-",
            result.outcome,
            (time.perf_counter() - started) * 1000,
        )
        return result

    def _handle(self, incoming: Incoming, looked_up: dict[str, LookedUp] | None = None) -> Result:
        text = _SLASH_SPACE.sub("/", incoming.text.strip(), count=1)  # "/ betaal" is /betaal
        numbered = _NUMBERED_ANSWER.fullmatch(text)
        if numbered and not incoming.chat.is_group:
            text = f"/{numbered[1].lower()} {numbered[2]}"
        if incoming.chat.is_group and looked_up is None:
            self._burn_codes(incoming, text)
        match = _COMMAND.fullmatch(text) if text.startswith("/") else None
        # In a group only clear words answer, unless the message replies to the question.
        strict = incoming.chat.is_group and incoming.answers is None
        answer = None if match else parse_answer(text, in_group=strict)
        if match is None and answer is None and incoming.chat.is_group:
            return Result(Outcome.IGNORED)  # ordinary conversation in the group
        command = REGISTRY.find(match["word"]) if match else None
        words = (match["rest"] or "").split() if match else []
        language: str = self.settings.group.language
        if match is not None and not incoming.chat.is_group:
            # Someone who isn't a member yet is answered in the language of their words;
            # in a group everyone reads the answer: the group's language.
            language = REGISTRY.language_of(match["word"]) or language
        worded = language
        name = command.name if command else None
        ctx: Context | None = None
        try:
            with self.uow.transaction() as store:
                now = self.clock.now()
                claimed, found = store.claims.claim_event_from(
                    incoming.event_key, now, incoming.sender
                )
                if not claimed:
                    return Result(Outcome.DUPLICATE, command=name)
                # A configured coordinator whose first words claim an imported account
                # (their own) gets no new, empty one first.
                claiming = found is None and name == "claim"
                sender = found if claiming else self._sender(store, incoming, found)
                # A configured coordinator's first message: who applied before anyone
                # could be told is shown now.
                first_time = found is None and sender is not None
                if sender is not None:
                    # A member's language is the one they chose, else the group's: an
                    # English command word in a Dutch group switches no one.
                    language = sender.language or self.settings.group.language
                else:  # a stranger who chose with /taal keeps to it
                    language = store.members.stranger_fact(incoming.sender, "language") or language
                ctx = Context(
                    store, self.settings, self.translators, now, incoming, sender, language
                )
                ctx.can_look_up = self.partner_lookup is not None
                ctx.looked_up = dict(looked_up or {})
                if len(text) > TEXT_LIMIT:
                    raise Refusal("error.text_too_long", limit=TEXT_LIMIT)
                refuse_controls(text)  # every typed text passes here: names, descriptions, ...
                # A candidate turned down may apply again: their words are a stranger's.
                outsider = sender is None or (
                    not incoming.chat.is_group and may_apply_again(ctx, sender)
                )
                if match is None and answer is None and outsider:
                    # A stranger's first words ("hallo", "ik wil meedoen"): the welcome,
                    # in English to someone who wrote English ("hello, I want to join").
                    command = REGISTRY.find("start")
                    assert command is not None
                    name = command.name
                    if set(fold(text).replace("?", " ").replace("!", " ").split()) & _ENGLISH:
                        ctx.language = language = "en"
                    typed_words = text.split()
                    joining = REGISTRY.find("join")
                    if typed_words and REGISTRY.find(typed_words[0]) is joining:
                        typed_words = typed_words[1:]  # "aanmelden Marie Claes", no slash
                    typed_name = looks_like_a_name(" ".join(typed_words))
                    if typed_name is not None:  # "Maria Janssens", as the welcome asked
                        offer_to_join(ctx, typed_name)
                    else:
                        self._run(ctx, command, [])
                    outcome = ctx.outcome
                elif match is None and answer is None:
                    assert sender is not None
                    self._not_understood(ctx, sender, text)
                    name, outcome = "start", ctx.outcome  # a greeting: the short list
                elif match is None and (offered := self._offered_name(ctx, outsider, answer)):
                    # "ja" (or "nee") to "Wil je lid worden als Maria Janssens?"
                    command = REGISTRY.find("join")
                    assert command is not None
                    name = command.name
                    if answer:
                        self._run(ctx, command, offered.split())
                    else:
                        store.members.keep_stranger_fact(incoming.sender, "name", None, now)
                        ctx.reply(ctx.t("join.offer_declined", example=ctx.usage("join")))
                    outcome = ctx.outcome
                elif match is None:
                    outcome = answer_question(ctx, answer is True)
                elif command is None:
                    joined, size = _command_at_start([match["word"], *words[:2]])
                    # "/ik kom 1" is /ikkom 1; else a word close to a command's.
                    meant = joined if size > 1 else REGISTRY.closest(match["word"])
                    if meant is not None and meant.who <= standing(sender):
                        raise Refusal(
                            "error.did_you_mean",
                            word=match["word"][:40],
                            meant=meant.name_in(ctx.language),
                            example=ctx.usage(meant.name),
                        )
                    raise Refusal("error.unknown_command", word=match["word"][:40])
                else:
                    self._run(ctx, command, words)
                    outcome = ctx.outcome
                # Not on an answer (/yes, /no): that only answers, and changes nothing else.
                if sender is not None and worded != language and name not in _NO_HINT:
                    now_member = store.members.member(sender.id)
                    if now_member and now_member.language is None and not now_member.forgotten:
                        # Said once: the member's language is then recorded as the group's.
                        ctx.reply(self.translators[worded]("lang.hint"))
                        store.members.update_member(sender.id, language=language)
                if first_time and (waiting := waiting_candidates(ctx)) is not None:
                    ctx.reply_privately(waiting)
                # Written with what they confirm: a crash before they are sent loses none.
                replies = self.outbox.queue(store, ctx.replies)
                result = Result(outcome, replies, name, ctx.answered, tuple(ctx.closed))
        except Refusal as refusal:
            if refusal.closes is not None:
                self._close_refused(incoming, refusal.closes)
            # A private command's refusal may tell a balance or a limit: privately too.
            privately = ctx is not None and ctx.private
            said = self._say(incoming, language, refusal.key, refusal.params, privately)
            if refusal.buttons and not incoming.chat.is_group:
                said = replace(said, choices=refusal.buttons)
            return Result(Outcome.REFUSED, [said], name)
        except Unsure:
            log.error("event=%s the database connection broke while committing", incoming.event_key)
            return Result(Outcome.UNSURE, [self._say(incoming, language, "error.unsure", {})], name)
        except Busy:
            log.warning("event=%s database busy or unreachable", incoming.event_key)
            return Result(Outcome.BUSY, [self._say(incoming, language, "error.busy", {})], name)
        except LookUpFirst as first:
            # Asked with the transaction rolled back: it holds the write lock, and the
            # partner's bot may take a while. Then the message once more, with the answer.
            assert self.partner_lookup is not None
            word = self.partner_lookup(first.partner, first.code)
            return self._handle(incoming, {**(looked_up or {}), first.code: word})
        except Exception:
            log.exception("event=%s failed", incoming.event_key)
            return Result(
                Outcome.FAILED, [self._say(incoming, language, "error.internal", {})], name
            )
        for work in ctx.later:
            try:
                result.replies.extend(work())
            except Exception:  # what was booked stands and was told; only the extra is missing
                log.exception("event=%s work after the commit failed", incoming.event_key)
        return result

    def _close_refused(self, incoming: Incoming, question_id: int) -> None:
        """A question whose Ja was refused (a limit, a member gone) is closed: refused
        is final, and a "ja" typed later for something else must not book it."""
        try:
            with self.uow.transaction() as store:
                store.questions.close_pending(question_id, PendingStatus.EXPIRED)
        except Busy:
            log.warning(
                "event=%s question %d left open after a refusal", incoming.event_key, question_id
            )

    @staticmethod
    def _offered_name(ctx: Context, outsider: bool, answer: bool | None) -> str | None:
        """The name a stranger's yes accepts: the one they were offered to join with."""
        if not outsider or answer is None or ctx.incoming.chat.is_group:
            return None
        return ctx.store.members.stranger_fact(ctx.incoming.sender, "name")

    def _not_understood(self, ctx: Context, sender: Member, text: str) -> None:
        """Words in a direct chat that are no command and no answer: what they likely meant;
        to a greeting ("hallo", "hoe werkt dit?"), what /start says."""
        said = text.split()
        typed, size = _command_at_start(said)
        asked_about = _asked_about(said[size:])
        if typed is not None and typed.name == "mine" and asked_about is not None:
            typed, size = None, 0  # "mijn saldo" is /saldo, not /mijn
        if typed is not None and typed.name == "want" and asks_payment(ctx, said[1:]):
            typed = REGISTRY.find("request")  # "vraag lies 20 voor eieren"
        # "saldo", "betaal 3 5 soep"; not "ja maar wacht": that hesitates, it asks for no /ja
        if typed is not None and typed.listed and typed.who <= standing(sender):
            if typed.name in ("help", "start"):  # "hulp": the help itself, not a lesson
                self._run(ctx, typed, said[size:])
                return
            example = ctx.usage(typed.name)
            meant_event = _event_meant(ctx, said[size:]) if typed.name in _RSVP else None
            if meant_event is not None:  # "ik kom naar de kerstmarkt": that one's number
                example = Raw(f"/{typed.name_in(ctx.language)} {meant_event}")
            elif size == 1 and len(said) > 1:  # their own words, with the slash before them
                example = Raw(escape(f"/{typed.name_in(ctx.language)} {' '.join(said[1:])}"))
            raise Refusal("error.without_slash", meant=typed.name_in(ctx.language), example=example)
        chat = ctx.incoming.chat
        waiting = [
            q
            for q in ctx.store.questions.open_pending(sender.id)
            if asked_here(q, chat) and q.expires_at > ctx.now  # an expired one holds no one up
        ]
        if waiting:
            raise Refusal("confirm.answer_yes_no", question=Raw(waiting[-1].text or ""))
        if _only_words(text, _THANKS):
            raise Refusal("chat.thanks")  # "dank je wel!": no lesson in commands
        if _only_words(text, _GREETINGS) or sender.status is Status.CANDIDATE:
            # A candidate hears where their application stands, whatever they ask.
            command = REGISTRY.find("start")
            assert command is not None
            self._run(ctx, command, [])
            return
        number = ctx.parse_code(text.strip()) if len(said) == 1 else None
        named = ctx.store.members.member_by_number(number) if number is not None else None
        if named is not None and not named.is_group_account:
            # A code alone, as if answering "which Jan?": the command goes before it.
            code = ctx.code(named)
            raise Refusal("error.code_alone", who=ctx.label(named), code=code)
        # A command's word somewhere in a question: "wat is mijn saldo?", "Saldo?"
        words = re.sub(r"[.!?,:;]+", " ", text).split()
        for place, word in enumerate(words):
            found = REGISTRY.find(_KEYWORDS.get(fold(word), word))
            if found is not None and found.name == "help":  # "ik snap het niet"
                self._run(ctx, found, [])
                return
            if found is not None and found.name in _ASKED_ABOUT and found.who <= standing(sender):
                example = ctx.usage(found.name)
                wanted = [w for w in words[place + 1 :] if fold(w) not in _ARTICLES]
                if found.name == "offers" and wanted:  # "ik zoek een ladder"
                    example = Raw(escape(f"/{found.name_in(ctx.language)} {' '.join(wanted)}"))
                raise Refusal(
                    "error.without_slash", meant=found.name_in(ctx.language), example=example
                )
        raise Refusal("error.not_a_command")

    def _burn_codes(self, incoming: Incoming, text: str) -> None:
        """Link and claim codes read in a group stop working, in a transaction of their own.

        Whatever the message comes to (a refusal rolls its own transaction back),
        a code the group has seen is spent. Nothing is told in the group.
        """
        if not may_hold_code(text):
            return
        try:
            with self.uow.transaction() as store:
                burnt = burn_codes(store, self.settings, text, self.clock.now())
        except Busy:
            log.warning("event=%s database busy: codes in it not checked", incoming.event_key)
            return
        if burnt:
            log.info(
                "event=%s %d valid code(s) typed in a group cancelled", incoming.event_key, burnt
            )

    def _say(
        self,
        incoming: Incoming,
        language: str,
        key: str,
        params: dict[str, object],
        privately: bool = False,
    ) -> Outgoing:
        text = self.translators[language](key, **params)
        if (incoming.pressed or privately) and incoming.chat.is_group:
            return Outgoing(ToPerson(incoming.sender), text, language=language)
        return Outgoing(
            ToChat(incoming.chat), text, reply_to_event=incoming.event_id, language=language
        )

    def _sender(self, store: Store, incoming: Incoming, sender: Member | None) -> Member | None:
        """The member who sent ``incoming`` (``sender``, as found); a configured
        coordinator made or restored."""
        if incoming.sender not in self.coordinators:
            return sender
        # Coordinators named in the configuration start as active coordinators, and
        # come back as such if their account was closed (a forgotten one has no
        # identities left, so they start afresh): the group never loses its coordinators.
        if sender is None:
            sender = store.members.add_member(
                name=strip_controls(incoming.sender_name)[:100] or str(incoming.sender),
                language=None,
                status=Status.ACTIVE,
                role=Role.COORDINATOR,
                at=self.clock.now(),
            )
            store.members.add_identity(sender.id, incoming.sender, incoming.sender_name)
            self._start_credit(store, sender, incoming)
        elif sender.status is not Status.ACTIVE or sender.role is not Role.COORDINATOR:
            if sender.status is Status.CANDIDATE:
                self._start_credit(store, sender, incoming)
            sender = store.members.update_member(
                sender.id, status=Status.ACTIVE, role=Role.COORDINATOR
            )
        return sender

    def _start_credit(self, store: Store, member: Member, incoming: Incoming) -> None:
        credit = self.settings.minor(self.settings.limits.start_credit)
        if not credit:
            return
        language = member.language or self.settings.group.language
        post(
            store,
            payer_id=store.members.group_account().id,
            receiver_id=member.id,
            amount=credit,
            description=self.translators[language]("approve.start_credit_description"),
            kind=TransferKind.START_CREDIT,
            at=self.clock.now(),
            booked_by_id=None,
            event_key=incoming.event_key + ":start-credit",
        )

    def _run(self, ctx: Context, command: Command, words: list[str]) -> None:
        level = standing(ctx.sender)
        if command.who > level:
            key = self._not_allowed_key(ctx.sender, command.who)
            if key == "error.not_a_member" and not ctx.incoming.chat.is_group:
                key = "error.not_a_member_here"  # already in the direct chat: just the command
            raise Refusal(key, group=self.settings.group.name, example=ctx.usage("join"))
        chat = ctx.incoming.chat
        if command.where is Where.DIRECT and chat.is_group:
            raise Refusal("error.direct_only", command=command.name_in(ctx.language))
        if command.where is Where.GROUP and not chat.is_group:
            raise Refusal("error.group_only", command=command.name_in(ctx.language))
        ctx.private = command.private
        command.handler(ctx, words)

    @staticmethod
    def _not_allowed_key(sender: Member | None, needed: Who) -> str:
        if needed is Who.COORDINATOR and sender is not None and sender.can_trade:
            return "error.coordinators_only"
        if sender is None:
            return "error.not_a_member"
        if sender.status is Status.CANDIDATE:
            return "error.candidate"
        return "error.inactive"


# Commands whose word in a question says what is meant ("wat is mijn saldo?"); not words
# as common in a sentence as "mijn", "vraag" or "stem".
_ASKED_ABOUT = frozenset({"balance", "pay", "history", "members", "events", "offers", "request"})
_ARTICLES = frozenset({"een", "de", "het", "a", "an", "the"})
# Words of a question that say which command helps: "wanneer is de markt?", "hoe vraag ik
# geld", "ik snap het niet".
_KEYWORDS = {
    **dict.fromkeys(("markt", "markten", "activiteit", "repaircafe", "market"), "events"),
    **dict.fromkeys(("geld", "money"), "request"),
    **dict.fromkeys(("snap", "begrijp", "understand"), "help"),
}


def _asked_about(words: list[str]) -> Command | None:
    """The command a later word of a question names ("mijn saldo"), if one of _ASKED_ABOUT."""
    for word in words:
        found = REGISTRY.find(_KEYWORDS.get(fold(word.strip("?!.,")), word.strip("?!.,")))
        if found is not None and found.name in _ASKED_ABOUT:
            return found
    return None


_RSVP = frozenset({"going", "notgoing"})


def _event_meant(ctx: Context, words: list[str]) -> int | None:
    """The upcoming event some words name: by a word of its title, or by its number typed
    alone ("ik kom 2"); never by a day ("op 12 december" is no event 12)."""
    upcoming = ctx.store.events.events_between(ctx.now, None, 20)
    named = {w for w in (fold(w.strip("?!.,")) for w in words) if len(w) > 3}
    titled = [e for e in upcoming if named & set(fold(e.title).split())]
    if len(titled) == 1:
        return titled[0].id
    if len(words) == 1 and words[0].isdigit() and int(words[0]) in {e.id for e in upcoming}:
        return int(words[0])
    return None


def _command_at_start(said: list[str]) -> tuple[Command | None, int]:
    """The command the first words name without a slash, and how many words that took:
    "saldo", and "ik kom" or "ik kom niet" for /ikkom, /ikkomniet (longest first)."""
    for size in (3, 2, 1):
        if len(said) >= size:
            found = REGISTRY.find("".join(said[:size]).rstrip("?!.,"))
            if found is not None:
                return found, size
    return None, 0


def _only_words(text: str, words: frozenset[str]) -> bool:
    """Whether ``text`` says nothing but some of ``words`` ("Hallo!", "dank je wel")."""
    said = re.sub(r"[.!?,]+", " ", fold(text)).split()
    return bool(said) and all(word in words for word in said)
