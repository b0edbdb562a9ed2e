"""Trade with a group that has no bot (it runs eLAND): a manual partnership.

``letsbot partner add GE --manual ...`` makes one: a partner without url or key.
``/betaal GE-012 30 soep`` is asked as for a bot partner; after Ja this group
books payer → the partner's account, in the same transaction as the payment
record (``partner_outgoing``, state WAITING: nothing sends it), and every
coordinator gets a private message with what to enter in the partner's eLAND.
There an admin books an interSysteem transaction: from the account that stands
for this group (eLAND's "Van Account Code", an interSysteem account) to the
receiver, in their unit, with the payer as "Van Gebruiker/Code in Bovenstaand
Remote Systeem" (eLAND's ``real_from``), and a description of at most 60
characters (eLAND's limit). Then a coordinator here marks it done
(``/extern 12 klaar``: the payer gets the receipt) or books it back
(``/extern 12 terug <reden>``). No expiry and no giving up: a coordinator
decides; ``letsbot doctor`` warns about payments waiting longer than ``LATE``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import NoReturn

from letsbot.context import Context
from letsbot.domain import Member, Partner, PartnerPayment, PartnerState, TransferKind
from letsbot.errors import Refusal
from letsbot.i18n import Translator
from letsbot.ledger import DESCRIPTION_LIMIT
from letsbot.markup import to_plain
from letsbot.partners import their_amount
from letsbot.posting import post
from letsbot.registry import REGISTRY, Who

ELAND_DESCRIPTION_LIMIT = 60  # eLAND's "Omschrijving" takes no more
LATE = timedelta(days=7)  # 'letsbot doctor' warns about payments waiting longer
LISTED = 30  # waiting payments shown in one list; the rest counted
REASON = "coordinator"  # partner_outgoing.reason of one a coordinator booked back
_DONE = frozenset({"klaar", "done"})
_BACK = frozenset({"terug", "reverse"})


def check_description(partner: Partner, description: str) -> None:
    """A description eLAND takes as it is."""
    if len(description) > ELAND_DESCRIPTION_LIMIT:
        raise Refusal(
            "partner_manual.description_too_long",
            group=partner.name,
            length=len(description),
            limit=ELAND_DESCRIPTION_LIMIT,
        )


def wait_for_coordinators(
    ctx: Context, partner: Partner, payment: PartnerPayment, balance: int
) -> None:
    """Just booked: the payer hears that it waits, every coordinator what to enter."""
    say = ctx.reply_privately if ctx.incoming.chat.is_group else ctx.reply
    say(
        ctx.t(
            "partner_manual.waits",
            id=payment.transfer_id,
            amount=ctx.t.amount(payment.amount),
            code=payment.receiver_code,
            group=partner.name,
            balance=ctx.t.amount(balance),
        )
    )
    payer = ctx.member
    # The payer too, when a coordinator: they may be the one who enters it.
    ctx.tell_coordinators(lambda t: _to_enter(ctx, t, partner, payment, payer), except_sender=False)


def _to_enter(
    ctx: Context, t: Translator, partner: Partner, payment: PartnerPayment, payer: Member
) -> str:
    """What to enter in the partner's eLAND, field by field as eLAND names them."""
    whole = their_amount(payment.their_amount, partner, t.language)
    number, _, unit = whole.partition(" ")
    return t(
        "partner_manual.enter",
        id=payment.transfer_id,
        payer=ctx.label(payer, t),
        amount=t.amount(payment.amount),
        code=payment.receiver_code,
        group=partner.name,
        us=ctx.settings.group.name,
        real_from=f"{ctx.code(payer)} {payer.name}",
        number=number,
        unit=unit,
        description=payment.description,
    )


@REGISTRY.command("external", nl="extern", who=Who.COORDINATOR, private=True)
def external(ctx: Context, words: list[str]) -> None:
    """``/extern``: the payments waiting; ``/extern 12``: what to enter for #12 again;
    ``/extern 12 klaar`` or ``/extern 12 terug <reden>``: settle it."""
    if not words:
        ctx.reply(_waiting_list(ctx))
        return
    number = words[0].lstrip("#")
    if not number.isascii() or not number.isdigit() or len(number) > 12:
        waiting = ctx.store.partners.outgoing_payments([PartnerState.WAITING])
        raise Refusal("partner_manual.usage", id=waiting[0].transfer_id if waiting else 1)
    payment, partner = _waiting(ctx, int(number))
    if len(words) == 1:
        payer = ctx.store.members.member(payment.payer_id)
        assert payer is not None
        ctx.reply(_to_enter(ctx, ctx.t, partner, payment, payer))
        return
    action = words[1].lower()
    if action in _DONE and len(words) == 2:
        _done(ctx, payment, partner)
    elif action in _BACK:
        if len(words) == 2:
            raise Refusal("partner_manual.no_reason", id=payment.transfer_id)
        reason = ctx.text_argument(words[2:], usage_of="external", limit=DESCRIPTION_LIMIT)
        _back(ctx, payment, partner, reason)
    else:
        raise Refusal("partner_manual.usage", id=payment.transfer_id)


def _waiting(ctx: Context, transfer_id: int) -> tuple[PartnerPayment, Partner]:
    """The payment booked as #``transfer_id`` that waits for a coordinator."""
    payment = ctx.store.partners.outgoing_payment_of(transfer_id)
    if payment is None or payment.state is PartnerState.SENDING:
        # Not one to settle by hand: a payment at home, or one a partner's bot answers.
        raise Refusal("partner_manual.unknown", id=transfer_id)
    partner = ctx.store.partners.partner(payment.partner_id)
    assert partner is not None
    _refuse_settled(payment, partner)
    return payment, partner


def _refuse_settled(payment: PartnerPayment, partner: Partner) -> None:
    if payment.state is PartnerState.BOOKED:
        raise Refusal("partner_manual.already_booked", id=payment.transfer_id, group=partner.name)
    if payment.state is PartnerState.REVERSED:
        raise Refusal("partner_manual.already_reversed", id=payment.transfer_id)


def _settled_meanwhile(ctx: Context, payment: PartnerPayment, partner: Partner) -> NoReturn:
    """Another coordinator's message settled it at the same time: say how."""
    now_is = ctx.store.partners.outgoing_payment_of(payment.transfer_id)
    assert now_is is not None
    _refuse_settled(now_is, partner)
    raise AssertionError("not settled, yet no longer waiting")


def _done(ctx: Context, payment: PartnerPayment, partner: Partner) -> None:
    """Entered in their eLAND: the payer gets the receipt."""
    if not ctx.store.partners.settle_payment(
        payment.id, PartnerState.BOOKED, at=ctx.now, was=PartnerState.WAITING
    ):
        _settled_meanwhile(ctx, payment, partner)
    payer = ctx.store.members.member(payment.payer_id)
    assert payer is not None
    ctx.reply(ctx.t("partner_manual.done", id=payment.transfer_id, who=ctx.label(payer)))
    ctx.tell(
        payer,
        lambda t: t(
            "partner.booked",
            amount=t.amount(payment.amount),
            who=payment.receiver_code,
            group=partner.name,
            theirs=their_amount(payment.their_amount, partner, t.language),
            id=payment.transfer_id,
            balance=t.amount(payer.balance),
        ),
    )
    ctx.tell_coordinators(
        lambda t: t(
            "partner_manual.done_notify",
            id=payment.transfer_id,
            group=partner.name,
            by=ctx.label(ctx.member, t),
        )
    )


def _back(ctx: Context, payment: PartnerPayment, partner: Partner, reason: str) -> None:
    """Not entered there: booked back here through the posting path, the payer told why."""
    # The booker is named on the booking: locked with the two accounts.
    locked = ctx.store.members.lock_members(
        sorted({payment.payer_id, partner.account_id, ctx.member.id})
    )
    if not ctx.store.partners.settle_payment(
        payment.id, PartnerState.REVERSED, at=ctx.now, reason=REASON, was=PartnerState.WAITING
    ):
        _settled_meanwhile(ctx, payment, partner)
    payer = locked[payment.payer_id]
    t_payer = ctx.translator_for(payer)
    back = post(
        ctx.store,
        payer_id=partner.account_id,
        receiver_id=payment.payer_id,
        amount=payment.amount,
        # Stored as plain text, like a description a member typed: escaped when shown.
        description=to_plain(
            t_payer("partner.reversal_description", id=payment.transfer_id, reason=reason)
        ),
        kind=TransferKind.REVERSAL,
        at=ctx.now,
        booked_by_id=ctx.member.id,
        event_key=ctx.incoming.event_key,
        reverses_id=payment.transfer_id,
        locked=locked,
    )
    ctx.reply(
        ctx.t(
            "partner_manual.reversed",
            id=payment.transfer_id,
            back=back.transfer.id,
            who=ctx.label(payer),
        )
    )
    ctx.tell(
        payer,
        lambda t: t(
            "partner.reversed",
            amount=t.amount(payment.amount),
            code=payment.receiver_code,
            group=partner.name,
            reason=reason,
            id=back.transfer.id,
            balance=t.amount(back.receiver_after),
        ),
    )
    ctx.tell_coordinators(
        lambda t: t(
            "partner_manual.reversed_notify",
            id=payment.transfer_id,
            group=partner.name,
            by=ctx.label(ctx.member, t),
            reason=reason,
        )
    )


def _waiting_list(ctx: Context) -> str:
    """The payments waiting for a coordinator, oldest first, and how to settle one."""
    waiting = ctx.store.partners.outgoing_payments([PartnerState.WAITING])
    if not waiting:
        return ctx.t("partner_manual.none")
    t = ctx.t
    partners = {p.id: p for p in ctx.store.partners.partners()}
    lines = [t("partner_manual.header", count=len(waiting))]
    for payment in waiting[:LISTED]:
        partner = partners[payment.partner_id]
        payer = ctx.store.members.member(payment.payer_id)
        assert payer is not None
        lines.append(
            t(
                "partner_manual.line",
                id=payment.transfer_id,
                since=t.moment(payment.created_at),
                payer=ctx.label(payer),
                amount=t.amount(payment.amount),
                code=payment.receiver_code,
                group=partner.name,
                theirs=their_amount(payment.their_amount, partner, t.language),
                description=payment.description,
            )
        )
    if len(waiting) > LISTED:
        lines.append(t("partner_manual.more", count=len(waiting) - LISTED))
    lines.append(t("partner_manual.footer", id=waiting[0].transfer_id))
    return "\n".join(lines)
