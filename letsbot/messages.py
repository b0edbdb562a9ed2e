"""What adapters hand the core and what the core hands back: platform-neutral."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from letsbot.domain import Identity


class ChatKind(enum.StrEnum):
    GROUP = "group"
    DIRECT = "direct"


@dataclass(frozen=True, slots=True)
class Chat:
    """A conversation on one platform: a group channel, or a direct chat."""

    platform: str
    chat_id: str
    kind: ChatKind

    @property
    def is_group(self) -> bool:
        return self.kind is ChatKind.GROUP


@dataclass(frozen=True, slots=True)
class Mention:
    """A person the adapter recognised in the text, e.g. ``@bob``."""

    text: str
    identity: Identity


@dataclass(frozen=True, slots=True)
class Incoming:
    platform: str
    event_id: str  # unique per platform; stored so a redelivery is a no-op
    chat: Chat
    sender: Identity
    sender_name: str
    text: str
    mentions: tuple[Mention, ...] = ()
    reply_to: Identity | None = None  # author of the message this one replies to
    # Sent by pressing a choice (a button, a reaction) in a group: answered
    # privately, so a vote confirmation doesn't fill the group.
    pressed: bool = False
    # The question a reply, button or reaction is attached to (``Outgoing.question``
    # of the message it answers): it answers exactly that question, nothing newer.
    answers: int | None = None

    @property
    def event_key(self) -> str:
        return f"{self.platform}:{self.event_id}"


@dataclass(frozen=True, slots=True)
class Choice:
    """One answer an adapter offers as a button or reaction.

    Either "yes"/"no" to the question of ``Outgoing.asked`` (only that person
    may choose), or a command such as ``/stem 12 1`` that whoever chooses runs
    as themselves (``Outgoing.asked`` is None).
    """

    label: str  # shown to the member, e.g. "Ja"
    answer: str  # "yes" | "no" | a command

    @property
    def is_command(self) -> bool:
        return self.answer.startswith("/")


@dataclass(frozen=True, slots=True)
class ToChat:
    chat: Chat


@dataclass(frozen=True, slots=True)
class ToPerson:
    """A direct message to a person on the platform of ``identity``."""

    identity: Identity


@dataclass(frozen=True, slots=True)
class ToAllGroups:
    """Every group channel on every platform."""


Target = ToChat | ToPerson | ToAllGroups


@dataclass(frozen=True, slots=True)
class Image:
    """A picture to send (a PNG chart), with a text for those who can't see it."""

    data: bytes  # PNG
    name: str  # a file name, e.g. ``volume.png``
    alt: str  # plain text: what the picture shows, in the reader's language
    width: int  # pixels
    height: int


@dataclass(frozen=True, slots=True)
class Outgoing:
    target: Target
    text: str  # markup, see letsbot.markup; with an image: its caption
    choices: tuple[Choice, ...] = ()
    # Who may answer the choices (an adapter shows buttons only to them).
    asked: Identity | None = None
    reply_to_event: str | None = None
    # The choices must be made out of others' sight (a secret ballot): an
    # adapter whose choosing is public in a group (reactions) offers none there.
    secret: bool = False
    image: Image | None = None
    # The question this message asks (``asked`` answers it): a reply to the
    # message, or its buttons or reactions, answer exactly this question.
    question: int | None = None
    language: str | None = None  # of ``text`` and the choices' labels
    # The outbox row that holds this message (letsbot.outbox): marked sent once
    # delivered; the Matrix adapter derives its transaction id from it.
    outbox_id: int | None = field(default=None, compare=False)
    # News that may be overtaken at once ("on its way" when it has arrived by then):
    # the hub holds it back for ``letsbot.outbox.HOLD`` under this key, and drops it
    # when a message that ``overtakes`` the key comes meanwhile. Neither is kept in
    # the outbox: after a restart a held message is sent at once.
    held_as: str | None = field(default=None, compare=False)
    overtakes: str | None = field(default=None, compare=False)


class Outcome(enum.StrEnum):
    """What handling one incoming message came to, as the log and the adapters see it."""

    APPLIED = "applied"
    REFUSED = "refused"
    DUPLICATE = "duplicate"  # a redelivery: handled before
    IGNORED = "ignored"  # ordinary conversation in a group
    EXPIRED = "expired"  # an answer to a question whose time was up
    WHICH = "which"  # an answer that could belong to several questions: asked which
    CANCELLED = "cancelled"  # a secret typed in a group, cancelled
    WRONG_CODE = "wrong_code"
    FAILED = "failed"
    BUSY = "busy"
    UNSURE = "unsure"  # the connection broke at the commit itself


@dataclass(frozen=True, slots=True)
class Result:
    """What handling one incoming message did."""

    outcome: Outcome
    replies: list[Outgoing] = field(default_factory=list)
    command: str | None = None
    answered: int | None = None  # the question this message answered (yes, no, or too late)
    # Every question this message closed, answered or replaced by a new one:
    # adapters retire their buttons and forget them.
    closed: tuple[int, ...] = ()
