"""Storage on real databases: SQLite files, and PostgreSQL when it is available."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.exc import IntegrityError

from letsbot.domain import Identity, Role, Status, TransferKind
from storage.check import ledger_problems
from storage.database import make_engine, schema_state, upgrade
from storage.models import TransferRow
from storage.uow import SqlUnitOfWork
from tests.support import Driver, make_settings

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)

HEAD = "0017"  # the newest migration; the doctor test names it too


@pytest.fixture
def any_engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def test_schema_is_current_and_has_a_group_account(any_engine: Engine) -> None:
    current, head = schema_state(any_engine)
    assert current == head == HEAD
    with SqlUnitOfWork(any_engine).transaction() as store:
        kas = store.members.group_account()
    assert (kas.number, kas.is_group_account, kas.balance) == (0, True, 0)


def test_a_whole_scenario_keeps_the_ledger_sound(any_engine: Engine) -> None:
    driver = Driver(any_engine, make_settings(limits={"start_credit": 50}))
    driver.member("an")
    driver.member("bo")
    driver.say("an", "/betaal 3 30 soep")
    driver.say("an", "ja")
    driver.say("bo", "/vraagbetaling 2 10 eitjes")
    driver.say("an", "ja")
    driver.say("admin", "/terugboeken 5 vergissing")
    driver.say("admin", "ja")
    driver.say("an", "/uitstappen")
    driver.say("an", "ja")
    assert (driver.balance("an"), driver.balance("bo")) == (20, 80)
    assert driver.count("transfers") == 6  # 3 start credits, 2 payments, 1 reversal
    assert ledger_problems(any_engine, driver.settings.group_limits) == []


def test_times_come_back_in_utc(any_engine: Engine) -> None:
    with SqlUnitOfWork(any_engine).transaction() as store:
        member = store.members.add_member(
            name="An", language=None, status=Status.ACTIVE, role=Role.MEMBER, at=NOW
        )
        kas = store.members.group_account()
        store.members.lock_members([member.id, kas.id])
        store.ledger.add_transfer(
            payer_id=kas.id,
            receiver_id=member.id,
            amount=5,
            description="x",
            kind=TransferKind.PAYMENT,
            at=NOW,
            booked_by_id=None,
            event_key="k",
        )
    with SqlUnitOfWork(any_engine).transaction() as store:
        (transfer,) = store.ledger.history(member.id, 0, 10)
    assert transfer.created_at == NOW and transfer.created_at.tzinfo is not None


def test_identities_are_unique_per_platform(any_engine: Engine) -> None:
    with pytest.raises(IntegrityError), SqlUnitOfWork(any_engine).transaction() as store:
        member = store.members.add_member(
            name="An", language=None, status=Status.ACTIVE, role=Role.MEMBER, at=NOW
        )
        store.members.add_identity(member.id, Identity("console", "an"), "An")
        store.members.add_identity(member.id, Identity("console", "an"), "An")


@pytest.mark.parametrize(
    "change",
    [
        {"amount": 0},  # amounts are positive
        {"receiver_id": 1},  # two different accounts
        {"event_key": "same"},  # an event books once
        {"reverses_id": 1},  # a transfer is reversed at most once
    ],
)
def test_the_database_itself_refuses_bad_transfers(
    any_engine: Engine, change: dict[str, object]
) -> None:
    with SqlUnitOfWork(any_engine).transaction() as store:
        member = store.members.add_member(
            name="An", language=None, status=Status.ACTIVE, role=Role.MEMBER, at=NOW
        )
    row = {
        "payer_id": 1,
        "receiver_id": member.id,
        "amount": 5,
        "description": "x",
        "kind": "payment",
        "created_at": NOW,
        "event_key": "same",
        "reverses_id": None,
    }
    with any_engine.begin() as connection:
        first = connection.execute(insert(TransferRow).values(**row).returning(TransferRow.id))
        first_id = first.scalar_one()
    row["event_key"] = "other"
    if "reverses_id" in change:
        with any_engine.begin() as connection:
            connection.execute(insert(TransferRow).values(**{**row, "reverses_id": first_id}))
        row["event_key"] = "third"
        change = {"reverses_id": first_id}
    with pytest.raises(IntegrityError), any_engine.begin() as connection:
        connection.execute(insert(TransferRow).values(**{**row, **change}))


def test_sqlite_connection_settings(engine: Engine) -> None:
    with engine.connect() as connection:
        pragma = lambda name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
        assert pragma("journal_mode") == "wal"
        assert pragma("foreign_keys") == 1
        assert pragma("busy_timeout") == 30000
        assert pragma("synchronous") == 1  # NORMAL


def test_sqlite_transactions_take_the_write_lock_before_reading(sqlite_url: str) -> None:
    """BEGIN IMMEDIATE: a second writer waits even while the first has only read."""
    holder = make_engine(sqlite_url)
    other = make_engine(sqlite_url, busy_timeout_ms=50)
    try:
        with holder.connect() as connection:
            connection.execute(select(text("1")))  # only a read, inside BEGIN IMMEDIATE
            with pytest.raises(Exception, match="locked"), other.begin() as second:
                second.execute(text("UPDATE members SET name = 'x' WHERE 0"))
            connection.rollback()
    finally:
        holder.dispose()
        other.dispose()


def test_a_locked_database_gets_a_try_again_reply_and_changes_nothing(
    sqlite_url: str, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_url, busy_timeout_ms=50)
    driver = Driver(engine, make_settings())
    driver.member("an")
    driver.member("bo")
    driver.say("an", "/betaal 3 30 soep")
    before = driver.snapshot()
    blocker = make_engine(sqlite_url)
    with blocker.connect() as connection:
        connection.execute(text("UPDATE members SET name = name WHERE 0"))
        out = driver.say("an", "ja")
        connection.rollback()
    blocker.dispose()
    assert driver.last is not None and driver.last.outcome == "busy"
    assert "Het is even druk. Er is niets veranderd; probeer het zo opnieuw." in out
    assert driver.snapshot() == before
    assert "Geboekt" in driver.say("an", "ja")  # and it works once the lock is gone
    engine.dispose()


def test_an_unexpected_failure_is_logged_not_shown_and_changes_nothing(
    driver: Driver, caplog: pytest.LogCaptureFixture
) -> None:
    driver.member("an")
    driver.member("bo")
    driver.say("an", "/betaal 3 30 soep")
    # A real fault inside the database: it refuses every new transfer.
    with driver.engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TRIGGER broken BEFORE INSERT ON transfers"
            " BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
        )
    before = driver.snapshot()
    out = driver.say("an", "ja")
    assert driver.last is not None and driver.last.outcome == "failed"
    assert out == (
        "[dm an] Er ging iets mis aan mijn kant. Er is niets veranderd;"
        " probeer het later opnieuw of meld het aan een coördinator."
    )
    assert driver.snapshot() == before
    assert "disk says no" in caplog.text and "Traceback" in caplog.text


def test_a_new_sqlite_file_is_read_by_the_bots_user_alone(tmp_path: Path) -> None:
    """Names, chats and the platforms' access tokens are in it."""
    path = tmp_path / "new" / "letsbot.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    assert path.stat().st_mode & 0o777 == 0o600
