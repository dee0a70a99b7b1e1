"""The per-shop suppression list, keyed by a keyed hash of the normalised address."""

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class Suppression(Base):
    __tablename__ = "suppressions"

    shop_id: Mapped[str] = mapped_column(
        ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True
    )
    # HMAC of the normalised address: an erased address stays suppressed without being kept.
    email_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
