"""Shop tables: the shop, its API keys, its webhook secrets, its catalogue of order states."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class Shop(Base):
    __tablename__ = "shops"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    sending_paused_at: Mapped[datetime | None]
    sending_paused_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ShopApiKey(Base):
    __tablename__ = "shop_api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]


class ShopDkimKey(Base):
    """The key a shop's e-mails are DKIM-signed with; the private key stored encrypted."""

    __tablename__ = "shop_dkim_keys"

    shop_id: Mapped[str] = mapped_column(
        ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True
    )
    domain: Mapped[str] = mapped_column(String(253))
    selector: Mapped[str] = mapped_column(String(63))
    private_key_encrypted: Mapped[str] = mapped_column(Text)
    public_key: Mapped[str] = mapped_column(Text)  # base64 DER, as published in DNS
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ShopMailServer(Base):
    """A shop's own SMTP server; its URL (with credentials) stored encrypted."""

    __tablename__ = "shop_mail_servers"

    shop_id: Mapped[str] = mapped_column(
        ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True
    )
    url_encrypted: Mapped[str] = mapped_column(Text)
    # Conversations at once per worker process; None: RELANCE_SMTP_CONCURRENCY.
    max_connections: Mapped[int | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ShopWebhookSecret(Base):
    __tablename__ = "shop_webhook_secrets"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]


class OrderState(Base):
    """One entry of a shop's catalogue of order states, as the module last sent it."""

    __tablename__ = "order_states"

    shop_id: Mapped[str] = mapped_column(
        ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True
    )
    state_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    names: Mapped[dict[str, str]] = mapped_column(JSON)
    paid: Mapped[bool]
    shipped: Mapped[bool]
    delivery: Mapped[bool]
    logable: Mapped[bool]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


Index("ix_shops_paused", Shop.sending_paused_at)
