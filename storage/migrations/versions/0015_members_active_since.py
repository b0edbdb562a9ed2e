"""members.active_since: when a candidate was approved

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04

A contribution skips members newer than ``contributions.new_member_days``: new
counts from the approval, not the application (a candidate may wait weeks for
the intake talk). Older rows have none: their account's creation counts.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "members",
        sa.Column("active_since", storage.models.UTCDateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("members", "active_since")
