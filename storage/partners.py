"""Partner groups, and the payments sent to and received from them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, exists, func, insert, select, update

from letsbot.domain import (
    OPEN_REQUEST_STATES,
    IncomingAnswer,
    Partner,
    PartnerPayment,
    PartnerRequest,
    PartnerState,
    RequestState,
    TradeSide,
)
from storage.tables import (
    members,
    partner_incoming,
    partner_outgoing,
    partner_requests,
    partners,
    transfers,
)

_REVERSAL = transfers.alias("reversal")
# Built once: a payment across runs these while its payer waits, and building a
# statement anew takes about as long as running it.
_ADD_OUTGOING = insert(partner_outgoing).returning(*partner_outgoing.c)
_PARTNER = select(partners).where(partners.c.id == bindparam("id"))
_PARTNER_BY_PREFIX = select(partners).where(partners.c.prefix == bindparam("prefix"))
_SETTLE = (
    update(partner_outgoing)
    .where(
        partner_outgoing.c.id == bindparam("row_id"), partner_outgoing.c.state == bindparam("was")
    )
    .values(
        state=bindparam("state"),
        reason=bindparam("reason"),
        receiver_name=bindparam("receiver_name"),
        settled_at=bindparam("settled_at"),
    )
)
_INCOMING = select(partner_incoming).where(
    partner_incoming.c.partner_id == bindparam("partner_id"),
    partner_incoming.c.payment_id == bindparam("payment_id"),
)


def _stands(transfer_id: Any) -> Any:
    """The transfer was not reversed (by a coordinator, or as a payment booked back)."""
    return ~exists().where(_REVERSAL.c.reverses_id == transfer_id)


def _partner(row: Row[Any]) -> Partner:
    return Partner(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        url=row.url,
        public_key=row.public_key,
        units_per_hour=row.units_per_hour,
        decimals=row.decimals,
        unit=row.unit,
        cap=row.cap,
        paused=row.paused,
        account_id=row.account_id,
        removed=row.removed_at is not None,
    )


def _payment(row: Row[Any]) -> PartnerPayment:
    return PartnerPayment(
        id=row.id,
        payment_id=row.payment_id,
        partner_id=row.partner_id,
        payer_id=row.payer_id,
        transfer_id=row.transfer_id,
        receiver_code=row.receiver_code,
        amount=row.amount,
        their_amount=row.their_amount,
        description=row.description,
        state=PartnerState(row.state),
        reason=row.reason,
        created_at=row.created_at,
        expires_at=row.expires_at,
        next_try_at=row.next_try_at,
        tries=row.tries,
        receiver_name=row.receiver_name,
        request_id=row.request_id,
    )


def _request(row: Row[Any]) -> PartnerRequest:
    return PartnerRequest(
        id=row.id,
        direction=row.direction,
        request_id=row.request_id,
        partner_id=row.partner_id,
        member_id=row.member_id,
        other_code=row.other_code,
        amount=row.amount,
        their_amount=row.their_amount,
        description=row.description,
        state=RequestState(row.state),
        reason=row.reason,
        pending_id=row.pending_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
        next_try_at=row.next_try_at,
        tries=row.tries,
    )


_OPEN = [s.value for s in OPEN_REQUEST_STATES]


class SqlPartners:
    """letsbot.ports.Partners on a connection inside the unit of work's transaction."""

    def __init__(self, connection: Connection) -> None:
        self.db = connection

    def add_partner(self, *, account_id: int, at: datetime, **fields: Any) -> Partner:
        partner_id = self.db.execute(
            insert(partners)
            .values(account_id=account_id, created_at=at, removed_at=None, **fields)
            .returning(partners.c.id)
        ).scalar_one()
        found = self.partner(partner_id)
        assert found is not None
        return found

    def update_partner(self, partner_id: int, **fields: Any) -> Partner:
        if "removed" in fields:
            removed = fields.pop("removed")
            fields["removed_at"] = removed
        self.db.execute(update(partners).where(partners.c.id == partner_id).values(**fields))
        found = self.partner(partner_id)
        assert found is not None
        return found

    def partner(self, partner_id: int) -> Partner | None:
        row = self.db.execute(_PARTNER, {"id": partner_id}).first()
        return _partner(row) if row else None

    def partner_by_prefix(self, prefix: str) -> Partner | None:
        row = self.db.execute(_PARTNER_BY_PREFIX, {"prefix": prefix.upper()}).first()
        return _partner(row) if row else None

    def partners(self) -> list[Partner]:
        rows = self.db.execute(select(partners).order_by(partners.c.prefix))
        return [_partner(row) for row in rows]

    def trade_side(self, partner: Partner, *, late_before: datetime, limit: int) -> TradeSide:
        out = partner_outgoing.c
        mine = out.partner_id == partner.id
        balance = self.db.execute(
            select(members.c.balance).where(members.c.id == partner.account_id)
        ).scalar_one()
        booked = out.state == PartnerState.BOOKED.value
        sent = self.db.execute(
            select(
                func.count(),
                func.coalesce(func.sum(out.amount), 0),
                func.coalesce(func.sum(out.their_amount), 0),
            ).where(mine, booked, _stands(out.transfer_id))
        ).one()
        on_way = out.state == PartnerState.SENDING.value
        sending_all = self.db.execute(
            select(
                func.count(),
                func.coalesce(func.sum(out.amount), 0),
                func.count().filter(out.expires_at < late_before),
            ).where(mine, on_way)
        ).one()
        oldest = self.db.execute(
            select(out.payment_id, out.amount, out.their_amount)
            .where(mine, on_way)
            .order_by(out.id)
            .limit(limit)
        )
        newest_back = self.db.execute(
            select(out.payment_id, out.amount, out.their_amount)
            .where(mine, out.state == PartnerState.REVERSED.value)
            .order_by(out.id.desc())
            .limit(limit)
        )
        received = self.db.execute(
            select(func.count(), func.coalesce(func.sum(transfers.c.amount), 0))
            .select_from(
                partner_incoming.join(transfers, transfers.c.id == partner_incoming.c.transfer_id)
            )
            .where(
                partner_incoming.c.partner_id == partner.id,
                partner_incoming.c.status == "booked",
                _stands(transfers.c.id),
            )
        ).one()
        return TradeSide(
            balance=int(balance),
            sent_count=int(sent[0]),
            sent_amount=int(sent[1]),
            sent_their_amount=int(sent[2]),
            sending={row[0]: (int(row[1]), int(row[2])) for row in oldest},
            sending_count=int(sending_all[0]),
            sending_amount=int(sending_all[1]),
            late=int(sending_all[2]),
            received_count=int(received[0]),
            received_amount=int(received[1]),
            reversed={row[0]: (int(row[1]), int(row[2])) for row in newest_back},
        )

    def booked_from(self, partner_id: int, payment_ids: Sequence[str]) -> dict[str, int]:
        if not payment_ids:
            return {}
        rows = self.db.execute(
            select(partner_incoming.c.payment_id, transfers.c.amount)
            .select_from(
                partner_incoming.join(transfers, transfers.c.id == partner_incoming.c.transfer_id)
            )
            .where(
                partner_incoming.c.partner_id == partner_id,
                partner_incoming.c.payment_id.in_(list(payment_ids)),
                partner_incoming.c.status == "booked",
                _stands(transfers.c.id),
            )
        )
        return {row[0]: int(row[1]) for row in rows}

    def add_outgoing_payment(
        self, *, state: PartnerState = PartnerState.SENDING, **fields: Any
    ) -> PartnerPayment:
        # The values as parameters of one cached statement: a payment across is booked
        # while its payer waits, and building the statement anew took longer than running it.
        row = self.db.execute(_ADD_OUTGOING, {"state": state.value, "tries": 0, **fields}).one()
        return _payment(row)

    def outgoing_payment(self, payment_id: str) -> PartnerPayment | None:
        query = select(partner_outgoing).where(partner_outgoing.c.payment_id == payment_id)
        row = self.db.execute(query).first()
        return _payment(row) if row else None

    def outgoing_payment_of(self, transfer_id: int) -> PartnerPayment | None:
        query = select(partner_outgoing).where(partner_outgoing.c.transfer_id == transfer_id)
        row = self.db.execute(query).first()
        return _payment(row) if row else None

    def outgoing_payments(self, states: Sequence[PartnerState]) -> list[PartnerPayment]:
        query = (
            select(partner_outgoing)
            .where(partner_outgoing.c.state.in_([s.value for s in states]))
            .order_by(partner_outgoing.c.id)
        )
        return [_payment(row) for row in self.db.execute(query)]

    def claim_due_payments(
        self, *, now: datetime, lease_until: datetime, limit: int
    ) -> list[PartnerPayment]:
        sending = partner_outgoing.c.state == PartnerState.SENDING.value
        due = partner_outgoing.c.next_try_at <= now
        ids = list(
            self.db.execute(
                select(partner_outgoing.c.id)
                .where(sending, due)
                .order_by(partner_outgoing.c.next_try_at, partner_outgoing.c.id)
                .limit(limit)
            ).scalars()
        )
        if not ids:
            return []
        # Checked again on the row: of two processes that saw it, the second leaves it.
        rows = self.db.execute(
            update(partner_outgoing)
            .where(partner_outgoing.c.id.in_(ids), sending, due)
            .values(next_try_at=lease_until, tries=partner_outgoing.c.tries + 1)
            .returning(*partner_outgoing.c)
        )
        return sorted((_payment(row) for row in rows), key=lambda p: p.id)

    def retry_payment_at(self, row_id: int, at: datetime) -> None:
        self.db.execute(
            update(partner_outgoing)
            .where(
                partner_outgoing.c.id == row_id,
                partner_outgoing.c.state == PartnerState.SENDING.value,
            )
            .values(next_try_at=at)
        )

    def settle_payment(
        self,
        row_id: int,
        state: PartnerState,
        *,
        at: datetime,
        reason: str | None = None,
        receiver_name: str | None = None,
        was: PartnerState = PartnerState.SENDING,
    ) -> bool:
        done = self.db.execute(
            _SETTLE,
            {
                "row_id": row_id,
                "was": was.value,
                "state": state.value,
                "reason": reason,
                "receiver_name": receiver_name,
                "settled_at": at,
            },
        )
        return bool(done.rowcount)

    def rebook_payment(self, row_id: int, transfer_id: int, *, at: datetime) -> bool:
        done = self.db.execute(
            update(partner_outgoing)
            .where(
                partner_outgoing.c.id == row_id,
                partner_outgoing.c.state == PartnerState.REVERSED.value,
            )
            .values(
                state=PartnerState.BOOKED.value, reason=None, transfer_id=transfer_id, settled_at=at
            )
        )
        return bool(done.rowcount)

    def incoming_answer(self, partner_id: int, payment_id: str) -> IncomingAnswer | None:
        row = self.db.execute(
            _INCOMING, {"partner_id": partner_id, "payment_id": payment_id}
        ).first()
        if row is None:
            return None
        return IncomingAnswer(row.digest, row.status, row.reason, row.transfer_id)

    def add_incoming(
        self,
        *,
        partner_id: int,
        payment_id: str,
        answer: IncomingAnswer,
        at: datetime,
    ) -> None:
        self.db.execute(
            insert(partner_incoming),
            {
                "partner_id": partner_id,
                "payment_id": payment_id,
                "digest": answer.digest,
                "status": answer.status,
                "reason": answer.reason,
                "transfer_id": answer.transfer_id,
                "created_at": at,
            },
        )

    # payment requests

    def add_request(self, **fields: Any) -> PartnerRequest:
        state = fields.pop("state")
        row_id = self.db.execute(
            insert(partner_requests)
            .values(state=RequestState(state).value, tries=0, **fields)
            .returning(partner_requests.c.id)
        ).scalar_one()
        row = self.db.execute(select(partner_requests).where(partner_requests.c.id == row_id)).one()
        return _request(row)

    def request(self, direction: str, partner_id: int, request_id: str) -> PartnerRequest | None:
        row = self.db.execute(
            select(partner_requests).where(
                partner_requests.c.direction == direction,
                partner_requests.c.partner_id == partner_id,
                partner_requests.c.request_id == request_id,
            )
        ).first()
        return _request(row) if row else None

    def request_digest(self, row_id: int) -> str | None:
        query = select(partner_requests.c.digest).where(partner_requests.c.id == row_id)
        return self.db.execute(query).scalar_one_or_none()

    def requests(self, direction: str, states: Sequence[RequestState]) -> list[PartnerRequest]:
        query = (
            select(partner_requests)
            .where(
                partner_requests.c.direction == direction,
                partner_requests.c.state.in_([s.value for s in states]),
            )
            .order_by(partner_requests.c.id)
        )
        return [_request(row) for row in self.db.execute(query)]

    def requests_from_since(self, partner_id: int, other_code: str, since: datetime) -> int:
        return int(
            self.db.execute(
                select(func.count()).where(
                    partner_requests.c.direction == "in",
                    partner_requests.c.partner_id == partner_id,
                    partner_requests.c.other_code == other_code,
                    partner_requests.c.created_at >= since,
                )
            ).scalar_one()
        )

    def claim_due_requests(
        self, *, now: datetime, lease_until: datetime, limit: int
    ) -> list[PartnerRequest]:
        mine = partner_requests.c.direction == "out"
        still_open = partner_requests.c.state.in_(_OPEN)
        due = partner_requests.c.next_try_at <= now
        ids = list(
            self.db.execute(
                select(partner_requests.c.id)
                .where(mine, still_open, due)
                .order_by(partner_requests.c.next_try_at, partner_requests.c.id)
                .limit(limit)
            ).scalars()
        )
        if not ids:
            return []
        # Checked again on the row: of two processes that saw it, the second leaves it.
        rows = self.db.execute(
            update(partner_requests)
            .where(partner_requests.c.id.in_(ids), mine, still_open, due)
            .values(next_try_at=lease_until, tries=partner_requests.c.tries + 1)
            .returning(*partner_requests.c)
        )
        return sorted((_request(row) for row in rows), key=lambda r: r.id)

    def retry_request_at(self, row_id: int, at: datetime, state: RequestState) -> None:
        self.db.execute(
            update(partner_requests)
            .where(partner_requests.c.id == row_id, partner_requests.c.state.in_(_OPEN))
            .values(next_try_at=at, state=state.value)
        )

    def settle_request(
        self, row_id: int, state: RequestState, *, at: datetime, reason: str | None = None
    ) -> bool:
        done = self.db.execute(
            update(partner_requests)
            .where(partner_requests.c.id == row_id, partner_requests.c.state.in_(_OPEN))
            .values(state=state.value, reason=reason, settled_at=at)
        )
        return bool(done.rowcount)
