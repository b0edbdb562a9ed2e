"""The one way a transfer is booked.

Every transfer (a payment, a request, a booking on behalf, a reversal, the
start credit, a leaving or forgotten member's rest, an import) goes through
``post``: it locks the accounts in id order (the one lock order of every
transaction, see storage), checks the limits when asked to, appends the
transfer and moves the cached balances. ``post_many`` books many at once (a
mass payment) by the same rules, with one write for all of them. Nothing else
writes transfers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
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


@dataclass(frozen=True, slots=True)
class PostedMany:
    after: dict[int, Member]  # every account booked on, as it stands after all of them
    soft: list[Breach]  # soft limits broken on the way: the bookings stand


def post_many(
    store: Store,
    lines: Sequence[tuple[int, int, int, str]],
    *,
    description: str,
    kind: TransferKind,
    at: datetime,
    booked_by_id: int | None,
    limits: GroupLimits | None,
    locked: Mapping[int, Member] | None = None,
) -> PostedMany:
    """Book many transfers (payer id, receiver id, amount, event key) in ``store``'s
    transaction, as ``post`` books each: the accounts locked in id order (or
    given as ``locked``), each transfer's limits checked in turn on the balances
    the ones before it left, a refusing breach raising ``LimitRefused`` (nothing
    is booked: the caller's transaction rolls back). Then all are written at once.
    """
    wanted = {i for payer, receiver, _, _ in lines for i in (payer, receiver)}
    if locked is None or not wanted <= locked.keys():
        locked = store.members.lock_members(sorted(wanted))
    now = {i: locked[i] for i in wanted}
    soft: list[Breach] = []
    for payer_id, receiver_id, amount, _ in lines:
        payer, receiver = now[payer_id], now[receiver_id]
        if limits is not None:
            breaches = transfer_breaches(payer, receiver, amount, limits)
            if breaches:
                refusing = blocking(breaches, limits)
                if refusing:
                    raise LimitRefused(refusing[0])
                soft += breaches
        now[payer_id] = replace(payer, balance=payer.balance - amount)
        now[receiver_id] = replace(receiver, balance=receiver.balance + amount)
    store.ledger.add_transfers(
        lines, description=description, kind=kind, at=at, booked_by_id=booked_by_id
    )
    return PostedMany(now, soft)
