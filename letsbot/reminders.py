"""Reminders of events in the group channels: each posted once, in good time.

The schedule is the events table; what was posted is the reminders table,
whose unique key (event, offset, due time) is the claim: two processes, a
restart or a clock jump can't post one reminder twice. A reminder missed
while the bot was down is posted late within ``reminders.grace``, else skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from letsbot.clock import Clock
from letsbot.config import Settings
from letsbot.domain import Event
from letsbot.events import describe, rsvp_choices
from letsbot.i18n import Translator
from letsbot.messages import Outgoing, ToAllGroups
from letsbot.outbox import Outbox
from letsbot.ports import Store, UnitOfWork

log = logging.getLogger(__name__)

LATE_AFTER = timedelta(minutes=5)  # posted later than this after its time: say so


@dataclass(frozen=True)
class Due:
    event: Event
    offset: timedelta
    at: datetime


def due_time(event: Event, offset: timedelta, settings: Settings) -> datetime:
    """When to remind. Whole days count in local days, so DST doesn't shift the hour."""
    if offset % timedelta(days=1):
        return event.starts_at - offset
    local = event.starts_at.astimezone(settings.tz).replace(tzinfo=None) - offset
    return local.replace(tzinfo=settings.tz).astimezone(event.starts_at.tzinfo)


class Reminders:
    def __init__(
        self, settings: Settings, uow: UnitOfWork, clock: Clock, t: Translator, outbox: Outbox
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.uow = uow
        self.clock = clock
        self.t = t
        self.offsets = sorted(set(settings.reminders.offsets), reverse=True)
        self.reach = max(self.offsets, default=timedelta()) + timedelta(days=1)

    def _dues(self, store: Store, after: datetime, until: datetime) -> list[Due]:
        """Reminders due in (after, until], soonest first."""
        found: list[Due] = []
        for event in store.events.events_between(after, until + self.reach, limit=10_000):
            for offset in self.offsets:
                at = due_time(event, offset, self.settings)
                if after < at <= until:
                    found.append(Due(event, offset, at))
        return sorted(found, key=lambda d: (d.at, d.event.starts_at, d.event.id))

    def next_due(self, until: datetime) -> datetime | None:
        """The first reminder time after now and up to ``until`` (for a virtual clock)."""
        with self.uow.transaction() as store:
            dues = self._dues(store, self.clock.now(), until)
        return dues[0].at if dues else None

    def post_due(self) -> list[Outgoing]:
        """Claim every reminder that is due now and say what to post."""
        now = self.clock.now()
        grace = self.settings.reminders.grace
        window_start = now - grace - self.reach  # also finds the ones to skip, once
        posts: list[Outgoing] = []
        with self.uow.transaction() as store:
            dues = [d for d in self._dues(store, window_start, now) if d.event.starts_at > now]
            handled = store.claims.handled_reminders([d.event.id for d in dues])
            for due in dues:
                seconds = int(due.offset.total_seconds())
                if (due.event.id, seconds, due.at) in handled:
                    continue
                late = now - due.at
                if late > grace:
                    if store.claims.claim_reminder(due.event.id, seconds, due.at, now, "skipped"):
                        # Mostly a week-ahead reminder of an event planned four days ahead:
                        # normal, no warning; the claim keeps it, with outcome "skipped".
                        log.info(
                            "reminder skipped: event=%s offset=%ss due=%s, %s late",
                            due.event.id,
                            seconds,
                            due.at.isoformat(),
                            late,
                        )
                    continue
                outcome = "late" if late > LATE_AFTER else "posted"
                if store.claims.claim_reminder(due.event.id, seconds, due.at, now, outcome):
                    text = self._text(due, now, late > LATE_AFTER)
                    choices = rsvp_choices(self.t, due.event.id)
                    posts.append(Outgoing(ToAllGroups(), text, choices))
                    log.info("reminder %s: event=%s offset=%ss", outcome, due.event.id, seconds)
            posts = self.outbox.queue(store, posts)  # sent once: claimed and queued together
        return posts

    def _text(self, due: Due, now: datetime, late: bool) -> str:
        t = self.t
        key = "event.reminder_late" if late else "event.reminder"
        ahead = t.ahead(due.event.starts_at - now)
        return t(key, event=describe(t, due.event), ahead=ahead, id=due.event.id)
