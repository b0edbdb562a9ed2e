"""``letsbot partner check`` and its lines in ``letsbot doctor``: this group's books
compared with each partner group's, over their bots (letsbot.partner_check)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import Engine

from app.compose import CliError, build_bot
from app.partner_http import http_send
from app.partners import signing_key
from letsbot.clock import SystemClock
from letsbot.config import Settings
from letsbot.doctor import Check
from letsbot.domain import Partner, PartnerState
from letsbot.partner_check import PartnerCheck, Unanswered
from letsbot.partners import NotRebooked, PartnerDesk
from storage.uow import SqlUnitOfWork

log = logging.getLogger(__name__)

TIMEOUT = 5.0  # seconds a partner's bot may take to answer: the doctor doesn't hang


def trade_checks(
    settings: Settings, config: Path, engine: Engine, prefix: str | None = None
) -> list[Check]:
    """One line per current partnership (or the one with ``prefix``), all asked at once."""
    checker = PartnerCheck(
        settings,
        SqlUnitOfWork(engine),
        SystemClock(),
        signing_key(settings, config, engine),
        lambda url, body: http_send(url, body, timeout=TIMEOUT),
    )
    partners = checker.partners()
    if prefix is not None:
        partners = [p for p in partners if p.prefix == prefix.upper()]
        if not partners:
            raise CliError(f"no partner group with prefix {prefix} (see 'letsbot partner list')")
    if not partners:
        return []

    def check(partner: Partner) -> Check:
        try:
            return checker.check(partner)
        except Exception as error:  # the database, say: a line, not a traceback
            log.exception("partner check of %s broke", partner.prefix)
            return Check.failed(
                f"trade with {partner.prefix}",
                f"the check itself broke ({type(error).__name__})",
                "read the log lines above; try again",
            )

    with ThreadPoolExecutor(max_workers=min(len(partners), 8)) as pool:
        return list(pool.map(check, partners))


def rebook(settings: Settings, config: Path, engine: Engine, payment_id: str) -> int:
    """``letsbot partner rebook ID``: a payment booked back here that the partner's bot
    says stands there, booked again here (after the partner's bot confirms it)."""
    bot = build_bot(settings, engine, SystemClock())
    with bot.uow.transaction() as store:
        payment = store.partners.outgoing_payment(payment_id)
        partner = store.partners.partner(payment.partner_id) if payment else None
    if payment is None or partner is None:
        raise CliError(
            f"no payment {payment_id} to a partner group here"
            " (its id is in 'letsbot partner check' and 'letsbot export partner-payments')"
        )
    if partner.manual:
        raise CliError(
            f"{partner.name} is on eLAND: a payment to it is settled with '/extern' in a chat"
        )
    if payment.state is not PartnerState.REVERSED:
        raise CliError(f"payment {payment_id} is {payment.state.value}, not booked back")
    key = signing_key(settings, config, engine)
    checker = PartnerCheck(
        settings,
        bot.uow,
        bot.clock,
        key,
        lambda url, body: http_send(url, body, timeout=TIMEOUT),
    )
    try:
        there = checker.booked_there(partner, payment_id)
    except Unanswered as no:
        raise CliError(f"{no.detail}; {no.remedy}") from None
    if not there:
        raise CliError(
            f"{partner.name}'s bot says payment {payment_id} is not booked there:"
            " it stays booked back here"
        )
    desk = PartnerDesk(settings, bot.uow, bot.clock, bot.translators, bot.outbox, key)
    try:
        new = desk.rebook(payment_id)
    except NotRebooked as why:
        raise CliError(str(why)) from None
    print(
        f"booked again: payment {payment_id} to {partner.name}, #{new};"
        " the payer is told ('letsbot run' sends it)"
    )
    return 0


def cmd_partner_check(settings: Settings, config: Path, engine: Engine, prefix: str | None) -> int:
    checks = trade_checks(settings, config, engine, prefix)
    if not checks:
        print("no partner groups yet; add one with 'letsbot partner add'")
    for check in checks:
        print(check.line())
    return 0 if all(check.ok for check in checks) else 1
