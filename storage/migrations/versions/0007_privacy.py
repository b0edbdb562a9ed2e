"""privacy: members the bot has forgotten

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


# Plain ALTER TABLE on both databases (SQLite 3.35+ drops a column in place): a batch
# copy of ``members`` would fail on the foreign keys that point at it.


def upgrade() -> None:
    op.add_column(
        "members",
        sa.Column("forgotten_at", storage.models.UTCDateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("members", "forgotten_at")
