"""Who is GE-012? A partner group's bot is asked before its member is paid or asked.

``/betaal GE-012 30 soep`` asks Gent's bot at ``MEMBER_PATH``, signed as every
partner message is (both prefixes, the time it was sent, a nonce): who is
GE-012? Gent answers, signed, with the same nonce, the member's state (``active``:
they can receive; ``not_active``; ``unknown``: no member, the group's or a
partner's account, or someone forgotten on request) and, only when active, their
name; nothing else. The question then shows "Tine (GE-012, LETS Gent)"; unknown
or not active is refused at once, before anything is asked or booked. No answer
within the short wait ('letsbot run': ``app.partner_http.LOOKUP_TIMEOUT``) asks
anyway, with the code only and a note; the payment itself is checked there as
always.

The asking bot asks with its transaction rolled back (``LookUpFirst``, in
letsbot.dispatcher): the transaction holds the database's write lock, and two
bots that ask each other at once must not wait on each other.

A partner's bot answers at most ``LOOKUPS_PER_MINUTE`` lookups a minute from one
partner group; more are refused (HTTP 429, and a log line): a partner group's
members can't read out the member list by trying codes. The names are those
every member sees with /leden at home.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections import deque
from datetime import timedelta

from letsbot.context import Context
from letsbot.domain import LookedUp, MemberCode, Partner, Status
from letsbot.errors import LookUpFirst, Refusal
from letsbot.i18n import Raw
from letsbot.partner_check import _why
from letsbot.partners import VERSION, PartnerDesk, Reply, Send, _iso
from letsbot.signing import sign_object, verify_object
from letsbot.text import strip_controls

log = logging.getLogger(__name__)

MEMBER_PATH = "/letsbot/partner/v1/member"
LOOKUPS_PER_MINUTE = 30  # from one partner group: plenty for its members' payments
_MINUTE = timedelta(minutes=1)
STATES = ("active", "not_active", "unknown")
NAME_LIMIT = 200


def checked_receiver(ctx: Context, partner: Partner, code: str) -> LookedUp | None:
    """The partner's word on ``code``: asked first (``LookUpFirst``) when it can be;
    refused here when they say unknown or not active. None: nothing to ask (the
    console, a group on eLAND)."""
    if not ctx.can_look_up or partner.manual:
        return None
    found = ctx.looked_up.get(code)
    if found is None:
        raise LookUpFirst(partner, code)
    if found.state in ("unknown", "not_active"):
        raise Refusal(
            "partner.lookup_refused",
            code=code,
            group=partner.name,
            reason=Raw(ctx.t(f"partner.reason.{found.state}")),
            advice=Raw(ctx.t(f"partner.advice.{found.state}")),
        )
    return found


def shown(code: str, found: LookedUp | None) -> str:
    """``Tine (GE-012)`` when the partner named them, else the code."""
    return f"{found.name} ({code})" if found is not None and found.name else code


class Lookups:
    """Both sides of a lookup for one bot: asking a partner's bot, and answering one."""

    def __init__(self, desk: PartnerDesk, per_minute: int = LOOKUPS_PER_MINUTE) -> None:
        self.desk = desk
        self.per_minute = per_minute
        self._asked: dict[str, deque[float]] = {}  # per partner: when it asked, lately
        self._lock = threading.Lock()  # answered in several threads at once

    # asking

    def look_up(self, partner: Partner, code: str, send: Send) -> LookedUp:
        """Gent's word on ``code``; LookedUp(None) when it gives none in time."""
        desk = self.desk
        nonce = secrets.token_hex(16)
        message = sign_object(
            {
                "v": VERSION,
                "kind": "member",
                "from": desk.prefix,
                "to": partner.prefix,
                "sent_at": _iso(desk.clock.now()),
                "nonce": nonce,
                "member": code,
            },
            desk.key,
        )
        try:
            status, body = send(partner.url.rstrip("/") + MEMBER_PATH, json.dumps(message).encode())
        except Exception as error:  # down, unreachable, too slow
            log.info("partner %s didn't answer who %s is: %s", partner.prefix, code, _why(error))
            return LookedUp(None)
        if status != 200:
            log.warning("partner %s answered %s to who %s is", partner.prefix, status, code)
            return LookedUp(None)
        try:
            answer = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: "[[[[..." thousands deep
            answer = None
        name = answer.get("name") if isinstance(answer, dict) else None
        valid = (
            isinstance(answer, dict)
            and verify_object(answer, partner.public_key)
            and answer.get("kind") == "member_answer"
            and answer.get("from") == partner.prefix
            and answer.get("to") == desk.prefix
            and answer.get("nonce") == nonce
            and answer.get("member") == code
            and answer.get("state") in STATES
            and (name is None or (isinstance(name, str) and 0 < len(name) <= NAME_LIMIT))
        )
        if not valid:
            log.warning("partner %s: an answer that isn't its signed answer", partner.prefix)
            return LookedUp(None)
        assert isinstance(answer, dict)
        state = answer["state"]
        # Words another group wrote, shown here: no control characters.
        named = strip_controls(name) if isinstance(name, str) and state == "active" else None
        return LookedUp(state, named or None)

    # answering

    def receive(self, body: bytes) -> Reply:
        """A partner's "who is GE-012?": its name and whether they can receive, signed."""
        desk = self.desk
        opened = desk.open_message(body, "member")
        if isinstance(opened, Reply):
            return opened
        message, partner, now = opened.message, opened.partner, opened.now
        sender = partner.prefix
        nonce, code = message.get("nonce"), message.get("member")
        fields_ok = (
            isinstance(nonce, str)
            and 0 < len(nonce) <= 64
            and isinstance(code, str)
            and 0 < len(code) <= 20
        )
        if not fields_ok:
            return desk._refused(400, "not a lookup this bot reads", sender, None)
        assert isinstance(code, str)
        if not self._may_ask(partner.prefix):
            log.warning(
                "partner %s: lookup of a member refused, more than %d in a minute",
                partner.prefix,
                self.per_minute,
            )
            return Reply(429, json.dumps({"error": "too many lookups"}).encode(), [])
        state, name = self._member(code)
        signed = sign_object(
            {
                "v": VERSION,
                "kind": "member_answer",
                "from": desk.prefix,
                "to": partner.prefix,
                "sent_at": _iso(now),
                "nonce": nonce,
                "member": code,
                "state": state,
                "name": name,
            },
            desk.key,
        )
        return Reply(200, json.dumps(signed, ensure_ascii=False).encode(), [])

    def _may_ask(self, prefix: str) -> bool:
        """One more lookup from ``prefix`` within the last minute's allowance."""
        now = self.desk.clock.now().timestamp()
        with self._lock:
            asked = self._asked.setdefault(prefix, deque())
            while asked and asked[0] <= now - _MINUTE.total_seconds():
                asked.popleft()
            if len(asked) >= self.per_minute:
                return False
            asked.append(now)
            return True

    def _member(self, code: str) -> tuple[str, str | None]:
        """``code``'s state here, and their name when they can receive: as a payment
        to them would find them (letsbot.partners.PartnerDesk._reason)."""
        desk = self.desk
        number = MemberCode.number_in(code, desk.prefix)
        with desk.uow.transaction() as store:
            member = store.members.member_by_number(number) if number is not None else None
        if (
            member is None
            or member.forgotten
            or member.is_group_account
            or member.status is Status.EXTERNAL
        ):
            return "unknown", None
        if not member.can_trade:
            return "not_active", None
        return "active", member.name[:NAME_LIMIT]
