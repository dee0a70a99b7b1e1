"""API schemas of shops and their settings."""

from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from app.shops.settings import (
    DurationStr,
    Exclusions,
    FeedToken,
    HttpUrlStr,
    KpiSettings,
    LanguageStr,
    SendWindow,
    ShopSettings,
    TimeZoneStr,
)
from app.validation import SenderAddress, SingleLine, StateId


class ShopCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: SingleLine = Field(min_length=1, max_length=200)
    timezone: TimeZoneStr = "Europe/Paris"
    language: LanguageStr = "fr"


class ShopRead(BaseModel):
    id: str
    name: str
    timezone: str
    language: str
    sending_paused_at: datetime | None
    sending_paused_reason: str | None
    created_at: datetime


class ShopCreated(ShopRead):
    """Returned once, at creation: the only time the key and secret are shown."""

    api_key: str
    webhook_secret: str


class ApiKeyRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    previous_valid_for: DurationStr = Field(
        default="PT0S", description="How long the previous key keeps working."
    )


class ApiKeyRotated(BaseModel):
    api_key: str
    previous_expires_at: datetime


class SecretRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    previous_valid_for: DurationStr = Field(
        default="P1D", description="How long the previous secret keeps verifying webhooks."
    )


class SecretRotated(BaseModel):
    webhook_secret: str
    previous_expires_at: datetime | None


class OrderStateRead(BaseModel):
    """One state of the shop's catalogue, as the module last sent it."""

    shop_id: str
    state_id: int
    names: dict[str, str]
    paid: bool
    shipped: bool
    delivery: bool
    logable: bool
    updated_at: datetime
    used_as: Literal["trigger", "cancel"] | None = Field(
        default=None, description="What the shop's settings make of this state."
    )


class SendingState(BaseModel):
    paused: bool
    paused_at: datetime | None
    reason: str | None


def _nullable(name: str) -> bool:
    return type(None) in get_args(ShopSettings.model_fields[name].annotation)


def _patch_schema(schema: dict[str, Any]) -> None:
    # A field left out keeps its stored value: none has a default. None stands for "not sent";
    # where a setting takes no null, the document offers none (the merge refuses it).
    for name, field in schema.get("properties", {}).items():
        field.pop("default", None)
        if not _nullable(name) and "anyOf" in field:
            (kept,) = (b for b in field.pop("anyOf") if b != {"type": "null"})
            field.update(kept)


class ShopSettingsUpdate(BaseModel):
    """Some settings to change: the fields sent replace the stored ones, then the whole is
    validated again as `ShopSettings` (so rules across fields, such as disjoint state lists,
    see the result)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_patch_schema)

    trigger_state_ids: list[StateId] | None = Field(default=None, min_length=1, max_length=100)
    trigger_state_names: list[Annotated[SingleLine, Field(min_length=1, max_length=255)]] | None = (
        Field(default=None, max_length=20)
    )
    cancel_state_ids: list[StateId] | None = Field(default=None, max_length=100)
    delay: DurationStr | None = None
    require_paid: bool | None = None
    default_language: LanguageStr | None = None
    timezone: TimeZoneStr | None = None
    send_window: SendWindow | None = None
    send_spread: DurationStr | None = None
    customer_cooldown: DurationStr | None = None
    max_age: DurationStr | None = None
    fallback_delay: DurationStr | None = None
    reminders: list[DurationStr] | None = Field(default=None, max_length=5)
    from_email: SenderAddress | None = None
    from_name: SingleLine | None = Field(default=None, max_length=200)
    reply_to: SenderAddress | None = None
    review_product_ratings: bool | None = None
    review_nps: bool | None = None
    review_policy_url: HttpUrlStr | None = None
    review_default_status: Literal["pending", "published"] | None = None
    review_edit_grace: DurationStr | None = None
    review_link_ttl: DurationStr | None = None
    review_feed_token: FeedToken | None = None  # public reviews
    exclusions: Exclusions | None = None
    dry_run: bool | None = None
    notification_email: SenderAddress | None = None
    alert_rating_threshold: int | None = Field(default=None, ge=1, le=5)
    kpis: KpiSettings | None = None  # kpis: replaces the whole block


_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"


class DkimCreate(BaseModel):
    """The domain of the shop's From address, and the DNS selector to publish the key under."""

    model_config = ConfigDict(extra="forbid")

    domain: str = Field(max_length=253, pattern=rf"^{_LABEL}(?:\.{_LABEL})+$")
    selector: str = Field(default="relance", max_length=63, pattern=rf"^{_LABEL}$")


class DkimRead(BaseModel):
    """What to publish in DNS: a TXT record `record_name` with the value `record_value`."""

    domain: str
    selector: str
    record_name: str
    record_value: str


class MailServerPut(BaseModel):
    """`smtp://`, `smtp+starttls://` or `smtps://`, with `user:password@` when the server
    asks for them (URL-encoded), and `?verify=false` for a self-signed certificate."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2000)
    max_connections: int | None = Field(
        default=None,
        ge=1,
        le=200,
        description="Conversations at once with this server per worker process "
        "(null: RELANCE_SMTP_CONCURRENCY); lower it for a server that limits connections.",
    )


class MailServerRead(BaseModel):
    """The shop's own SMTP server, without its password."""

    scheme: str
    host: str
    port: int
    username: str | None
    max_connections: int | None = None
