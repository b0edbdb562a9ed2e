"""What the bot keeps about a person (/privacy), and forgetting it (/forget_me, /forget).

Forgetting erases the person and keeps the bookkeeping: the account stays,
under its code and a neutral name, with its transfers, so the ledger still
sums to zero and other members keep their own history.
"""

from __future__ import annotations

import json

from letsbot.context import Context
from letsbot.domain import Member, Pending, PendingAction, Status, TransferKind
from letsbot.errors import Refusal
from letsbot.i18n import Translator
from letsbot.members import (
    active_coordinators,
    ensure_not_configured,
    ensure_other_coordinator,
    forget_stranger,
    lock_with_coordinators,
)
from letsbot.posting import post
from letsbot.registry import REGISTRY, Where, Who

STANDING = {
    Status.CANDIDATE: "privacy.standing_candidate",
    Status.ACTIVE: "privacy.standing_member",
    Status.LEAVING: "privacy.standing_leaving",
    Status.INACTIVE: "privacy.standing_inactive",
    Status.EXTERNAL: "privacy.standing_external",
}
LANGUAGE = {"nl": "privacy.language_nl", "en": "privacy.language_en"}


@REGISTRY.command("privacy", nl="privacy", who=Who.ANYONE, private=True)
def privacy(ctx: Context, words: list[str]) -> None:
    t = ctx.t
    group = ctx.settings.group.name
    sender = ctx.sender
    if sender is None:
        ctx.reply(t("privacy.stranger", group=group, example=ctx.usage("join")))
        return
    found = ctx.store.privacy.footprint(sender.id)
    platforms = sorted({identity.platform for identity in ctx.store.members.identities(sender.id)})
    standing = "privacy.standing_coordinator" if sender.is_coordinator else STANDING[sender.status]
    language = t(LANGUAGE[sender.language]) if sender.language else t("privacy.language_none")
    lines = [
        t("privacy.header", group=group),
        t(
            "privacy.profile",
            code=ctx.code(sender),
            name=sender.name,
            language=language,
            standing=t(standing),
        ),
        t("privacy.accounts", platforms=", ".join(platforms)),
        t("privacy.ledger", balance=t.amount(sender.balance), transfers=found.transfers),
        t(
            "privacy.market",
            listings=found.listings,
            messages=found.messages,
            blocks=found.blocks,
        ),
        t(
            "privacy.decisions",
            rsvps=found.rsvps,
            votes=found.votes,
            proposals=found.proposals,
            notify=t("privacy.notify_on" if found.notify else "privacy.notify_off"),
            questions=found.questions,
        ),
        t("privacy.who_header"),
        t(
            "privacy.who_members_open"
            if ctx.settings.group.open_bookkeeping
            else "privacy.who_members_closed"
        ),
        t("privacy.who_coordinators"),
        t("privacy.who_hosts"),
        t("privacy.who_platforms"),
        *([t("privacy.matrix_encryption")] if "matrix" in platforms else []),
        t("privacy.forget_hint", example=ctx.usage("forget_me")),
    ]
    ctx.reply("\n".join(lines))


@REGISTRY.command("forget_me", nl="vergeetmij", who=Who.ANYONE, where=Where.DIRECT)
def forget_me(ctx: Context, words: list[str]) -> None:
    sender = ctx.sender
    if sender is None:
        forget_stranger(ctx)  # all there is
        ctx.reply(ctx.t("forget.stranger", group=ctx.settings.group.name))
        return
    ensure_not_configured(ctx, sender, "forget.configured")
    ensure_other_coordinator(ctx, sender)
    if sender.balance < 0:
        raise Refusal("forget.negative", balance=ctx.t.amount(sender.balance))
    code, balance = ctx.code(sender), sender.balance

    def question(t: Translator) -> str:
        what = t("forget.what", code=code)
        if balance > 0:
            return t("forget.ask_rest", what=what, balance=t.amount(balance))
        return t("forget.ask", what=what)

    ctx.ask(
        PendingAction.FORGET,
        sender,
        question,
        amount=sender.balance,
        data=json.dumps({"member": sender.id}),
    )


@REGISTRY.command("forget", nl="vergeet", who=Who.COORDINATOR, where=Where.DIRECT)
def forget(ctx: Context, words: list[str]) -> None:
    if not words:
        raise Refusal("error.missing_member", usage=ctx.usage("forget"))
    target, _ = ctx.find_member_in(words)
    ensure_forgettable(ctx, target)
    ctx.ask(
        PendingAction.FORGET,
        ctx.member,
        lambda t: t("forget.ask_other", who=ctx.label(target, t)),
        data=json.dumps({"member": target.id}),
    )


def ensure_forgettable(ctx: Context, target: Member) -> None:
    """A coordinator forgets only a closed account at zero."""
    if target.is_group_account:
        raise Refusal("forget.group_account")
    if target.forgotten:
        raise Refusal("forget.already", who=ctx.label(target))
    if target.status is not Status.INACTIVE:
        raise Refusal("forget.not_closed", who=ctx.label(target), example=ctx.usage("forget_me"))
    if target.balance != 0:
        raise Refusal(
            "forget.not_zero", who=ctx.label(target), balance=ctx.t.amount(target.balance)
        )


def forgotten_id(question: Pending) -> int:
    return int(json.loads(question.data or "{}")["member"])


def forget_locks(ctx: Context, question: Pending) -> list[int]:
    """The forgotten account, the group account (for a rest), and who coordinates."""
    group_account = ctx.store.members.group_account().id
    return [forgotten_id(question), group_account, *active_coordinators(ctx, question)]


@REGISTRY.on_answer(PendingAction.FORGET, anyone=True, locks=forget_locks)
def forget_answered(ctx: Context, question: Pending, yes: bool) -> None:
    if not yes:
        ctx.reply(ctx.t("forget.cancelled"))
        return
    target_id = forgotten_id(question)
    if target_id == ctx.member.id:
        forget_self(ctx, question)
    else:
        forget_other(ctx, target_id)


def forget_self(ctx: Context, question: Pending) -> None:
    kas = ctx.store.members.group_account()
    locked = lock_with_coordinators(ctx, [ctx.member.id, kas.id])
    member = locked[ctx.member.id]
    ensure_other_coordinator(ctx, member, locked)
    rest = member.balance
    if rest != (question.amount or 0) or rest < 0:
        # Money moved since the question: what was confirmed is no longer what would happen.
        ctx.reply(
            ctx.t(
                "forget.balance_changed", balance=ctx.t.amount(rest), example=ctx.usage("forget_me")
            )
        )
        return
    code = ctx.code(member)
    if rest > 0:
        group_t = ctx.translators[ctx.settings.group.language]
        post(
            ctx.store,
            payer_id=member.id,
            receiver_id=kas.id,
            amount=rest,
            description=group_t("forget.rest_description"),
            kind=TransferKind.REST,
            at=ctx.now,
            booked_by_id=member.id,
            event_key=ctx.incoming.event_key,
            locked=locked,
        )
    ctx.store.privacy.forget_member(member.id, code, ctx.now)
    forgotten = ctx.store.members.member(member.id)
    assert forgotten is not None
    group = ctx.settings.group.name
    if rest > 0:
        ctx.reply(ctx.t("forget.done_rest", group=group, rest=ctx.t.amount(rest)))
    else:
        ctx.reply(ctx.t("forget.done", group=group))
    ctx.tell_coordinators(
        lambda t: t("forget.notify", who=ctx.label(forgotten, t), rest=t.amount(rest))
    )


def forget_other(ctx: Context, target_id: int) -> None:
    if not ctx.member.is_coordinator:
        raise Refusal("error.coordinators_only")
    target = ctx.store.members.lock_members([target_id])[target_id]
    ensure_forgettable(ctx, target)
    ctx.store.privacy.forget_member(target.id, ctx.code(target), ctx.now)
    forgotten = ctx.store.members.member(target.id)
    assert forgotten is not None
    ctx.reply(ctx.t("forget.done_other", who=ctx.label(forgotten)))
