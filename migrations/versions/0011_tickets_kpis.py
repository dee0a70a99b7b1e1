"""tickets, business hours, expertise snapshots, review sentiment

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 03:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "business_hours",
        sa.Column("shop_id", sa.String(length=40), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("week", sa.JSON(), nullable=False),
        sa.Column("holidays", sa.String(length=2), nullable=True),
        sa.Column("holidays_subdivision", sa.String(length=32), nullable=True),
        sa.Column("closed_dates", sa.JSON(), nullable=False),
        sa.Column("updated_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_business_hours_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("shop_id", name=op.f("pk_business_hours")),
    )
    op.create_table(
        "expertise_snapshots",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("shop_id", sa.String(length=40), nullable=False),
        sa.Column("week_start", sa.Date(), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("computed_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_expertise_snapshots_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_expertise_snapshots")),
        sa.UniqueConstraint(
            "shop_id", "week_start", name=op.f("uq_expertise_snapshots_shop_id_week_start")
        ),
    )
    op.create_table(
        "tickets",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("shop_id", sa.String(length=40), nullable=False),
        sa.Column("external_id", sa.String(length=191), nullable=False),
        sa.Column("customer_email", sa.String(length=320), nullable=False),
        sa.Column("email_normalized", sa.String(length=320), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.Column("level_detected", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=True),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("period_date", sa.Date(), nullable=False),
        sa.Column("first_customer_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("first_needing_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ack_deadline_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("first_reply_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("first_reply_business_s", sa.Integer(), nullable=True),
        sa.Column("first_reply_calendar_s", sa.Integer(), nullable=True),
        sa.Column("replies", sa.Integer(), nullable=False),
        sa.Column("exchanges", sa.Integer(), nullable=False),
        sa.Column("resolved_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolution_s", sa.Integer(), nullable=True),
        sa.Column("reopens", sa.Integer(), nullable=False),
        sa.Column("csat", sa.Integer(), nullable=True),
        sa.Column("nps", sa.Integer(), nullable=True),
        sa.Column("satisfaction_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_tickets_shop_id_shops"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
        sa.UniqueConstraint("shop_id", "external_id", name=op.f("uq_tickets_shop_id_external_id")),
    )
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.create_index("ix_tickets_email", ["shop_id", "email_normalized"], unique=False)
        batch_op.create_index("ix_tickets_list", ["shop_id", "id"], unique=False)
        batch_op.create_index("ix_tickets_period", ["shop_id", "period_date"], unique=False)

    op.create_table(
        "ticket_messages",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("shop_id", sa.String(length=40), nullable=False),
        sa.Column(
            "ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("external_id", sa.String(length=191), nullable=False),
        sa.Column("author", sa.String(length=16), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("automatic", sa.Boolean(), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("sent_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("period_date", sa.Date(), nullable=False),
        sa.Column("needs_reply", sa.Boolean(), nullable=False),
        sa.Column("needs_reply_detected", sa.Boolean(), nullable=False),
        sa.Column("needs_reply_rule", sa.String(length=64), nullable=True),
        sa.Column("deadline_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("answered_by", sa.BigInteger(), nullable=True),
        sa.Column("answered_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reply_business_s", sa.Integer(), nullable=True),
        sa.Column("reply_calendar_s", sa.Integer(), nullable=True),
        sa.Column("sentiment", sa.String(length=8), nullable=True),
        sa.Column("speed_rating", sa.Integer(), nullable=True),
        sa.Column("quality_rating", sa.Integer(), nullable=True),
        sa.Column("rated_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_ticket_messages_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_ticket_messages_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_messages")),
        sa.UniqueConstraint(
            "shop_id", "external_id", name=op.f("uq_ticket_messages_shop_id_external_id")
        ),
    )
    with op.batch_alter_table("ticket_messages", schema=None) as batch_op:
        batch_op.create_index("ix_ticket_messages_period", ["shop_id", "period_date"], unique=False)
        batch_op.create_index("ix_ticket_messages_ticket", ["ticket_id", "sent_at"], unique=False)

    op.create_table(
        "ticket_status_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("shop_id", sa.String(length=40), nullable=False),
        sa.Column(
            "ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("cause", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_ticket_status_changes_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_ticket_status_changes_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_status_changes")),
    )
    with op.batch_alter_table("ticket_status_changes", schema=None) as batch_op:
        batch_op.create_index("ix_ticket_status_changes_ticket", ["ticket_id", "at"], unique=False)

    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sentiment", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.drop_column("sentiment")

    with op.batch_alter_table("ticket_status_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_ticket_status_changes_ticket")

    op.drop_table("ticket_status_changes")
    with op.batch_alter_table("ticket_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_ticket_messages_ticket")
        batch_op.drop_index("ix_ticket_messages_period")

    op.drop_table("ticket_messages")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_period")
        batch_op.drop_index("ix_tickets_list")
        batch_op.drop_index("ix_tickets_email")

    op.drop_table("tickets")
    op.drop_table("expertise_snapshots")
    op.drop_table("business_hours")
