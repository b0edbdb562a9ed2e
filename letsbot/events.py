"""Markets, repair cafés, meetings: scheduling, RSVPs and their announcements."""

from __future__ import annotations

import json
import re
from datetime import datetime

from letsbot.context import Context
from letsbot.domain import Event, EventKind, EventStatus, Pending, PendingAction
from letsbot.errors import Refusal
from letsbot.i18n import Raw, Translator
from letsbot.messages import Outgoing, ToAllGroups
from letsbot.registry import REGISTRY, Who
from letsbot.text import fold
from letsbot.when import WhenError, occurrences, parse_when, split_repeat

TITLE_LIMIT = 120
PLACE_LIMIT = 120
LIST_LIMIT = 10
_ID = re.compile(r"#?([0-9]{1,9})", re.ASCII)

KIND_WORDS = {
    "market": EventKind.MARKET,
    "markt": EventKind.MARKET,
    "repaircafe": EventKind.REPAIRCAFE,
    "repair": EventKind.REPAIRCAFE,
    "meeting": EventKind.MEETING,
    "bijeenkomst": EventKind.MEETING,
    "vergadering": EventKind.MEETING,
    "other": EventKind.OTHER,
    "andere": EventKind.OTHER,
    "ander": EventKind.OTHER,
}
ADD = {"add", "nieuw", "new"}
CANCEL = {"cancel", "annuleer", "annuleren", "afgelast"}
MOVE = {"move", "verplaats", "verplaatsen"}


def describe(t: Translator, event: Event) -> Raw:
    """``Markt #12: Ruilmarkt, za 12 dec 2026 10:00-16:00 @ Parochiezaal``."""
    place = t("event.at_place", place=event.place) if event.place else ""
    return Raw(
        t(
            "event.line",
            kind=Raw(t(f"event.kind.{event.kind.value}")),
            id=event.id,
            title=event.title,
            when=t.event_time(event.starts_at, event.ends_at),
            place=Raw(place),
        )
    )


def announce(ctx: Context, text: str) -> None:
    ctx.replies.append(Outgoing(ToAllGroups(), text))


def group_t(ctx: Context) -> Translator:
    return ctx.translators[ctx.settings.group.language]


EXAMPLES = {
    "cancel": "event.example_cancel",
    "move": "event.example_move",
    "details": "event.example_details",
}


def example(ctx: Context, subcommand: str, event_id: int = 12) -> Raw:
    """A correct example of the subcommand typed (``move``, ``cancel``, ``details``).

    A refusal shows the command the member meant, not the one for scheduling.
    """
    return Raw(ctx.t(EXAMPLES[subcommand], id=event_id))


def when_refusal(ctx: Context, error: WhenError, shown: Raw) -> Refusal:
    return Refusal(f"when.{error.reason}", text=error.text[:40], example=shown)


def find_event(ctx: Context, words: list[str], shown: Raw) -> tuple[Event, list[str]]:
    """The event a number names; ``shown``: the example a refusal gives."""
    match = _ID.fullmatch(words[0]) if words else None
    if match is None:
        raise Refusal("event.which", example=shown)
    event = ctx.store.events.event(int(match.group(1)))
    if event is None:
        raise Refusal("event.unknown", id=match.group(1))
    return event, words[1:]


def require_coordinator(ctx: Context) -> None:
    if not ctx.member.is_coordinator:
        raise Refusal("error.coordinators_only")


@REGISTRY.command("event", nl="activiteit", who=Who.MEMBER)
def event_command(ctx: Context, words: list[str]) -> None:
    first = fold(words[0]) if words else ""
    if first in ADD:
        require_coordinator(ctx)
        add(ctx, words[1:])
    elif first in CANCEL:
        require_coordinator(ctx)
        cancel(ctx, words[1:])
    elif first in MOVE:
        require_coordinator(ctx)
        move(ctx, words[1:])
    else:
        details(ctx, words)


def add(ctx: Context, words: list[str]) -> None:
    kind = KIND_WORDS.get(fold(words[0])) if words else None
    if kind is None:
        raise Refusal("event.kind_unknown", example=ctx.usage("event"))
    try:
        when, rest = parse_when(words[1:], now=ctx.now, tz=ctx.settings.tz)
        rest, repeat = split_repeat(rest, now=ctx.now, tz=ctx.settings.tz)
        series = occurrences(when, repeat)
    except WhenError as error:
        raise when_refusal(ctx, error, ctx.usage("event")) from None
    title_words, place_words = rest, []
    if "@" in rest:
        cut = rest.index("@")
        title_words, place_words = rest[:cut], rest[cut + 1 :]
    title = ctx.text_argument(title_words, usage_of="event", limit=TITLE_LIMIT)
    place = " ".join(place_words).strip()[:PLACE_LIMIT] or None
    draft = {
        "kind": kind.value,
        "title": title,
        "place": place,
        "times": [[o.start.isoformat(), o.end.isoformat() if o.end else None] for o in series],
    }
    preview = Event(
        0, None, kind, title, place, when.start, when.end, EventStatus.SCHEDULED, None, 0
    )
    lines = [ctx.t("event.ask", event=describe(ctx.t, preview))]
    if len(series) > 1:
        shown = ", ".join(str(ctx.t.event_time(o.start, None)) for o in series[1:6])
        more = len(series) - 6
        lines.append(ctx.t("event.ask_series", count=len(series), dates=Raw(shown)))
        if more > 0:
            lines.append(ctx.t("event.ask_more", count=more))
    text = "\n".join(lines)
    ctx.ask(PendingAction.EVENT, ctx.member, lambda t: text, data=json.dumps(draft))


@REGISTRY.on_answer(PendingAction.EVENT)
def add_answered(ctx: Context, question: Pending, yes: bool) -> None:
    if not yes:
        ctx.reply(ctx.t("event.not_saved"))
        return
    draft = json.loads(question.data or "{}")
    saved: list[Event] = []
    for start, end in draft["times"]:
        saved.append(
            ctx.store.events.add_event(
                series_id=saved[0].id if saved else None,
                kind=EventKind(draft["kind"]),
                title=draft["title"],
                place=draft["place"],
                starts_at=datetime.fromisoformat(start),
                ends_at=datetime.fromisoformat(end) if end else None,
                created_by_id=ctx.member.id,
                at=ctx.now,
            )
        )
    first = saved[0]
    ctx.reply(ctx.t("event.saved", event=describe(ctx.t, first), count=len(saved)))
    t = group_t(ctx)
    key = "event.announce_series" if len(saved) > 1 else "event.announce"
    announce(ctx, t(key, event=describe(t, first), count=len(saved), id=first.id))


def cancel(ctx: Context, words: list[str]) -> None:
    event, rest = find_event(ctx, words, example(ctx, "cancel"))
    if event.status is EventStatus.CANCELLED:
        raise Refusal("event.already_cancelled", id=event.id)
    if event.starts_at <= ctx.now:
        raise Refusal("event.past", id=event.id)
    reason = " ".join(rest).strip()[:200]
    event = ctx.store.events.update_event(event.id, cancelled=True, cancel_reason=reason or None)
    ctx.reply(ctx.t("event.cancelled_done", event=describe(ctx.t, event)))
    t = group_t(ctx)
    if reason:
        announce(ctx, t("event.cancelled_reason", event=describe(t, event), reason=reason))
    else:
        announce(ctx, t("event.cancelled", event=describe(t, event)))


def move(ctx: Context, words: list[str]) -> None:
    event, rest = find_event(ctx, words, example(ctx, "move"))
    if event.status is EventStatus.CANCELLED:
        raise Refusal("event.already_cancelled", id=event.id)
    if event.starts_at <= ctx.now:  # what took place stays in the books as it was
        raise Refusal("event.past_move", id=event.id, example=ctx.usage("event"))
    shown = example(ctx, "move", event.id)
    try:
        when, extra = parse_when(rest, now=ctx.now, tz=ctx.settings.tz)
    except WhenError as error:
        raise when_refusal(ctx, error, shown) from None
    if extra:
        raise Refusal("event.move_usage", example=shown)
    t = group_t(ctx)
    old = t.event_time(event.starts_at, event.ends_at)
    end = when.end
    if end is None and event.ends_at is not None:
        end = when.start + (event.ends_at - event.starts_at)  # keep the length
    event = ctx.store.events.update_event(event.id, starts_at=when.start, ends_at=end)
    ctx.reply(ctx.t("event.moved_done", event=describe(ctx.t, event)))
    announce(ctx, t("event.moved", event=describe(t, event), old=old))


def details(ctx: Context, words: list[str]) -> None:
    event, _ = find_event(ctx, words, example(ctx, "details"))
    lines: list[str] = [describe(ctx.t, event)]
    if event.status is EventStatus.CANCELLED:
        lines.append(ctx.t("event.is_cancelled"))
    answers = ctx.store.events.rsvps(event.id)
    going = [member for member, yes in answers if yes]
    lines.append(ctx.t("event.going_count", count=len(going)))
    if going and (ctx.member.is_coordinator or ctx.member.id == event.created_by_id):
        names = ", ".join(ctx.label(m) for m in going)  # labels are markup already
        lines.append(ctx.t("event.going_names", names=Raw(names)))
    mine = next((yes for member, yes in answers if member.id == ctx.member.id), None)
    if mine is not None:
        lines.append(ctx.t("event.you_go" if mine else "event.you_dont"))
    elif event.status is EventStatus.SCHEDULED:
        lines.append(ctx.t("event.how_to_rsvp", id=event.id))
    ctx.reply("\n".join(lines))


@REGISTRY.command("events", nl="activiteiten", who=Who.MEMBER)
def events(ctx: Context, words: list[str]) -> None:
    upcoming = ctx.store.events.events_between(ctx.now, None, LIST_LIMIT)
    if not upcoming:
        ctx.reply(ctx.t("events.none"))
        return
    counts = ctx.store.events.going_counts([e.id for e in upcoming])
    lines = [ctx.t("events.header")]
    for event in upcoming:
        lines.append(
            ctx.t("events.line", event=describe(ctx.t, event), count=counts.get(event.id, 0))
        )
    lines.append(ctx.t("events.footer"))
    ctx.reply("\n".join(lines))


def rsvp(ctx: Context, words: list[str], going: bool) -> None:
    event, _ = find_event(ctx, words, ctx.usage("going" if going else "notgoing"))
    if event.status is EventStatus.CANCELLED:
        raise Refusal("event.already_cancelled", id=event.id)
    if event.starts_at <= ctx.now:
        raise Refusal("event.past", id=event.id)
    ctx.store.events.set_rsvp(event.id, ctx.member.id, going, ctx.now)
    ctx.reply(
        ctx.t("event.going_done" if going else "event.not_going_done", event=describe(ctx.t, event))
    )


@REGISTRY.command("going", nl="ikkom", who=Who.MEMBER)
def going(ctx: Context, words: list[str]) -> None:
    rsvp(ctx, words, True)


@REGISTRY.command("notgoing", nl="ikkomniet", who=Who.MEMBER)
def not_going(ctx: Context, words: list[str]) -> None:
    rsvp(ctx, words, False)
