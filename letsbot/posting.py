"""The one way a transfer is booked.

Every transfer (a payment, a request, a booking on behalf, a reversal, the
start credit, a leaving or forgotten member's rest, an import) goes through
``post``: it locks the accounts in id order (the one lock order of every
transaction, see storage), checks the limits when asked to, appends the
transfer and moves the cached balances. Nothing else writes transfers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from letsbot.domain import (
    Breach,
    GroupLimits,
    Member,
    Transfer,
    TransferKind,
    blocking,
    transfer_breaches,
)
from letsbot.ports import Store


class LimitRefused(Exception):
    """The transfer would break a limit that refuses it; nothing was booked."""

    def __init__(self, breach: Breach) -> None:
        super().__init__(breach.kind.value)
        self.breach = breach


@dataclass(frozen=True, slots=True)
class Posted:
    transfer: Transfer
    payer: Member  # as locked, before the transfer
    receiver: Member
    soft: list[Breach] = field(default_factory=list)  # soft limits broken: the booking stands

    @property
    def payer_after(self) -> int:
        return self.payer.balance - self.transfer.amount

    @property
    def receiver_after(self) -> int:
        return self.receiver.balance + self.transfer.amount


def post(
    store: Store,
    *,
    payer_id: int,
    receiver_id: int,
    amount: int,
    description: str,
    kind: TransferKind | Callable[[Member, Member], TransferKind],
    at: datetime,
    booked_by_id: int | None,
    event_key: str,
    reverses_id: int | None = None,
    transfer_id: int | None = None,
    limits: GroupLimits | None = None,
    lock_also: Iterable[int] = (),
    locked: Mapping[int, Member] | None = None,
    check: Callable[[Member, Member], None] | None = None,
) -> Posted:
    """Book one transfer in ``store``'s transaction.

    ``limits``: checked against the locked balances (None: not checked, as for
    the start credit, rests and imports); a refusing breach raises
    ``LimitRefused``, soft ones come back in ``Posted.soft``.
    ``lock_also``: other accounts locked with the two (e.g. the booker, whom
    the transfer names). ``locked``: accounts this transaction locked already,
    their balances unchanged since; when they cover all, they aren't locked again.
    ``check``: runs on the locked payer and receiver before the limits; ``kind``
    may follow from them too. ``transfer_id``: the number it gets (an import
    keeping the source's numbers); None: the next one.
    """
    wanted = {payer_id, receiver_id, *lock_also}
    if locked is None or not wanted <= locked.keys():
        locked = store.members.lock_members(sorted(wanted))
    payer, receiver = locked[payer_id], locked[receiver_id]
    if check is not None:
        check(payer, receiver)
    soft: list[Breach] = []
    if limits is not None:
        soft = transfer_breaches(payer, receiver, amount, limits)
        refusing = blocking(soft, limits)
        if refusing:
            raise LimitRefused(refusing[0])
    transfer = store.ledger.add_transfer(
        payer_id=payer_id,
        receiver_id=receiver_id,
        amount=amount,
        description=description,
        kind=kind if isinstance(kind, TransferKind) else kind(payer, receiver),
        at=at,
        booked_by_id=booked_by_id,
        event_key=event_key,
        reverses_id=reverses_id,
        transfer_id=transfer_id,
    )
    return Posted(transfer, payer, receiver, soft)
