"""transfers by time: /stats and letsbot report read months of the ledger

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_transfers_created_at", "transfers", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_transfers_created_at", table_name="transfers")
