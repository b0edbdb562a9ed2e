"""Filling a benchmark database directly (the measured paths go through the bot)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert

from storage.tables import identities, members


def add_member(
    connection: Connection,
    number: int,
    *,
    platform: str,
    user_id: str,
    language: str,
    created_at: datetime,
    role: str = "member",
) -> int:
    """An active member with one chat identity; their id."""
    member_id = connection.execute(
        insert(members)
        .values(
            number=number,
            name=f"Member {number}",
            language=language,
            status="active",
            role=role,
            is_group_account=False,
            balance=0,
            created_at=created_at,
        )
        .returning(members.c.id)
    ).scalar_one()
    connection.execute(
        insert(identities).values(
            member_id=member_id,
            platform=platform,
            user_id=user_id,
            display_name=f"Member {number}",
        )
    )
    return int(member_id)
