"""transfers: the rest of a closing account, given to the group account, is kind 'rest'

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03

Before, /forget_me booked that rest as a 'payment', so /stats and the report
counted it as trade. Those rows are recognised exactly: a payment to the group
account, booked by its payer, at the very moment the payer was forgotten (the
rest and the forgetting are one transaction, with one timestamp). A rest given
with /pay while leaving can't be told from an ordinary payment afterwards (the
status then is not kept), so older ones stay 'payment'.
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "UPDATE transfers SET kind = 'rest'"
        " WHERE kind = 'payment'"
        " AND booked_by_id = payer_id"
        " AND receiver_id IN (SELECT id FROM members WHERE is_group_account)"
        " AND EXISTS (SELECT 1 FROM members m WHERE m.id = transfers.payer_id"
        " AND m.forgotten_at = transfers.created_at)"
    )


def downgrade() -> None:
    # The older code knows no 'rest': it was a payment there.
    op.execute("UPDATE transfers SET kind = 'payment' WHERE kind = 'rest'")
