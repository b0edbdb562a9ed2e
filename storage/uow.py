"""The unit of work: one transaction per incoming message, holding the write lock.

The store it yields has one part per capability (``store.ledger``,
``store.market`` ...), each in its own module, all on the same connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import (
    Connection,
    Engine,
)
from sqlalchemy.exc import DBAPIError, OperationalError

from letsbot.errors import Busy, Unsure
from storage.claims import SqlClaims
from storage.codes import SqlCodes
from storage.contact import SqlContact
from storage.contributions import SqlContributions
from storage.events import SqlEvents
from storage.figures import SqlFigures
from storage.governance import SqlGovernance
from storage.ledger import SqlLedger
from storage.market import SqlMarket
from storage.members import SqlMembers
from storage.outbox import SqlOutbox
from storage.partners import SqlPartners
from storage.privacy import SqlPrivacy
from storage.questions import SqlQuestions


class SqlStore:
    """letsbot.ports.Store: every capability on one connection inside a transaction."""

    def __init__(self, connection: Connection) -> None:
        self.db = connection
        self.claims = SqlClaims(connection)
        self.outbox = SqlOutbox(connection)
        self.members = SqlMembers(connection)
        self.contact = SqlContact(connection)
        self.codes = SqlCodes(connection)
        self.ledger = SqlLedger(connection)
        self.questions = SqlQuestions(connection)
        self.events = SqlEvents(connection)
        self.market = SqlMarket(connection)
        self.governance = SqlGovernance(connection)
        self.figures = SqlFigures(connection)
        self.privacy = SqlPrivacy(connection)
        self.contributions = SqlContributions(connection)
        self.partners = SqlPartners(connection)


class SqlUnitOfWork:
    """letsbot.ports.UnitOfWork on an engine from storage.database.make_engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def transaction(self) -> Iterator[SqlStore]:
        with (
            busy_when_unreachable(),
            self.engine.connect() as connection,
            connection.begin() as transaction,
        ):
            yield SqlStore(connection)
            try:
                transaction.commit()
            except DBAPIError as error:
                # Lost at the COMMIT itself (PostgreSQL gone mid-commit): the server
                # may have stored it. Say so rather than "nothing was changed".
                if isinstance(error, OperationalError) or error.connection_invalidated:
                    raise Unsure(str(error.orig)) from error
                raise


@contextmanager
def busy_when_unreachable() -> Iterator[None]:
    """A database that is locked, down or restarting raises Busy: "try again in a moment".

    OperationalError covers SQLite's "database is locked" and PostgreSQL
    refusing connections, shutting down (57P01, 57P03) or dropping one mid-query;
    a connection SQLAlchemy found dead is the same outage in other clothes.
    """
    try:
        yield
    except OperationalError as error:
        raise Busy(str(error.orig)) from error
    except DBAPIError as error:
        if error.connection_invalidated:
            raise Busy(str(error.orig)) from error
        raise
