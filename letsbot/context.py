"""What a command handler works with while one incoming message is handled."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from difflib import get_close_matches

from letsbot.config import Settings
from letsbot.domain import (
    GROUP_ACCOUNT_WORDS,
    Identity,
    ListingKind,
    LookedUp,
    Member,
    MemberCode,
    Pending,
    PendingAction,
    PendingStatus,
    Role,
    Status,
)
from letsbot.errors import Refusal
from letsbot.i18n import Raw, Translator
from letsbot.markup import escape
from letsbot.messages import Choice, Incoming, Outcome, Outgoing, ToChat, ToPerson
from letsbot.ports import Store
from letsbot.text import fold

Compose = Callable[[Translator], str]
Later = Callable[[], list[Outgoing]]


_TRADING = (Status.ACTIVE, Status.LEAVING)  # whom a name means first


@dataclass
class Context:
    store: Store
    settings: Settings
    translators: dict[str, Translator]
    now: datetime
    incoming: Incoming
    sender: Member | None
    language: str
    private: bool = False  # the command's replies go to the sender's direct chat
    replies: list[Outgoing] = field(default_factory=list)
    # How the log names what happened; a handler that keeps a record of a failed
    # attempt (a wrong code) answers without a Refusal and says so here.
    outcome: Outcome = Outcome.APPLIED
    # Slow work on what the transaction read (drawing charts), done after it committed.
    later: list[Later] = field(default_factory=list)
    answered: int | None = None  # the question this message answered, see Result.answered
    _example: str | None = None  # example_code, once looked up
    closed: list[int] = field(default_factory=list)  # see Result.closed
    # The members an answer's claim locked (letsbot.questions), as read under that
    # lock: its handler books on them without locking and reading them again.
    locked: dict[int, Member] = field(default_factory=dict)
    # Partner groups' bots can be asked who a member code is (letsbot.partner_lookup);
    # their answers so far, by code.
    can_look_up: bool = False
    looked_up: dict[str, LookedUp] = field(default_factory=dict)

    @property
    def t(self) -> Translator:
        return self.translators[self.language]

    def translator_for(self, member: Member) -> Translator:
        return self.translators[member.language or self.settings.group.language]

    @property
    def member(self) -> Member:
        """The sender, for commands that only members can run."""
        assert self.sender is not None
        return self.sender

    # naming members
    def code(self, member: Member) -> str:
        return MemberCode.show(self.settings.group.code_prefix, member.number)

    def label(self, member: Member, t: Translator | None = None, *, old: bool = False) -> Raw:
        """``Tine (DU-041)``; with ``old``, also the code from before the move-in."""
        name = member.name
        if member.is_group_account:
            name = (t or self.t)("group_account.name")
        elif member.forgotten:
            name = (t or self.t)("privacy.forgotten_name")
        code = self.code(member)
        if old and member.old_code:
            code = (t or self.t)("label.old_code", code=code, old=member.old_code)
        return Raw(f"{escape(name)} ({code})")

    def parse_code(self, text: str) -> int | None:
        """The member number in ``DU-007``, ``du7`` or ``7``; None if it isn't a code."""
        return MemberCode.number_in(text, self.settings.group.code_prefix)

    def example_code(self, reader: Member | None = None, *, exclude: object = None) -> str:
        """A member code for examples that exists: an active member's other than the
        reader's (the sender, unless given) and than ``exclude``, if there is one."""
        reader = reader or self.sender
        cached = reader is self.sender and exclude is None
        if cached and self._example is not None:
            return self._example
        prefix = self.settings.group.code_prefix
        skipped = {reader.number if reader is not None else None}
        if exclude is not None:
            skipped.add(MemberCode.number_in(str(exclude), prefix))
        # No other active member yet: the group account, which exists from the start.
        fallback = [MemberCode.GROUP_ACCOUNT, reader.number if reader is not None else 7]
        number = next((n for n in fallback if n not in skipped), 7)
        for candidate in range(1, 21):
            if candidate in skipped:
                continue
            member = self.store.members.member_by_number(candidate)
            if member is not None and member.status is Status.ACTIVE:
                number = candidate
                break
        code = MemberCode.show(prefix, number)
        if cached:
            self._example = code
        return code

    # replying
    def yes_no(self, t: Translator) -> tuple[Choice, ...]:
        return yes_no(t)

    def reply(
        self, text: str, *, choices: tuple[Choice, ...] = (), held_as: str | None = None
    ) -> None:
        """Answer the sender where they wrote (or privately, for private commands).

        ``choices`` offers commands anyone may press; ``held_as``: see Outgoing.
        """
        target, reply_to = self.reply_target()
        self.replies.append(
            Outgoing(target, text, choices, None, reply_to, language=self.language, held_as=held_as)
        )

    def reply_privately(self, text: str, *, held_as: str | None = None) -> None:
        """Answer the sender in their direct chat, wherever they wrote."""
        person = ToPerson(self.incoming.sender)
        self.replies.append(
            Outgoing(person, text, (), None, None, language=self.language, held_as=held_as)
        )

    def reply_target(self) -> tuple[ToChat | ToPerson, str | None]:
        if (self.private or self.incoming.pressed) and self.incoming.chat.is_group:
            return ToPerson(self.incoming.sender), None
        return ToChat(self.incoming.chat), self.incoming.event_id

    def after_commit(self, work: Later) -> None:
        """Replies made once the transaction has committed, so it holds no lock meanwhile.

        They come after every other reply; if ``work`` fails, they are left out.
        """
        self.later.append(work)

    def tell(self, member: Member, compose: Compose) -> bool:
        """A direct message to a member, in their language; False if they can't be reached."""
        found = self._direct(member)
        if found is None:
            return False
        t = self.translator_for(member)
        self.replies.append(Outgoing(ToPerson(found), compose(t), language=t.language))
        return True

    def tell_many(self, messages: list[tuple[Member, Compose]]) -> None:
        """``tell`` each member their message, their chats looked up at once."""
        found = self.store.members.first_identities(
            [m.id for m, _ in messages if not m.is_group_account]
        )
        for member, compose in messages:
            identity = found.get(member.id)
            if identity is None or member.is_group_account:
                continue
            t = self.translator_for(member)
            self.replies.append(Outgoing(ToPerson(identity), compose(t), language=t.language))

    def _direct(self, member: Member) -> Identity | None:
        """Where a direct message to ``member`` goes, if anywhere."""
        if member.is_group_account:
            return None
        found = self.store.members.identities(member.id)
        return found[0] if found else None

    def tell_coordinators(self, compose: Compose, *, except_sender: bool = True) -> None:
        for member in self.store.members.members([Status.ACTIVE]):
            if member.role is not Role.COORDINATOR:
                continue
            if except_sender and self.sender is not None and member.id == self.sender.id:
                continue
            self.tell(member, compose)

    # questions
    def ask(
        self,
        action: PendingAction,
        asked: Member,
        compose: Compose,
        *,
        payer: Member | None = None,
        receiver: Member | None = None,
        amount: int | None = None,
        transfer_id: int | None = None,
        description: str = "",
        data: str | None = None,
    ) -> Pending | None:
        """Put a Ja/Nee question to ``asked`` and send it; None if they can't be reached.

        The sender is asked where they wrote (privately for private commands);
        anyone else in their own direct chat, so that only they answer it,
        there. A question belongs to that chat and to its message: only an
        answer from there counts (letsbot.questions). A question that
        corrects an open one replaces it (``_replaces``).
        """
        if asked.id == self.member.id:
            identity: Identity | None = self.incoming.sender
            target, reply_to = self.reply_target()
            t = self.t
        else:
            identity = self._direct(asked)
            if identity is None:
                return None
            target, reply_to = ToPerson(identity), None
            t = self.translator_for(asked)
        assert identity is not None
        if isinstance(target, ToChat) and target.chat.is_group:
            platform, chat_id = target.chat.platform, target.chat.chat_id
        else:
            platform, chat_id = identity.platform, None
        new = Pending(
            0,
            action,
            asked.id,
            self.member.id,
            payer.id if payer else None,
            receiver.id if receiver else None,
            amount,
            transfer_id,
            description,
            self.now,
            self.now + self.settings.group.confirmation_timeout,
            PendingStatus.OPEN,
            data,
            platform,
            chat_id,
            compose(t),
        )
        question, replaced = add_question(self.store, new)
        self.closed.extend(replaced)
        if replaced and asked.id == self.member.id:
            self.reply(self.t("confirm.superseded"))
        shown = question.text or ""
        if chat_id is not None:  # in the group, everyone sees whose question it is
            shown = t("confirm.for_whom", who=self.label(asked, t), question=Raw(shown))
        self.replies.append(
            Outgoing(
                target,
                shown,
                yes_no(t),
                identity,
                reply_to,
                question=question.id,
                language=t.language,
            )
        )
        return question

    # arguments
    def text_argument(self, words: list[str], *, usage_of: str, limit: int = 200) -> str:
        text = " ".join(words).strip()
        if not text:
            raise Refusal("error.missing_text", usage=self.usage(usage_of))
        if len(text) > limit:
            raise Refusal("error.words_too_long", length=len(text), limit=limit)
        return text

    def usage(self, command: str) -> Raw:
        """A correct example of ``command`` (its English name) in the sender's language,
        naming a member, an event or an offer that exists where it names one."""
        key = f"cmd.{command}.example"
        template = self.t.template(key)
        params: dict[str, object] = {"code": self.example_code()}
        if "{other}" in template:
            params["other"] = self.example_code(exclude=params["code"])
        if "{candidate}" in template:
            waiting = self.store.members.members([Status.CANDIDATE])
            params["candidate"] = self.code(waiting[0]) if waiting else params["code"]
        if "{proposal}" in template:  # the newest open proposal
            open_ones = self.store.governance.open_proposals(1)
            params["proposal"] = open_ones[0].id if open_ones else 1
        if "{transfer}" in template:
            params["transfer"] = self.store.ledger.last_transfer_id() or 1
        if "{event}" in template:
            params["event"] = self.example_event()
        if "{listing}" in template:
            params["listing"] = self.example_listing(own=False)
        if "{own_listing}" in template:
            params["own_listing"] = self.example_listing(own=True)
        return Raw(self.t(key, **params))

    def example_event(self) -> int:
        """The soonest scheduled event's number (1 when none is planned)."""
        soonest = self.store.events.events_between(self.now, None, 1)
        return soonest[0].id if soonest else 1

    def example_listing(self, *, own: bool) -> int:
        """A live listing's number: one of the sender's own, or someone else's offer."""
        if own and self.sender is not None:
            mine = self.store.market.listings_of(self.sender.id, self.now)
            return mine[0].id if mine else 1
        found, _ = self.store.market.search_listings(
            ListingKind.OFFER, words=(), tags=(), now=self.now, offset=0, limit=5
        )
        others = [listing for listing, owner in found if owner != self.sender]
        return others[0].id if others else (found[0][0].id if found else 1)

    # naming members in arguments
    def find_member(self, token: str, among: tuple[Status, ...] = _TRADING) -> Member:
        """The member a word names: a mention the adapter resolved, a member code, or a name."""
        for mention in self.incoming.mentions:
            if mention.text == token:
                found = self.store.members.member_by_identity(mention.identity)
                if found is None:
                    raise Refusal("ref.not_a_member", who=token)
                return found
        number = self.parse_code(token)
        if number is None:
            self._refuse_partner_member(token)
            return self._member_named(token, among)
        member = self.store.members.member_by_number(number)
        if member is None:
            code = MemberCode.show(self.settings.group.code_prefix, number)
            raise Refusal("ref.no_such_code", code=code)
        return member

    def _refuse_partner_member(self, token: str) -> None:
        """``/bericht GE-012 ...``: a member of a partner group is no member here."""
        code = MemberCode.read(token)
        if code is None or not code.prefix:
            return
        partner = self.store.partners.partner_by_prefix(code.prefix)
        if partner is not None and not partner.removed:
            raise Refusal("ref.partner_member", code=str(code), group=partner.name)
        if len(code.prefix) > 1:  # "XY-002": a code, of no group this bot knows
            raise Refusal(
                "ref.unknown_prefix",
                code=str(code),
                prefix=code.prefix.upper(),
                ours=self.settings.group.code_prefix.upper(),
            )

    def find_member_in(
        self, words: list[str], among: tuple[Status, ...] = _TRADING
    ) -> tuple[Member, list[str]]:
        """The member the first words name, and the words after: ``Jan De Smet 30 soep``.

        Of several with a name, those of a status in ``among`` are meant, if any."""
        first = words[0]
        is_mention = any(m.text == first for m in self.incoming.mentions)
        if not is_mention and self.parse_code(first) is None:
            for size in (3, 2):  # the longest name first: "Jan De Smet", then "Jan De"
                if len(words) >= size and not any(_NUMBER.fullmatch(w) for w in words[:size]):
                    named = self._members_named(" ".join(words[:size]), among)
                    if len(named) == 1:
                        return named[0], words[size:]
                    if named:  # several with that whole name: which, by all of it
                        return self._member_named(" ".join(words[:size]), among), words[size:]
        return self.find_member(first, among), words[1:]

    def take_member(self, words: list[str], *, usage_of: str) -> tuple[Member, list[str]]:
        """The member named first in ``words``, or the author of the message replied to."""
        reply_to = self.incoming.reply_to
        if reply_to is not None and not self._names_member_first(words):
            member = self.store.members.member_by_identity(reply_to)
            if member is None:
                raise Refusal("ref.reply_not_member")
            return member, words
        if not words:
            raise Refusal("error.missing_member", usage=self.usage(usage_of))
        return self.find_member_in(words)

    def _members_named(self, typed: str, among: tuple[Status, ...] = _TRADING) -> list[Member]:
        """The members whose name is ``typed``: first, last or full name, any case or accents."""
        wanted = fold(typed.lstrip("@").strip(_PUNCTUATION)).split()
        if not wanted or wanted[-1] in _PARTICLES:
            return []
        everyone = self.store.members.members(list(Status))
        # A code from the system the group moved from ("EW24", "ILGENT") names its member.
        typed_code = "".join(typed.split()).upper()
        by_old = [m for m in everyone if m.old_code and m.old_code.upper() == typed_code]
        if len(by_old) == 1 and not by_old[0].forgotten:
            return by_old
        # The group account by its whole name ("groepsrekening", "group account") or what
        # members call it ("kas", "groep": no member may take those as their name).
        account_names = {fold(t("group_account.name")) for t in self.translators.values()}
        if (
            " ".join(wanted)
            in account_names | {fold(m.name) for m in everyone if m.is_group_account}
            or "".join(wanted) in GROUP_ACCOUNT_WORDS
        ):
            return [m for m in everyone if m.is_group_account]
        named = [
            m
            for m in everyone
            if not m.is_group_account
            and not m.forgotten
            and _has_name(m.name, wanted)
            # Another group's account ("LETS Gent") only by its whole name: "gent" is
            # more likely someone of that group.
            and (m.status is not Status.EXTERNAL or fold(m.name) == " ".join(wanted))
        ]
        meant = [m for m in named if m.status in among]
        if meant and len(named) > 1:  # a candidate of the same name is no one to pay yet
            named = meant
        # An Peeters who types "peeters" means the other Peeters.
        others = [m for m in named if self.sender is None or m.id != self.sender.id]
        return others if len(named) > 1 and len(others) == 1 else named

    def _member_named(self, token: str, among: tuple[Status, ...] = _TRADING) -> Member:
        named = self._members_named(token, among)
        if len(named) == 1:
            return named[0]
        shown = token[:40]
        if named:
            fixed = [(m, self._with_code(token, m)) for m in named[:8]]
            if all(command for _, command in fixed):
                lines = [f"{escape(str(command))} ({escape(m.name)})" for m, command in fixed]
                raise Refusal(
                    "ref.several_named_commands",
                    name=shown,
                    count=len(named),
                    commands=Raw("\n".join(lines)),
                    buttons=tuple(Choice(f"{m.name} ({self.code(m)})", str(c)) for m, c in fixed),
                )
            listed = ", ".join(self.label(m) for m in named[:8])
            raise Refusal(
                "ref.several_named",
                name=shown,
                count=len(named),
                members=Raw(listed),
                code=self.code(named[0]),
            )
        close = self._names_close_to(token)
        if among == (Status.CANDIDATE,):  # /approve, /reject: a candidate, not a member
            close = [m for m in close if m.status is Status.CANDIDATE]
            if close:
                listed = ", ".join(self.label(m) for m in close)
                raise Refusal("ref.not_a_candidate_name", token=shown, members=Raw(listed))
            raise Refusal("ref.not_a_candidate", token=shown)
        refusal = Refusal("ref.not_a_code", token=shown, example=self.example_code())
        partners = [p for p in self.store.partners.partners() if not p.removed]
        if partners:  # "/betaal tine 30": Tine may be a partner group's member
            refusal = Refusal(
                "ref.not_a_code_partners",
                token=shown,
                example=self.example_code(),
                groups=", ".join(p.name for p in partners[:3]),
                partner_example=f"{partners[0].prefix}-012",
            )
        if close:
            listed = ", ".join(self.label(m) for m in close)
            refusal = Refusal("ref.not_a_name", token=shown, members=Raw(listed))
        raise refusal

    def _with_code(self, token: str, member: Member) -> str | None:
        """The command as typed, with ``token`` (a name) replaced by the member's code:
        one to copy or tap. None when the name isn't found after the command word."""
        typed = self.incoming.text.strip()
        head, _, rest = typed.partition(" ")
        if not head.startswith("/"):
            return None
        place = re.search(rf"(?<!\S){re.escape(token)}(?!\S)", rest)
        if place is None:
            return None
        words = f"{rest[: place.start()]}{self.code(member)}{rest[place.end() :]}"
        return f"{head} {' '.join(words.split())}"

    def _names_close_to(self, token: str) -> list[Member]:
        """Up to three members whose name or part of it looks like ``token`` (a typo)."""
        typed = fold(token.lstrip("@").strip(_PUNCTUATION))
        if len(typed) < 3:
            return []
        by_word: dict[str, list[Member]] = {}
        for member in self.store.members.members(list(Status)):
            # Not the group's account, nor a partner group's: no one to suggest by name.
            if member.is_group_account or member.forgotten or member.status is Status.EXTERNAL:
                continue
            for word in {fold(member.name), *_name_parts(fold(member.name))}:
                by_word.setdefault(word, []).append(member)
        found: list[Member] = []
        for word in get_close_matches(typed, list(by_word), n=3, cutoff=0.75):
            found += [m for m in by_word[word] if m not in found]
        return found[:3]

    def _names_member_first(self, words: list[str]) -> bool:
        if not words:
            return False
        first = words[0]
        if any(m.text == first for m in self.incoming.mentions):
            return True
        code = MemberCode.read(first)
        if code is None:
            return False
        # "/pay 7 30 soup" names DU-007 even in a reply; "/pay 30 soup" does not.
        return bool(code.prefix) or (len(words) > 1 and _NUMBER.fullmatch(words[1]) is not None)


_NUMBER = re.compile(r"[0-9]+(?:[.,][0-9]+)?", re.ASCII)
_PUNCTUATION = ",.;:!?"
# Words that start a Flemish or Dutch surname: "de" alone names no one.
_PARTICLES = frozenset(
    {"de", "den", "der", "des", "van", "vande", "vander", "het", "t", "'t", "ter", "ten", "te"}
    | {"la", "le", "du", "di", "da", "von", "op", "in", "d'"}
)


def _name_parts(folded: str) -> list[str]:
    """The words of a name, with a double name both whole and split (``anne-marie``)."""
    parts = folded.split()
    return parts + [piece for part in parts if "-" in part for piece in part.split("-") if piece]


def _has_name(name: str, wanted: list[str]) -> bool:
    """Whether the words ``wanted`` are the whole name or a run of its words."""
    folded = fold(name)
    if " ".join(wanted) == folded:
        return True
    for parts in (folded.split(), folded.replace("-", " ").split()):
        for start in range(len(parts) - len(wanted) + 1):
            if parts[start : start + len(wanted)] == wanted:
                return True
        # "Peeters Lies", as lists write it: the last name first, then the first name.
        if len(wanted) == 2 and len(parts) >= 2 and wanted == [parts[-1], parts[0]]:
            return True
    return False


def yes_no(t: Translator) -> tuple[Choice, ...]:
    return (Choice(t("choice.yes"), "yes"), Choice(t("choice.no"), "no"))


def add_question(store: Store, new: Pending) -> tuple[Pending, list[int]]:
    """Store the question ``new`` (its id unset), closing the open ones it replaces
    (``_replaces``): the question as stored, and the ids it replaced. Also for a
    question no command asks (a partner group's request, letsbot.partner_requests)."""
    # Members first, then their questions: the one lock order of every transaction.
    store.members.hold_members(sorted({new.asked_id, new.requested_by_id}))
    replaced = [
        old.id
        for old in store.questions.open_pending(new.asked_id)
        if old.expires_at > new.created_at and _replaces(new, old)
    ]
    for old_id in replaced:
        store.questions.close_pending(old_id, PendingStatus.SUPERSEDED)
    question = store.questions.add_pending(
        action=new.action,
        asked_id=new.asked_id,
        requested_by_id=new.requested_by_id,
        payer_id=new.payer_id,
        receiver_id=new.receiver_id,
        amount=new.amount,
        transfer_id=new.transfer_id,
        description=new.description,
        at=new.created_at,
        expires_at=new.expires_at,
        data=new.data,
        platform=new.platform,
        chat_id=new.chat_id,
        text=new.text,
    )
    return question, replaced


def _replaces(new: Pending, old: Pending) -> bool:
    """Whether ``new`` replaces the open question ``old`` put to the same person.

    A member who corrects their own command (another amount or reason) replaces
    their question in that chat. A question put to someone else replaces only
    the very same one, sent twice: they may have read the first, so a different
    one waits beside it and they choose.
    """

    def key(q: Pending) -> tuple[object, ...]:
        # Turning down one member (or ending one rule) doesn't correct the question about another.
        targeted = (PendingAction.REJECT, PendingAction.FORGET, PendingAction.CONTRIBUTION_END)
        target = q.data if q.action in targeted else None
        who = (q.action, q.requested_by_id, q.payer_id, q.receiver_id, q.transfer_id, target)
        what = () if new.requested_by_id == new.asked_id else (q.amount, q.description, q.data)
        return (*who, *what, q.platform, q.chat_id)

    return key(new) == key(old)
