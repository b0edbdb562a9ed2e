"""One core, many chat platforms: the hub between the Bot and the transports.

A transport (the Telegram adapter, later Matrix) turns its platform's updates
into ``Incoming`` and hands them to :meth:`Hub.submit`; the hub runs the core
off the event loop and routes every reply to the transport of its target's
platform. Replies to one conversation are sent in order, one at a time; a
slow conversation (a rate-limited group) does not hold up the others. The
scheduler posts through :meth:`Hub.post` the same way.

Messages that come from the outbox (letsbot.outbox: written in the
transaction of their effect) are marked sent once every transport they went
to has sent them. Every few seconds the hub renews its leases on the ones
still queued and sends what is left unsent in the outbox: after a crash, the
replies of the commits before it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from letsbot.errors import Busy
from letsbot.messages import Incoming, Outgoing, Result, Target, ToAllGroups, ToChat
from letsbot.outbox import HOLD

log = logging.getLogger(__name__)


class TransportError(Exception):
    """A transport can't start (e.g. its token is refused): one line for the operator."""


class Handler(Protocol):
    """The core (letsbot.dispatcher.Bot): synchronous, one transaction per message."""

    def handle(self, incoming: Incoming) -> Result: ...

    def scheduled_work(self) -> list[Outgoing]:
        """Reminders and notices that fall due now, already claimed."""
        ...

    def unsent(self, platforms: Sequence[str]) -> list[Outgoing]:
        """Outbox messages left unsent, now claimed by this process."""
        ...

    def keep(self, ids: Sequence[int]) -> None:
        """Renew this process's claim on outbox messages it has yet to send."""
        ...

    def delivered(self, ids: Sequence[int]) -> None:
        """Mark outbox messages sent."""
        ...


class Transport(Protocol):
    """A chat platform, as the hub sees it."""

    @property
    def platform(self) -> str:
        """The platform of the identities and chats it serves, e.g. ``telegram``."""
        ...

    async def start(self, hub: Hub) -> str:
        """Connect and start receiving; return, once ready, a short description for the log."""
        ...

    def lane(self, target: Target) -> str:
        """The conversation a target lands in: messages to one lane are sent in order."""
        ...

    async def send(self, outgoing: Outgoing, origin: Incoming | None) -> None:
        """Deliver one reply; ``origin`` is the message it answers, if any."""
        ...

    async def stop(self) -> None:
        """Stop receiving, after finishing the messages already received."""
        ...

    async def close(self) -> None:
        """Release the connection; called once every reply has been sent."""
        ...


@dataclass(frozen=True, slots=True)
class Profile:
    """What the platform store knows of a person from the core's tables."""

    display_name: str
    language: str | None


class PlatformStore(Protocol):
    """Small facts a transport keeps across restarts, for one platform.

    Each call is its own short transaction; call it off the event loop. A
    database that can't be reached raises letsbot.errors.Busy, as in the core.
    """

    def state(self, key: str) -> str | None: ...
    def states(self, prefix: str) -> dict[str, str]:
        """Every key starting with ``prefix`` (the prefix stripped) and its value."""
        ...

    def set_state(self, key: str, value: str | None) -> None:
        """Store ``value`` under ``key``; None removes the key."""
        ...

    def remember_handle(self, handle: str, user_id: str) -> None:
        """A public name (lower case, without '@') now belongs to ``user_id``."""
        ...

    def user_for_handle(self, handle: str) -> str | None: ...
    def hold(self, user_id: str, body: str) -> int:
        """Keep a direct message the platform refused; its id."""
        ...

    def held(self, user_id: str) -> list[tuple[int, str]]:
        """Undelivered held messages for a person, oldest first: (id, body)."""
        ...

    def holding(self) -> set[str]:
        """The people with undelivered held messages."""
        ...

    def delivered(self, held_id: int) -> None: ...
    def profile(self, user_id: str) -> Profile | None:
        """The person's display name and chosen language, if they are known to the core."""
        ...

    def take_lease(self, name: str) -> bool:
        """Hold ``name`` as the only process on this database, until ``drop_lease`` or
        this process ends (a crash frees it); False when another process holds it."""
        ...

    def drop_lease(self, name: str) -> None: ...


Job = Callable[[], Awaitable[None]]

OUTBOX_EVERY = 5.0  # seconds between two looks at the outbox (well within its lease)


class Hub:
    """The Bot behind every transport. Use it from the event loop's thread."""

    def __init__(self, bot: Handler, outbox_every: float = OUTBOX_EVERY) -> None:
        self.bot = bot
        self.outbox_every = outbox_every
        self.transports: dict[str, Transport] = {}
        self._lanes: dict[tuple[str, str], deque[Job]] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self._started: list[Transport] = []
        self._waiting: dict[int, int] = {}  # outbox id -> transports yet to send it
        self._failed: set[int] = set()  # outbox ids a transport failed to send
        self._sent: list[int] = []  # outbox ids sent, to mark in the database
        self._marking: set[int] = set()  # sent, not yet marked: never taken up again
        self._marker: asyncio.Task[None] | None = None
        # Messages held back (Outgoing.held_as), by key, with the message they answer.
        self._held: dict[str, tuple[Outgoing, Incoming | None]] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def add(self, transport: Transport) -> None:
        if transport.platform in self.transports:
            raise ValueError(f"two transports for {transport.platform}")
        self.transports[transport.platform] = transport

    async def start(self) -> None:
        """Start every transport; each logs one line when it is ready."""
        await asyncio.gather(*(self._start(t) for t in self.transports.values()))
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="outbox")

    async def _start(self, transport: Transport) -> None:
        description = await transport.start(self)
        self._started.append(transport)
        log.info("%s ready: %s", transport.platform, description)

    async def submit(self, incoming: Incoming) -> Result:
        """Handle one message in the core (off the event loop) and queue its replies."""
        result = await asyncio.to_thread(self.bot.handle, incoming)
        for outgoing in result.replies:
            self.post(outgoing, incoming)
        return result

    def post(self, outgoing: Outgoing, origin: Incoming | None = None) -> None:
        """Queue one message for the transport(s) of its target."""
        if outgoing.overtakes is not None:
            self._drop_held(outgoing.overtakes)
        if outgoing.held_as is not None and outgoing.outbox_id is not None:
            self._held[outgoing.held_as] = (outgoing, origin)
            asyncio.get_running_loop().call_later(
                HOLD.total_seconds(), self._release, outgoing.held_as
            )
            return
        target = outgoing.target
        if isinstance(target, ToAllGroups):
            chosen = list(self.transports.values())
        else:
            if isinstance(target, ToChat):
                platform = target.chat.platform
            else:
                platform = target.identity.platform
            found = self.transports.get(platform)
            if found is None:  # an outbox message stays there, for a process that serves it
                log.warning("no transport for %s: a reply was not sent", platform)
                return
            chosen = [found]
        if outgoing.outbox_id is not None:
            self._waiting[outgoing.outbox_id] = len(chosen)
        for transport in chosen:
            self._queue(transport, outgoing, origin)

    def _queue(self, transport: Transport, outgoing: Outgoing, origin: Incoming | None) -> None:
        key = (transport.platform, transport.lane(outgoing.target))

        async def job() -> None:
            sent = False
            try:
                await transport.send(outgoing, origin)
                sent = True
            finally:  # also when cancelled: then it is not sent
                if outgoing.outbox_id is not None:
                    self._settle(outgoing.outbox_id, sent)

        lane = self._lanes.get(key)
        if lane is not None:
            lane.append(job)
            return
        self._lanes[key] = deque([job])
        worker = asyncio.create_task(self._work(key), name=f"lane {key[0]}:{key[1]}")
        self._workers.add(worker)
        worker.add_done_callback(self._workers.discard)

    async def _work(self, key: tuple[str, str]) -> None:
        lane = self._lanes[key]
        while lane:
            job = lane[0]
            try:
                await job()
            except Exception:
                log.exception("sending to %s:%s failed", *key)
            lane.popleft()
        del self._lanes[key]  # no await since the last check: nothing was added meanwhile

    def _release(self, key: str) -> None:
        """A held message not overtaken meanwhile: sent now."""
        found = self._held.pop(key, None)
        if found is not None:
            outgoing, origin = found
            self.post(replace(outgoing, held_as=None), origin)

    def _drop_held(self, key: str) -> None:
        """A held message overtaken: never sent, and marked so in the outbox."""
        found = self._held.pop(key, None)
        if found is not None and found[0].outbox_id is not None:
            self._mark_sent(found[0].outbox_id)

    # the outbox ---------------------------------------------------------------------
    def _settle(self, outbox_id: int, sent: bool) -> None:
        """One transport is done with an outbox message; mark it sent when all are."""
        if not sent:
            self._failed.add(outbox_id)
        left = self._waiting.get(outbox_id, 1) - 1
        if left > 0:
            self._waiting[outbox_id] = left
            return
        self._waiting.pop(outbox_id, None)
        if outbox_id in self._failed:
            # Left unsent: once its lease runs out, a sweep tries again (a few times).
            self._failed.discard(outbox_id)
            return
        self._mark_sent(outbox_id)

    def _mark_sent(self, outbox_id: int) -> None:
        self._sent.append(outbox_id)
        self._marking.add(outbox_id)
        if self._marker is None or self._marker.done():
            self._marker = asyncio.create_task(self._mark(), name="outbox marks")

    async def _mark(self) -> None:
        """Mark what was sent, in batches: one short transaction for many messages."""
        while self._sent:
            ids, self._sent = self._sent, []
            try:
                await asyncio.to_thread(self.bot.delivered, ids)
            except Exception as error:
                self._sent[:0] = ids  # the next sweep tries again
                if isinstance(error, Busy):
                    log.warning("database busy; %d sent message(s) marked later", len(ids))
                else:
                    log.exception("marking %d sent message(s) failed", len(ids))
                return
            self._marking.difference_update(ids)

    async def sweep(self) -> None:
        """Keep what this process still has to send; send what is left unsent in the outbox."""
        holding = sorted(set(self._waiting) | self._marking)
        if holding:
            await asyncio.to_thread(self.bot.keep, holding)
        if self._sent and (self._marker is None or self._marker.done()):
            self._marker = asyncio.create_task(self._mark(), name="outbox marks")
        unsent = await asyncio.to_thread(self.bot.unsent, sorted(self.transports))
        held = {message.outbox_id for message, _ in self._held.values()}
        for outgoing in unsent:
            outbox_id = outgoing.outbox_id
            if outbox_id in self._waiting or outbox_id in self._marking or outbox_id in held:
                continue  # already on its way here, or held back here
            self.post(outgoing)

    async def _sweep_forever(self) -> None:
        busy = False  # one line when the database goes away, one when it is back
        while True:
            try:
                await self.sweep()
                if busy:
                    log.warning("the database answers again; the outbox carries on")
                busy = False
            except Busy:
                if not busy:
                    log.warning("database busy or unreachable; the outbox waits until it is back")
                busy = True
            except Exception:
                log.exception("the outbox round failed")
            await asyncio.sleep(self.outbox_every)

    async def drain(self, timeout: float) -> int:
        """Wait until every queued message is sent; the number still unsent at the timeout."""
        for key in list(self._held):  # nothing will overtake them now
            self._release(key)
        if self._workers:
            await asyncio.wait(set(self._workers), timeout=timeout)
        unsent = sum(len(lane) for lane in self._lanes.values())
        for worker in list(self._workers):
            worker.cancel()
        if self._workers:
            await asyncio.wait(set(self._workers))
        self._lanes.clear()
        return unsent

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop receiving everywhere, send what is queued (up to ``timeout``), disconnect."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None
        for transport in self._started:
            try:
                await transport.stop()
            except Exception:
                log.exception("%s: stopping failed", transport.platform)
        unsent = await self.drain(timeout)
        if unsent:
            log.warning("stopped with %d message(s) unsent; the outbox keeps them", unsent)
        if self._marker is not None:
            await asyncio.gather(self._marker, return_exceptions=True)
        await self._mark()
        for transport in self.transports.values():
            try:
                await transport.close()
            except Exception:
                log.exception("%s: closing failed", transport.platform)
        self._started.clear()
