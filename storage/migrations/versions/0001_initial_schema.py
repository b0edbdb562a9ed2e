"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("is_group_account", sa.Boolean(), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("min_balance", sa.BigInteger(), nullable=True),
        sa.Column("max_balance", sa.BigInteger(), nullable=True),
        sa.Column("created_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_members")),
        sa.UniqueConstraint("number", name=op.f("uq_members_number")),
    )
    # The group account ("kas") exists from the start; number 0, exempt from limits.
    op.bulk_insert(
        sa.table(
            "members",
            sa.column("number", sa.Integer()),
            sa.column("name", sa.String()),
            sa.column("status", sa.String()),
            sa.column("role", sa.String()),
            sa.column("is_group_account", sa.Boolean()),
            sa.column("balance", sa.BigInteger()),
            sa.column("created_at", storage.models.UTCDateTime()),
        ),
        [
            {
                "number": 0,
                "name": "",
                "status": "active",
                "role": "member",
                "is_group_account": True,
                "balance": 0,
                "created_at": datetime.now(UTC),
            }
        ],
    )
    op.create_table(
        "processed_events",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("handled_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_processed_events")),
    )
    op.create_table(
        "identities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_identities_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identities")),
        sa.UniqueConstraint("platform", "user_id", name=op.f("uq_identities_platform")),
    )
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identities_member_id"), ["member_id"], unique=False)

    op.create_table(
        "transfers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("payer_id", sa.Integer(), nullable=False),
        sa.Column("receiver_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("booked_by_id", sa.Integer(), nullable=True),
        sa.Column("reverses_id", sa.Integer(), nullable=True),
        sa.Column("event_key", sa.String(length=255), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_transfers_positive_amount")),
        sa.CheckConstraint("payer_id <> receiver_id", name=op.f("ck_transfers_two_accounts")),
        sa.ForeignKeyConstraint(
            ["booked_by_id"], ["members.id"], name=op.f("fk_transfers_booked_by_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["payer_id"], ["members.id"], name=op.f("fk_transfers_payer_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["receiver_id"], ["members.id"], name=op.f("fk_transfers_receiver_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["reverses_id"], ["transfers.id"], name=op.f("fk_transfers_reverses_id_transfers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfers")),
        sa.UniqueConstraint("event_key", name=op.f("uq_transfers_event_key")),
        sa.UniqueConstraint("reverses_id", name=op.f("uq_transfers_reverses_id")),
    )
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.create_index("ix_transfers_payer", ["payer_id", "id"], unique=False)
        batch_op.create_index("ix_transfers_receiver", ["receiver_id", "id"], unique=False)

    op.create_table(
        "pending",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("asked_id", sa.Integer(), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=False),
        sa.Column("payer_id", sa.Integer(), nullable=True),
        sa.Column("receiver_id", sa.Integer(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("transfer_id", sa.Integer(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["asked_id"], ["members.id"], name=op.f("fk_pending_asked_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["payer_id"], ["members.id"], name=op.f("fk_pending_payer_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["receiver_id"], ["members.id"], name=op.f("fk_pending_receiver_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"], ["members.id"], name=op.f("fk_pending_requested_by_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["transfer_id"], ["transfers.id"], name=op.f("fk_pending_transfer_id_transfers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending")),
    )
    with op.batch_alter_table("pending", schema=None) as batch_op:
        batch_op.create_index("ix_pending_asked_status", ["asked_id", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("pending", schema=None) as batch_op:
        batch_op.drop_index("ix_pending_asked_status")

    op.drop_table("pending")
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.drop_index("ix_transfers_receiver")
        batch_op.drop_index("ix_transfers_payer")

    op.drop_table("transfers")
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identities_member_id"))

    op.drop_table("identities")
    op.drop_table("processed_events")
    op.drop_table("members")
