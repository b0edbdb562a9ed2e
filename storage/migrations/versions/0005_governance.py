"""governance: proposals, their eligible voters, votes, and opt-ins for reminders

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notify_optins",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_notify_optins_member_id_members")
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_notify_optins")),
    )
    op.create_table(
        "proposals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("options", sa.Text(), nullable=True),
        sa.Column("rule", sa.String(length=16), nullable=False),
        sa.Column("quorum", sa.String(length=16), nullable=False),
        sa.Column("supermajority", sa.String(length=16), nullable=False),
        sa.Column("ballot", sa.String(length=8), nullable=False),
        sa.Column("early_close", sa.Boolean(), nullable=False),
        sa.Column("proposer_id", sa.Integer(), nullable=False),
        sa.Column("created_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closes_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("remind_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reminded_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("closed_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("verdict", sa.String(length=16), nullable=True),
        sa.Column("withdraw_reason", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(
            ["proposer_id"], ["members.id"], name=op.f("fk_proposals_proposer_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proposals")),
    )
    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.create_index("ix_proposals_status_closes", ["status", "closes_at"], unique=False)
        batch_op.create_index("ix_proposals_status_remind", ["status", "remind_at"], unique=False)

    op.create_table(
        "proposal_voters",
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_proposal_voters_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["proposal_id"], ["proposals.id"], name=op.f("fk_proposal_voters_proposal_id_proposals")
        ),
        sa.PrimaryKeyConstraint("proposal_id", "member_id", name=op.f("pk_proposal_voters")),
    )
    op.create_table(
        "votes",
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("choice", sa.Integer(), nullable=False),
        sa.Column("objection", sa.String(length=300), nullable=True),
        sa.Column("voted_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_votes_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["proposal_id"], ["proposals.id"], name=op.f("fk_votes_proposal_id_proposals")
        ),
        sa.PrimaryKeyConstraint("proposal_id", "member_id", name=op.f("pk_votes")),
    )


def downgrade() -> None:
    op.drop_table("votes")
    op.drop_table("proposal_voters")
    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.drop_index("ix_proposals_status_remind")
        batch_op.drop_index("ix_proposals_status_closes")

    op.drop_table("proposals")
    op.drop_table("notify_optins")
