"""Members, their chat identities and the row locks of the accounts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Connection,
    Integer,
    any_,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)

from letsbot.domain import (
    Identity,
    Member,
    Role,
    Status,
)
from letsbot.text import strip_controls
from storage.rows import member_row
from storage.tables import (
    identities,
    members,
    platform_state,
)

_MEMBER = select(members).where(members.c.id == bindparam("member_id"))


_MEMBER_BY_NUMBER = select(members).where(members.c.number == bindparam("number"))


_MEMBER_BY_IDENTITY = (
    select(members)
    .join(identities, identities.c.member_id == members.c.id)
    .where(
        identities.c.platform == bindparam("platform"),
        identities.c.user_id == bindparam("user_id"),
    )
)


_CHUNK = 1_000  # ids per IN list: well below SQLite's limit of bound parameters
_IDENTITIES = (
    select(identities.c.platform, identities.c.user_id)
    .where(identities.c.member_id == bindparam("member_id"))
    .order_by(identities.c.id.desc())
)


# The lock order of every transaction that writes (PostgreSQL; SQLite's BEGIN
# IMMEDIATE takes the one write lock first). After the claim of the message
# (processed_events, which only the same message can wait for):
# 1. the member rows it changes or whose balances it checks, in one call of
#    lock_members: FOR NO KEY UPDATE, in id order;
# 2. then pending rows (context.ask locks the asker and the asked before it replaces one),
#    then everything else.
# NO KEY UPDATE, not UPDATE: a foreign-key check of a row that names a member
# (pending, transfers, listings ...) takes FOR KEY SHARE on the member, which
# NO KEY UPDATE lets through; FOR UPDATE would make an insert wait for a
# booking that waits for a row the insert's transaction holds. Nothing takes
# FOR UPDATE on members: no path deletes a member or changes its id or number.
_LOCK_MEMBERS = (
    select(members)
    .where(members.c.id.in_(bindparam("member_ids", expanding=True)))
    .order_by(members.c.id)
    .with_for_update(key_share=True)
)
# The same for many (a mass payment): PostgreSQL takes the ids as one array
# (a statement with 10,000 placeholders costs the driver more than the locks);
# SQLite, which holds its one write lock already, reads them in chunks (it allows
# only so many placeholders in a statement).
_LOCK_MEMBERS_ANY = (
    select(members)
    .where(members.c.id == any_(bindparam("member_ids", type_=ARRAY(Integer))))
    .order_by(members.c.id)
    .with_for_update(key_share=True)
)
_HOLD_MEMBERS = (
    select(members.c.id)
    .where(members.c.id.in_(bindparam("member_ids", expanding=True)))
    .order_by(members.c.id)
    .with_for_update(key_share=True)
)


class SqlMembers:
    """letsbot.ports.Members on a connection inside the unit of work's transaction."""

    def __init__(self, connection: Connection) -> None:
        self.db = connection

    def member(self, member_id: int) -> Member | None:
        row = self.db.execute(_MEMBER, {"member_id": member_id}).first()
        return member_row(row) if row else None

    def member_by_number(self, number: int) -> Member | None:
        row = self.db.execute(_MEMBER_BY_NUMBER, {"number": number}).first()
        return member_row(row) if row else None

    def member_by_identity(self, identity: Identity) -> Member | None:
        row = self.db.execute(
            _MEMBER_BY_IDENTITY, {"platform": identity.platform, "user_id": identity.user_id}
        ).first()
        return member_row(row) if row else None

    def group_account(self) -> Member:
        row = self.db.execute(select(members).where(members.c.is_group_account)).one()
        return member_row(row)

    def members(self, statuses: Iterable[Status]) -> list[Member]:
        rows = self.db.execute(
            select(members)
            .where(members.c.status.in_([s.value for s in statuses]))
            .order_by(members.c.number)
        )
        return [member_row(row) for row in rows]

    def add_member(
        self, *, name: str, language: str | None, status: Status, role: Role, at: datetime
    ) -> Member:
        # The group account's row is the lock that serialises numbering on PostgreSQL.
        self.lock_members([self.group_account().id])
        number = self.db.execute(select(func.max(members.c.number))).scalar_one() + 1
        member_id = self.db.execute(
            insert(members)
            .values(
                number=number,
                name=name,
                language=language,
                status=status.value,
                role=role.value,
                is_group_account=False,
                balance=0,
                created_at=at,
            )
            .returning(members.c.id)
        ).scalar_one()
        found = self.member(member_id)
        assert found is not None
        return found

    def update_member(
        self,
        member_id: int,
        *,
        status: Status | None = None,
        role: Role | None = None,
        language: str | None = None,
        limits: tuple[int | None, int | None] | None = None,
        name: str | None = None,
        active_since: datetime | None = None,
    ) -> Member:
        values: dict[str, Any] = {}
        if status is not None:
            values["status"] = status.value
        if role is not None:
            values["role"] = role.value
        if language is not None:
            values["language"] = language
        if limits is not None:
            values["min_balance"], values["max_balance"] = limits
        if name is not None:
            values["name"] = name
        if active_since is not None:
            values["active_since"] = active_since
        if values:
            self.db.execute(update(members).where(members.c.id == member_id).values(**values))
        found = self.member(member_id)
        assert found is not None
        return found

    def add_identity(self, member_id: int, identity: Identity, display_name: str) -> None:
        self.db.execute(
            insert(identities).values(
                member_id=member_id,
                platform=identity.platform,
                user_id=identity.user_id,
                # A platform's name the member can't retype: cleaned, not refused.
                display_name=strip_controls(display_name)[:200],
            )
        )

    def identities(self, member_id: int) -> list[Identity]:
        rows = self.db.execute(_IDENTITIES, {"member_id": member_id})
        return [Identity(row.platform, row.user_id) for row in rows]

    # Kept beside the adapters' small facts, keyed by the person (forgetting them drops it).
    def stranger_fact(self, identity: Identity, fact: str) -> str | None:
        value = self.db.execute(
            select(platform_state.c.value).where(
                platform_state.c.platform == identity.platform,
                platform_state.c.key == f"{fact}:{identity.user_id}",
            )
        ).scalar_one_or_none()
        return None if value is None else str(value)

    def keep_stranger_fact(
        self, identity: Identity, fact: str, value: str | None, at: datetime
    ) -> None:
        key = f"{fact}:{identity.user_id}"
        self.db.execute(
            delete(platform_state).where(
                platform_state.c.platform == identity.platform, platform_state.c.key == key
            )
        )
        if value is not None:
            self.db.execute(
                insert(platform_state).values(
                    platform=identity.platform, key=key, value=value, updated_at=at
                )
            )

    def first_identities(self, member_ids: Sequence[int]) -> dict[int, Identity]:
        found: dict[int, Identity] = {}
        columns = select(identities.c.member_id, identities.c.platform, identities.c.user_id)
        newest_first = (identities.c.member_id, identities.c.id.desc())
        if self.db.dialect.name == "postgresql":
            statement = columns.where(
                identities.c.member_id == any_(bindparam("ids", type_=ARRAY(Integer)))
            ).order_by(*newest_first)
            chunks = [list(member_ids)]
        else:
            statement = columns.where(
                identities.c.member_id.in_(bindparam("ids", expanding=True))
            ).order_by(*newest_first)
            chunks = [list(member_ids[i : i + _CHUNK]) for i in range(0, len(member_ids), _CHUNK)]
        for chunk in chunks:
            for row in self.db.execute(statement, {"ids": chunk}):
                found.setdefault(row.member_id, Identity(row.platform, row.user_id))
        return found

    def move_identity(self, identity: Identity, member_id: int) -> None:
        self.db.execute(
            update(identities)
            .where(
                identities.c.platform == identity.platform,
                identities.c.user_id == identity.user_id,
            )
            .values(member_id=member_id)
        )

    def remove_identity(self, identity: Identity) -> bool:
        result = self.db.execute(
            delete(identities).where(
                identities.c.platform == identity.platform,
                identities.c.user_id == identity.user_id,
            )
        )
        return result.rowcount == 1

    def lock_members(self, member_ids: Sequence[int]) -> dict[int, Member]:
        # Step 1 of the lock order (see _LOCK_MEMBERS): all of them in one call.
        ids = sorted(set(member_ids))
        if len(ids) <= _CHUNK:
            rows = self.db.execute(_LOCK_MEMBERS, {"member_ids": ids})
            return {row.id: member_row(row) for row in rows}
        if self.db.dialect.name == "postgresql":
            rows = self.db.execute(_LOCK_MEMBERS_ANY, {"member_ids": ids})
            return {row.id: member_row(row) for row in rows}
        found: dict[int, Member] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            found.update(
                (row.id, member_row(row))
                for row in self.db.execute(_LOCK_MEMBERS, {"member_ids": chunk})
            )
        return found

    def hold_members(self, member_ids: Sequence[int]) -> None:
        # SQLite's BEGIN IMMEDIATE holds the one write lock already: nothing to send.
        if self.db.dialect.name != "sqlite":
            self.db.execute(_HOLD_MEMBERS, {"member_ids": sorted(set(member_ids))})
