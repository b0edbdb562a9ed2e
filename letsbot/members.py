"""Becoming a member, the directory, languages, leaving, and help."""

from __future__ import annotations

import json
import re
import unicodedata

from letsbot.context import Context
from letsbot.domain import (
    GROUP_ACCOUNT_WORDS,
    Member,
    MemberCode,
    Pending,
    PendingAction,
    Role,
    Status,
    TransferKind,
)
from letsbot.errors import Refusal
from letsbot.i18n import LANGUAGES, Raw, Translator
from letsbot.messages import Choice
from letsbot.posting import post
from letsbot.registry import REGISTRY, Where, Who, standing
from letsbot.text import fold

NAME_LIMIT = 100
MEMBERS_PAGE = 50  # members a /leden page shows: a chat message stays readable


def clean_name(words: list[str], group_name: str = "", prefix: str = "") -> str:
    """A member's name as typed: single spaces, no control characters; refused when it
    passes for something else (a code, the group account, a coordinator, the group)."""
    name = " ".join(words).strip()
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise Refusal("join.bad_name")
    name = _NAME_INTRO.sub("", name).strip()
    if name.startswith("<") and name.endswith(">"):  # "<Fien Claes>", as help showed <naam>
        name = name[1:-1].strip()
    if name.islower():  # "jos de smet", as typed on a phone, is Jos De Smet
        name = " ".join(word[:1].upper() + word[1:] for word in name.split())
    # A name that passes for something else: a code ("Lies (DU-004)", "30"), the group
    # account, a coordinator, or letters of two scripts ("Lіes" with a Cyrillic і).
    # Dashes of every kind read as "-", and an O among digits as 0: "DU–OO3" is DU-003;
    # without a dash, this group's prefix before digits ("DU003", "du3").
    plain = _DASHES.sub("-", name)
    own = re.compile(rf"{re.escape(prefix)}[0-9Oo]*[0-9][0-9Oo]*", re.I) if prefix else None
    code_like = [
        w
        for w in re.split(r"[\s()\[\],]+", plain)
        if _CODE_LIKE.fullmatch(w) or (own is not None and own.fullmatch(w))
    ]
    if code_like or re.search(r"[@/#]", name) or len(_scripts(name)) > 1:
        raise Refusal("join.bad_name")
    if name and not any(ch.isalpha() and ch not in _FILLERS for ch in name):  # "ㅤ" shows nothing
        raise Refusal("join.bad_name")
    # Word by word, whatever is around them: "An (coördinator)", "Groeps Rekening".
    words = re.findall(r"[^\W\d_]+", fold(name))
    joined = "".join(words)
    if set(words) & (_TAKEN_WORDS | GROUP_ACCOUNT_WORDS) or joined in _TAKEN_WHOLE | {
        "".join(re.findall(r"[^\W\d_]+", fold(group_name)))
    }:
        raise Refusal("join.taken_name", name=name)
    return name


# "30", "DU-004", "DU004", "du3", "DU-OO3"
_CODE_LIKE = re.compile(r"[0-9]+|[A-Za-z]{1,5}-[0-9Oo]*[0-9][0-9Oo]*", re.ASCII)
_DASHES = re.compile(r"[\u2010-\u2015\u2212\ufe58\ufe63\uff0d]")
_FILLERS = frozenset("\u3164\u115f\u1160\uffa0")  # Hangul fillers: letters that show nothing
_TAKEN_WORDS = {
    *("coordinator", "coordinatrice", "koordinator", "bot", "letsbot", "admin", "beheerder"),
    *("penningmeester", "voorzitter", "secretaris", "bestuur", "moderator", "kernlid"),
}
_TAKEN_WHOLE = {"groepsrekening", "groupaccount", "vergetenlid", "forgottenmember", "iedereen"}


def _scripts(name: str) -> set[str]:
    """The scripts of a name's letters (LATIN, CYRILLIC, GREEK, ...)."""
    return {unicodedata.name(ch, "?").split()[0] for ch in name if ch.isalpha()}


# "/aanmelden ik ben Jan De Smet": the name is Jan De Smet.
_NAME_INTRO = re.compile(
    r"^(?:ik\s+ben|ik\s+heet|mijn\s+naam\s+is|my\s+name\s+is|i\s+am|i'm)\s*[:,]?\s+",
    re.IGNORECASE,
)


def looks_like_a_name(text: str) -> str | None:
    """``Maria Janssens`` typed by someone who isn't a member, alone or in a sentence
    ("Hallo, ik ben Maria Janssens en ik wil meedoen"): their name, or None."""
    said = _SENTENCE_NAME.search(text)
    if said is not None:
        text = said["name"]
    words = text.split()
    if not 2 <= len(words) <= 4 or len(text) > NAME_LIMIT:
        return None
    if not all(re.fullmatch(r"[^\W\d_][\w'’.-]*", w) for w in words):
        return None
    if any(fold(w) in _NOT_NAME_WORDS for w in words):
        return None
    return " ".join(words)


# "ik ben X", "mijn naam is X", after a greeting; the name ends at "en", a comma or a stop.
_SENTENCE_NAME = re.compile(
    r"(?:^|[\s,.!])(?:ik\s+ben|ik\s+heet|mijn\s+naam\s+is|my\s+name\s+is|i\s+am|i'm)"
    r"\s*[:,]?\s+(?P<name>.+?)\s*(?:[,.!?]|\s(?:en|and)\s|$)",
    re.IGNORECASE,
)


# Words of a sentence, not of a name ("ik wil meedoen", "hoe werkt dat").
_NOT_NAME_WORDS = {
    *("ik", "wil", "wilt", "hoe", "wat", "is", "dit", "dat", "werkt", "hallo", "dag", "help"),
    *("hulp", "meedoen", "lid", "worden", "graag", "ja", "nee", "ok", "oke", "goeiedag"),
    *("goedemorgen", "goeiemorgen", "goedenavond", "bedankt", "dank", "je", "u", "jij"),
    *("hoi", "hey", "hello", "hi", "i", "want", "to", "join", "how", "does", "this", "work"),
    *("please", "thanks", "what", "my", "name", "am", "me", "mij", "mijn", "naam", "heet"),
    *("kan", "kun", "mag", "waar", "wie", "welkom", "met", "en", "of", "om", "te", "het"),
    *("saldo", "betaal", "betalen", "aanmelden", "start", "there", "the", "a", "een"),
    *("geen", "niet", "not", "no", "groeten", "groetjes", "namens"),
}


# What the bot keeps of someone before they join; dropped when they join or ask to be forgotten.
STRANGER_FACTS = ("language", "name")


def forget_stranger(ctx: Context) -> None:
    for fact in STRANGER_FACTS:
        ctx.store.members.keep_stranger_fact(ctx.incoming.sender, fact, None, ctx.now)


def offer_to_join(ctx: Context, name: str) -> None:
    """A name typed after the welcome: the command that applies with it, to tap; a "ja"
    to the offer applies with it too (the name is kept for that)."""
    ctx.store.members.keep_stranger_fact(ctx.incoming.sender, "name", name, ctx.now)
    word = "aanmelden" if ctx.language == "nl" else "join"
    command = f"/{word} {name}"
    ctx.reply(
        ctx.t("join.offer_name", name=name, command=command),
        choices=(Choice(ctx.t("join.offer_button", name=name), command),),
    )


@REGISTRY.command("start", nl="start", who=Who.ANYONE)
def start(ctx: Context, words: list[str]) -> None:
    sender = ctx.sender
    group = ctx.settings.group.name
    if sender is None or may_apply_again(ctx, sender):
        ctx.reply(ctx.t("start.stranger", group=group, example=ctx.usage("join")))
    elif sender.status is Status.CANDIDATE:
        ctx.reply(ctx.t("start.candidate", group=group, code=ctx.code(sender)))
    elif sender.status in (Status.INACTIVE, Status.EXTERNAL):
        ctx.reply(ctx.t("start.inactive", group=group))
    else:
        text = ctx.t("start.member", group=group, name=sender.name, howto=howto(ctx))
        if ctx.incoming.chat.is_group:  # the group needn't read it: privately, one line here
            ctx.reply_privately(text)
            ctx.reply(ctx.t("help.sent_privately"))
        else:
            ctx.reply(text)


def howto(ctx: Context) -> Raw:
    return Raw(ctx.t("start.howto", code=ctx.example_code()))


# What members do most, in this order: the short /help shows only these.
EVERYDAY = ("pay", "balance", "history", "offers", "events")
ALL_WORDS = {"alles", "all", "alle", "allemaal"}


@REGISTRY.command("help", nl="hulp", who=Who.ANYONE)
def help_(ctx: Context, words: list[str]) -> None:
    everything = bool(words) and fold(words[0]) in ALL_WORDS
    if words and not everything:
        command = REGISTRY.find(words[0].lstrip("/"))
        if command is None or command not in REGISTRY.visible_to(ctx.sender):
            raise Refusal("help.unknown", word=words[0][:40])
        ctx.reply(describe(ctx, command.name, command.name_in(ctx.language)))
        return
    level = standing(ctx.sender)
    if ctx.incoming.chat.is_group and level == Who.ANYONE:
        # Someone not (yet) a member: one line in the group, not a list for everyone.
        sender, group = ctx.sender, ctx.settings.group.name
        if sender is not None and sender.status is Status.CANDIDATE:  # applied already
            ctx.reply_privately(ctx.t("start.candidate", group=group, code=ctx.code(sender)))
            ctx.reply(ctx.t("help.sent_privately"))
            return
        ctx.reply(ctx.t("help.stranger_in_group", group=group))
        return
    lines = [ctx.t("help.header", group=ctx.settings.group.name)]
    visible = REGISTRY.visible_to(ctx.sender)
    for section in (Who.ANYONE, Who.MEMBER), (Who.COORDINATOR,):
        listed = [c for c in visible if c.who in section]
        if section != (Who.COORDINATOR,) and level > Who.ANYONE and not everything:
            listed = sorted(
                (c for c in listed if c.name in EVERYDAY), key=lambda c: EVERYDAY.index(c.name)
            )
        if not listed:
            continue
        if section == (Who.COORDINATOR,):
            lines.append(ctx.t("help.coordinators"))
        for command in listed:
            if level > Who.ANYONE and command.name in ("start", "join", "claim"):
                continue
            if not everything:
                # The short list shows each command as it is typed, no <placeholders>.
                lines.append(ctx.usage(command.name))
                if command.who < Who.COORDINATOR:
                    lines.append("  " + ctx.t(f"cmd.{command.name}.help"))
                continue
            lines.append(ctx.t(f"cmd.{command.name}.usage"))
            lines.append("  " + ctx.t(f"cmd.{command.name}.help"))
            lines.append("  " + ctx.t("help.example", example=ctx.usage(command.name)))
    lines.append(ctx.t("help.footer" if everything or level == Who.ANYONE else "help.footer_short"))
    if ctx.incoming.chat.is_group and level > Who.ANYONE:
        # The group doesn't need to read it: the list goes privately, one line here.
        ctx.reply_privately("\n".join(lines))
        ctx.reply(ctx.t("help.sent_privately"))
        return
    ctx.reply("\n".join(lines))


def describe(ctx: Context, name: str, word: str) -> str:
    lines = [
        ctx.t(f"cmd.{name}.usage"),
        ctx.t(f"cmd.{name}.help"),
        ctx.t("help.example", example=ctx.usage(name)),
    ]
    if name in ("pay", "request"):
        lines += _partner_help(ctx, name)
    return "\n".join(lines)


def _partner_help(ctx: Context, name: str) -> list[str]:
    """How a partner group's member is paid or asked, when there are partner groups."""
    partners = [
        p
        for p in ctx.store.partners.partners()
        if not p.removed and not (name == "request" and p.manual)  # no bot there to ask
    ]
    if not partners:
        return []
    code = MemberCode.show(partners[0].prefix, 12)
    return [
        ctx.t(
            "help.partner_pay" if name == "pay" else "help.partner_request",
            groups=", ".join(p.name for p in partners),
            example=Raw(ctx.t(f"cmd.{name}.example", code=code)),
        )
    ]


@REGISTRY.command(
    "join", nl="aanmelden", who=Who.ANYONE, where=Where.DIRECT, also=("inschrijven", "lidworden")
)
def join(ctx: Context, words: list[str]) -> None:
    sender = ctx.sender
    group = ctx.settings.group.name
    if sender is not None and may_apply_again(ctx, sender):
        # Applying again, under the name they give now (or the one they had).
        name = _checked_name(ctx, words) if words else sender.name
        member = ctx.store.members.update_member(sender.id, status=Status.CANDIDATE, name=name)
        code = ctx.code(member)
        ctx.reply(ctx.t("join.done", name=member.name, code=code, group=group))
        _tell_coordinators(ctx, member, "join.notify_again", name=member.name, code=code)
        return
    if sender is not None and sender.status is Status.CANDIDATE and words:
        # "/aanmelden jos", then "/aanmelden Jos Van Damme": the name is corrected.
        name = _checked_name(ctx, words)
        if name != sender.name:
            member = ctx.store.members.update_member(sender.id, name=name)
            code = ctx.code(member)
            ctx.reply(ctx.t("join.renamed", name=name, code=code))
            _tell_coordinators(
                ctx, member, "join.renamed_notify", old=sender.name, name=name, code=code
            )
            return
    if sender is not None:
        key = {
            Status.CANDIDATE: "join.already_candidate",
            Status.INACTIVE: "join.inactive",
            Status.EXTERNAL: "join.inactive",  # another group's account: not theirs to use
        }.get(sender.status, "join.already_member")
        raise Refusal(key, code=ctx.code(sender))
    name = _checked_name(ctx, words)
    chosen = ctx.store.members.stranger_fact(ctx.incoming.sender, "language")
    member = ctx.store.members.add_member(
        name=name, language=chosen, status=Status.CANDIDATE, role=Role.MEMBER, at=ctx.now
    )
    ctx.store.members.add_identity(member.id, ctx.incoming.sender, ctx.incoming.sender_name)
    forget_stranger(ctx)
    code = ctx.code(member)
    ctx.reply(ctx.t("join.done", name=name, code=code, group=group))
    _tell_coordinators(ctx, member, "join.notify_coordinators", name=name, code=code)


def _checked_name(ctx: Context, words: list[str]) -> str:
    name = clean_name(words, ctx.settings.group.name, ctx.settings.group.code_prefix)
    if not name:
        raise Refusal("join.missing_name", example=ctx.usage("join"))
    if len(name) > NAME_LIMIT:
        raise Refusal("error.text_too_long", limit=NAME_LIMIT)
    return name


def _tell_coordinators(ctx: Context, member: Member, key: str, **params: object) -> None:
    """Tell the coordinators about a candidate, and point out a name that another member
    already has (someone taking it could be paid in their place)."""
    alike = [
        m
        for m in ctx.store.members.members([Status.ACTIVE, Status.LEAVING, Status.CANDIDATE])
        if m.id != member.id and not m.is_group_account and same_name(m.name, member.name)
    ]

    def notice(t: Translator) -> str:
        text = t(key, **params)
        if alike:
            same = ", ".join(ctx.label(m, t) for m in alike)
            text += "\n" + t("join.same_name", members=Raw(same))
        return text

    ctx.tell_coordinators(notice)


def same_name(one: str, other: str) -> bool:
    """Whether two names could be taken for each other: the words of one all in the
    other, in any order ("Janssens Lies", "geen Lies Janssens" for Lies Janssens)."""
    a, b = set(fold(one).split()), set(fold(other).split())
    return bool(a and b) and (a <= b or b <= a)


def may_apply_again(ctx: Context, member: Member) -> bool:
    """A candidate turned down (or a member who left without ever trading) may apply again."""
    return (
        member.status is Status.INACTIVE
        and not member.forgotten
        and ctx.store.ledger.count_transfers(member.id) == 0
    )


def candidate(ctx: Context, words: list[str], usage_of: str) -> tuple[Member, list[str]]:
    if not words:
        raise Refusal("error.missing_member", usage=ctx.usage(usage_of))
    member, rest = ctx.find_member_in(words, among=(Status.CANDIDATE,))
    if member.status is not Status.CANDIDATE:
        raise Refusal("approve.not_candidate", who=ctx.label(member))
    return member, rest


@REGISTRY.command("approve", nl="goedkeuren", who=Who.COORDINATOR)
def approve(ctx: Context, words: list[str]) -> None:
    found, _ = candidate(ctx, words, "approve")
    kas = ctx.store.members.group_account()
    # booked_by refers to the sender
    locked = ctx.store.members.lock_members([found.id, kas.id, ctx.member.id])
    member = ctx.store.members.update_member(found.id, status=Status.ACTIVE, active_since=ctx.now)
    code = ctx.code(member)
    credit = ctx.settings.minor(ctx.settings.limits.start_credit)
    if credit:
        post(
            ctx.store,
            payer_id=kas.id,
            receiver_id=member.id,
            amount=credit,
            description=ctx.translator_for(member)("approve.start_credit_description"),
            kind=TransferKind.START_CREDIT,
            at=ctx.now,
            booked_by_id=ctx.member.id,
            event_key=ctx.incoming.event_key,
            locked=locked,  # the approval changed the status only
        )
    ctx.reply(ctx.t("approve.done", who=ctx.label(member)))
    group = ctx.settings.group.name
    ctx.tell(
        member,
        lambda t: t(
            "approve.welcome",
            name=member.name,
            group=group,
            code=code,
            balance=t.amount(credit),
            howto=Raw(t("start.howto", code=ctx.example_code(member))),
        ),
    )
    ctx.tell_coordinators(
        lambda t: t("approve.notify", who=ctx.label(member, t), by=ctx.label(ctx.member, t))
    )


@REGISTRY.command("reject", nl="weigeren", who=Who.COORDINATOR)
def reject(ctx: Context, words: list[str]) -> None:
    found, rest = candidate(ctx, words, "reject")
    reason = " ".join(rest).strip()[:200]
    # Asked first: the candidate is told at once, and that can't be taken back.
    ctx.ask(
        PendingAction.REJECT,
        ctx.member,
        lambda t: t("reject.ask", who=ctx.label(found, t)),
        data=json.dumps({"member": found.id, "reason": reason}),
    )


def rejected_id(ctx: Context, question: Pending) -> list[int]:
    return [int(json.loads(question.data or "{}")["member"])]


@REGISTRY.on_answer(PendingAction.REJECT, locks=rejected_id)
def reject_answered(ctx: Context, question: Pending, yes: bool) -> None:
    if not yes:
        ctx.reply(ctx.t("reject.cancelled"))
        return
    if not ctx.member.is_coordinator:
        raise Refusal("error.coordinators_only")
    details = json.loads(question.data or "{}")
    found = ctx.store.members.member(int(details["member"]))
    assert found is not None
    if found.status is not Status.CANDIDATE:
        raise Refusal("approve.not_candidate", who=ctx.label(found))
    member = ctx.store.members.update_member(found.id, status=Status.INACTIVE)
    reason = str(details.get("reason", ""))
    ctx.reply(ctx.t("reject.done", who=ctx.label(member)))
    group = ctx.settings.group.name
    if reason:
        ctx.tell(member, lambda t: t("reject.told_reason", group=group, reason=reason))
    else:
        ctx.tell(member, lambda t: t("reject.told", group=group))


@REGISTRY.command("candidates", nl="kandidaten", who=Who.COORDINATOR, private=True)
def candidates(ctx: Context, words: list[str]) -> None:
    ctx.reply(waiting_candidates(ctx) or ctx.t("candidates.none"))


def waiting_candidates(ctx: Context) -> str | None:
    """Who waits for an intake talk, and how to approve or turn them down; None if no one."""
    waiting = ctx.store.members.members([Status.CANDIDATE])
    if not waiting:
        return None
    lines = [ctx.t("candidates.header", count=len(waiting))]
    lines += [str(ctx.label(member)) for member in waiting]
    lines.append(ctx.t("candidates.footer", code=ctx.code(waiting[0])))
    return "\n".join(lines)


@REGISTRY.command("members", nl="leden", who=Who.MEMBER, private=True, also=("ledenlijst",))
def members(ctx: Context, words: list[str]) -> None:
    show_balance = ctx.settings.group.open_bookkeeping or ctx.member.is_coordinator
    statuses = [Status.ACTIVE, Status.LEAVING]
    if ctx.member.is_coordinator:
        statuses.append(Status.CANDIDATE)
    # The group account last: the count in the header is of the members above it.
    listed = sorted(ctx.store.members.members(statuses), key=lambda m: m.is_group_account)
    page = 1
    if words and words[-1].isdigit():
        page, words = max(1, int(words[-1])), words[:-1]
    wanted = fold(" ".join(words))
    if wanted:  # "/leden peeters": whose name or code holds the word
        listed = [
            m
            for m in listed
            if not m.is_group_account
            and (wanted in fold(m.name) or wanted in fold(f"{ctx.code(m)} {m.old_code or ''}"))
        ]
        if not listed:
            raise Refusal("members.none_found", word=" ".join(words)[:40])
        header = ctx.t("members.header_found", word=" ".join(words)[:40], count=len(listed))
    else:
        header = ctx.t("members.header", group=ctx.settings.group.name, count=len(listed) - 1)
    pages = max(1, -(-len(listed) // MEMBERS_PAGE))
    page = min(page, pages)
    lines = [header]
    for member in listed[(page - 1) * MEMBERS_PAGE : page * MEMBERS_PAGE]:
        marks = ""
        if member.status is not Status.ACTIVE:
            marks = " " + ctx.t(f"status.{member.status.value}")
        elif member.role is Role.COORDINATOR:
            marks = " " + ctx.t("role.coordinator")
        if show_balance:
            lines.append(
                ctx.t(
                    "members.line_balance",
                    who=ctx.label(member, old=True),
                    marks=marks,
                    balance=ctx.t.amount(member.balance),
                )
            )
        else:
            lines.append(ctx.t("members.line", who=ctx.label(member, old=True), marks=marks))
    if page < pages:
        more = " ".join([*words, str(page + 1)])
        lines.append(ctx.t("members.more", page=page, pages=pages, command=Raw(more)))
    ctx.reply("\n".join(lines))


# What people type after /taal: the code, or the language's name in either language.
LANGUAGE_WORDS = {
    **{word: "nl" for word in ("nl", "nederlands", "vlaams", "dutch", "flemish", "be", "nl-be")},
    **{word: "en" for word in ("en", "engels", "english", "eng", "uk", "gb")},
}


@REGISTRY.command("lang", nl="taal", who=Who.ANYONE, also=("language",))
def lang(ctx: Context, words: list[str]) -> None:
    choice = LANGUAGE_WORDS.get(fold(words[0]).strip(".!"), "") if words else ""
    if choice not in LANGUAGES:
        raise Refusal("lang.usage", example=ctx.usage("lang"))
    ctx.language = choice
    if ctx.sender is None:  # remembered until they join, when it becomes theirs
        ctx.store.members.keep_stranger_fact(ctx.incoming.sender, "language", choice, ctx.now)
        ctx.reply(ctx.t("lang.stranger", example=ctx.usage("join")))
        return
    ctx.store.members.update_member(ctx.sender.id, language=choice)
    ctx.reply(ctx.t("lang.done"))


def active_coordinators(ctx: Context, question: Pending | None = None) -> list[int]:
    """Who coordinates now: locked with an answer that may take the last one away."""
    return [m.id for m in ctx.store.members.members([Status.ACTIVE]) if m.is_coordinator]


def lock_with_coordinators(ctx: Context, member_ids: list[int]) -> dict[int, Member]:
    """Lock ``member_ids`` and every active coordinator at once (one order, no deadlock).

    So that two coordinators who leave at the same moment can't both pass
    ``ensure_other_coordinator``: the second waits for the first and sees it gone.
    The answer's claim locked them already (``locks=active_coordinators``).
    """
    return ctx.store.members.lock_members([*member_ids, *active_coordinators(ctx)])


def ensure_other_coordinator(
    ctx: Context, member: Member, locked: dict[int, Member] | None = None
) -> None:
    """The group keeps an active coordinator: the last one can't leave or be forgotten.

    ``locked``: the members ``lock_with_coordinators`` returned, when the answer is applied.
    """
    if not member.is_coordinator:
        return
    seen = locked.values() if locked is not None else ctx.store.members.members([Status.ACTIVE])
    if not any(m.is_coordinator and m.id != member.id for m in seen):
        raise Refusal("coordinator.last", group=ctx.settings.group.name)


def ensure_not_configured(ctx: Context, member: Member, key: str) -> None:
    """A coordinator named in the configuration would come back at their next message."""
    if set(ctx.store.members.identities(member.id)) & ctx.settings.coordinator_identities:
        raise Refusal(key)


@REGISTRY.command("leave", nl="uitstappen", who=Who.MEMBER, where=Where.DIRECT)
def leave(ctx: Context, words: list[str]) -> None:
    member = ctx.member
    if member.status is Status.LEAVING:
        raise Refusal("leave.already", balance=ctx.t.amount(member.balance))
    ensure_not_configured(ctx, member, "leave.configured")
    ensure_other_coordinator(ctx, member)
    group = ctx.settings.group.name
    ctx.ask(PendingAction.LEAVE, member, lambda t: t("leave.ask", group=group))


@REGISTRY.on_answer(PendingAction.LEAVE, locks=active_coordinators)
def leave_answered(ctx: Context, question: Pending, yes: bool) -> None:
    if not yes:
        ctx.reply(ctx.t("leave.cancelled"))
        return
    locked = lock_with_coordinators(ctx, [ctx.member.id])
    member = locked[ctx.member.id]
    ensure_other_coordinator(ctx, member, locked)
    if member.balance == 0:
        member = ctx.store.members.update_member(member.id, status=Status.INACTIVE)
        ctx.store.market.withdraw_listings_of(
            member.id, ctx.now
        )  # their offers and wants go with them
        ctx.reply(ctx.t("leave.closed", group=ctx.settings.group.name))
    else:
        member = ctx.store.members.update_member(member.id, status=Status.LEAVING)
        key = "leave.started_positive" if member.balance > 0 else "leave.started_negative"
        ctx.reply(ctx.t(key, balance=ctx.t.amount(member.balance)))
    balance = member.balance
    ctx.tell_coordinators(
        lambda t: t("leave.notify", who=ctx.label(member, t), balance=t.amount(balance))
    )
