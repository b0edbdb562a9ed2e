"""members.old_code: the code a member had in the system the group moved from

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04

An eLAS/eLAND letscode that isn't a number we can keep (``ILGENT``, another
group's prefix, too many digits to type) gets the lowest free number; the old
code stays with the member so files and people can still name them by it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("members", sa.Column("old_code", sa.String(length=40), nullable=True))
    op.create_index("ix_members_old_code", "members", ["old_code"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_members_old_code", table_name="members")
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+ too): a copied table would break the
    # foreign keys that point at members.
    op.drop_column("members", "old_code")
