"""One-time access codes (/link, /claim) and the attempts to guess them."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import (
    Connection,
    delete,
    func,
    insert,
    select,
    update,
)

from letsbot.domain import (
    AccessCode,
    CodePurpose,
)
from storage.tables import (
    access_codes,
    code_attempts,
)

# Expired codes and old attempts are of no use after a while.
_KEEP_CODES = timedelta(days=30)


_KEEP_ATTEMPTS = timedelta(days=1)


class SqlCodes:
    """letsbot.ports.Codes on a connection inside the unit of work's transaction."""

    def __init__(self, connection: Connection) -> None:
        self.db = connection

    def add_access_code(
        self,
        *,
        purpose: CodePurpose,
        member_id: int,
        code_hash: str,
        created_by_id: int | None,
        at: datetime,
        expires_at: datetime,
    ) -> None:
        self.db.execute(
            delete(access_codes).where(
                (
                    (access_codes.c.member_id == member_id)
                    & (access_codes.c.purpose == purpose.value)
                )
                | (access_codes.c.expires_at < at - _KEEP_CODES)
            )
        )
        self.db.execute(
            insert(access_codes).values(
                purpose=purpose.value,
                member_id=member_id,
                code_hash=code_hash,
                created_by_id=created_by_id,
                created_at=at,
                expires_at=expires_at,
                used_at=None,
            )
        )

    def access_code(self, code_hash: str) -> AccessCode | None:
        row = self.db.execute(
            select(access_codes).where(access_codes.c.code_hash == code_hash)
        ).first()
        if row is None:
            return None
        return AccessCode(
            id=row.id,
            purpose=CodePurpose(row.purpose),
            member_id=row.member_id,
            created_at=row.created_at,
            expires_at=row.expires_at,
            used_at=row.used_at,
        )

    def use_access_code(self, code_id: int, at: datetime) -> bool:
        result = self.db.execute(
            update(access_codes)
            .where(access_codes.c.id == code_id, access_codes.c.used_at.is_(None))
            .values(used_at=at)
        )
        return result.rowcount == 1

    def add_code_attempt(self, sender: str, at: datetime) -> None:
        self.db.execute(delete(code_attempts).where(code_attempts.c.at < at - _KEEP_ATTEMPTS))
        self.db.execute(insert(code_attempts).values(sender=sender[:300], at=at))

    def code_attempts_since(self, sender: str | None, since: datetime) -> int:
        query = select(func.count()).select_from(code_attempts).where(code_attempts.c.at > since)
        if sender is not None:
            query = query.where(code_attempts.c.sender == sender[:300])
        return int(self.db.execute(query).scalar_one())
