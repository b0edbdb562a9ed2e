"""``letsbot db copy``: every table into an empty database (SQLite to PostgreSQL, or back).

The target is migrated to the newest revision first, then filled in one
transaction: either every row arrives or none does. Rows keep their ids, so
transfers, questions and votes still point at the right members; PostgreSQL
sequences are then moved past the highest id so that new rows get fresh ids.
Row counts are compared inside the transaction, before it commits.

A database written by an older version may hold invisible control characters
in its texts (NUL, which PostgreSQL can't store at all, among them): they are
removed on the way, and each row that changed is named in a warning.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    String,
    Table,
    delete,
    func,
    insert,
    inspect,
    select,
)
from sqlalchemy.exc import SQLAlchemyError

from letsbot.text import find_control, strip_controls
from storage.database import error_reason, upgrade
from storage.models import Base, MemberRow
from storage.tables import members

BATCH = 1000  # rows per INSERT round trip


class CopyError(Exception):
    """One line for the person moving the database."""


def tables() -> list[Table]:
    """Every table of the schema, parents before the tables that refer to them."""
    return list(Base.metadata.sorted_tables)


Warn = Callable[[str], None]


def copy_database(source: Engine, target: Engine, warn: Warn | None = None) -> dict[str, int]:
    """Copy every row of ``source`` into the empty ``target``; rows per table.

    ``warn`` gets a line for each row whose texts lost a control character.
    """
    if source.url == target.url:
        raise CopyError("the target is the database the bot uses now; name another one")
    _refuse_data(target)
    try:
        upgrade(target)  # an empty database gets the tables (and the group account row)
    except SQLAlchemyError as error:
        raise CopyError(
            f"can't create the tables in the target: {error.__class__.__name__}"
        ) from None
    counts: dict[str, int] = {}
    with target.begin() as out:
        _refuse_rows(out)
        # The migration made a group account; the source brings its own, with its history.
        out.execute(delete(members))
        with source.connect() as reader:
            if reader.dialect.name == "postgresql":  # one snapshot of every table
                reader.execution_options(isolation_level="REPEATABLE READ")
            for table in tables():
                counts[table.name] = _copy_table(reader, out, table, warn or (lambda line: None))
            reader.rollback()
        for table in tables():
            copied = out.execute(select(func.count()).select_from(table)).scalar_one()
            if copied != counts[table.name]:
                raise CopyError(
                    f"{table.name}: {counts[table.name]} rows read but {copied} in the target;"
                    " nothing was copied"
                )
        if out.dialect.name == "postgresql":
            _reset_sequences(out)
    return counts


def _copy_table(reader: Connection, out: Connection, table: Table, warn: Warn) -> int:
    order = list(table.primary_key.columns)
    texts = [column.name for column in table.columns if isinstance(column.type, String)]
    result = reader.execution_options(yield_per=BATCH).execute(select(table).order_by(*order))
    total = 0
    for chunk in result.partitions(BATCH):
        rows = [dict(row._mapping) for row in chunk]
        for row in rows:
            _clean(table, texts, row, warn)
        try:
            out.execute(insert(table), rows)
        except SQLAlchemyError as error:
            raise CopyError(
                f"{table.name}: the target refused a row ({error.__class__.__name__}:"
                f" {str(getattr(error, 'orig', error)).splitlines()[0]}); nothing was copied"
            ) from None
        total += len(chunk)
    return total


def _clean(table: Table, texts: list[str], row: dict[str, Any], warn: Warn) -> None:
    """Control characters out of ``row``'s texts; a row that changed is named in a warning."""
    key = ", ".join(f"{c.name}={row[c.name]!r}" for c in table.primary_key.columns)
    changed: list[str] = []
    for name in texts:
        value = row[name]
        if value is None or (found := find_control(value)) is None:
            continue
        changed.append(f"{name} (first {found.code} at position {found.position})")
        row[name] = strip_controls(value)
    if changed:
        warn(
            f"warning: {table.name} row {key}: removed invisible control characters"
            f" from {'; '.join(changed)}"
        )


def _refuse_data(target: Engine) -> None:
    """Before migrating: a target with letsbot rows in it is never touched."""
    try:
        with target.connect() as connection:
            existing = set(inspect(connection).get_table_names())
            mine = [t for t in tables() if t.name in existing]
            if mine:
                _refuse_rows(connection, mine)
            connection.rollback()
    except SQLAlchemyError as error:
        raise CopyError(f"can't open the target: {error_reason(error, target.url)}") from None


def _refuse_rows(connection: Connection, which: list[Table] | None = None) -> None:
    for table in which or tables():
        query = select(func.count()).select_from(table)
        if table is members:  # the group account a migration creates is no data
            query = query.where(~MemberRow.is_group_account | (MemberRow.balance != 0))
        rows = connection.execute(query).scalar_one()
        if rows:
            raise CopyError(
                f"the target holds data already ({table.name}: {rows} rows);"
                " copy only into an empty database"
            )


def _reset_sequences(out: Connection) -> None:
    """Each id sequence continues after the highest id copied."""
    for table in tables():
        keys = list(table.primary_key.columns)
        if len(keys) != 1 or not isinstance(keys[0].type, Integer):
            continue
        column = keys[0]
        highest = out.execute(select(func.max(column))).scalar_one()
        out.execute(
            select(
                func.setval(
                    func.pg_get_serial_sequence(table.name, column.name),
                    (highest or 0) + 1,
                    False,
                )
            )
        )
