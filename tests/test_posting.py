"""The one posting path (letsbot.posting.post) and the one MemberCode type."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, event

from letsbot.domain import (
    BreachKind,
    GroupLimits,
    Member,
    MemberCode,
    Role,
    Status,
    TransferKind,
)
from letsbot.posting import LimitRefused, Posted, post
from storage.database import make_engine
from storage.uow import SqlStore, SqlUnitOfWork

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
HARD = GroupLimits(min_balance=-10, max_balance=10, soft=False)
SOFT = GroupLimits(min_balance=-10, max_balance=10, soft=True)


@pytest.fixture
def any_engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def two_members(store: SqlStore) -> tuple[int, int]:
    made = [
        store.members.add_member(
            name=name, language=None, status=Status.ACTIVE, role=Role.MEMBER, at=NOW
        )
        for name in ("An", "Bo")
    ]
    return made[0].id, made[1].id


def pay(
    store: SqlStore,
    payer: int,
    receiver: int,
    amount: int,
    key: str,
    *,
    limits: GroupLimits | None = None,
    locked: dict[int, Member] | None = None,
    kind: TransferKind | Callable[[Member, Member], TransferKind] = TransferKind.PAYMENT,
) -> Posted:
    return post(
        store,
        payer_id=payer,
        receiver_id=receiver,
        amount=amount,
        description="soep",
        kind=kind,
        at=NOW,
        booked_by_id=payer,
        event_key=key,
        limits=limits,
        locked=locked,
    )


def test_post_books_and_moves_both_balances(any_engine: Engine) -> None:
    with SqlUnitOfWork(any_engine).transaction() as store:
        an, bo = two_members(store)
        posted = pay(store, an, bo, 7, "one", limits=HARD)
        balances = store.members.lock_members([an, bo])
    assert (balances[an].balance, balances[bo].balance) == (-7, 7)
    assert (posted.payer_after, posted.receiver_after, posted.soft) == (-7, 7, [])


def test_a_refusing_limit_books_nothing(any_engine: Engine) -> None:
    with SqlUnitOfWork(any_engine).transaction() as store:
        an, bo = two_members(store)
        with pytest.raises(LimitRefused) as refused:
            pay(store, an, bo, 11, "too much", limits=HARD)
        assert refused.value.breach.kind is BreachKind.PAYER_MIN
        assert store.ledger.history(an, 0, 10) == []
        posted = pay(store, an, bo, 11, "soft", limits=SOFT)
    kinds = [breach.kind for breach in posted.soft]
    assert kinds == [BreachKind.PAYER_MIN, BreachKind.RECEIVER_MAX]


def test_accounts_locked_already_are_not_locked_again(any_engine: Engine) -> None:
    seen: list[str] = []
    with SqlUnitOfWork(any_engine).transaction() as store:
        an, bo = two_members(store)
        locked = store.members.lock_members([an, bo])

        @event.listens_for(any_engine, "before_cursor_execute")
        def _seen(*args: object) -> None:
            seen.append(str(args[2]))

        pay(store, an, bo, 3, "k", locked=locked)
        event.remove(any_engine, "before_cursor_execute", _seen)
    assert not any(statement.lstrip().upper().startswith("SELECT") for statement in seen)


def test_the_kind_may_follow_from_the_locked_accounts(any_engine: Engine) -> None:
    with SqlUnitOfWork(any_engine).transaction() as store:
        an, bo = two_members(store)
        posted = pay(store, an, bo, 3, "k", kind=lambda payer, receiver: TransferKind.REST)
    assert posted.transfer.kind is TransferKind.REST


@pytest.mark.parametrize(
    ("text", "typed", "in_a_file"),
    [
        ("DU-007", 7, 7),
        ("du7", 7, 7),
        ("7", 7, 7),
        ("DU-0007", 7, 7),
        ("000007", 7, 7),
        ("0000007", None, 7),  # a file pads codes; no one types seven digits
        ("DU - 7", None, 7),
        ("XX-3", None, None),  # another group's code
        ("1234567", None, None),
        ("DU-", None, None),
    ],
)
def test_a_code_is_read_the_same_everywhere(
    text: str, typed: int | None, in_a_file: int | None
) -> None:
    assert MemberCode.number_in(text, "DU") == typed
    assert MemberCode.number_in(text, "du", padded=True) == in_a_file


def test_a_code_is_shown_one_way() -> None:
    assert MemberCode.show("du", 7) == "DU-007"
    assert MemberCode.show("DU", 1234) == "DU-1234"
    assert MemberCode.show("DU", MemberCode.GROUP_ACCOUNT) == "DU-000"
    assert MemberCode.read("DU-000") == MemberCode("DU", 0)
    assert MemberCode("DU", 0).is_group_account
