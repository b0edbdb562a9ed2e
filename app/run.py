"""``letsbot run``: serve every enabled chat platform until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Mapping
from datetime import timedelta

from sqlalchemy import Engine

from app.compose import CliError, build_bot, ready_engine, settings_from, sqlite_file
from app.logs import redacted
from app.platforms import PLATFORMS, enabled, load, secret_values
from letsbot.clock import Clock, SystemClock
from letsbot.config import Settings
from letsbot.dispatcher import Bot
from letsbot.hub import Hub, TransportError
from letsbot.partners import PartnerDesk
from letsbot.signing import SigningKey
from letsbot.timer import CHECK_EVERY, Timer
from storage.platform import SqlPlatformStore
from storage.uow import SqlUnitOfWork

log = logging.getLogger("letsbot")


def cmd_run(args: argparse.Namespace) -> int:
    settings, path = settings_from(args)
    engine = ready_engine(settings, path.parent)
    if not enabled(settings):
        sections = " or ".join(f"[{listed.name}]" for listed in PLATFORMS)
        raise CliError(
            f"{path}: no chat platform is enabled; set enabled = true under {sections},"
            " or try the bot with 'letsbot console'"
        )
    key = None
    if settings.partners.listen or has_partners(engine):
        from app.partners import signing_key

        key = signing_key(settings, path, engine)
    try:
        asyncio.run(run_until_signal(settings, engine, key))
    except TransportError as error:
        raise CliError(str(error)) from None
    return 0


def has_partners(engine: Engine) -> bool:
    with SqlUnitOfWork(engine).transaction() as store:
        return bool(store.partners.partners())


async def run_until_signal(
    settings: Settings, engine: Engine, partner_key: SigningKey | None = None
) -> None:
    """Serve until SIGINT or SIGTERM; a second signal ends the process at once."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)

    def on_signal(number: int) -> None:
        log.info("%s: stopping after the messages in hand", signal.Signals(number).name)
        for each in signals:
            loop.remove_signal_handler(each)
        stop.set()

    for number in signals:
        loop.add_signal_handler(number, on_signal, number)
    await serve(settings, engine, SystemClock(), stop, partner_key=partner_key)


def build_hub(
    settings: Settings,
    engine: Engine,
    clock: Clock,
    *,
    tunings: Mapping[str, object] | None = None,
) -> Hub:
    """The bot behind every enabled chat platform (not started yet).

    ``tunings``: a platform's limits and patience by its name (tests shrink them).
    """
    bot = build_bot(settings, engine, clock)
    hub = Hub(bot)
    for listed in enabled(settings):
        platform = load(listed)
        hub.add(
            platform.build(
                platform.configured(settings).beside(sqlite_file(engine)),
                SqlPlatformStore(engine, platform.name, clock),
                bot.translators,
                language=settings.group.language,
                group_name=settings.group.name,
                tuning=(tunings or {}).get(platform.name),
            )
        )
    return hub


async def serve(
    settings: Settings,
    engine: Engine,
    clock: Clock,
    stop: asyncio.Event,
    *,
    tunings: Mapping[str, object] | None = None,
    check_every: timedelta = CHECK_EVERY,
    partner_key: SigningKey | None = None,
) -> None:
    """Every enabled chat platform in one process, until ``stop`` is set; then a clean stop.

    Stopping finishes the messages already received and sends their replies.
    """
    hub = build_hub(settings, engine, clock, tunings=tunings)

    async def post_scheduled() -> None:
        for outgoing in await asyncio.to_thread(hub.bot.scheduled_work):
            hub.post(outgoing)

    timer = Timer(post_scheduled, check_every)
    partners = None
    if partner_key is not None:  # trade with other groups: their endpoint and our sender
        from app.partner_http import PartnerService

        bot = hub.bot
        assert isinstance(bot, Bot)
        desk = PartnerDesk(settings, bot.uow, clock, bot.translators, bot.outbox, partner_key)
        partners = PartnerService(desk, hub, settings.partners.listen)
        bot.partner_lookup = partners.look_up  # "Tine (GE-012)" in the question
    with redacted(secret_values(settings)):
        starting = asyncio.create_task(hub.start())
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if starting.done():
                starting.result()  # a transport that can't start ends the run
                timer.start()  # reminders and notices, from now on and those missed
                if partners is not None:
                    await partners.start()
                await stopping
        finally:
            if partners is not None:
                await partners.stop()
            await timer.stop()
            for task in (starting, stopping):
                task.cancel()
            await asyncio.gather(starting, stopping, return_exceptions=True)
            await hub.stop()
            log.info("stopped")
