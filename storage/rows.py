"""Row mappers and helpers shared by the storage modules."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    Table,
)
from sqlalchemy.dialects import postgresql, sqlite

from letsbot.domain import (
    Member,
    Role,
    Status,
)


def member_row(row: Row[Any]) -> Member:
    return Member(
        id=row.id,
        number=row.number,
        name=row.name,
        language=row.language,
        status=Status(row.status),
        role=Role(row.role),
        balance=row.balance,
        min_balance=row.min_balance,
        max_balance=row.max_balance,
        is_group_account=row.is_group_account,
        forgotten=row.forgotten_at is not None,
        old_code=row.old_code,
    )


TRADING = (Status.ACTIVE.value, Status.LEAVING.value)


def dialect_insert(db: Connection, table: Table) -> Any:
    """An INSERT that knows ON CONFLICT, in the connection's dialect."""
    dialect_insert = postgresql.insert if db.dialect.name == "postgresql" else sqlite.insert
    return dialect_insert(table)
