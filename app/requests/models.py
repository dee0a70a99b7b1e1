"""Review requests and the deliveries (e-mails) each one owns."""

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId
from app.security import new_public_id

# A request in one of these states blocks another for the same order (see the unique index).
_LIVE_SQL = text("status IN ('scheduled', 'sending', 'sent')")
_LIVE_SENT_SQL = text("sent_at IS NOT NULL AND NOT dry_run")
_DECIDED_SQL = text("status IN ('skipped', 'cancelled') AND NOT dry_run")
_DRY_RUN_SQL = text("dry_run")


class ReviewRequest(Base):
    __tablename__ = "review_requests"
    __table_args__ = (
        Index(
            "uq_review_requests_live_order",
            "shop_id",
            "order_id",
            unique=True,
            sqlite_where=_LIVE_SQL,
            postgresql_where=_LIVE_SQL,
        ),
        Index("ix_review_requests_list", "shop_id", "id"),
        Index("ix_review_requests_order", "shop_id", "order_id"),
        Index("ix_review_requests_email_sent", "shop_id", "email_normalized", "sent_at"),
        # The KPIs: requests sent in a period, and those skipped or cancelled (by the
        # decision's time), dry runs left out.
        Index(
            "ix_review_requests_sent",
            "shop_id",
            "sent_at",
            postgresql_include=["id"],
            postgresql_where=_LIVE_SENT_SQL,
            sqlite_where=_LIVE_SENT_SQL,
        ),
        Index(
            "ix_review_requests_decided",
            "shop_id",
            "updated_at",
            postgresql_include=["status", "reason"],
            postgresql_where=_DECIDED_SQL,
            sqlite_where=_DECIDED_SQL,
        ),
        # The few dry runs, which the KPIs leave out of the reviews (an anti join).
        Index(
            "ix_review_requests_dry_run",
            "id",
            postgresql_where=_DRY_RUN_SQL,
            sqlite_where=_DRY_RUN_SQL,
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Sent under the shop's dry run: to the dry-run outbox, never counted (cooldown, figures).
    dry_run: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Random and unique: what the customer's links carry, so they reveal no sequential id.
    public_id: Mapped[str] = mapped_column(String(24), unique=True, default=new_public_id)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    order_id: Mapped[int] = mapped_column(BigInteger)
    email: Mapped[str] = mapped_column(String(320))
    email_normalized: Mapped[str] = mapped_column(String(320))
    language: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))
    trigger_history_id: Mapped[int] = mapped_column(BigInteger)
    trigger_at: Mapped[datetime]
    due_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


_SCHEDULED_SQL = text("status = 'scheduled'")
_SENDING_SQL = text("status = 'sending'")
_CLICKED_SQL = text("clicked_at IS NOT NULL AND NOT dry_run")


class Delivery(Base):
    """One e-mail of a request (the first, each reminder): a claimable row."""

    __tablename__ = "deliveries"
    __table_args__ = (
        Index(
            "ix_deliveries_due",
            "due_at",
            sqlite_where=_SCHEDULED_SQL,
            postgresql_where=_SCHEDULED_SQL,
        ),
        # Which shops have e-mails due, and each shop's share of a claim (round robin).
        Index(
            "ix_deliveries_shop_due",
            "shop_id",
            "due_at",
            sqlite_where=_SCHEDULED_SQL,
            postgresql_where=_SCHEDULED_SQL,
        ),
        Index(
            "ix_deliveries_lease",
            "claim_expires_at",
            sqlite_where=_SENDING_SQL,
            postgresql_where=_SENDING_SQL,
        ),
        Index("ix_deliveries_request", "request_id", "seq"),
        # The KPIs' click rate: whether a request has a clicked e-mail.
        Index(
            "ix_deliveries_clicked",
            "request_id",
            sqlite_where=_CLICKED_SQL,
            postgresql_where=_CLICKED_SQL,
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("review_requests.id", ondelete="CASCADE")
    )
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    seq: Mapped[int]
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32))
    due_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claim_expires_at: Mapped[datetime | None]
    message_id: Mapped[str | None] = mapped_column(String(255))
    sent_at: Mapped[datetime | None]
    dry_run: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The first time a link of this e-mail was followed by a person (not a mail scanner).
    clicked_at: Mapped[datetime | None]
    # When the delay ended, if the send window (or the spread) moved the e-mail later.
    window_from: Mapped[datetime | None]
    # When a worker last claimed it (kept after the outcome, for the timeline).
    claimed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class RequestStep(Base):
    """A step of a request that no other row records: a move by a settings change or by hand,
    a re-queue. Written off the hot path; read by the timeline."""

    __tablename__ = "request_steps"
    __table_args__ = (Index("ix_request_steps_request", "request_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("review_requests.id", ondelete="CASCADE")
    )
    at: Mapped[datetime]
    step: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(500))
