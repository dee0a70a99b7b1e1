"""Endpoints, the deliveries queued to them (one per event and endpoint), and each attempt."""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId

_SCHEDULED_SQL = text("status = 'scheduled'")
_SENDING_SQL = text("status = 'sending'")


class HookEndpoint(Base):
    __tablename__ = "hook_endpoints"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    # One bit per `vocabulary.EventType`: queueing an event tests it in SQL, reading nothing.
    event_mask: Mapped[int]
    secret_encrypted: Mapped[str] = mapped_column(Text)
    # The secret before the last rotation signs too, until it expires.
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None]
    disabled_at: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(String(16))
    # The first failed attempt since the last success; None while it answers.
    failing_since: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class HookDelivery(Base):
    """One event for one endpoint: a claimable row, like an e-mail's delivery."""

    __tablename__ = "hook_deliveries"
    __table_args__ = (
        Index(
            "ix_hook_deliveries_due",
            "due_at",
            sqlite_where=_SCHEDULED_SQL,
            postgresql_where=_SCHEDULED_SQL,
        ),
        Index(
            "ix_hook_deliveries_lease",
            "claim_expires_at",
            sqlite_where=_SENDING_SQL,
            postgresql_where=_SENDING_SQL,
        ),
        Index("ix_hook_deliveries_endpoint", "endpoint_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Its shop's through the endpoint (erasing a shop erases its endpoints, and so these).
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("hook_endpoints.id", ondelete="CASCADE"))
    # The Standard Webhooks `webhook-id`: the same on every attempt (the receiver's
    # idempotency key), and for every endpoint the event went to.
    message_id: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)  # the exact bytes signed and posted
    status: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claim_expires_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime]  # when the event happened: retries end 24 h after


class HookAttempt(Base):
    """One POST of a delivery: the endpoint's delivery log."""

    __tablename__ = "hook_attempts"
    __table_args__ = (Index("ix_hook_attempts_delivery", "delivery_id", "attempt"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("hook_deliveries.id", ondelete="CASCADE")
    )
    attempt: Mapped[int]
    at: Mapped[datetime]
    status_code: Mapped[int | None]
    duration_ms: Mapped[int]
    # The network error, or the first characters of a refusal's body: never the whole body.
    error: Mapped[str | None] = mapped_column(String(300))
