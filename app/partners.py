"""Trade between groups, outside the core: this group's signing key and the
``letsbot partner`` commands (letsbot.partners; the endpoint: app.partner_http)."""

from __future__ import annotations

import argparse
import base64
import binascii
import logging
import os
import re
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from app.compose import CliError, config_path, ready_engine, settings_from, sqlite_file
from letsbot.config import Settings
from letsbot.doctor import Check
from letsbot.domain import (
    OPEN_REQUEST_STATES,
    Partner,
    PartnerPayment,
    PartnerState,
    Role,
    Status,
)
from letsbot.partner_check import ours_shown
from letsbot.partner_manual import LATE
from letsbot.signing import SigningKey, valid_public_key
from letsbot.text import find_control
from storage.uow import SqlUnitOfWork

log = logging.getLogger(__name__)

MOST = 10**12  # units an hour, a cap: far beyond any group, within what a database stores


def key_path(settings: Settings, config: Path, engine: Engine) -> Path:
    """Where the private key lives: ``partners.key_file``, else beside the SQLite file."""
    configured = settings.partners.key_file
    if configured is not None:
        return configured if configured.is_absolute() else (config.parent / configured).resolve()
    database = sqlite_file(engine)
    if database is None:
        raise CliError(
            "partners.key_file: empty; with a database server set it to a private file,"
            " e.g. /var/lib/letsbot/partner.key, or set LETSBOT_PARTNERS__KEY"
        )
    return database.parent / f"{database.stem}-partner.key"


def own_key(settings: Settings, config: Path, engine: Engine) -> str | None:
    """This group's public key if it has one already (none is made here)."""
    try:
        if not settings.partners.private_key() and not key_path(settings, config, engine).exists():
            return None
        return signing_key(settings, config, engine).public
    except CliError:  # no place for a key yet, or an unreadable one: 'doctor' says so
        return None


def signing_key(settings: Settings, config: Path, engine: Engine) -> SigningKey:
    """This group's key: from ``partners.key`` (the environment), else from its file,
    which is made on first use, readable by the bot's user only."""
    text = settings.partners.private_key()
    where = "partners.key (LETSBOT_PARTNERS__KEY)"
    if not text:
        path = key_path(settings, config, engine)
        where = str(path)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            key = SigningKey.generate()
            try:
                handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process made it just now: use that one
                pass
            else:
                with os.fdopen(handle, "w", encoding="ascii") as file:
                    file.write(base64.b64encode(key.seed).decode("ascii") + "\n")
                log.info("made this group's partner key in %s", path)
        try:
            text = path.read_text(encoding="ascii").strip()
        except OSError as error:
            raise CliError(f"{path}: can't read the partner key: {error.strerror}") from None
    try:
        return SigningKey(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        raise CliError(f"{where}: not a partner key (32 bytes in base64)") from None


# the commands


def cmd_partner(args: argparse.Namespace) -> int:
    settings, path = settings_from(args)
    engine = ready_engine(settings, path.parent)
    if args.partner_command == "key":
        print(signing_key(settings, config_path(args), engine).public)
        return 0
    if args.partner_command == "check":
        from app.partner_check import cmd_partner_check

        return cmd_partner_check(settings, config_path(args), engine, args.prefix)
    if args.partner_command == "rebook":
        from app.partner_check import rebook

        return rebook(settings, config_path(args), engine, args.payment_id)
    uow = SqlUnitOfWork(engine)
    now = datetime.now(UTC)
    if args.partner_command == "list":
        with uow.transaction() as store:
            found = [(p, store.members.member(p.account_id)) for p in store.partners.partners()]
        if not found:
            print("no partner groups yet; add one with 'letsbot partner add'")
        for partner, account in found:
            print(_line(settings, partner, account.balance if account else 0))
        return 0
    prefix = args.prefix.upper()
    if prefix == settings.group.code_prefix.upper():
        raise CliError(f"{prefix} is this group's own prefix (group.code_prefix)")
    if args.partner_command == "add":
        return _add(settings, uow, args, prefix, now, own_key(settings, config_path(args), engine))
    with uow.transaction() as store:
        named = store.partners.partner_by_prefix(prefix)
        if named is None or named.removed:
            raise CliError(f"no partner group with prefix {prefix} (see 'letsbot partner list')")
        partner = named
        if args.partner_command in ("pause", "resume"):
            partner = store.partners.update_partner(
                partner.id, paused=args.partner_command == "pause"
            )
        else:  # remove: only a partnership that is settled
            # The account's lock first: a payment booked at this moment takes it too.
            account = store.members.lock_members([partner.account_id])[partner.account_id]
            states = [PartnerState.SENDING, PartnerState.WAITING]
            mine = [
                p for p in store.partners.outgoing_payments(states) if p.partner_id == partner.id
            ]
            if any(p.state is PartnerState.WAITING for p in mine):
                raise CliError(
                    f"{partner.name}: payments wait for a coordinator;"
                    " settle them first ('/extern' in a chat with the bot lists them)"
                )
            if mine:
                raise CliError(f"{partner.name}: payments are still on their way; try later")
            if account.balance != 0:
                raise CliError(
                    f"{partner.name}: the trade balance is {ours_shown(account.balance, settings)},"
                    " not 0;"
                    " settle it first (pause the partnership meanwhile)"
                )
            store.members.update_member(partner.account_id, status=Status.INACTIVE)
            partner = store.partners.update_partner(partner.id, removed=now)
    print(f"{args.partner_command}: {partner.name} ({partner.prefix})")
    return 0


def _add(
    settings: Settings,
    uow: SqlUnitOfWork,
    args: argparse.Namespace,
    prefix: str,
    now: datetime,
    own: str | None,
) -> int:
    """A new partnership, or new terms for an existing one (same prefix)."""
    if not re.fullmatch(r"[A-Za-z]{1,8}", prefix):
        raise CliError(f"PREFIX {prefix!r}: expected 1 to 8 letters, as in their member codes")
    if not 0 < len(args.name.strip()) <= 100:
        raise CliError("--name: expected the group's name, at most 100 characters")
    if not 0 < len(args.unit.strip()) <= 30:
        raise CliError("--unit: expected its currency's name, at most 30 characters")
    for option, value in (("--name", args.name), ("--unit", args.unit)):
        # Shown to members in every question and receipt: nothing they can't see.
        if any(c in value for c in "\n\r\t"):
            raise CliError(f"{option}: expected one line, without tabs")
        found = find_control(value)
        if found is not None:
            raise CliError(
                f"{option}: character {found.position} is {found.code}, which members"
                " can't see; type it without"
            )
    if not (0 < args.units_per_hour <= MOST and 0 < args.cap <= MOST):
        raise CliError(f"--units-per-hour and --cap: expected whole numbers from 1 to {MOST}")
    if args.manual:
        _check_manual(args)
    else:
        _check_bot(args)
        if own is not None and args.key.strip() == own:
            raise CliError("--key: that is this group's own key; ask the partner for theirs")
    cap = settings.minor(args.cap)
    fields = {
        "name": args.name.strip(),
        "prefix": prefix,
        # A manual partner (letsbot.partner_manual) is one without an address or key.
        "url": "" if args.manual else args.url,
        "public_key": "" if args.manual else args.key.strip(),
        "units_per_hour": args.units_per_hour,
        "decimals": args.decimals,
        "unit": args.unit,
        "cap": cap,
        "paused": False,
    }
    with uow.transaction() as store:
        partner = store.partners.partner_by_prefix(prefix)
        same_key = [
            p.prefix
            for p in store.partners.partners()
            if p.prefix != prefix and not p.removed and p.public_key == fields["public_key"]
        ]
        if fields["public_key"] and same_key:
            raise CliError(f"--key: partner group {same_key[0]} has that key; one key per group")
        if partner is None:
            account = store.members.add_member(
                name=args.name, language=None, status=Status.EXTERNAL, role=Role.MEMBER, at=now
            )
            partner = store.partners.add_partner(account_id=account.id, at=now, **fields)
            said = "added"
        else:
            # The account's lock first: a payment booked at this moment reads the terms
            # under it, so it goes by the old terms or the new ones, never half.
            store.members.lock_members([partner.account_id])
            sending = store.partners.outgoing_payments([PartnerState.SENDING])
            if args.manual and any(p.partner_id == partner.id for p in sending):
                raise CliError(f"{partner.name}: payments are still on their way; try later")
            store.members.update_member(partner.account_id, status=Status.EXTERNAL)
            partner = store.partners.update_partner(partner.id, removed=None, **fields)
            said = "changed"
        # The cap is the account's limit both ways: /saldo shows it, as any limit.
        account = store.members.update_member(partner.account_id, limits=(-cap, cap))
    print(f"{said}: {_line(settings, partner, account.balance)}")
    return 0


def _check_bot(args: argparse.Namespace) -> None:
    if args.url is None or args.key is None:
        raise CliError("--url and --key: expected both (a group without a bot: --manual)")
    if not valid_public_key(args.key):
        raise CliError("--key: not a public key as 'letsbot partner key' prints it")
    if not args.url.startswith(("http://", "https://")):
        raise CliError("--url: expected the address of its bot, e.g. https://gent.example.org")
    parts = urllib.parse.urlsplit(args.url)
    if parts.username or parts.password or parts.query or parts.fragment:
        raise CliError(
            "--url: expected only scheme, host, port and path (no user, password or ?query):"
            " the partner endpoint needs none, and 'partner list' shows the address"
        )


def _check_manual(args: argparse.Namespace) -> None:
    if args.url is not None or args.key is not None:
        raise CliError("--manual: a group without a bot has no --url or --key")
    if args.decimals != 0:
        raise CliError("--decimals: eLAND books whole numbers; leave it out with --manual")


def _line(settings: Settings, partner: Partner, balance: int) -> str:
    state = "removed" if partner.removed else "paused" if partner.paused else "active"
    where = "manual (eLAND)" if partner.manual else partner.url
    return (
        f"{partner.prefix}  {partner.name}  {where}  {partner.units_per_hour}"
        f" {partner.unit}/hour  cap {ours_shown(partner.cap, settings)}"
        f"  balance {ours_shown(balance, settings)}  {state}"
    )


def partner_checks(settings: Settings, config: Path, engine: Engine) -> list[Check]:
    """``letsbot doctor``'s lines on trade between groups, when the group has any:
    the key (there, and readable by the bot's user only) and each partnership."""
    try:
        with SqlUnitOfWork(engine).transaction() as store:
            found = store.partners.partners()
            sending = store.partners.outgoing_payments([PartnerState.SENDING])
            waiting = store.partners.outgoing_payments([PartnerState.WAITING])
            asking = store.partners.requests("out", OPEN_REQUEST_STATES)
    except Exception:  # the database line already says what is wrong with it
        return []
    current = [p for p in found if not p.removed]
    checks = []
    with_bots = any(not p.manual for p in current)
    if settings.partners.listen or with_bots:
        checks.append(_key_check(settings, config, engine))
    now = datetime.now(UTC)
    for partner in current:
        name = f"partner {partner.prefix}"
        if partner.manual:
            mine = [p for p in waiting if p.partner_id == partner.id]
            checks.append(_manual_check(name, partner, mine, now))
            continue
        mine = [p for p in sending if p.partner_id == partner.id]
        late = [p for p in mine if p.expires_at < now - settings.partners.window]
        if late:
            checks.append(
                Check.failed(
                    name,
                    f"{len(late)} payment(s) to {partner.name} past their expiry, not booked back",
                    "keep 'letsbot run' running: it books them back within a minute",
                )
            )
            continue
        stuck = [
            r
            for r in asking
            if r.partner_id == partner.id and r.expires_at < now - settings.partners.window
        ]
        if stuck:
            checks.append(
                Check.failed(
                    name,
                    f"{len(stuck)} payment request(s) to {partner.name} past their expiry,"
                    " their requesters not told",
                    "keep 'letsbot run' running: it tells them within a few minutes",
                )
            )
            continue
        state = "paused" if partner.paused else "active"
        checks.append(
            Check.passed(name, f"{partner.name} ({state}), {len(mine)} payment(s) on their way")
        )
    if with_bots and checks[0].ok:  # with the key there: the books compared with each bot's
        from app.partner_check import trade_checks  # it uses this module's key

        checks += trade_checks(settings, config, engine)
    return checks


def _manual_check(
    name: str, partner: Partner, waiting: list[PartnerPayment], now: datetime
) -> Check:
    """A manual partnership: how many payments wait for a coordinator; a warning for
    those waiting longer than partner_manual.LATE (no one gives them up)."""
    state = "paused" if partner.paused else "active"
    late = [p for p in waiting if p.created_at < now - LATE]
    if late:
        oldest = late[0]
        return Check.warned(
            name,
            f"{len(late)} payment(s) to {partner.name} wait for a coordinator for more than"
            f" {LATE.days} days (the oldest: #{oldest.transfer_id}, since"
            f" {oldest.created_at:%Y-%m-%d})",
            f"have it booked in their eLAND, then '/extern {oldest.transfer_id} klaar';"
            f" or '/extern {oldest.transfer_id} terug <reden>'",
        )
    return Check.passed(
        name,
        f"{partner.name} (manual, {state}), {len(waiting)} payment(s) waiting for a coordinator",
    )


def _key_check(settings: Settings, config: Path, engine: Engine) -> Check:
    if settings.partners.private_key():
        return Check.passed("partner key", "from partners.key (the environment)")
    try:
        path = key_path(settings, config, engine)
    except CliError as error:
        return Check.failed("partner key", str(error), "set partners.key_file")
    if not path.exists():
        return Check.failed(
            "partner key", f"{path} doesn't exist yet", "run 'letsbot partner key' once"
        )
    if path.stat().st_mode & 0o077:
        return Check.failed(
            "partner key", f"{path} may be read by others", f"run 'chmod 600 {path}'"
        )
    return Check.passed("partner key", f"{path}, readable by the bot's user only")
