"""What the marketplace sends by itself: expiry notices to owners, and the weekly digest.

As with reminders, the tables are the schedule and a unique row is the claim:
a notice is keyed on its listing and expiry time (an extended listing gets a
fresh one), a digest on its due time, so a restart, a clock jump or a second
process never sends one twice. A notice missed while the bot was down is
still sent while the listing is online; a digest only within
``reminders.grace``, else it is skipped and logged.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

from letsbot.domain import Listing, ListingKind, Member, MemberCode
from letsbot.i18n import Raw
from letsbot.jobs import Job
from letsbot.market import NOUN, describe, last_day
from letsbot.markup import escape
from letsbot.messages import Outgoing, ToAllGroups, ToPerson
from letsbot.ports import Store

log = logging.getLogger(__name__)

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
WEEK = timedelta(days=7)
DIGEST_SHOWN = 20  # listings of each kind in one digest
DIGEST_TEXT = 100  # characters of each listing's text in the digest


class MarketSchedule(Job):
    @property
    def weekday(self) -> int:
        return WEEKDAYS.index(self.settings.reminders.digest_weekday)

    # when
    def _digest_on(self, day: date) -> datetime:
        local = datetime.combine(day, self.settings.reminders.digest_clock, tzinfo=self.settings.tz)
        return local.astimezone(UTC)

    def last_digest(self, now: datetime) -> datetime:
        """The latest digest time at or before ``now`` (local weekday and time)."""
        today = now.astimezone(self.settings.tz).date()
        day = today - timedelta(days=(today.weekday() - self.weekday) % 7)
        moment = self._digest_on(day)
        return moment if moment <= now else self._digest_on(day - WEEK)

    def _week_after(self, moment: datetime) -> datetime:
        return self._digest_on(moment.astimezone(self.settings.tz).date() + WEEK)

    def _week_before(self, moment: datetime) -> datetime:
        return self._digest_on(moment.astimezone(self.settings.tz).date() - WEEK)

    def next_due(self, until: datetime) -> datetime | None:
        """The first notice or digest time after now and up to ``until`` (for a virtual clock)."""
        now = self.clock.now()
        found = [self._week_after(self.last_digest(now))]
        with self.uow.transaction() as store:
            notice = store.market.next_notice(now, until)
        if notice is not None:
            found.append(notice)
        first = min(found)
        return first if first <= until else None

    # what
    def post_due(self) -> list[Outgoing]:
        """Claim every notice and the digest that are due now, and say what to send."""
        now = self.clock.now()
        with self.uow.transaction() as store:
            # Claimed and queued in one transaction: sent once, even across a crash.
            return self.outbox.queue(store, self._notices(store, now) + self._digest(store, now))

    def _notices(self, store: Store, now: datetime) -> list[Outgoing]:
        sent: list[Outgoing] = []
        for listing, owner in store.market.notices_due(now):
            reached = store.members.identities(owner.id)
            outcome = "sent" if reached else "unreachable"
            if not store.claims.claim_notice(listing.id, listing.expires_at, now, outcome):
                continue
            log.info("expiry notice %s: listing=%s", outcome, listing.id)
            if reached:
                sent.append(Outgoing(ToPerson(reached[0]), self._notice(owner, listing)))
        return sent

    def _notice(self, owner: Member, listing: Listing) -> str:
        t = self.translators[owner.language or self.settings.group.language]
        return t(
            "market.expiry_notice",
            noun=Raw(t(NOUN[listing.kind])),
            id=listing.id,
            until=last_day(t, listing),
            listing=describe(t, listing),
        )

    def _digest(self, store: Store, now: datetime) -> list[Outgoing]:
        due = self.last_digest(now)
        if store.claims.digest_handled(due):
            return []
        if now - due > self.settings.reminders.grace:
            if store.claims.claim_digest(
                due, now, "skipped", 0
            ):  # also on a new database: not a fault
                log.info("weekly digest skipped: due %s, %s late", due.isoformat(), now - due)
            return []
        new = store.market.new_listings(self._week_before(due), due, now)
        if not new:
            store.claims.claim_digest(due, now, "empty", 0)
            return []
        if not store.claims.claim_digest(due, now, "posted", len(new)):
            return []
        log.info("weekly digest posted: %s listings", len(new))
        return [Outgoing(ToAllGroups(), self._digest_text(new))]

    def _digest_text(self, new: list[tuple[Listing, Member]]) -> str:
        t = self.translators[self.settings.group.language]
        lines = [t("market.digest_header", group=self.settings.group.name)]
        for kind, title, more in (
            (ListingKind.OFFER, "market.digest_offers", "market.digest_more_offers"),
            (ListingKind.WANT, "market.digest_wants", "market.digest_more_wants"),
        ):
            of_kind = [(listing, owner) for listing, owner in new if listing.kind is kind]
            if not of_kind:
                continue
            lines.append(t(title))
            for listing, owner in of_kind[-DIGEST_SHOWN:]:  # the newest, oldest first
                lines.append(
                    t(
                        "market.line",
                        id=listing.id,
                        listing=describe(t, listing, DIGEST_TEXT),
                        who=self._label(owner),
                    )
                )
            if len(of_kind) > DIGEST_SHOWN:
                lines.append(t(more, count=len(of_kind) - DIGEST_SHOWN))
        lines.append(t("market.digest_footer"))
        return "\n".join(lines)

    def _label(self, member: Member) -> Raw:
        code = MemberCode.show(self.settings.group.code_prefix, member.number)
        return Raw(f"{escape(member.name)} ({code})")
