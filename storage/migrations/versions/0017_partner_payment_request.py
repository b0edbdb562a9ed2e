"""partner_outgoing.request_id: the partner's payment request a payment answers

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04

A payment made on a partner group's request carries the request's id, so the
requester's bot can tell them when it can't book the payment there.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("partner_outgoing", sa.Column("request_id", sa.String(40), nullable=True))


def downgrade() -> None:
    op.drop_column("partner_outgoing", "request_id")
