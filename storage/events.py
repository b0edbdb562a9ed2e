"""Markets, repair cafés and other events, and who comes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from letsbot.domain import (
    Event,
    EventKind,
    EventStatus,
    Member,
)
from storage.rows import member_row
from storage.tables import (
    events,
    members,
    rsvps,
)


def _event(row: Row[Any]) -> Event:
    return Event(
        id=row.id,
        series_id=row.series_id,
        kind=EventKind(row.kind),
        title=row.title,
        place=row.place,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        status=EventStatus(row.status),
        cancel_reason=row.cancel_reason,
        created_by_id=row.created_by_id,
    )


class SqlEvents:
    """letsbot.ports.Events on a connection inside the unit of work's transaction."""

    def __init__(self, connection: Connection) -> None:
        self.db = connection

    def add_event(
        self,
        *,
        series_id: int | None,
        kind: EventKind,
        title: str,
        place: str | None,
        starts_at: datetime,
        ends_at: datetime | None,
        created_by_id: int,
        at: datetime,
    ) -> Event:
        event_id = self.db.execute(
            insert(events)
            .values(
                series_id=series_id,
                kind=kind.value,
                title=title,
                place=place,
                starts_at=starts_at,
                ends_at=ends_at,
                status=EventStatus.SCHEDULED.value,
                created_by_id=created_by_id,
                created_at=at,
            )
            .returning(events.c.id)
        ).scalar_one()
        found = self.event(event_id)
        assert found is not None
        return found

    def event(self, event_id: int) -> Event | None:
        row = self.db.execute(select(events).where(events.c.id == event_id)).first()
        return _event(row) if row else None

    def events_between(self, start: datetime, end: datetime | None, limit: int) -> list[Event]:
        query = select(events).where(
            events.c.status == EventStatus.SCHEDULED.value, events.c.starts_at >= start
        )
        if end is not None:
            query = query.where(events.c.starts_at < end)
        rows = self.db.execute(query.order_by(events.c.starts_at, events.c.id).limit(limit))
        return [_event(row) for row in rows]

    def update_event(
        self,
        event_id: int,
        *,
        starts_at: datetime | None = None,
        ends_at: datetime | None = None,
        cancel_reason: str | None = None,
        cancelled: bool = False,
    ) -> Event:
        values: dict[str, Any] = {}
        if starts_at is not None:
            values["starts_at"] = starts_at
            values["ends_at"] = ends_at
        if cancelled:
            values["status"] = EventStatus.CANCELLED.value
            values["cancel_reason"] = cancel_reason
        if values:
            self.db.execute(update(events).where(events.c.id == event_id).values(**values))
        found = self.event(event_id)
        assert found is not None
        return found

    def set_rsvp(self, event_id: int, member_id: int, going: bool, at: datetime) -> None:
        dialect_insert = (
            postgresql.insert if self.db.dialect.name == "postgresql" else sqlite.insert
        )
        statement = dialect_insert(rsvps).values(
            event_id=event_id, member_id=member_id, going=going, at=at
        )
        self.db.execute(
            statement.on_conflict_do_update(
                index_elements=[rsvps.c.event_id, rsvps.c.member_id],
                set_={"going": going, "at": at},
            )
        )

    def rsvps(self, event_id: int) -> list[tuple[Member, bool]]:
        rows = self.db.execute(
            select(members, rsvps.c.going)
            .join(rsvps, rsvps.c.member_id == members.c.id)
            .where(rsvps.c.event_id == event_id)
            .order_by(members.c.number)
        )
        return [(member_row(row), bool(row.going)) for row in rows]

    def going_counts(self, event_ids: Sequence[int]) -> dict[int, int]:
        if not event_ids:
            return {}
        rows = self.db.execute(
            select(rsvps.c.event_id, func.count())
            .where(rsvps.c.event_id.in_(list(event_ids)), rsvps.c.going)
            .group_by(rsvps.c.event_id)
        )
        return {row[0]: int(row[1]) for row in rows}
