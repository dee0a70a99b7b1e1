"""Settings read from RELANCE_* environment variables (and a .env file)."""

import logging
import secrets
from functools import cache, lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from app import secret_file
from app.timeutil import parse_duration

# The key every install used when RELANCE_SECRET_KEY was unset, before keys were generated.
# Public: only `relance rekey --from-key` should ever need it again.
LEGACY_DEV_SECRET_KEY = "relance-development-secret-key-change-me"  # noqa: S105
DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

log = logging.getLogger("relance.config")


class Settings(BaseSettings):
    """The whole configuration of one Relance process.

    Every number has an upper bound too: a typo (a lease of 1e12 seconds) must fail at start,
    not overflow a timedelta in the middle of a dispatcher tick.
    """

    # hide_input_in_errors: a wrong RELANCE_DATABASE_URL must not print its password.
    model_config = SettingsConfigDict(
        env_prefix="RELANCE_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    database_url: str = "sqlite+aiosqlite:///./relance.db"
    mail_url: str = "file:outbox"
    mail_from: str = Field(
        default="",
        description="Default From address when a shop sets none; derived from public_url if empty.",
    )
    public_url: str = "http://127.0.0.1:8000"
    admin_token: str | None = None
    metrics_token: str | None = Field(
        default=None, description="Bearer token /metrics requires; open when unset."
    )
    dispatch_interval: float = Field(default=15.0, gt=0, le=3600)
    scheduler: Literal["on", "off"] = "on"
    claim_lease: float = Field(default=120.0, gt=0, le=86400)
    claim_batch: int = Field(default=20, ge=1, le=500)
    smtp_timeout: float = Field(default=30.0, gt=0, le=600)
    webhook_allow_private: bool = Field(
        default=False,
        description="Let outgoing webhooks reach loopback, private and link-local addresses.",
    )
    smtp_concurrency: int = Field(
        default=10, ge=1, le=200, description="SMTP conversations at once per worker process."
    )
    smtp_rate: float | None = Field(
        default=None,
        gt=0,
        le=100000,
        description="Messages per second per worker process (a relay's quota); unlimited if unset.",
    )
    max_attempts: int = Field(default=8, ge=1, le=50)
    retry_base: float = Field(
        default=60.0, gt=0, le=21600, description="First retry back-off, seconds."
    )
    secret_key: str = Field(
        default="",
        description="Unset (empty): generated beside a SQLite database, required otherwise.",
    )
    environment: Literal["development", "production"] = "development"
    log_level: str = "INFO"
    db_pool_size: int = Field(default=10, ge=1, le=500)
    db_connect_timeout: float = Field(
        default=5.0, gt=0, le=300, description="Seconds to open a database connection."
    )
    db_command_timeout: float = Field(
        default=10.0, gt=0, le=3600, description="Seconds one statement may take."
    )
    db_pool_timeout: float = Field(
        default=5.0, gt=0, le=300, description="Seconds a request waits for a pooled connection."
    )
    http_max_header_bytes: int = Field(
        default=65536,
        ge=1024,
        le=1048576,
        description="Largest request line plus headers `relance serve` reads; 431 beyond.",
    )
    dry_run_outbox: str = Field(
        default="outbox-dry-run",
        description="Folder of the .eml files of shops in dry run (relative to the working dir).",
    )
    event_retention: str = Field(
        default="P90D",
        description="How long raw webhook bodies are kept; the facts derived from them stay.",
    )

    @field_validator("event_retention")
    @classmethod
    def _retention(cls, value: str) -> str:
        days = parse_duration(value).approx().total_seconds() / 86400
        if days < 1:
            raise ValueError("must be at least one day (P1D)")
        return value

    _key_file: Path | None = PrivateAttr(default=None)
    _key_created: bool = PrivateAttr(default=False)

    @field_validator("admin_token", "metrics_token")
    @classmethod
    def _empty_is_unset(cls, token: str | None) -> str | None:
        # `RELANCE_METRICS_TOKEN=` in a .env file means "no token", not "the empty token".
        return token or None

    @field_validator("smtp_rate", mode="before")
    @classmethod
    def _empty_rate_is_unlimited(cls, rate: object) -> object:
        return None if isinstance(rate, str) and not rate.strip() else rate

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, url: str) -> str:
        # Never echo the URL: it usually holds a password.
        try:
            driver = make_url(url).drivername
        except ArgumentError:
            driver = None
        if driver not in DRIVERS:
            got = f"scheme {driver!r}" if driver else "not a database URL"
            raise ValueError(
                "must be sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER:PASSWORD@HOST/DB "
                f"({got})"
            )
        return url

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, level: str) -> str:
        if level.upper() not in _LEVELS:
            raise ValueError(f"must be one of {', '.join(_LEVELS)}")
        return level.upper()

    @model_validator(mode="after")
    def _check(self) -> "Settings":
        if self.claim_lease <= 2 * self.smtp_timeout:
            # A claimed e-mail must never be taken over while it is in an SMTP conversation.
            raise ValueError(
                "RELANCE_CLAIM_LEASE: must be more than twice RELANCE_SMTP_TIMEOUT "
                f"({self.smtp_timeout:g})"
            )
        self._resolve_secret_key()
        return self

    def _resolve_secret_key(self) -> None:
        if self.secret_key:
            if self.secret_key == LEGACY_DEV_SECRET_KEY and self.environment == "production":
                raise ValueError(
                    "RELANCE_SECRET_KEY: is the public development key; set a random one"
                )
            return
        if not self.is_sqlite or self.environment == "production":
            raise ValueError(
                "RELANCE_SECRET_KEY is required with PostgreSQL or in production (generate "
                "one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        database = sqlite_file(self.database_url)
        if database is None:
            self.secret_key = _process_key()
            return
        path = secret_file.key_file_for(database)
        try:
            self.secret_key, self._key_created = secret_file.load_or_create(path)
        except secret_file.KeyFileError as exc:
            raise ValueError(f"RELANCE_SECRET_KEY is not set and {exc}") from None
        self._key_file = path

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def secret_key_file(self) -> Path | None:
        """The file the key was read from or generated into; None when it came from the env."""
        return self._key_file

    @property
    def secret_key_generated(self) -> bool:
        """Whether this process generated the key file (its first start)."""
        return self._key_created

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


def sqlite_file(url: str) -> str | None:
    """The database file of a SQLite URL; None for an in-memory database (or not SQLite)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    database = parsed.database or ""
    if parsed.query.get("uri") in ("true", "1") and database.startswith("file:"):
        if parsed.query.get("mode") == "memory":
            return None
        database = database.removeprefix("file:")
    if database in ("", ":memory:"):
        return None
    return database


@cache
def _process_key() -> str:
    # An in-memory database lives as long as the process: so may its key.
    return secrets.token_urlsafe(32)


def log_key_notice(settings: Settings) -> None:
    """Say where the secret key came from when it was not set: never the key itself."""
    path = settings.secret_key_file
    if path is None:
        return
    where = path.resolve()
    if settings.secret_key_generated:
        log.warning(
            "RELANCE_SECRET_KEY is not set: generated a new secret key in %s; keep it with "
            "the database (and in its backups)",
            where,
        )
        return
    log.info("RELANCE_SECRET_KEY is not set: using the secret key in %s", where)
    if not secret_file.is_private(path):
        log.warning("%s can be read by other users: chmod 600 it", where)


def describe_errors(exc: ValidationError) -> list[str]:
    """One line per wrong setting, naming its variable: `RELANCE_CLAIM_LEASE: …`."""
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        message = error["msg"].removeprefix("Value error, ")
        if error["loc"]:
            message = f"RELANCE_{str(error['loc'][0]).upper()}: {message[:1].lower()}{message[1:]}"
        lines.append(message)
    return lines


@lru_cache
def get_settings() -> Settings:
    return Settings()


def startup_warnings(settings: Settings) -> list[str]:
    """What an operator should fix, said once when a process starts."""
    warnings = []
    if settings.environment != "development" and urlsplit(settings.public_url).scheme != "https":
        warnings.append(
            "RELANCE_PUBLIC_URL is not https: mailbox providers expect one-click unsubscribe "
            "links (RFC 8058) over HTTPS, and review links carry personal access"
        )
    return warnings
