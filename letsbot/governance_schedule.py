"""What governance does by itself: close proposals at their deadline, remind silent voters.

As with event reminders, the tables are the schedule and a row's state is the
claim: a proposal closes when its status moves from open (one UPDATE, so a
restart or a second process never announces a result twice), and its
reminder is claimed by setting ``reminded_at``. A result that fell due while
the bot was down is still announced, late: a decision must not get lost. A
reminder is only sent while the proposal is still open.
"""

from __future__ import annotations

import logging
from datetime import datetime

from letsbot.decisions import Proposal
from letsbot.governance import close, vote_choices, vote_example
from letsbot.i18n import Translator
from letsbot.jobs import Job
from letsbot.messages import Outgoing, ToPerson
from letsbot.ports import Store

log = logging.getLogger(__name__)


class GovernanceSchedule(Job):
    def next_due(self, until: datetime) -> datetime | None:
        """The first deadline or reminder after now and up to ``until`` (for a virtual clock)."""
        with self.uow.transaction() as store:
            return store.governance.next_proposal_due(self.clock.now(), until)

    def post_due(self) -> list[Outgoing]:
        """Claim every reminder and close every proposal that is due now; say what to send."""
        now = self.clock.now()
        with self.uow.transaction() as store:
            posts = self._reminders(store, now)
            for due in store.governance.proposals_due(now):
                proposal = store.governance.proposal(due.id, lock=True)
                if proposal is not None:
                    posts += close(
                        store, self.settings, self.translators, proposal, now, early=False
                    )
            # Claimed and queued in one transaction: sent once, even across a crash.
            posts = self.outbox.queue(store, posts)
        return posts

    def _reminders(self, store: Store, now: datetime) -> list[Outgoing]:
        sent: list[Outgoing] = []
        for proposal in store.governance.proposal_reminders_due(now):
            if not store.claims.claim_proposal_reminder(proposal.id, now):
                continue
            if now >= proposal.closes_at:
                log.info("proposal reminder skipped: id=%s, the vote is over", proposal.id)
                continue
            reached = 0
            for member in store.governance.silent_voters(proposal.id):
                found = store.members.identities(member.id)
                if not found:
                    continue
                t = self.translators[member.language or self.settings.group.language]
                text = self._text(t, proposal, now)
                sent.append(Outgoing(ToPerson(found[0]), text, vote_choices(t, proposal)))
                reached += 1
            log.info("proposal reminder sent: id=%s members=%s", proposal.id, reached)
        return sent

    def _text(self, t: Translator, proposal: Proposal, now: datetime) -> str:
        return t(
            "proposal.reminder",
            id=proposal.id,
            title=proposal.title,
            ahead=t.ahead(proposal.closes_at - now),
            deadline=t.moment(proposal.closes_at),
            example=vote_example(t, proposal),
        )
