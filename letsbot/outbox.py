"""The outbox: what the bot says is written in the transaction of what it tells.

A reply that confirms a booking, an announcement, a reminder: each is stored
in the same transaction as its effect (or its claim, for scheduled posts), and
sent after the commit. A crash between the two loses nothing: whatever was
not yet confirmed sent is sent again after a restart. The platform decides
whether that can double: Matrix drops a repeated transaction id, so a message
arrives once; Telegram has no such id, so a message arrives at least once.

A row is leased to the process that wrote or claimed it (``LEASE``, renewed
while it waits in a queue), so two processes on one database never both send
it; after a crash the lease runs out and any process takes it over.
Pictures (charts) stay outside: they are made after the commit, best effort.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from letsbot.clock import Clock
from letsbot.domain import Identity
from letsbot.messages import Chat, ChatKind, Choice, Outgoing, Target, ToAllGroups, ToChat, ToPerson
from letsbot.ports import Store, UnitOfWork

log = logging.getLogger(__name__)

# How long a process holds a row it has not sent yet; renewed every sweep while
# queued. After a crash the restarted process sends the row once this ran out.
LEASE = timedelta(seconds=20)
# A message not sent within a day is stale (a reminder of a past market); it is
# given up, and so is one that failed to send this often.
MAX_AGE = timedelta(days=1)
MAX_ATTEMPTS = 5
# A sent row keeps no text (it names people), only its id and times, for two
# days: ids are never reused, and the homeserver forgets transaction ids sooner.
KEEP = timedelta(days=2)
BATCH = 100  # rows claimed per sweep
# How long a message held back (``Outgoing.held_as``) waits to be overtaken; its row
# is leased only this long, so after a crash it is sent at once.
HOLD = timedelta(seconds=2)


def platform_of(target: Target) -> str | None:
    """The platform a message goes to; None for every platform's groups."""
    if isinstance(target, ToChat):
        return target.chat.platform
    if isinstance(target, ToPerson):
        return target.identity.platform
    return None


def _identity(value: Identity | None) -> list[str] | None:
    return None if value is None else [value.platform, value.user_id]


def _target(target: Target) -> dict[str, Any]:
    if isinstance(target, ToChat):
        chat = target.chat
        return {"chat": [chat.platform, chat.chat_id, chat.kind.value]}
    if isinstance(target, ToPerson):
        return {"person": _identity(target.identity)}
    return {"groups": True}


def encode(outgoing: Outgoing) -> str:
    """The message as JSON, without its picture."""
    return json.dumps(
        {
            "target": _target(outgoing.target),
            "text": outgoing.text,
            "choices": [[c.label, c.answer] for c in outgoing.choices],
            "asked": _identity(outgoing.asked),
            "reply_to_event": outgoing.reply_to_event,
            "secret": outgoing.secret,
            "question": outgoing.question,
            "language": outgoing.language,
        },
        ensure_ascii=False,
    )


def decode(body: str, outbox_id: int | None = None) -> Outgoing:
    data = json.loads(body)
    where = data["target"]
    target: Target
    if "chat" in where:
        platform, chat_id, kind = where["chat"]
        target = ToChat(Chat(platform, chat_id, ChatKind(kind)))
    elif "person" in where:
        target = ToPerson(Identity(*where["person"]))
    else:
        target = ToAllGroups()
    asked = data.get("asked")
    return Outgoing(
        target,
        data["text"],
        tuple(Choice(label, answer) for label, answer in data.get("choices", [])),
        Identity(*asked) if asked else None,
        data.get("reply_to_event"),
        secret=bool(data.get("secret")),
        question=data.get("question"),
        language=data.get("language"),
        outbox_id=outbox_id,
    )


class Outbox:
    """The outbox of one process (its ``owner`` name holds the leases)."""

    def __init__(self, uow: UnitOfWork, clock: Clock) -> None:
        self.uow = uow
        self.clock = clock
        self.owner = uuid.uuid4().hex

    def queue(self, store: Store, posts: Sequence[Outgoing]) -> list[Outgoing]:
        """Write ``posts`` into the outbox in ``store``'s transaction; each carries its row id."""
        now = self.clock.now()
        stored = [post for post in posts if post.image is None and post.outbox_id is None]
        row_of: dict[int, int] = {}
        for held in (False, True):
            these = [post for post in stored if (post.held_as is not None) is held]
            if not these:
                continue
            ids = store.outbox.add_outgoing(
                messages=[(platform_of(post.target), encode(post)) for post in these],
                owner=self.owner,
                at=now,
                lease_until=now + (HOLD if held else LEASE),
            )
            row_of.update({id(post): row for post, row in zip(these, ids, strict=True)})
        return [
            replace(post, outbox_id=row_of[id(post)]) if id(post) in row_of else post
            for post in posts
        ]

    def unsent(self, platforms: Sequence[str]) -> list[Outgoing]:
        """Claim what is left unsent (a crashed process's, a failed send's), oldest first."""
        now = self.clock.now()
        with self.uow.transaction() as store:
            store.outbox.purge_outgoing(now - KEEP)
            given_up = store.outbox.give_up_outgoing(
                now=now, since=now - MAX_AGE, max_attempts=MAX_ATTEMPTS
            )
            rows = store.outbox.claim_outgoing(
                owner=self.owner,
                platforms=platforms,
                now=now,
                lease_until=now + LEASE,
                since=now - MAX_AGE,
                max_attempts=MAX_ATTEMPTS,
                limit=BATCH,
            )
        if given_up:
            log.warning(
                "outbox: %d message(s) given up unsent (older than %s, or tried %d times)",
                given_up,
                MAX_AGE,
                MAX_ATTEMPTS,
            )
        found: list[Outgoing] = []
        broken: list[int] = []
        for outbox_id, body in rows:
            try:
                found.append(decode(body, outbox_id))
            except (ValueError, KeyError, TypeError):
                log.exception("outbox row %s can't be read; it is dropped", outbox_id)
                broken.append(outbox_id)
        if broken:
            self.sent(broken)
        if found:
            log.info("outbox: sending %d message(s) left unsent", len(found))
        return found

    def keep(self, ids: Sequence[int]) -> None:
        """Renew the leases of messages still waiting to be sent by this process."""
        with self.uow.transaction() as store:
            store.outbox.renew_outgoing(self.owner, ids, self.clock.now() + LEASE)

    def sent(self, ids: Sequence[int]) -> None:
        """These messages reached their platform: never send them again."""
        with self.uow.transaction() as store:
            store.outbox.mark_outgoing_sent(ids, self.clock.now())
