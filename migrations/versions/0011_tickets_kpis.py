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
        batch_op.create_index("ix_tickets_status", ["shop_id", "status", "id"], unique=False)
        batch_op.create_index("ix_tickets_category", ["shop_id", "category", "id"], unique=False)
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

    # The KPI report's indexes (app/kpis/queries.py, docs/kpis.md "Performance"): partial
    # where a pass reads a subset, INCLUDE (PostgreSQL only) for index-only scans.
    needing = sa.text("author = 'customer' AND public AND NOT automatic AND needs_reply")
    commented = sa.text("author = 'customer' AND sentiment IS NOT NULL")
    rated = sa.text("author = 'agent' AND (speed_rating IS NOT NULL OR quality_rating IS NOT NULL)")
    op.create_index(
        "ix_ticket_messages_needing",
        "ticket_messages",
        ["shop_id", "period_date"],
        postgresql_include=["answered_at", "deadline_at", "reply_business_s"],
        postgresql_where=needing,
        sqlite_where=needing,
    )
    op.create_index(
        "ix_ticket_messages_commented",
        "ticket_messages",
        ["shop_id", "period_date"],
        postgresql_include=["language", "sentiment"],
        postgresql_where=commented,
        sqlite_where=commented,
    )
    op.create_index(
        "ix_ticket_messages_rated",
        "ticket_messages",
        ["shop_id", "period_date"],
        postgresql_include=["ticket_id", "speed_rating", "quality_rating"],
        postgresql_where=rated,
        sqlite_where=rated,
    )
    op.drop_index("ix_orders_email", table_name="orders")
    op.create_index(
        "ix_orders_email_ordered", "orders", ["shop_id", "email_normalized", "ordered_at"]
    )
    op.create_index(
        "ix_orders_ordered", "orders", ["shop_id", "ordered_at"], postgresql_include=["order_id"]
    )
    op.create_index(
        "ix_order_history_state",
        "order_history",
        ["shop_id", "state_id", "occurred_at"],
        postgresql_include=["order_id"],
    )
    op.create_index(
        "ix_order_history_order",
        "order_history",
        ["shop_id", "order_id", "occurred_at"],
        postgresql_include=["state_id"],
    )
    live_sent = sa.text("sent_at IS NOT NULL AND NOT dry_run")
    decided = sa.text("status IN ('skipped', 'cancelled') AND NOT dry_run")
    clicked = sa.text("clicked_at IS NOT NULL AND NOT dry_run")
    op.create_index(
        "ix_review_requests_sent",
        "review_requests",
        ["shop_id", "sent_at"],
        postgresql_include=["id"],
        postgresql_where=live_sent,
        sqlite_where=live_sent,
    )
    op.create_index(
        "ix_review_requests_decided",
        "review_requests",
        ["shop_id", "updated_at"],
        postgresql_include=["status", "reason"],
        postgresql_where=decided,
        sqlite_where=decided,
    )
    dry_run = sa.text("dry_run")
    op.create_index(
        "ix_review_requests_dry_run",
        "review_requests",
        ["id"],
        postgresql_where=dry_run,
        sqlite_where=dry_run,
    )
    op.create_index(
        "ix_deliveries_clicked",
        "deliveries",
        ["request_id"],
        postgresql_where=clicked,
        sqlite_where=clicked,
    )
    op.create_index("ix_reviews_created", "reviews", ["shop_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_reviews_created", table_name="reviews")
    op.drop_index("ix_deliveries_clicked", table_name="deliveries")
    op.drop_index("ix_review_requests_dry_run", table_name="review_requests")
    op.drop_index("ix_review_requests_decided", table_name="review_requests")
    op.drop_index("ix_review_requests_sent", table_name="review_requests")
    op.drop_index("ix_order_history_order", table_name="order_history")
    op.drop_index("ix_order_history_state", table_name="order_history")
    op.drop_index("ix_orders_ordered", table_name="orders")
    op.drop_index("ix_orders_email_ordered", table_name="orders")
    op.create_index("ix_orders_email", "orders", ["shop_id", "email_normalized"])
    op.drop_index("ix_ticket_messages_rated", table_name="ticket_messages")
    op.drop_index("ix_ticket_messages_commented", table_name="ticket_messages")
    op.drop_index("ix_ticket_messages_needing", table_name="ticket_messages")

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
        batch_op.drop_index("ix_tickets_status")
        batch_op.drop_index("ix_tickets_category")
        batch_op.drop_index("ix_tickets_email")

    op.drop_table("tickets")
    op.drop_table("expertise_snapshots")
    op.drop_table("business_hours")
