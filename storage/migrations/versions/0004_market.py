"""market: offers and wants, their tags, expiry notices, digests, messages, blocks

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "digests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("due_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("handled_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("listings", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digests")),
        sa.UniqueConstraint("due_at", name=op.f("uq_digests_due_at")),
    )
    op.create_table(
        "blocks",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("blocked_id", sa.Integer(), nullable=False),
        sa.Column("at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["blocked_id"], ["members.id"], name=op.f("fk_blocks_blocked_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_blocks_member_id_members")
        ),
        sa.PrimaryKeyConstraint("member_id", "blocked_id", name=op.f("pk_blocks")),
    )
    op.create_table(
        "listings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("price", sa.String(length=200), nullable=True),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("created_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("notice_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["members.id"], name=op.f("fk_listings_owner_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_listings")),
    )
    with op.batch_alter_table("listings", schema=None) as batch_op:
        batch_op.create_index("ix_listings_kind_expires", ["kind", "expires_at"], unique=False)
        batch_op.create_index("ix_listings_notice", ["notice_at"], unique=False)
        batch_op.create_index("ix_listings_owner_expires", ["owner_id", "expires_at"], unique=False)

    op.create_table(
        "direct_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sender_id", sa.Integer(), nullable=False),
        sa.Column("receiver_id", sa.Integer(), nullable=False),
        sa.Column("listing_id", sa.Integer(), nullable=True),
        sa.Column("sent_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["listing_id"], ["listings.id"], name=op.f("fk_direct_messages_listing_id_listings")
        ),
        sa.ForeignKeyConstraint(
            ["receiver_id"], ["members.id"], name=op.f("fk_direct_messages_receiver_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["sender_id"], ["members.id"], name=op.f("fk_direct_messages_sender_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_direct_messages")),
    )
    with op.batch_alter_table("direct_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_direct_messages_sender_sent", ["sender_id", "sent_at"], unique=False
        )

    op.create_table(
        "listing_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("listing_id", sa.Integer(), nullable=False),
        sa.Column("expires_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("handled_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["listing_id"], ["listings.id"], name=op.f("fk_listing_notices_listing_id_listings")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_listing_notices")),
        sa.UniqueConstraint("listing_id", "expires_at", name=op.f("uq_listing_notices_listing_id")),
    )
    op.create_table(
        "listing_tags",
        sa.Column("listing_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=40), nullable=False),
        sa.Column("label", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["listing_id"], ["listings.id"], name=op.f("fk_listing_tags_listing_id_listings")
        ),
        sa.PrimaryKeyConstraint("listing_id", "tag", name=op.f("pk_listing_tags")),
    )
    with op.batch_alter_table("listing_tags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_listing_tags_tag"), ["tag"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("listing_tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_listing_tags_tag"))

    op.drop_table("listing_tags")
    op.drop_table("listing_notices")
    with op.batch_alter_table("direct_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_direct_messages_sender_sent")

    op.drop_table("direct_messages")
    with op.batch_alter_table("listings", schema=None) as batch_op:
        batch_op.drop_index("ix_listings_owner_expires")
        batch_op.drop_index("ix_listings_notice")
        batch_op.drop_index("ix_listings_kind_expires")

    op.drop_table("listings")
    op.drop_table("blocks")
    op.drop_table("digests")
