"""Order tables: the last known state of each order, and every state change received."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        # A customer's orders, by date: the KPIs' conversion after a pre-sale ticket reads
        # `ordered_at` from the index.
        Index("ix_orders_email_ordered", "shop_id", "email_normalized", "ordered_at"),
        # Orders created in a period (the KPIs' contact rates), index-only on PostgreSQL.
        Index("ix_orders_ordered", "shop_id", "ordered_at", postgresql_include=["order_id"]),
    )

    shop_id: Mapped[str] = mapped_column(
        ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True
    )
    order_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    reference: Mapped[str | None] = mapped_column(String(64))
    customer_id: Mapped[int | None] = mapped_column(BigInteger)
    email: Mapped[str] = mapped_column(String(320))
    email_normalized: Mapped[str] = mapped_column(String(320))
    firstname: Mapped[str | None] = mapped_column(String(255))
    lastname: Mapped[str | None] = mapped_column(String(255))
    language: Mapped[str | None] = mapped_column(String(8))
    country: Mapped[str | None] = mapped_column(String(2))
    group_ids: Mapped[list[int] | None] = mapped_column(JSON)
    newsletter: Mapped[bool | None]
    currency: Mapped[str | None] = mapped_column(String(3))
    total_paid: Mapped[str | None] = mapped_column(String(32))
    ordered_at: Mapped[datetime | None]
    products: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    state_id: Mapped[int]
    state_name: Mapped[str | None] = mapped_column(String(255))
    history_id: Mapped[int] = mapped_column(BigInteger)
    state_at: Mapped[datetime]
    # "Has been paid" is a fact of the history: the earliest paid state seen, in any order.
    paid_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class OrderHistory(Base):
    """One row per order-history entry; its uniqueness makes a repeated event a no-op."""

    __tablename__ = "order_history"
    __table_args__ = (
        UniqueConstraint("shop_id", "order_id", "history_id"),
        # The KPIs' deliveries in a period (entries of a state by time) and an order's first
        # entries (its creation when it has no date, whether it reached a state before).
        Index(
            "ix_order_history_state",
            "shop_id",
            "state_id",
            "occurred_at",
            postgresql_include=["order_id"],
        ),
        Index(
            "ix_order_history_order",
            "shop_id",
            "order_id",
            "occurred_at",
            postgresql_include=["state_id"],
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    order_id: Mapped[int] = mapped_column(BigInteger)
    history_id: Mapped[int] = mapped_column(BigInteger)
    state_id: Mapped[int]
    state_name: Mapped[str | None] = mapped_column(String(255))
    paid: Mapped[bool]
    shipped: Mapped[bool]
    occurred_at: Mapped[datetime]
    event_id: Mapped[int] = mapped_column(BigInteger)
