"""Trade between groups inside ``letsbot run``: the partner endpoint (four paths:
payments, letsbot.partners.PATH; payment requests, letsbot.partner_requests.REQUEST_PATH;
summaries for 'letsbot partner check', letsbot.partner_check.SUMMARY_PATH; and who a
member code is, letsbot.partner_lookup.MEMBER_PATH), the sender of payments and
requests to partner groups, and the lookup the bot asks before a payment across."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.client
import logging
import ssl
import threading
import urllib.parse
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from aiohttp import web

from letsbot.domain import LookedUp, Partner
from letsbot.errors import Busy
from letsbot.hub import TransportError
from letsbot.messages import Outgoing
from letsbot.partner_check import SUMMARY_PATH, answer_summary
from letsbot.partner_lookup import MEMBER_PATH, Lookups
from letsbot.partner_requests import REQUEST_PATH, receive_request, send_due_requests
from letsbot.partners import PATH, Claimed, PartnerDesk, when_payment_waits

log = logging.getLogger(__name__)

SEND_EVERY = 2.0  # seconds between two looks for payments to retry (new ones wake it)
TIMEOUT = 10.0  # seconds a partner's bot may take to answer one payment (< partners.LEASE)
MAX_BODY = 64 * 1024  # a payment message is far smaller
# Seconds a partner's bot may take to say who a member code is, while the payer waits
# for the question; slower, and the question shows the code only.
LOOKUP_TIMEOUT = 2.0


class _Kept(threading.local):
    """Each sending thread's open connections, by (scheme, host, port)."""

    def __init__(self) -> None:
        self.connections: dict[tuple[str, str, int | None], http.client.HTTPConnection] = {}


_kept = _Kept()


@functools.cache
def _tls() -> ssl.SSLContext:
    """The system's trusted certificates, read once (it takes tens of milliseconds)."""
    return ssl.create_default_context()


def http_send(url: str, body: bytes, timeout: float = TIMEOUT) -> tuple[int, bytes]:
    """POST ``body`` to a partner's bot: (HTTP status, body); raises when there is no answer.

    The connection is kept open for the next payment (no new TCP and TLS set-up
    each time). A kept one the partner has closed meanwhile is opened afresh and
    the payment sent again: a repeat gets the same answer, so that is safe.
    """
    parts = urllib.parse.urlsplit(url)
    where = (parts.scheme, parts.hostname or "", parts.port)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    while True:
        connection = _kept.connections.pop(where, None)
        kept = connection is not None
        if connection is not None and connection.sock is not None:
            connection.sock.settimeout(timeout)
        if connection is None:
            if parts.scheme == "https":
                connection = http.client.HTTPSConnection(
                    where[1], where[2], timeout=timeout, context=_tls()
                )
            else:
                connection = http.client.HTTPConnection(where[1], where[2], timeout=timeout)
        try:
            connection.request("POST", path, body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = response.read(MAX_BODY)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            connection.close()
            if kept:
                continue  # closed by the partner while it was kept: once more, on a new one
            raise
        except BaseException:
            connection.close()
            raise
        if response.will_close or not response.isclosed():  # closing, or longer than MAX_BODY
            connection.close()
        else:
            _kept.connections[where] = connection
        return int(response.status), answer


@web.middleware
async def _gone_quietly(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A partner's bot that stops (or is killed) while sending: nothing was read, so
    nothing was done; it sends again. Said at info level, not as a server error."""
    try:
        return await handler(request)
    except ConnectionResetError:
        log.info("a partner's bot went away while sending %s", request.path)
        return web.Response(status=400)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Poster(Protocol):
    """Where what the partner service has to say goes: ``letsbot run``'s hub, or the
    terminal of ``letsbot console``."""

    def post(self, outgoing: Outgoing) -> None: ...


class PartnerService:
    """The partner endpoint (payments, requests, summaries and lookups only), the
    sender, and the lookup."""

    def __init__(self, desk: PartnerDesk, hub: Poster | None, listen: str) -> None:
        self.desk = desk
        self.hub = hub
        self.listen = listen
        self.runner: web.AppRunner | None = None
        self.sender: asyncio.Task[None] | None = None
        # Everything sent to partners goes out on this one thread, in turn: a payment
        # booked just now straight from the thread that booked it, and each look for
        # what is due. Its own thread: the endpoint's threads stay free to answer a
        # partner that sends at the same time, and its kept connections are reused.
        self.sending = ThreadPoolExecutor(max_workers=1, thread_name_prefix="partner-send")
        self.port = 0
        self.waits = asyncio.Event()  # something else waits to be sent (a request)
        self.look_now = False  # ... so look at once
        self.rounds = 0  # looks for due payments done
        self.unlisten: Callable[[], None] | None = None
        self.lookups = Lookups(desk)

    async def start(self, *, send_every: float = SEND_EVERY) -> None:
        if self.listen:
            app = web.Application(client_max_size=MAX_BODY, middlewares=[_gone_quietly])
            app.router.add_post(PATH, self._payment)
            app.router.add_post(SUMMARY_PATH, self._summary)
            app.router.add_post(REQUEST_PATH, self._request)
            app.router.add_post(MEMBER_PATH, self._member)
            self.runner = web.AppRunner(app, access_log=None)
            await self.runner.setup()
            host, _, port = self.listen.rpartition(":")
            site = web.TCPSite(self.runner, host, int(port))
            try:
                await site.start()
            except OSError as error:  # the address is taken, or not this machine's
                await self.runner.cleanup()
                raise TransportError(
                    f"partners.listen {self.listen}: can't listen there ({error.strerror})"
                ) from None
            self.port = int(self.runner.addresses[0][1])  # the one chosen, for port 0
            log.info("partner endpoint on %s:%s%s", host, self.port, PATH)
        if send_every > 0:
            loop = asyncio.get_running_loop()

            def wake(claimed: Claimed | None) -> None:  # from the thread that booked it
                # Stopping meanwhile (RuntimeError): sent once its lease is over.
                with contextlib.suppress(RuntimeError):
                    if claimed is None:
                        loop.call_soon_threadsafe(self._look_now)
                        return
                    sending = self.sending.submit(self.desk.send_claimed, [claimed], http_send)
                    sending.add_done_callback(functools.partial(self._sent_claimed, loop))

            self.unlisten = when_payment_waits(self.desk.prefix, wake)
            self.sender = loop.create_task(self._send_loop(send_every))

    async def _payment(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            reply = await asyncio.to_thread(self.desk.receive, body)
        except Busy:  # the partner's bot tries again later
            log.warning("database busy: a partner's payment waits for its next try")
            return web.Response(
                status=503, text='{"error": "busy"}', content_type="application/json"
            )
        # The answer first: the payer's bot waits for it; the receipt here can wait a moment.
        response = web.Response(
            status=reply.status, body=reply.body, content_type="application/json"
        )
        await response.prepare(request)
        await response.write_eof()
        self._post(reply.posts)
        return response

    async def _request(self, request: web.Request) -> web.Response:
        """A partner's payment request: its member's question to a member here."""
        body = await request.read()
        try:
            reply = await asyncio.to_thread(receive_request, self.desk, body)
        except Busy:  # the partner's bot tries again later
            return web.Response(
                status=503, text='{"error": "busy"}', content_type="application/json"
            )
        self._post(reply.posts)
        return web.Response(status=reply.status, body=reply.body, content_type="application/json")

    async def _summary(self, request: web.Request) -> web.Response:
        """A partner's 'letsbot partner check': read only, so no queue to wait in."""
        body = await request.read()
        try:
            reply = await asyncio.to_thread(answer_summary, self.desk, body)
        except Busy:
            return web.Response(
                status=503, text='{"error": "busy"}', content_type="application/json"
            )
        return web.Response(status=reply.status, body=reply.body, content_type="application/json")

    async def _member(self, request: web.Request) -> web.Response:
        """A partner's "who is GE-012?", asked while its member waits: read only."""
        body = await request.read()
        try:
            reply = await asyncio.to_thread(self.lookups.receive, body)
        except Busy:
            return web.Response(
                status=503, text='{"error": "busy"}', content_type="application/json"
            )
        return web.Response(status=reply.status, body=reply.body, content_type="application/json")

    def look_up(self, partner: Partner, code: str) -> LookedUp:
        """Who ``code`` is at ``partner``, asked in the thread handling a member's message."""
        return self.lookups.look_up(
            partner, code, lambda url, body: http_send(url, body, LOOKUP_TIMEOUT)
        )

    def _look_now(self) -> None:
        self.look_now = True
        self.waits.set()

    def _sent_claimed(self, loop: asyncio.AbstractEventLoop, done: Future[list[Outgoing]]) -> None:
        """On the sending thread: what the answer means said, on the loop."""
        if done.cancelled():  # stopped first: sent again once its lease is over
            return
        if done.exception() is not None:
            log.error("sending a partner payment failed; trying again", exc_info=done.exception())
            return
        with contextlib.suppress(RuntimeError):  # the loop is gone: the outbox sends them
            loop.call_soon_threadsafe(self._post, done.result())

    async def send_round(self) -> None:
        loop = asyncio.get_running_loop()
        self._post(await loop.run_in_executor(self.sending, self.desk.send_due, http_send))
        self._post(
            await loop.run_in_executor(self.sending, send_due_requests, self.desk, http_send)
        )

    async def _send_loop(self, every: float) -> None:
        """A look for what is due (retries, requests) every ``every`` s, and at once
        when a request was made (a payment booked here is sent as it is booked)."""
        loop = asyncio.get_running_loop()
        next_look = loop.time()
        while True:
            self.waits.clear()
            try:
                if self.look_now or loop.time() >= next_look:
                    self.look_now = False
                    await self.send_round()
                    self.rounds += 1
                    next_look = loop.time() + every
            except Exception:  # what was claimed is sent again when its lease is over
                log.exception("sending partner payments failed; trying again")
            if not self.look_now:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.waits.wait(), max(next_look - loop.time(), 0))

    def _post(self, posts: list[Outgoing]) -> None:
        if self.hub is None:  # tests: the outbox keeps them
            return
        for outgoing in posts:
            self.hub.post(outgoing)

    async def stop(self) -> None:
        if self.unlisten is not None:
            self.unlisten()
            self.unlisten = None
        if self.sender is not None:
            self.sender.cancel()
            await asyncio.gather(self.sender, return_exceptions=True)
        # A send under way ends within TIMEOUT; what was not sent is sent after a restart.
        self.sending.shutdown(wait=False, cancel_futures=True)
        if self.runner is not None:
            await self.runner.cleanup()
