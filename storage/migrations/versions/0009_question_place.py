"""questions belong to the chat they were asked in

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Questions open at the upgrade keep NULL: they are answered in a direct chat only.
    with op.batch_alter_table("pending") as batch:
        batch.add_column(sa.Column("platform", sa.String(32), nullable=True))
        batch.add_column(sa.Column("chat_id", sa.String(255), nullable=True))
        batch.add_column(sa.Column("text", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pending") as batch:
        batch.drop_column("text")
        batch.drop_column("chat_id")
        batch.drop_column("platform")
