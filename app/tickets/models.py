"""Support tickets, their messages and status changes, and each shop's business hours.

Every waiting time is stored when it is recorded (`tickets/timing.py` computes them), in
calendar seconds and in business seconds of the shop's hours at that moment, so the KPIs are
SQL aggregates and history does not move when the hours are edited (`relance kpis recompute`
recomputes on request). `period_date` columns hold the shop-local date a row counts for.
"""

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId


class BusinessHours(Base):
    """When a shop's support works; without a row, Monday to Friday 09:00-18:00 in its zone."""

    __tablename__ = "business_hours"

    shop_id: Mapped[str] = mapped_column(
        ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True
    )
    timezone: Mapped[str] = mapped_column(String(64))
    # {"1": [["09:00", "12:30"], ["14:00", "18:00"]], ..., "7": []} (ISO weekday 1 = Monday)
    week: Mapped[dict[str, Any]] = mapped_column(JSON)
    holidays: Mapped[str | None] = mapped_column(String(2))  # ISO 3166-1 country
    holidays_subdivision: Mapped[str | None] = mapped_column(String(32))
    closed_dates: Mapped[list[str]] = mapped_column(JSON)  # ["2026-12-24", ...]
    updated_at: Mapped[datetime]


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("shop_id", "external_id"),
        Index("ix_tickets_list", "shop_id", "id"),
        # The lists' filters (API and dashboard), newest first: a filter matching few tickets
        # must not read them all (bench.dashboard: 225 ms at 1M tickets without these).
        Index("ix_tickets_status", "shop_id", "status", "id"),
        Index("ix_tickets_category", "shop_id", "category", "id"),
        Index("ix_tickets_period", "shop_id", "period_date"),
        Index("ix_tickets_email", "shop_id", "email_normalized"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(191))
    customer_email: Mapped[str] = mapped_column(String(320))
    email_normalized: Mapped[str] = mapped_column(String(320))
    order_id: Mapped[int | None] = mapped_column(BigInteger)
    language: Mapped[str | None] = mapped_column(String(8))
    channel: Mapped[str | None] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(16))
    level: Mapped[int | None]  # 1 or 2; None until given or detected from a first message
    level_detected: Mapped[bool]  # True when `level` came from the classifier
    status: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]  # the ticket's own time (given, or when received)
    updated_at: Mapped[datetime]
    # The shop-local date of its first message needing a reply, else of `created_at`.
    period_date: Mapped[date]
    # Computed from the messages (`timing.py`) each time one is recorded:
    first_customer_at: Mapped[datetime | None]  # first public, non-automatic customer message
    first_needing_at: Mapped[datetime | None]  # first message needing a reply
    ack_deadline_at: Mapped[datetime | None]  # 24 business hours after first_needing_at
    first_reply_at: Mapped[datetime | None]  # first reply after first_needing_at
    first_reply_business_s: Mapped[int | None]
    first_reply_calendar_s: Mapped[int | None]
    replies: Mapped[int]  # public, non-automatic agent messages
    exchanges: Mapped[int]  # public, non-automatic customer and agent messages
    # From the status changes:
    resolved_at: Mapped[datetime | None]  # first time it became resolved
    resolution_s: Mapped[int | None]  # first_customer_at (else created_at) -> resolved_at
    reopens: Mapped[int]
    # The customer's satisfaction answers about this ticket.
    csat: Mapped[int | None]  # 1-5
    nps: Mapped[int | None]  # 0-10
    satisfaction_at: Mapped[datetime | None]


# The KPI report's passes over the period's messages (app/kpis/queries.py): each reads one
# of these partial indexes only (index-only scans on PostgreSQL, whose INCLUDE columns are
# what the pass aggregates; SQLite ignores INCLUDE).
_NEEDING_SQL = text("author = 'customer' AND public AND NOT automatic AND needs_reply")
_COMMENTED_SQL = text("author = 'customer' AND sentiment IS NOT NULL")
_RATED_SQL = text("author = 'agent' AND (speed_rating IS NOT NULL OR quality_rating IS NOT NULL)")


class TicketMessage(Base):
    __tablename__ = "ticket_messages"
    __table_args__ = (
        UniqueConstraint("shop_id", "external_id"),
        Index("ix_ticket_messages_ticket", "ticket_id", "sent_at"),
        Index("ix_ticket_messages_period", "shop_id", "period_date"),
        Index(
            "ix_ticket_messages_needing",
            "shop_id",
            "period_date",
            postgresql_include=["answered_at", "deadline_at", "reply_business_s"],
            postgresql_where=_NEEDING_SQL,
            sqlite_where=_NEEDING_SQL,
        ),
        Index(
            "ix_ticket_messages_commented",
            "shop_id",
            "period_date",
            postgresql_include=["language", "sentiment"],
            postgresql_where=_COMMENTED_SQL,
            sqlite_where=_COMMENTED_SQL,
        ),
        Index(
            "ix_ticket_messages_rated",
            "shop_id",
            "period_date",
            postgresql_include=["ticket_id", "speed_rating", "quality_rating"],
            postgresql_where=_RATED_SQL,
            sqlite_where=_RATED_SQL,
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    ticket_id: Mapped[int] = mapped_column(BigId, ForeignKey("tickets.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(191))
    author: Mapped[str] = mapped_column(String(16))  # customer, agent, bot, system
    public: Mapped[bool]
    automatic: Mapped[bool]
    body: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(8))
    sent_at: Mapped[datetime]
    period_date: Mapped[date]  # shop-local date of sent_at
    # Customer messages: whether a reply is owed, as given or as detected (with the rule that
    # matched, shown to the merchant), and, once answered, by which reply and how fast.
    needs_reply: Mapped[bool]
    needs_reply_detected: Mapped[bool]
    needs_reply_rule: Mapped[str | None] = mapped_column(String(64))
    deadline_at: Mapped[datetime | None]  # 24 business hours after sent_at
    answered_by: Mapped[int | None] = mapped_column(BigInteger)  # the reply's message id
    answered_at: Mapped[datetime | None]
    reply_business_s: Mapped[int | None]
    reply_calendar_s: Mapped[int | None]
    # positive / neutral / negative, for customer messages with a body.
    sentiment: Mapped[str | None] = mapped_column(String(8))
    # Agent replies: the customer's ratings of this reply (1-5).
    speed_rating: Mapped[int | None]
    quality_rating: Mapped[int | None]
    rated_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class TicketStatusChange(Base):
    """Each status a ticket took and when: resolution time and reopens are read from these."""

    __tablename__ = "ticket_status_changes"
    __table_args__ = (Index("ix_ticket_status_changes_ticket", "ticket_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    ticket_id: Mapped[int] = mapped_column(BigId, ForeignKey("tickets.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    # "api" (a PATCH), "customer_message" (a reopen by a customer's message), "created".
    cause: Mapped[str] = mapped_column(String(32))
