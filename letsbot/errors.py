"""Refusals that reach the member as a catalog message."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from letsbot.domain import Partner
    from letsbot.messages import Choice


class Refusal(Exception):
    """A command that can't be done. Nothing it did is kept; the member gets ``key``,
    with ``buttons``: corrected commands to tap (in a direct chat)."""

    def __init__(self, key: str, *, buttons: tuple[Choice, ...] = (), **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params
        self.buttons = buttons
        # The question whose Ja this refuses: closed after the rollback, so that a "ja"
        # hours later can't book what was refused (letsbot.dispatcher).
        self.closes: int | None = None


class Busy(Exception):
    """The database could not be reached or stayed locked: try again in a moment."""


class Unsure(Busy):
    """The connection broke while committing: the change may or may not be stored."""


class LookUpFirst(Exception):
    """A command needs a partner's bot's word on ``code`` before it can go on: the
    dispatcher rolls back, asks outside the transaction, and runs the command again
    with the answer (letsbot.partner_lookup)."""

    def __init__(self, partner: Partner, code: str) -> None:
        super().__init__(code)
        self.partner = partner
        self.code = code
