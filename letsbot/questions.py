"""Answers to Ja/Nee questions: which question an answer belongs to, claimed once.

A question belongs to the chat it was asked in (a group, or the asked
person's direct chat) and to its message. A typed "ja" answers only that
person's open question in that chat; a reply, button or reaction answers
exactly the question it is attached to; ``/ja 12`` names one. With several
open questions in one chat, a bare "ja" asks which one and changes nothing.

The answer is claimed here, before its handler runs, in the transaction of
its effect: the accounts it touches are locked first (in id order, the one
lock order of every transaction), then the open row is closed by a
conditional update. Of two answers handled at the same moment, one finds the
question no longer open and changes nothing.
"""

from __future__ import annotations

import re
from datetime import timedelta

from letsbot.context import Context
from letsbot.domain import Pending, PendingStatus
from letsbot.errors import Refusal
from letsbot.i18n import Raw
from letsbot.messages import Chat, Outcome, Outgoing
from letsbot.registry import REGISTRY, Who, standing

# In a direct chat (and on a button) an answer is said as people say it: a yes
# or no word, perhaps with polite words after it ("ja hoor", "nee dank je").
# In a group only the unmistakable words count, alone, so that "ok" in a
# conversation is just conversation.
YES = {
    *("ja", "jaa", "jaaa", "jawel", "jep", "jup", "j", "zeker", "graag", "akkoord", "goed"),
    *("prima", "ok", "oké", "oke", "okay", "okido", "yes", "yep", "yeah", "y", "sure", "1"),
    *("👍", "✅", "✔", "✔️"),
}
NO = {
    *("nee", "neen", "nein", "n", "neenee", "annuleer", "annuleren", "stop", "laat", "niet"),
    *("no", "nope", "cancel", "2", "👎", "❌"),
}
# Said after the answer word without changing it.
POLITE = {
    *("hoor", "graag", "dank", "dankje", "dankjewel", "bedankt", "merci", "je", "u", "wel"),
    *("maar", "doe", "is", "goed", "zo", "zeker", "natuurlijk", "prima", "please"),
    *("thanks", "thank", "you", "sure", "fine", "zitten", "liever", "doen"),
}
# After a no only ("nee, toch niet"): a wrong no costs nothing, a wrong yes may cost money.
NO_TAIL = {"toch", "niet", "nu", "even", "sorry", "vergissing", "fout", "not", "now", "mistake"}
# Whole phrases whose first word is no answer word of its own.
PHRASES = {"doe maar": True, "is goed": True, "liever niet": False, "niet doen": False}
# A bare "1" in a group is no answer: a proposal's "1 Voor" posted just after a
# payment question would make a vote a Ja. Replying to the question with "1" still is.
GROUP_WORDS = {"ja", "yes", "nee", "neen", "no"}
GROUP_ANSWER_WINDOW = timedelta(minutes=10)
_NUMBER = re.compile(r"#?([0-9]{1,9})", re.ASCII)
_PUNCTUATION = re.compile(r"[.!?,;:]+")


def parse_answer(text: str, *, in_group: bool = False) -> bool | None:
    """True for yes, False for no, None when ``text`` is no answer."""
    if "?" in text:
        return None  # "ja?" asks what is meant; it consents to nothing
    if in_group:
        word = text.strip().rstrip(".!").lower()
        return None if word not in GROUP_WORDS else word in YES
    words = _PUNCTUATION.sub(" ", text.lower()).split()
    if not words or len(words) > 4:
        return None
    phrase = PHRASES.get(" ".join(words[:2]))
    if phrase is not None and all(word in POLITE for word in words[2:]):
        return phrase
    first, rest = words[0], words[1:]
    if first not in YES and first not in NO:
        return None
    said = first in YES
    # "ja ja", "ja hoor", "nee dank je": the rest is polite, or the same answer again.
    if all(word in POLITE or (word in YES if said else word in NO) for word in rest):
        return said
    if not said and all(word in POLITE or word in NO or word in NO_TAIL for word in rest):
        return False
    return None


def asked_here(question: Pending, chat: Chat) -> bool:
    """Whether an answer from ``chat`` may answer ``question``."""
    if question.chat_id is None:  # the asked person's direct chat, on any of their platforms
        return not chat.is_group
    return chat.is_group and (question.platform, question.chat_id) == (chat.platform, chat.chat_id)


def answer(
    ctx: Context, yes: bool, question_id: int | None = None, *, typed_command: bool = False
) -> Outcome:
    """Apply ``yes`` or no to the question it belongs to, once.

    ``typed_command``: a ``/ja`` meant for the bot, which a group then answers too.
    """
    sender = ctx.sender
    chat = ctx.incoming.chat
    question_id = question_id if question_id is not None else ctx.incoming.answers
    if sender is None:
        if chat.is_group and not typed_command:
            return Outcome.IGNORED  # a stranger said "ja" in a conversation
        if yes:  # "ja hoor" to the welcome's "Wil je lid worden?"
            raise Refusal("join.ask_name")
        raise Refusal("confirm.nothing")
    if question_id is not None:
        named = ctx.store.questions.pending(question_id)
        if named is None or named.asked_id != sender.id:
            if chat.is_group and ctx.incoming.answers is not None:
                return Outcome.IGNORED  # someone replied "ja" to another's question
            raise Refusal("confirm.not_yours")
        question = _named(ctx, named)
    else:
        waiting = ctx.store.questions.open_pending(sender.id)
        here = [q for q in waiting if asked_here(q, chat)]
        if not here:
            if chat.is_group and not typed_command:
                return Outcome.IGNORED  # someone said "ja" in a conversation
            if chat.is_group:
                raise Refusal("confirm.in_direct" if waiting else "confirm.nothing")
            in_a_group = any(q.chat_id is not None for q in waiting)
            raise Refusal("confirm.in_group" if in_a_group else "confirm.nothing")
        live = [q for q in here if q.expires_at > ctx.now]
        if chat.is_group and not typed_command and ctx.incoming.answers is None:
            # A bare "ja" in a group answers only a question just asked there: hours
            # later it belongs to another conversation (or to a vote's "1").
            fresh = [q for q in live if ctx.now - q.created_at <= GROUP_ANSWER_WINDOW]
            if live and not fresh:
                ctx.reply_privately(ctx.t("confirm.stale_in_group"))
                return Outcome.IGNORED
            live = fresh
        # One question here, someone else's request that came in while the member's
        # own waits in a group: a "ja" meant for that one must not pay this one.
        slipped_in = [
            q
            for q in live
            if q.requested_by_id != sender.id
            and any(
                o.chat_id is not None and o.expires_at > ctx.now and o.created_at <= q.created_at
                for o in waiting
            )
        ]
        if len(live) > 1 or (slipped_in and not chat.is_group):
            _ask_which(ctx, live)
            return Outcome.WHICH
        question = live[0] if live else here[-1]  # only expired ones: say so
        newest = ctx.store.questions.newest_asked(
            sender.id, chat.platform, chat.chat_id if chat.is_group else None
        )
        if live and newest is not None and newest.id > question.id:
            # The newest question here is answered already: a "ja" now is that answer
            # again (a double tap, a button then a word), not a word for an older one.
            _ask_which(ctx, [question], intro=ctx.t("confirm.after_answered", answered=newest.id))
            return Outcome.WHICH
    return _apply(ctx, question, yes)


def _named(ctx: Context, question: Pending) -> Pending:
    """The sender's question a reply, button or ``/ja 12`` names, if it may be answered here."""
    if question.status is PendingStatus.EXPIRED:
        raise Refusal("confirm.expired")
    if question.status is not PendingStatus.OPEN:
        # Which answer it had, or that a newer question took its place: never a bare
        # "already answered" for a question that the member never answered.
        raise Refusal(f"confirm.was_{question.status.value}", id=question.id)
    if not asked_here(question, ctx.incoming.chat):
        raise Refusal("confirm.in_group" if question.chat_id else "confirm.in_direct")
    return question


def _apply(ctx: Context, question: Pending, yes: bool) -> Outcome:
    sender = ctx.member
    if question.expires_at <= ctx.now:
        if not ctx.store.questions.close_pending(question.id, PendingStatus.EXPIRED):
            raise Refusal("confirm.already_answered")
        ctx.answered = question.id
        ctx.closed.append(question.id)
        ctx.reply(ctx.t("confirm.expired"))
        return Outcome.EXPIRED
    if standing(sender) < Who.MEMBER and question.action not in REGISTRY.open_answers:
        raise Refusal("error.inactive", group=ctx.settings.group.name)
    touched = {question.asked_id, question.requested_by_id, sender.id}
    touched |= {i for i in (question.payer_id, question.receiver_id) if i is not None}
    extra = REGISTRY.answer_locks.get(question.action)
    if extra is not None:
        touched |= set(extra(ctx, question))
    ctx.locked = ctx.store.members.lock_members(sorted(touched))
    status = PendingStatus.ACCEPTED if yes else PendingStatus.DECLINED
    if not ctx.store.questions.close_pending(question.id, status):
        raise Refusal("confirm.already_answered")  # by a message handled at the same time
    ctx.answered = question.id
    ctx.closed.append(question.id)
    try:
        REGISTRY.answer_handlers[question.action](ctx, question, yes)
    except Refusal as refusal:
        refusal.closes = question.id
        raise
    return Outcome.APPLIED


def _ask_which(ctx: Context, questions: list[Pending], intro: str | None = None) -> None:
    """Several questions wait here (or one here, one in a group; or an older one after
    the newest was answered): show each again with its own answer, book nothing."""
    t = ctx.t
    if intro is not None:
        ctx.reply(intro)
    elif len(questions) == 1:
        ctx.reply(t("confirm.which_also_group"))
    else:
        ctx.reply(t("confirm.which", count=len(questions)))
    target, _ = ctx.reply_target()  # the questions stand on their own, not as replies
    for question in questions:
        text = t("confirm.which_one", id=question.id, question=_shown(ctx, question))
        ctx.replies.append(
            Outgoing(
                target,
                text,
                ctx.yes_no(t),
                ctx.incoming.sender,
                None,
                question=question.id,
                language=t.language,
            )
        )


def _shown(ctx: Context, question: Pending) -> Raw:
    """The question as it was asked (already markup)."""
    return Raw(question.text or ctx.t("confirm.earlier_question"))


def _answer_command(ctx: Context, words: list[str], yes: bool) -> None:
    """``/ja`` answers as a typed "ja"; ``/ja 12`` answers question 12."""
    number = _NUMBER.fullmatch(words[0]) if len(words) == 1 else None
    if words and number is None:
        raise Refusal("confirm.usage", usage=ctx.usage("yes" if yes else "no"))
    ctx.outcome = answer(ctx, yes, int(number[1]) if number else None, typed_command=True)


@REGISTRY.command("yes", nl="ja", who=Who.ANYONE, listed=False)
def yes_command(ctx: Context, words: list[str]) -> None:
    _answer_command(ctx, words, True)


@REGISTRY.command("no", nl="nee", who=Who.ANYONE, listed=False)
def no_command(ctx: Context, words: list[str]) -> None:
    _answer_command(ctx, words, False)
