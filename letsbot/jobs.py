"""What each part of the bot that works by the clock (reminders of proposals, the market
digest, contributions, payments to partner groups) is made with."""

from __future__ import annotations

from letsbot.clock import Clock
from letsbot.config import Settings
from letsbot.i18n import Translator
from letsbot.outbox import Outbox
from letsbot.ports import UnitOfWork


class Job:
    """The settings, the database, the clock, the texts and the outbox a job works with."""

    def __init__(
        self,
        settings: Settings,
        uow: UnitOfWork,
        clock: Clock,
        translators: dict[str, Translator],
        outbox: Outbox,
    ) -> None:
        self.settings = settings
        self.uow = uow
        self.clock = clock
        self.translators = translators
        self.outbox = outbox
