"""Settings read from RELANCE_* environment variables (and a .env file)."""

import logging
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET_KEY = "relance-development-secret-key-change-me"  # noqa: S105 (dev-only)

log = logging.getLogger("relance.config")


class Settings(BaseSettings):
    """The whole configuration of one Relance process."""

    model_config = SettingsConfigDict(env_prefix="RELANCE_", env_file=".env", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./relance.db"
    mail_url: str = "file:outbox"
    mail_from: str = Field(
        default="",
        description="Default From address when a shop sets none; derived from public_url if empty.",
    )
    public_url: str = "http://127.0.0.1:8000"
    admin_token: str | None = None
    dispatch_interval: float = Field(default=15.0, gt=0)
    scheduler: Literal["on", "off"] = "on"
    claim_lease: float = Field(default=120.0, gt=0)
    claim_batch: int = Field(default=20, ge=1, le=500)
    smtp_timeout: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=8, ge=1, le=50)
    retry_base: float = Field(default=60.0, gt=0, description="First retry back-off, seconds.")
    secret_key: str = DEV_SECRET_KEY
    environment: Literal["development", "production"] = "development"
    log_level: str = "INFO"
    db_pool_size: int = Field(default=10, ge=1)

    @model_validator(mode="after")
    def _check(self) -> "Settings":
        if self.claim_lease <= 2 * self.smtp_timeout:
            raise ValueError(
                "RELANCE_CLAIM_LEASE must be more than twice RELANCE_SMTP_TIMEOUT so a claimed "
                "e-mail can never be taken over while it is in an SMTP conversation"
            )
        if self.secret_key == DEV_SECRET_KEY and self.environment == "production":
            raise ValueError("RELANCE_SECRET_KEY is required when RELANCE_ENVIRONMENT=production")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def default_from(self) -> str:
        if self.mail_from:
            return self.mail_from
        host = urlsplit(self.public_url).hostname or "localhost"
        if host.replace(".", "").isdigit() or "." not in host:
            host = "relance.localhost"
        return f"no-reply@{host}"

    @property
    def message_id_domain(self) -> str:
        return self.default_from.rpartition("@")[2]


@lru_cache
def get_settings() -> Settings:
    settings = Settings()
    if settings.secret_key == DEV_SECRET_KEY:
        log.warning(
            "RELANCE_SECRET_KEY is not set: using the development key (never in production)"
        )
    return settings
