"""One person on several chat platforms (/link, /unlink), and claiming an imported account.

A member always has one account and one balance: these commands only join
chat identities to a member or take them away; two ledgers are never merged.
Codes are for people who are not at home with computers: digits only, typed
with or without spaces. They are used once, expire, are kept only as a slow
hash, and wrong ones are counted per sender (in the database, so the count
holds across restarts and processes) so that nobody can guess them.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from datetime import datetime, timedelta

from letsbot.config import Settings
from letsbot.context import Compose, Context
from letsbot.domain import AccessCode, CodePurpose, Member, Role, Status
from letsbot.errors import Refusal
from letsbot.i18n import Raw
from letsbot.messages import Outcome, Outgoing, ToPerson
from letsbot.ports import Store
from letsbot.registry import REGISTRY, Where, Who

log = logging.getLogger(__name__)

DIGITS = {CodePurpose.LINK: 6, CodePurpose.CLAIM: 8}
VALIDITY = {CodePurpose.LINK: timedelta(minutes=15), CodePurpose.CLAIM: timedelta(days=7)}
TRIES_PER_HOUR = 5  # wrong, used or expired codes one sender may send in an hour
GROUP_TRIES_PER_HOUR = 20  # and everyone together: many fake accounts can't guess either
_TYPED = re.compile(r"[0-9][0-9 .\-]*", re.ASCII)
_COMMAND = {CodePurpose.LINK: "link", CodePurpose.CLAIM: "claim"}
_PROBLEMS = {
    CodePurpose.LINK: {"wrong": "link.wrong", "used": "link.used", "expired": "link.expired"},
    CodePurpose.CLAIM: {"wrong": "claim.wrong", "used": "claim.used", "expired": "claim.expired"},
}
_CLAIM_PROBLEMS = {
    "group_account": "claimcode.group_account",
    "inactive": "claimcode.inactive",
    "external": "claimcode.external",
    "has_chat": "claimcode.has_chat",
}


def code_hash(purpose: CodePurpose, code: str, prefix: str) -> str:
    """A slow hash (scrypt): a copy of the database doesn't give the live codes away cheaply."""
    salt = f"letsbot/{purpose.value}/{prefix.upper()}".encode()
    return hashlib.scrypt(code.encode(), salt=salt, n=2**12, r=8, p=1, dklen=32).hex()


def spaced(code: str) -> str:
    """``123 456``, ``1234 5678``: easier to read out and to copy."""
    half = len(code) // 2
    return f"{code[:half]} {code[half:]}"


def read_code(words: list[str]) -> str | None:
    """The digits of a typed code (``123 456``, ``1234-5678``); None if it isn't one."""
    text = "".join(words)
    if _TYPED.fullmatch(text) is None:
        return None
    digits = re.sub(r"[^0-9]", "", text)
    return digits if len(digits) in DIGITS.values() else None


def issue_code(
    store: Store,
    settings: Settings,
    purpose: CodePurpose,
    member: Member,
    now: datetime,
    created_by_id: int | None,
) -> tuple[str, datetime]:
    """A new code for ``member`` (their earlier one of that purpose stops working)."""
    digits = DIGITS[purpose]
    for _ in range(10):  # a clash with a stored code is one in 10**digits per try
        code = f"{secrets.randbelow(10**digits):0{digits}d}"
        digest = code_hash(purpose, code, settings.group.code_prefix)
        if store.codes.access_code(digest) is None:
            break
    else:
        raise RuntimeError("no free code found")
    expires = now + VALIDITY[purpose]
    store.codes.add_access_code(
        purpose=purpose,
        member_id=member.id,
        code_hash=digest,
        created_by_id=created_by_id,
        at=now,
        expires_at=expires,
    )
    return code, expires


def claim_problem(store: Store, member: Member) -> str | None:
    """Why ``member`` gets no claim code (group_account, inactive, external, has_chat);
    None: they can."""
    if member.is_group_account:
        return "group_account"
    if member.status is Status.INACTIVE:
        return "inactive"
    if member.status is Status.EXTERNAL:  # another group's account: no one logs in to it
        return "external"
    if store.members.identities(member.id):
        return "has_chat"
    return None


# commands ---------------------------------------------------------------------


@REGISTRY.command("link", nl="koppel", who=Who.ANYONE)
def link(ctx: Context, words: list[str]) -> None:
    if ctx.incoming.chat.is_group:
        _cancel_in_group(ctx, words, CodePurpose.LINK)
        return
    if not words:
        _give_link_code(ctx)
        return
    _check_sender_is_free(ctx, CodePurpose.LINK)
    found = _redeem(ctx, words, CodePurpose.LINK)
    if found is None:
        return
    member = _account_of(ctx, found)
    retired = _join(ctx, found, member)
    ctx.language = member.language or ctx.language
    here = ctx.incoming.sender.platform
    others = [i for i in ctx.store.members.identities(member.id) if i != ctx.incoming.sender]
    ctx.reply(
        ctx.t(
            "link.done",
            who=ctx.label(member),
            platforms=", ".join(sorted({i.platform for i in others})),
            balance=ctx.t.amount(member.balance),
        )
    )
    # The member hears it where they were known before: if it wasn't them, they can undo it.
    t = ctx.translator_for(member)
    for identity in others:
        ctx.replies.append(Outgoing(ToPerson(identity), t("link.notify", platform=here)))
    _report_retired(ctx, retired, member)


@REGISTRY.command("unlink", nl="ontkoppel", who=Who.MEMBER, where=Where.DIRECT)
def unlink(ctx: Context, words: list[str]) -> None:
    mine = ctx.store.members.identities(ctx.member.id)
    linked = ", ".join(sorted({i.platform for i in mine}))
    if not words:
        raise Refusal("unlink.which", platforms=linked, example=ctx.usage("unlink"))
    platform = words[0].lower()
    chosen = [i for i in mine if i.platform == platform]
    if not chosen:
        raise Refusal("unlink.not_linked", platform=words[0][:40], platforms=linked)
    if len(chosen) == len(mine):
        raise Refusal("unlink.last", platform=platform)
    for identity in chosen:
        ctx.store.members.remove_identity(identity)
    left = ", ".join(sorted({i.platform for i in mine if i.platform != platform}))
    ctx.reply(ctx.t("unlink.done", platform=platform, platforms=left))


@REGISTRY.command("claim", nl="activeer", who=Who.ANYONE)
def claim(ctx: Context, words: list[str]) -> None:
    if ctx.incoming.chat.is_group:
        _cancel_in_group(ctx, words, CodePurpose.CLAIM)
        return
    if not words:
        raise Refusal("claim.how", example=ctx.usage("claim"))
    _check_sender_is_free(ctx, CodePurpose.CLAIM)
    found = _redeem(ctx, words, CodePurpose.CLAIM)
    if found is None:
        return
    member = _account_of(ctx, found)
    retired = _join(ctx, found, member)
    if member.language is None:
        member = ctx.store.members.update_member(member.id, language=ctx.language)
    ctx.language = member.language or ctx.language
    group = ctx.settings.group.name
    if member.status is Status.CANDIDATE:
        ctx.reply(ctx.t("claim.done_candidate", name=member.name, code=ctx.code(member)))
    else:
        ctx.reply(
            ctx.t(
                "claim.done",
                name=member.name,
                code=ctx.code(member),
                group=group,
                balance=ctx.t.amount(member.balance),
                howto=Raw(ctx.t("start.howto", code=ctx.example_code(member))),
            )
        )
    platform = ctx.incoming.sender.platform
    _tell_coordinators(
        ctx, member, lambda t: t("claim.notify", who=ctx.label(member, t), platform=platform)
    )
    _report_retired(ctx, retired, member)


@REGISTRY.command("claimcode", nl="activeercode", who=Who.COORDINATOR, private=True)
def claimcode(ctx: Context, words: list[str]) -> None:
    member, _ = ctx.take_member(words, usage_of="claimcode")
    problem = claim_problem(ctx.store, member)
    if problem is not None:
        raise Refusal(_CLAIM_PROBLEMS[problem], who=ctx.label(member))
    code, expires = issue_code(
        ctx.store, ctx.settings, CodePurpose.CLAIM, member, ctx.now, ctx.member.id
    )
    ctx.reply(
        ctx.t(
            "claimcode.done",
            who=ctx.label(member),
            code=spaced(code),
            until=ctx.t.moment(expires),
            name=member.name,
        )
    )


# the steps ----------------------------------------------------------------------


def _give_link_code(ctx: Context) -> None:
    sender = ctx.sender
    if sender is None:
        raise Refusal("link.stranger", example=ctx.usage("join"))
    if sender.status is Status.INACTIVE:
        raise Refusal("error.inactive", group=ctx.settings.group.name)
    code, expires = issue_code(ctx.store, ctx.settings, CodePurpose.LINK, sender, ctx.now, None)
    ctx.reply(ctx.t("link.code", code=spaced(code), until=ctx.t.moment(expires)))


# A code as it may stand anywhere in a message: ``123456``, ``1234 5678``, ``123-456``.
_IN_TEXT = re.compile(
    r"(?<![0-9])(?:[0-9]{3}[ .\-]?[0-9]{3}|[0-9]{4}[ .\-]?[0-9]{4})(?![0-9])", re.ASCII
)
_MOST_IN_ONE_MESSAGE = 5  # each costs a slow hash


def may_hold_code(text: str) -> bool:
    return _IN_TEXT.search(text) is not None


def burn_codes(store: Store, settings: Settings, text: str, now: datetime) -> int:
    """Every live code that stands anywhere in ``text`` stops working; how many did.

    For a message in a group, which everyone reads, whatever else it says (a
    command with a typo, a refusal that quotes it, plain chat). Nothing is told.
    """
    burnt = 0
    for shown in _IN_TEXT.findall(text)[:_MOST_IN_ONE_MESSAGE]:
        digits = re.sub(r"[^0-9]", "", shown)
        purpose = next(p for p, length in DIGITS.items() if length == len(digits))
        found = store.codes.access_code(code_hash(purpose, digits, settings.group.code_prefix))
        if (
            found is not None
            and found.used_at is None
            and store.codes.use_access_code(found.id, now)
        ):
            burnt += 1
    return burnt


def _cancel_in_group(ctx: Context, words: list[str], purpose: CodePurpose) -> None:
    """A code typed in the group is read by everyone: it stops working at once.

    The group learns nothing about it: right, wrong, used or unknown, the reply is
    the same, and it counts as a wrong try, so the group can't be used to test codes.
    The dispatcher spent the code already (``burn_codes``), as it does with any
    code in any group message.
    """
    if read_code(words) is None:
        command = REGISTRY.find(_COMMAND[purpose])
        assert command is not None
        raise Refusal("error.direct_only", command=command.name_in(ctx.language))
    ctx.store.members.lock_members(
        [ctx.store.members.group_account().id]
    )  # as _redeem: counting takes turns
    ctx.store.codes.add_code_attempt(_attempt_key(ctx), ctx.now)
    ctx.reply(ctx.t("link.cancelled" if purpose is CodePurpose.LINK else "claim.cancelled"))
    ctx.outcome = Outcome.CANCELLED


def _is_fresh(ctx: Context, member: Member) -> bool:
    """A candidate who only asked to join, from this chat alone: nothing is lost by
    giving this chat to an account instead. Anyone else keeps their own account."""
    return (
        member.status is Status.CANDIDATE
        and not member.is_group_account
        and member.balance == 0
        and ctx.store.members.identities(member.id) == [ctx.incoming.sender]
        and not ctx.store.privacy.has_footprint(member.id)
    )


def _check_sender_is_free(ctx: Context, purpose: CodePurpose) -> None:
    """The chat that sends a code must not belong to an account yet (a fresh candidate aside).

    So a coordinator who tries a code can't join their own chat to another account.
    """
    sender = ctx.sender
    if sender is None or _is_fresh(ctx, sender):
        return
    key = "link.known_here" if purpose is CodePurpose.LINK else "claim.known_here"
    raise Refusal(key, who=ctx.label(sender))


def _attempt_key(ctx: Context) -> str:
    """Who tried a code, as a hash: the count needs no readable platform id."""
    return hashlib.sha256(f"letsbot/attempt/{ctx.incoming.sender}".encode()).hexdigest()


def _redeem(ctx: Context, words: list[str], purpose: CodePurpose) -> AccessCode | None:
    """The valid code typed; None (and the attempt recorded) when it is wrong, used or expired."""
    digits = read_code(words)
    if digits is None:
        key = "link.not_a_code" if purpose is CodePurpose.LINK else "claim.not_a_code"
        raise Refusal(key, example=ctx.usage(_COMMAND[purpose]))
    if len(digits) != DIGITS[purpose]:
        if purpose is CodePurpose.LINK:
            raise Refusal("link.is_claim_code", example=ctx.usage("claim"))
        raise Refusal("claim.is_link_code", example=ctx.usage("link"))
    sender = _attempt_key(ctx)
    # The group account's row makes counting and recording take turns on PostgreSQL.
    ctx.store.members.lock_members([ctx.store.members.group_account().id])
    since = ctx.now - timedelta(hours=1)
    tried = ctx.store.codes.code_attempts_since(sender, since)
    everyone = ctx.store.codes.code_attempts_since(None, since)
    if everyone >= GROUP_TRIES_PER_HOUR:
        log.warning(
            "event=%s code refused: %d wrong codes in the last hour",
            ctx.incoming.event_key,
            everyone,
        )
        raise Refusal("code.too_many")
    if tried >= TRIES_PER_HOUR:
        raise Refusal("code.too_many")
    found = ctx.store.codes.access_code(code_hash(purpose, digits, ctx.settings.group.code_prefix))
    if found is None or found.purpose is not purpose:
        problem = "wrong"
    elif found.used_at is not None:
        problem = "used"
    elif found.expires_at <= ctx.now:
        problem = "expired"
    else:
        return found
    # Kept although the command fails, so that guessing runs out of tries.
    ctx.store.codes.add_code_attempt(sender, ctx.now)
    left = TRIES_PER_HOUR - tried - 1
    after = ctx.t("code.tries_left", left=left) if left else ctx.t("code.no_tries_left")
    ctx.reply(ctx.t(_PROBLEMS[purpose][problem]) + "\n" + after)
    ctx.outcome = Outcome.WRONG_CODE
    return None


def _account_of(ctx: Context, found: AccessCode) -> Member:
    member = ctx.store.members.member(found.member_id)
    assert member is not None
    if member.status is Status.INACTIVE:
        raise Refusal("code.account_closed")
    if member.status is Status.EXTERNAL:  # made external after the code was handed out
        raise Refusal("code.account_external")
    return member


def _join(ctx: Context, found: AccessCode, member: Member) -> Member | None:
    """Give this chat to ``member``; the fresh candidate it belonged to, if any, is retired."""
    identity = ctx.incoming.sender
    sender = ctx.sender
    if sender is not None and sender.id == member.id:
        raise Refusal("link.same_chat")
    if any(i.platform == identity.platform for i in ctx.store.members.identities(member.id)):
        raise Refusal("link.platform_taken", platform=identity.platform)
    if not ctx.store.codes.use_access_code(found.id, ctx.now):
        raise Refusal(_PROBLEMS[found.purpose]["used"])  # someone was just before
    if sender is None:
        ctx.store.members.add_identity(member.id, identity, ctx.incoming.sender_name)
        return None
    locked = ctx.store.members.lock_members([member.id, sender.id])[sender.id]
    if locked.status is not Status.CANDIDATE:  # approved meanwhile
        raise Refusal("link.known_here", who=ctx.label(locked))
    ctx.store.members.move_identity(identity, member.id)
    return ctx.store.members.update_member(sender.id, status=Status.INACTIVE)


def _report_retired(ctx: Context, retired: Member | None, member: Member) -> None:
    if retired is None:
        return
    ctx.reply(ctx.t("link.request_closed", code=ctx.code(retired)))
    _tell_coordinators(
        ctx,
        member,
        lambda t: t(
            "link.request_closed_notify", old=ctx.label(retired, t), who=ctx.label(member, t)
        ),
    )


def _tell_coordinators(ctx: Context, member: Member, compose: Compose) -> None:
    """Every active coordinator but ``member`` (who got the reply already)."""
    for coordinator in ctx.store.members.members([Status.ACTIVE]):
        if coordinator.role is Role.COORDINATOR and coordinator.id != member.id:
            ctx.tell(coordinator, compose)
