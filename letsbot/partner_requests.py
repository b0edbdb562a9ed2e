"""Payment requests between groups: a member here asks a member of a partner group
to pay, and the other way round.

``/vraagbetaling DU-003 30 soep``, typed by Tine (GE-012) in Gent, is stored here
as an outgoing request (``partner_requests``, direction ``out``, with a new
request id) and sent, signed, to Durme's bot at ``REQUEST_PATH``. Durme asks its
member DU-003 Ja/Nee in their direct chat, in their words and unit, the question
of ``/betaal GE-012 45 soep`` (a ``PendingAction.PARTNER_PAY`` question with the
request id in its data): on Ja it is booked and sent exactly as that payment
(letsbot.partners), and the request is marked paid in the same transaction; on
Nee declined. Durme stores the request (direction ``in``) with the question, so a
repeat of the request id asks nothing again: it gets the request's current state,
signed: ``asked``, ``paid``, ``declined``, ``expired`` (the question went
unanswered) or ``refused`` with a reason. Gent sends the request again with
growing pauses (at most ``LONGEST_POLL``) until the state is final, then tells
Tine once: declined, expired or refused. Paid needs no word here: the payment
brings its own receipt.

Amounts: Tine asks for what she gets, in Gent's unit. The payer is asked the
smallest amount in Durme's unit that, converted back the way every payment is
(rounded down, letsbot.partners.convert), gives her at least that: rounded up.
With units that don't divide she may get a little more than she asked; the
reply says what she gets.

The answer reveals only the state and a reason word, never the payer's numbers.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from letsbot.context import Context, add_question, yes_no
from letsbot.domain import (
    OPEN_REQUEST_STATES,
    Member,
    MemberCode,
    Partner,
    PartnerRequest,
    Pending,
    PendingAction,
    PendingStatus,
    RequestState,
    Status,
)
from letsbot.errors import Busy, Refusal
from letsbot.i18n import Raw, Translator
from letsbot.ledger import DESCRIPTION_LIMIT, check_limits, ensure_can_trade, parse_amount
from letsbot.messages import Outgoing, ToPerson
from letsbot.partner_lookup import checked_receiver, shown
from letsbot.partners import (
    FIRST_PAUSE,
    LEASE,
    REASONS,
    VERSION,
    PartnerDesk,
    Reply,
    Send,
    _check_cap,
    _code_of,
    _iso,
    _moment,
    _payment_waits,
    convert,
    digest,
    shown_words,
    their_amount,
)
from letsbot.ports import Store
from letsbot.signing import sign_object, verify_object
from letsbot.text import fold

log = logging.getLogger(__name__)

REQUEST_PATH = "/letsbot/partner/v1/request"
LONGEST_POLL = timedelta(minutes=10)  # an asked request is looked at again at least this often
BATCH = 50
OUT, IN = "out", "in"
# Why a request was refused; shared ones are said as for payments ("partner.reason.*"),
# the others are "partner_request.reason.<reason>".
OWN_REASONS = ("unreachable", "not_booked", "too_many", "too_small")
REQUEST_REASONS = (
    *("unknown", "not_active", "paused", "cap", "no_answer", "too_large", "terms"),
    *OWN_REASONS,
)
_STATES = {s.value for s in RequestState} - {RequestState.SENDING.value}
_TOLD = {
    RequestState.DECLINED: "partner_request.declined",
    RequestState.EXPIRED: "partner_request.expired",
    RequestState.REFUSED: "partner_request.refused",
}


def reason_text(t: Translator, reason: str) -> str:
    if reason in OWN_REASONS:
        return t(f"partner_request.reason.{reason}")
    return t(f"partner.reason.{reason if reason in REASONS else 'unknown'}")


def _rate(units_per_hour: int, decimals: int) -> int:
    return units_per_hour * int(10**decimals)


def asked_of(amount: int, ours: int, theirs: int) -> tuple[int, int]:
    """What to ask the payer (their minor units, rounded up) for the requester to get at
    least ``amount`` (our minor units) after the payment's round-down; and what they get."""
    asked = -(-amount * theirs // ours)
    return asked, asked * ours // theirs


# asking, here


def request_across(ctx: Context, partner: Partner, code: str, words: list[str]) -> None:
    """``/vraagbetaling DU-003 30 soep`` for a member of a partner group."""
    amount, rest = parse_amount(ctx, words, "request")
    description = ctx.text_argument(rest, usage_of="request", limit=DESCRIPTION_LIMIT)
    if partner.manual:  # a group on eLAND has no bot to ask its member
        raise Refusal("partner_request.manual", group=partner.name)
    if partner.paused:
        raise Refusal("partner.paused", group=partner.name)
    requester = ctx.member
    ensure_can_trade(ctx, requester)
    currency = ctx.settings.currency
    ours = _rate(currency.units_per_hour, currency.decimals)
    theirs, gets = asked_of(amount, ours, _rate(partner.units_per_hour, partner.decimals))
    account = ctx.store.members.member(partner.account_id)
    assert account is not None
    _check_cap(ctx.t, partner, account.balance - gets, account.balance)
    check_limits(ctx, account, requester, gets)
    # The same request typed twice (or tapped twice) asks once: the other member would
    # get two questions, and could pay both.
    ctx.store.members.lock_members([requester.id])
    for open_one in ctx.store.partners.requests(OUT, OPEN_REQUEST_STATES):
        if (open_one.member_id, open_one.partner_id, open_one.other_code) == (
            requester.id,
            partner.id,
            code,
        ) and (open_one.amount, fold(open_one.description)) == (gets, fold(description)):
            raise Refusal(
                "partner_request.already_asked",
                code=code,
                group=partner.name,
                amount=ctx.t.amount(gets),
                description=description,
            )
    found = checked_receiver(ctx, partner, code)
    now = ctx.now
    ctx.store.partners.add_request(
        direction=OUT,
        request_id=uuid.uuid4().hex,
        partner_id=partner.id,
        member_id=requester.id,
        other_code=code,
        amount=gets,
        their_amount=theirs,
        description=description,
        digest=None,
        state=RequestState.SENDING,
        reason=None,
        pending_id=None,
        created_at=now,
        expires_at=now + ctx.settings.partners.give_up,
        next_try_at=now,
    )
    ctx.after_commit(_payment_waits)  # wakes the sender, which sends requests too
    sent = ctx.t(
        "partner_request.sent",
        code=shown(code, found),
        group=partner.name,
        theirs=their_amount(theirs, partner, ctx.language),
        description=description,
        amount=ctx.t.amount(gets),
    )
    if found is not None and found.state is None:
        sent += f"\n{ctx.t('partner.not_checked', group=partner.name, code=code)}"
    ctx.reply(sent)


def request_answered(ctx: Context, question: Pending, paid: bool) -> None:
    """The payer's Ja (booked) or Nee to a partner's request, in the same transaction."""
    data = json.loads(question.data or "{}")
    if "request" not in data:
        return  # their own /betaal GE-012
    found = ctx.store.partners.request(IN, int(data["partner"]), str(data["request"]))
    if found is not None:
        state = RequestState.PAID if paid else RequestState.DECLINED
        ctx.store.partners.settle_request(found.id, state, at=ctx.now)


# asked, there


def _request_digest(message: dict[str, Any]) -> str:
    """What a request asks; the requester's name left out (it may change while the
    request is sent again)."""
    return digest({k: v for k, v in message.items() if k != "requester_name"})


def receive_request(desk: PartnerDesk, body: bytes) -> Reply:
    """A partner's payment request: its member asked once, answered with its state."""
    opened = desk.open_message(body, "request", "request_id")
    if isinstance(opened, Reply):
        return opened
    message, partner, now = opened.message, opened.partner, opened.now
    sender, request_id = partner.prefix, message.get("request_id")
    expires_at = _moment(message.get("expires_at"))
    amount = message.get("amount")
    fields_ok = (
        isinstance(request_id, str)
        and 0 < len(request_id) <= 40
        and expires_at is not None
        and isinstance(amount, int)
        and not isinstance(amount, bool)
        and amount > 0
        and all(
            isinstance(message.get(k), str) and 0 < len(message[k]) <= DESCRIPTION_LIMIT
            for k in ("requester", "requester_name", "payer", "description")
        )
        and len(message["requester"]) <= 20
        and _code_of(message["requester"], partner.prefix)
        and all(
            isinstance(message.get(k), int) and not isinstance(message[k], bool)
            for k in ("requester_amount", "requester_units_per_hour", "requester_decimals")
        )
    )
    if not fields_ok:
        return desk._refused(400, "not a request this bot reads", sender, request_id)
    assert expires_at is not None
    asked = _request_digest(message)
    # Words another group's members typed, shown here: no control characters, one line.
    for key in ("requester", "requester_name", "description"):
        message[key] = shown_words(message[key])
    return _ask(desk, partner, message, asked, expires_at, now)


def _ask(
    desk: PartnerDesk,
    partner: Partner,
    message: dict[str, Any],
    asked: str,
    expires_at: datetime,
    now: datetime,
) -> Reply:
    request_id: str = message["request_id"]
    amount: int = message["amount"]
    posts: list[Outgoing] = []
    with desk.uow.transaction() as store:
        number = MemberCode.number_in(message["payer"], desk.prefix)
        payer = store.members.member_by_number(number) if number is not None else None
        wanted = [partner.account_id] + ([payer.id] if payer is not None else [])
        # The partner account's lock first, as for payments: two deliveries take turns.
        locked = store.members.lock_members(sorted(set(wanted)))
        before = store.partners.request(IN, partner.id, request_id)
        if before is not None:
            if store.partners.request_digest(before.id) != asked:
                return desk._refused(409, "request id replayed", partner.prefix, request_id)
            state, reason = _current(store, before, now)
            return Reply(200, _answer(desk, partner, request_id, state, reason, now), [])
        partner = store.partners.partner(partner.id) or partner  # as it stands now
        theirs, rounded = _back(desk, partner, amount)
        state, reason = _refusal(desk, store, partner, message, payer, locked, theirs, now)
        if now > expires_at:
            state, reason = RequestState.EXPIRED, None
        pending_id = None
        if state is RequestState.ASKED:
            assert payer is not None
            question, post = _question(desk, store, partner, message, payer, theirs, rounded, now)
            pending_id = question.id
            posts.append(post)
        store.partners.add_request(
            direction=IN,
            request_id=request_id,
            partner_id=partner.id,
            member_id=payer.id if payer is not None else None,
            other_code=message["requester"][:20],
            amount=amount,
            their_amount=theirs,
            description=message["description"],
            digest=asked,
            state=state,
            reason=reason,
            pending_id=pending_id,
            created_at=now,
            expires_at=expires_at,
            next_try_at=now,
        )
        body = _answer(desk, partner, request_id, state, reason, now)
        posts = desk.outbox.queue(store, posts)
    if reason:
        log.info("partner request %s from %s refused: %s", request_id, partner.prefix, reason)
    return Reply(200, body, posts)


def _back(desk: PartnerDesk, partner: Partner, amount: int) -> tuple[int, bool]:
    """What the requester gets for ``amount`` here, as the payment will convert it."""
    theirs = convert(amount, desk.settings, partner)
    currency = desk.settings.currency
    exact = amount * _rate(partner.units_per_hour, partner.decimals)
    return theirs, exact % _rate(currency.units_per_hour, currency.decimals) != 0


def _refusal(
    desk: PartnerDesk,
    store: Store,
    partner: Partner,
    message: dict[str, Any],
    payer: Member | None,
    locked: dict[int, Member],
    theirs: int,
    now: datetime,
) -> tuple[RequestState, str | None]:
    """ASKED, or REFUSED and why."""
    refused = RequestState.REFUSED
    said = (message["requester_units_per_hour"], message["requester_decimals"])
    currency = desk.settings.currency
    expected, _ = asked_of(
        message["requester_amount"],
        _rate(partner.units_per_hour, partner.decimals),
        _rate(currency.units_per_hour, currency.decimals),
    )
    if said != (partner.units_per_hour, partner.decimals) or message["amount"] != expected:
        log.warning(
            "partner %s: request %s refused: the terms differ (it counts %s an hour with %s"
            " decimals and asks %s for %s; here it is known as %s an hour with %s decimals);"
            " check 'letsbot partner add' on both sides",
            partner.prefix,
            message["request_id"],
            *said,
            message["amount"],
            message["requester_amount"],
            partner.units_per_hour,
            partner.decimals,
        )
        return refused, "terms"
    if partner.paused:
        return refused, "paused"
    if payer is None or payer.is_group_account or payer.status is Status.EXTERNAL:
        return refused, "unknown"  # no one, the group account, or a partner group's account
    if not locked[payer.id].can_trade:
        return refused, "not_active"
    if theirs <= 0:
        return refused, "too_small"
    if message["amount"] > desk.settings.minor(desk.settings.limits.max_transfer):
        return refused, "too_large"  # more than a /betaal here may be
    account = locked[partner.account_id]
    after = account.balance + message["amount"]
    if abs(after) > partner.cap and abs(after) > abs(account.balance):
        return refused, "cap"
    # One member there can't flood a member here with questions.
    since = now - timedelta(hours=1)
    if (
        store.partners.requests_from_since(partner.id, message["requester"][:20], since)
        >= desk.settings.market.msgs_per_hour
    ):
        return refused, "too_many"
    if not store.members.identities(payer.id):
        return refused, "unreachable"
    return RequestState.ASKED, None


def _question(
    desk: PartnerDesk,
    store: Store,
    partner: Partner,
    message: dict[str, Any],
    payer: Member,
    theirs: int,
    rounded: bool,
    now: datetime,
) -> tuple[Pending, Outgoing]:
    """The payer's Ja/Nee, in their direct chat: the question of ``/betaal GE-012 ...``."""
    identity = store.members.identities(payer.id)[0]
    t = desk.translators[payer.language or desk.settings.group.language]
    requester = f"{message['requester_name']} ({message['requester']})"
    text = t(
        "partner_request.ask",
        who=requester,
        group=partner.name,
        amount=t.amount(message["amount"]),
        description=message["description"],
        theirs=their_amount(theirs, partner, t.language),
    )
    if rounded:
        text += f"\n{t('partner.rounded')}"
    expires_at = _moment(message["expires_at"])
    assert expires_at is not None
    data = {
        "partner": partner.id,
        "to": message["requester"],
        "theirs": theirs,
        "request": message["request_id"],
    }
    new = Pending(
        0,
        PendingAction.PARTNER_PAY,
        payer.id,
        partner.account_id,  # asked on behalf of the partner group
        payer.id,
        partner.account_id,
        message["amount"],
        None,
        message["description"],
        now,
        min(now + desk.settings.group.confirmation_timeout, expires_at),
        PendingStatus.OPEN,
        json.dumps(data),
        identity.platform,
        None,
        text,
    )
    question, _ = add_question(store, new)
    post = Outgoing(
        ToPerson(identity),
        text,
        yes_no(t),
        identity,
        None,
        question=question.id,
        language=t.language,
    )
    return question, post


def _current(
    store: Store, request: PartnerRequest, now: datetime
) -> tuple[RequestState, str | None]:
    """An incoming request's state now: an asked one's question may have expired, or
    its Ja been refused (the payer's limit): then it is final, and stays so."""
    if request.state not in OPEN_REQUEST_STATES:
        return request.state, request.reason
    question = store.questions.pending(request.pending_id) if request.pending_id else None
    final: tuple[RequestState, str | None]
    if question is None:  # the payer was forgotten meanwhile
        final = RequestState.REFUSED, "not_active"
    elif question.status is PendingStatus.OPEN:
        if question.expires_at > now:
            return RequestState.ASKED, None
        store.questions.close_pending(question.id, PendingStatus.EXPIRED)
        final = RequestState.EXPIRED, None
    elif question.status is PendingStatus.EXPIRED and question.expires_at > now:
        final = RequestState.REFUSED, "not_booked"  # a Ja that couldn't be booked
    elif question.status is PendingStatus.DECLINED:
        final = RequestState.DECLINED, None
    elif question.status is PendingStatus.ACCEPTED:
        final = RequestState.PAID, None
    else:
        final = RequestState.EXPIRED, None
    store.partners.settle_request(request.id, final[0], at=now, reason=final[1])
    return final


def _answer(
    desk: PartnerDesk,
    partner: Partner,
    request_id: str,
    state: RequestState,
    reason: str | None,
    now: datetime,
) -> bytes:
    signed = sign_object(
        {
            "v": VERSION,
            "kind": "request_answer",
            "from": desk.prefix,
            "to": partner.prefix,
            "request_id": request_id,
            "sent_at": _iso(now),
            "state": state.value,
            "reason": reason,
        },
        desk.key,
    )
    return json.dumps(signed, ensure_ascii=False).encode()


# sending, here


def message_for(desk: PartnerDesk, request: PartnerRequest, partner: Partner, who: Member) -> bytes:
    """The signed request, timed now: each try is signed afresh, the rest the same."""
    message = sign_object(
        {
            "v": VERSION,
            "kind": "request",
            "from": desk.prefix,
            "to": partner.prefix,
            "request_id": request.request_id,
            "sent_at": _iso(desk.clock.now()),
            "expires_at": _iso(request.expires_at),
            "requester": MemberCode.show(desk.prefix, who.number),
            "requester_name": who.name,
            "payer": request.other_code,
            "amount": request.their_amount,
            "description": request.description,
            # What the requester gets, and how this group counts: the payer's bot checks
            # that it converts alike (a wrong --decimals would ask 100 times too much).
            "requester_amount": request.amount,
            "requester_units_per_hour": desk.settings.currency.units_per_hour,
            "requester_decimals": desk.settings.currency.decimals,
        },
        desk.key,
    )
    return json.dumps(message, ensure_ascii=False).encode()


def due_requests(desk: PartnerDesk) -> list[tuple[PartnerRequest, Partner, bytes]]:
    """Outgoing requests whose next try is due, claimed: each with its partner and message."""
    now = desk.clock.now()
    found: list[tuple[PartnerRequest, Partner, bytes]] = []
    with desk.uow.transaction() as store:
        for request in store.partners.claim_due_requests(
            now=now, lease_until=now + LEASE, limit=BATCH
        ):
            partner = store.partners.partner(request.partner_id)
            assert request.member_id is not None and partner is not None
            who = store.members.member(request.member_id)
            assert who is not None
            found.append((request, partner, message_for(desk, request, partner, who)))
    return found


def send_due_requests(desk: PartnerDesk, send: Send) -> list[Outgoing]:
    """One round: every due request sent once, and what its answer means done."""
    posts: list[Outgoing] = []
    for request, partner, message in due_requests(desk):
        if partner.removed:  # the partnership ended meanwhile: no payment could follow
            posts += _settle(desk, request, partner, RequestState.REFUSED, "paused")
            continue
        try:
            status, body = send(partner.url.rstrip("/") + REQUEST_PATH, message)
        except Exception as error:  # down or unreachable: try later
            log.info(
                "partner %s unreachable for request %s: %s",
                partner.prefix,
                request.request_id,
                type(error).__name__,
            )
            status, body = 0, b""
        try:
            posts += request_answer(desk, request, partner, status, body)
        except Busy:
            log.warning("database busy; partner request %s waits", request.request_id)
    return posts


def request_answer(
    desk: PartnerDesk, request: PartnerRequest, partner: Partner, status: int, body: bytes
) -> list[Outgoing]:
    """Settle ``request`` on a final signed answer; else look again later, or give up."""
    answer = _read(desk, request, partner, status, body)
    now = desk.clock.now()
    state = RequestState(answer["state"]) if answer is not None else request.state
    if state in OPEN_REQUEST_STATES:
        if now > request.expires_at + desk.settings.partners.window:
            # Unanswered (or still asked) past its expiry: the payer is no longer asked.
            final = RequestState.REFUSED if answer is None else RequestState.EXPIRED
            return _settle(desk, request, partner, final, "no_answer" if answer is None else None)
        pause = min(FIRST_PAUSE * 2 ** max(request.tries - 1, 0), LONGEST_POLL)
        with desk.uow.transaction() as store:
            store.partners.retry_request_at(request.id, now + pause, state)
        return []
    assert answer is not None
    reason = answer.get("reason")
    if state is RequestState.REFUSED and reason not in REQUEST_REASONS:
        reason = "unknown"
    return _settle(desk, request, partner, state, reason if isinstance(reason, str) else None)


def _read(
    desk: PartnerDesk, request: PartnerRequest, partner: Partner, status: int, body: bytes
) -> dict[str, Any] | None:
    """The partner's signed answer about ``request``; None for anything else."""
    if status != 200:
        if status:
            log.warning(
                "partner %s answered %s for request %s", partner.prefix, status, request.request_id
            )
        return None
    try:
        answer = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." thousands deep
        answer = None
    valid = (
        isinstance(answer, dict)
        and verify_object(answer, partner.public_key)
        and answer.get("kind") == "request_answer"
        and answer.get("from") == partner.prefix
        and answer.get("to") == desk.prefix
        and answer.get("request_id") == request.request_id
        and answer.get("state") in _STATES
    )
    if not valid:
        log.warning("partner %s: an answer that isn't its signed answer", partner.prefix)
        return None
    assert isinstance(answer, dict)
    return answer


def _settle(
    desk: PartnerDesk,
    request: PartnerRequest,
    partner: Partner,
    state: RequestState,
    reason: str | None,
) -> list[Outgoing]:
    """Final, once; the requester told, but for paid: the payment's receipt says it."""
    now = desk.clock.now()
    with desk.uow.transaction() as store:
        if not store.partners.settle_request(request.id, state, at=now, reason=reason):
            return []
        log.info("partner request %s: %s %s", request.request_id, state.value, reason or "")
        key = _TOLD.get(state)
        assert request.member_id is not None
        requester = store.members.member(request.member_id)
        if key is None or requester is None:
            return []

        def compose(t: Translator) -> str:
            return t(
                key,
                code=request.other_code,
                group=partner.name,
                amount=t.amount(request.amount),
                description=request.description,
                reason=Raw(reason_text(t, reason or "unknown")),
            )

        return desk.outbox.queue(store, desk._tell(store, requester, compose))
