"""Trade between groups inside ``letsbot run``: the partner endpoint (four paths:
payments, letsbot.partners.PATH; payment requests, letsbot.partner_requests.REQUEST_PATH;
summaries for 'letsbot partner check', letsbot.partner_check.SUMMARY_PATH; and who a
member code is, letsbot.partner_lookup.MEMBER_PATH), the sender of payments and
requests to partner groups, and the lookup the bot asks before a payment across."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import urllib.error
import urllib.request
from collections.abc import Callable

from aiohttp import web

from letsbot.domain import LookedUp, Partner
from letsbot.errors import Busy
from letsbot.hub import Hub, TransportError
from letsbot.messages import Outgoing
from letsbot.partner_check import SUMMARY_PATH, answer_summary
from letsbot.partner_lookup import MEMBER_PATH, Lookups
from letsbot.partner_requests import REQUEST_PATH, receive_request, send_due_requests
from letsbot.partners import PATH, PartnerDesk, when_payment_waits

log = logging.getLogger(__name__)

SEND_EVERY = 2.0  # seconds between two looks for payments to retry (new ones wake it)
TIMEOUT = 30.0  # seconds a partner's bot may take to answer one payment
MAX_BODY = 64 * 1024  # a payment message is far smaller
# Seconds a partner's bot may take to say who a member code is, while the payer waits
# for the question; slower, and the question shows the code only.
LOOKUP_TIMEOUT = 2.0


def http_send(url: str, body: bytes, timeout: float = TIMEOUT) -> tuple[int, bytes]:
    """POST ``body`` to a partner's bot: (HTTP status, body); raises when there is no answer."""
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read(MAX_BODY)
    except urllib.error.HTTPError as error:
        return int(error.code), error.read(MAX_BODY)


class PartnerService:
    """The partner endpoint (payments, requests, summaries and lookups only), the
    sender, and the lookup."""

    def __init__(self, desk: PartnerDesk, hub: Hub | None, listen: str) -> None:
        self.desk = desk
        self.hub = hub
        self.listen = listen
        self.runner: web.AppRunner | None = None
        self.sender: asyncio.Task[None] | None = None
        self.port = 0
        self.waits = asyncio.Event()  # a payment was booked: send now
        self.rounds = 0  # rounds of the sender done
        self.unlisten: Callable[[], None] | None = None
        self.lookups = Lookups(desk)

    async def start(self, *, send_every: float = SEND_EVERY) -> None:
        if self.listen:
            app = web.Application(client_max_size=MAX_BODY)
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

            def wake() -> None:  # from the thread that booked the payment
                loop.call_soon_threadsafe(self.waits.set)

            self.unlisten = when_payment_waits(wake)
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
        self._post(reply.posts)
        return web.Response(status=reply.status, body=reply.body, content_type="application/json")

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

    async def send_round(self) -> None:
        self._post(await asyncio.to_thread(self.desk.send_due, http_send))
        self._post(await asyncio.to_thread(send_due_requests, self.desk, http_send))

    async def _send_loop(self, every: float) -> None:
        while True:
            try:
                await self.send_round()
            except Exception:
                log.exception("sending partner payments failed; trying again")
            self.rounds += 1
            # The next look: at once when a payment was booked meanwhile, else after a while.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.waits.wait(), every)
            self.waits.clear()

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
        if self.runner is not None:
            await self.runner.cleanup()
