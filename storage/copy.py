"""``letsbot db copy``: every table into an empty database (SQLite to PostgreSQL, or back).

The target is migrated to the newest revision first, then filled in one
transaction: either every row arrives or none does. Rows keep their ids, so
transfers, questions and votes still point at the right members; PostgreSQL
sequences are then moved past the highest id so that new rows get fresh ids.
Row counts are compared inside the transaction, before it commits.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, Integer, Table, delete, func, insert, inspect, select
from sqlalchemy.exc import SQLAlchemyError

from storage.database import error_reason, upgrade
from storage.models import Base, MemberRow
from storage.tables import members

BATCH = 1000  # rows per INSERT round trip


class CopyError(Exception):
    """One line for the person moving the database."""


def tables() -> list[Table]:
    """Every table of the schema, parents before the tables that refer to them."""
    return list(Base.metadata.sorted_tables)


def copy_database(source: Engine, target: Engine) -> dict[str, int]:
    """Copy every row of ``source`` into the empty ``target``; rows per table."""
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
                counts[table.name] = _copy_table(reader, out, table)
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


def _copy_table(reader: Connection, out: Connection, table: Table) -> int:
    order = list(table.primary_key.columns)
    result = reader.execution_options(yield_per=BATCH).execute(select(table).order_by(*order))
    total = 0
    for chunk in result.partitions(BATCH):
        try:
            out.execute(insert(table), [dict(row._mapping) for row in chunk])
        except SQLAlchemyError as error:
            raise CopyError(
                f"{table.name}: the target refused a row ({error.__class__.__name__}:"
                f" {str(getattr(error, 'orig', error)).splitlines()[0]}); nothing was copied"
            ) from None
        total += len(chunk)
    return total


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
