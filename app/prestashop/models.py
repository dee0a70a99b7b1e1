"""A shop's PrestaShop Webservice: where it is, its key, and the reconciliation cursor."""

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class PrestashopWebservice(Base):
    __tablename__ = "prestashop_webservices"

    shop_id: Mapped[str] = mapped_column(
        ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True
    )
    url: Mapped[str] = mapped_column(String(2048))
    key_encrypted: Mapped[str] = mapped_column(Text)
    thin_events: Mapped[bool] = mapped_column(server_default=false())
    # SHA-256 of the thin-event token: the token itself is shown once and never stored.
    thin_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The newest `date_upd` reconciliation has read (UTC); the next run asks from there.
    reconciled_until: Mapped[datetime | None]
    # A run's lease: another replica leaves the shop alone until it expires.
    claimed_until: Mapped[datetime | None]
    next_run_at: Mapped[datetime | None]
    last_run_at: Mapped[datetime | None]
    last_status: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
