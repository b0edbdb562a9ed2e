"""Markets, repair cafés, meetings: scheduling, RSVPs and their announcements."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta

from babel.dates import format_date

from letsbot.context import Context
from letsbot.domain import Event, EventKind, EventStatus, Pending, PendingAction
from letsbot.errors import Refusal
from letsbot.i18n import LANGUAGES, Raw, Translator, catalog
from letsbot.markup import escape
from letsbot.messages import Choice, Outgoing, ToAllGroups
from letsbot.registry import REGISTRY, Who
from letsbot.text import fold
from letsbot.when import (
    Repeat,
    WhenError,
    names_a_day,
    occurrences,
    open_end,
    parse_when,
    split_repeat,
)

TITLE_LIMIT = 120
PLACE_LIMIT = 120
LIST_LIMIT = 10
_ID = re.compile(r"#?([0-9]{1,9})", re.ASCII)

# Keys as kind_key leaves them: folded, without spaces, hyphens or apostrophes, so
# "Repair Café", "repair-cafe" and "repaircafé" are one word.
KIND_WORDS = {
    "market": EventKind.MARKET,
    "markt": EventKind.MARKET,
    "ruilmarkt": EventKind.MARKET,
    "repaircafe": EventKind.REPAIRCAFE,
    "repair": EventKind.REPAIRCAFE,
    "herstelcafe": EventKind.REPAIRCAFE,
    "reparatiecafe": EventKind.REPAIRCAFE,
    "meeting": EventKind.MEETING,
    "bijeenkomst": EventKind.MEETING,
    "vergadering": EventKind.MEETING,
    "other": EventKind.OTHER,
    "andere": EventKind.OTHER,
    "ander": EventKind.OTHER,
    "activiteit": EventKind.OTHER,
}
# Words that put a place at the end of a title: "Wintermarkt in de parochiezaal".
PLACE_WORDS = frozenset({"in", "op", "bij", "te", "at"})
PLACE_WORDS_MAX = 5
ADD = {"add", "nieuw", "new"}
CANCEL = {"cancel", "annuleer", "annuleren", "afgelast"}
MOVE = {"move", "verplaats", "verplaatsen"}


def describe(t: Translator, event: Event) -> Raw:
    """``Markt #12: Ruilmarkt, za 12 dec 2026 10:00-16:00 @ Parochiezaal``."""
    place = t("event.at_place", place=event.place) if event.place else ""
    kind = t(f"event.kind.{event.kind.value}")
    key = "event.line" if event.id else "event.line_unsaved"  # a preview has no number yet
    kind_key = f"event.kind.{event.kind.value}"
    if fold(event.title) in {fold(catalog(language)[kind_key]) for language in LANGUAGES}:
        key += "_untitled"  # "Markt #3, za 12 dec", not "Markt #3: Markt, za 12 dec"
    return Raw(
        t(
            key,
            kind=Raw(kind),
            id=event.id,
            title=event.title,
            when=t.event_time(event.starts_at, event.ends_at),
            place=Raw(place),
        )
    )


def announce(ctx: Context, text: str, choices: tuple[Choice, ...] = ()) -> None:
    ctx.replies.append(Outgoing(ToAllGroups(), text, choices))


def rsvp_choices(t: Translator, event_id: int) -> tuple[Choice, ...]:
    """Buttons (reactions on Matrix) by which whoever presses says they come, or not."""
    words = []
    for name in ("going", "notgoing"):
        command = REGISTRY.find(name)
        assert command is not None
        words.append(command.name_in(t.language))
    return (
        Choice(t("event.choice_going"), f"/{words[0]} {event_id}"),
        Choice(t("event.choice_not_going"), f"/{words[1]} {event_id}"),
    )


def group_t(ctx: Context) -> Translator:
    return ctx.translators[ctx.settings.group.language]


EXAMPLES = {
    "cancel": "event.example_cancel",
    "move": "event.example_move",
    "details": "event.example_details",
}


def example(ctx: Context, subcommand: str, event_id: int | None = None) -> Raw:
    """A correct example of the subcommand typed (``move``, ``cancel``, ``details``).

    A refusal shows the command the member meant, not the one for scheduling.
    """
    return Raw(ctx.t(EXAMPLES[subcommand], id=event_id or ctx.example_event()))


def kind_key(text: str) -> str:
    return re.sub(r"[\s'’-]", "", fold(text))


# Words that end in a kind name it: "Kerstmarkt", "Paasmarkt", "Buurtrepaircafé".
KIND_ENDINGS = (
    ("markt", EventKind.MARKET),
    ("market", EventKind.MARKET),
    ("repaircafe", EventKind.REPAIRCAFE),
    ("herstelcafe", EventKind.REPAIRCAFE),
    ("vergadering", EventKind.MEETING),
)


def read_kind(words: list[str]) -> tuple[EventKind | None, int]:
    """The kind the first one or two words name (``repair café``) and how many words it took."""
    if len(words) > 1 and (kind := KIND_WORDS.get(kind_key(words[0] + words[1]))):
        return kind, 2
    return (KIND_WORDS.get(kind_key(words[0])), 1) if words else (None, 0)


def day_name(t: Translator, on: date) -> str:
    return str(format_date(on, "EEEE", locale=t.language))


def when_refusal(
    ctx: Context, error: WhenError, shown: Raw, typed: list[str] | None = None
) -> Refusal:
    """The refusal for a date or time; ``typed``: the command as typed, words from the date on
    preceded by the command words, so a wrong weekday gets the command with the right one."""
    if error.reason == "weekday_mismatch" and error.on is not None:
        typed_day = error.on + timedelta(days=((error.typed_weekday or 0) - error.on.weekday()) % 7)
        if typed is not None and error.at is not None and error.at < len(typed):
            fixed = [*typed[: error.at], day_name(ctx.t, error.on), *typed[error.at + 1 :]]
            shown = Raw(escape(" ".join(fixed)))
        return Refusal(
            "when.weekday_mismatch",
            date=error.text.partition(" ")[2][:40],
            actual=day_name(ctx.t, error.on),
            typed=day_name(ctx.t, typed_day),
            example=shown,
        )
    return Refusal(f"when.{error.reason}", text=error.text[:40], example=shown)


def half_year(first: date) -> str:
    """An end that fits an example for a repeat starting on ``first``: ``1/6/2027``."""
    month = first.month + 5
    on = date(first.year + month // 12, month % 12 + 1, 1)
    return f"{on.day}/{on.month}/{on.year}"


def split_place(words: list[str]) -> tuple[list[str], list[str], bool]:
    """Title and place words, and whether the place was read from 'in', 'op', 'bij', 'te'.

    An '@' decides: what follows the first one is the place (nothing after it: no place).
    Without one, the LAST 'in', 'op', 'bij', 'at' or 'te' after the first word starts the
    place (or a first 'in', 'bij': "in het Buurthuis") when 1 to 5 words follow it,
    none of them naming a day ("Ruilen op zondag" keeps its title) and, after 'te', a
    capital ("te Gent", not "te koop").
    """
    if "@" in words:
        cut = words.index("@")
        return words[:cut], words[cut + 1 :], False
    found = [
        i
        for i, word in enumerate(words)
        if fold(word) in PLACE_WORDS
        # first, "in"/"bij" is a place ("in de parochiezaal"); "Op stap" is a title
        and (i > 0 or fold(word) in ("in", "bij", "at"))
    ]
    if not found:
        return words, [], False
    cut = found[-1]
    place = words[cut + 1 :]
    if not 1 <= len(place) <= PLACE_WORDS_MAX or any(names_a_day(word) for word in place):
        return words, [], False
    if fold(words[cut]) == "te" and not place[0][:1].isupper():
        return words, [], False
    return words[:cut], place, True


def find_event(ctx: Context, words: list[str], shown: Raw) -> tuple[Event, list[str]]:
    """The event a number names; ``shown``: the example a refusal gives."""
    match = _ID.fullmatch(words[0]) if words else None
    if match is None:
        if not ctx.store.events.events_between(ctx.now, None, 1):
            raise Refusal("events.none")  # no example to give: none is planned
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
    kind, used = read_kind(words)
    named = None
    if kind is None and words:  # "Kerstmarkt": a market, and its title if none follows
        kind = next((k for end, k in KIND_ENDINGS if kind_key(words[0]).endswith(end)), None)
        named = words[0] if kind is not None else None
    if kind is None:
        raise Refusal("event.kind_unknown", example=ctx.usage("event"))
    typed = [*str(ctx.usage("event")).split()[:2], *words]  # "/activiteit nieuw" and the rest
    shown = ctx.usage("event")
    before = len(typed) - len(words) + used  # where the date starts in typed
    try:
        when, after_when = parse_when(words[used:], now=ctx.now, tz=ctx.settings.tz)
    except WhenError as error:
        raise when_refusal(ctx, error.shifted(before), shown, typed) from None
    before = len(typed) - len(after_when)
    try:
        rest, repeat = split_repeat(after_when, now=ctx.now, tz=ctx.settings.tz)
        open_ended = repeat is not None and repeat.until is None
        if repeat is not None and repeat.until is None:
            until = open_end(when.start.date())
            repeat = Repeat(repeat.unit, repeat.interval, repeat.nth_weekday, until)
        series = occurrences(when, repeat)
    except WhenError as error:
        raise when_refusal(ctx, error.shifted(before), shown, typed) from None
    title_words, place_words, guessed = split_place(rest)
    guessed = guessed and bool(title_words)  # no title typed: nothing to have taken from it
    # No title typed: the word that named the kind ("Kerstmarkt"), or the kind ("Markt").
    title_words = title_words or [
        named or catalog(ctx.settings.group.language)[f"event.kind.{kind.value}"]
    ]
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
    if guessed:
        # With an @ after the place, its words stay in the title.
        cut = before + len(rest)
        fixed = [*typed[:cut], "@", *typed[cut:]]
        lines.append(
            ctx.t(
                "event.ask_place",
                title=title,
                place=place or "",
                example=Raw(escape(" ".join(fixed))),
            )
        )
    if len(series) > 1:
        dates = ", ".join(str(ctx.t.event_time(o.start, None)) for o in series[1:6])
        more = len(series) - 6
        lines.append(ctx.t("event.ask_series", count=len(series), dates=Raw(dates)))
        if more > 0:
            lines.append(ctx.t("event.ask_more", count=more))
    if open_ended:
        lines.append(
            ctx.t(
                "event.ask_open_end",
                last=ctx.t.date(series[-1].start.date()),
                count=len(series),
                until=half_year(series[0].start.date()),
            )
        )
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
    text = t(key, event=describe(t, first), count=len(saved), id=first.id)
    announce(ctx, text, rsvp_choices(t, first.id))


def ensure_changeable(event: Event, now: datetime, past_key: str, example: Raw) -> None:
    if event.status is EventStatus.CANCELLED:
        raise Refusal("event.already_cancelled", id=event.id)
    if event.starts_at <= now:  # what took place stays in the books as it was
        raise Refusal(past_key, id=event.id, example=example)


def cancel(ctx: Context, words: list[str]) -> None:
    event, rest = find_event(ctx, words, example(ctx, "cancel"))
    ensure_changeable(event, ctx.now, "event.past", ctx.usage("event"))
    reason = " ".join(rest).strip()[:200]
    # Asked first: every member is told at once, and that can't be taken back.
    change = {"event": event.id, "cancel": True, "reason": reason}
    text = ctx.t("event.ask_cancel", event=describe(ctx.t, event))
    ctx.ask(PendingAction.EVENT_CHANGE, ctx.member, lambda t: text, data=json.dumps(change))


def move(ctx: Context, words: list[str]) -> None:
    event, rest = find_event(ctx, words, example(ctx, "move"))
    ensure_changeable(event, ctx.now, "event.past_move", ctx.usage("event"))
    shown = example(ctx, "move", event.id)
    typed = [*str(shown).split()[:3], *rest]  # "/activiteit verplaats 12" and the rest
    try:
        when, extra = parse_when(rest, now=ctx.now, tz=ctx.settings.tz)
    except WhenError as error:
        raise when_refusal(ctx, error.shifted(3), shown, typed) from None
    if extra:
        raise Refusal("event.move_usage", example=shown)
    end = when.end
    if end is None and event.ends_at is not None:
        end = when.start + (event.ends_at - event.starts_at)  # keep the length
    change = {
        "event": event.id,
        "start": when.start.isoformat(),
        "end": end.isoformat() if end else None,
    }
    text = ctx.t(
        "event.ask_move",
        event=describe(ctx.t, event),
        when=ctx.t.event_time(when.start, end),
    )
    ctx.ask(PendingAction.EVENT_CHANGE, ctx.member, lambda t: text, data=json.dumps(change))


@REGISTRY.on_answer(PendingAction.EVENT_CHANGE)
def change_answered(ctx: Context, question: Pending, yes: bool) -> None:
    if not yes:
        ctx.reply(ctx.t("event.not_changed"))
        return
    require_coordinator(ctx)
    change = json.loads(question.data or "{}")
    event = ctx.store.events.event(int(change["event"]))
    if event is None:
        raise Refusal("event.unknown", id=change["event"])
    t = group_t(ctx)
    if change.get("cancel"):
        # Checked again: someone else may have cancelled it, or it began, meanwhile.
        ensure_changeable(event, ctx.now, "event.past", ctx.usage("event"))
        reason = str(change.get("reason") or "")
        event = ctx.store.events.update_event(
            event.id, cancelled=True, cancel_reason=reason or None
        )
        ctx.reply(ctx.t("event.cancelled_done", event=describe(ctx.t, event)))
        if reason:
            announce(ctx, t("event.cancelled_reason", event=describe(t, event), reason=reason))
        else:
            announce(ctx, t("event.cancelled", event=describe(t, event)))
        tell_who_comes(ctx, event, "event.cancelled_you")
        return
    ensure_changeable(event, ctx.now, "event.past_move", ctx.usage("event"))
    old = t.event_time(event.starts_at, event.ends_at)
    start = datetime.fromisoformat(change["start"])
    end = datetime.fromisoformat(change["end"]) if change.get("end") else None
    event = ctx.store.events.update_event(event.id, starts_at=start, ends_at=end)
    ctx.reply(ctx.t("event.moved_done", event=describe(ctx.t, event)))
    announce(ctx, t("event.moved", event=describe(t, event), old=old))
    tell_who_comes(ctx, event, "event.moved_you")


def tell_who_comes(ctx: Context, event: Event, key: str) -> None:
    """Those who said they come hear it privately too: not everyone reads the group."""
    for member, going in ctx.store.events.rsvps(event.id):
        if going and member.id != ctx.member.id:
            ctx.tell(member, lambda t: t(key, event=describe(t, event)))


def details(ctx: Context, words: list[str]) -> None:
    event, _ = find_event(ctx, words, example(ctx, "details"))
    lines: list[str] = [describe(ctx.t, event)]
    if event.status is EventStatus.CANCELLED:
        lines.append(ctx.t("event.is_cancelled"))
    answers = ctx.store.events.rsvps(event.id)
    going = [member for member, yes in answers if yes]
    cancelled = event.status is EventStatus.CANCELLED
    if not cancelled:
        lines.append(ctx.t.counted("event.going_count", len(going)))
    if going and (ctx.member.is_coordinator or ctx.member.id == event.created_by_id):
        names = ", ".join(ctx.label(m) for m in going)  # labels are markup already
        key = "event.had_said_names" if cancelled else "event.going_names"
        lines.append(ctx.t(key, names=Raw(names)))
    mine = next((yes for member, yes in answers if member.id == ctx.member.id), None)
    if cancelled:
        pass  # whether you come to what won't take place says nothing
    elif mine is not None:
        lines.append(ctx.t("event.you_go" if mine else "event.you_dont"))
    elif event.status is EventStatus.SCHEDULED:
        lines.append(ctx.t("event.how_to_rsvp", id=event.id))
    ctx.reply("\n".join(lines))


@REGISTRY.command("events", nl="activiteiten", who=Who.MEMBER, also=("agenda", "kalender"))
def events(ctx: Context, words: list[str]) -> None:
    upcoming = ctx.store.events.events_between(ctx.now, None, LIST_LIMIT)
    if not upcoming:
        ctx.reply(ctx.t("events.none"))
        return
    counts = ctx.store.events.going_counts([e.id for e in upcoming])
    lines = [ctx.t("events.header")]
    for event in upcoming:
        lines.append(
            ctx.t.counted("events.line", counts.get(event.id, 0), event=describe(ctx.t, event))
        )
    lines.append(ctx.t("events.footer", id=upcoming[0].id))
    ctx.reply("\n".join(lines))


def rsvp(ctx: Context, words: list[str], going: bool) -> None:
    event, _ = find_event(ctx, words, ctx.usage("going" if going else "notgoing"))
    if event.status is EventStatus.CANCELLED:
        raise Refusal("event.already_cancelled", id=event.id)
    if event.starts_at <= ctx.now:
        raise Refusal("event.past", id=event.id)
    ctx.store.events.set_rsvp(event.id, ctx.member.id, going, ctx.now)
    key = "event.going_done" if going else "event.not_going_done"
    if ctx.incoming.chat.is_group and not ctx.incoming.pressed:
        key += "_named"  # the group reads it: "je" would be no one
    ctx.reply(ctx.t(key, who=ctx.label(ctx.member), event=describe(ctx.t, event)))


@REGISTRY.command("going", nl="ikkom", who=Who.MEMBER)
def going(ctx: Context, words: list[str]) -> None:
    rsvp(ctx, words, True)


@REGISTRY.command("notgoing", nl="ikkomniet", who=Who.MEMBER)
def not_going(ctx: Context, words: list[str]) -> None:
    rsvp(ctx, words, False)
