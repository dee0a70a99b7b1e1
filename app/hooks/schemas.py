"""API schemas of outgoing webhooks: endpoints, their secrets, their delivery log."""

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.hooks.addresses import MAX_URL
from app.hooks.vocabulary import DisabledReason, EventType, HookStatus
from app.shops.settings import DurationStr


def _distinct(events: list[EventType]) -> list[EventType]:
    if len(set(events)) != len(events):
        raise ValueError("each event type at most once")
    return events


Url = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_URL,
        description="https:// (or http://) URL; must not resolve to a loopback, private or "
        "link-local address unless RELANCE_WEBHOOK_ALLOW_PRIVATE=true.",
    ),
]
Events = Annotated[
    list[EventType],
    Field(min_length=1, max_length=len(EventType), description="The event types to receive."),
    AfterValidator(_distinct),
]


class WebhookEndpointCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"url": "https://shop.example/relance-hook", "events": ["review.submitted"]}
            ]
        },
    )

    url: Url
    events: Events


class WebhookEndpointUpdate(BaseModel):
    """Only the fields sent change. `enabled: true` re-enables a disabled endpoint."""

    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    events: Events | None = None
    enabled: bool | None = None


class WebhookEndpointRead(BaseModel):
    id: str
    url: str
    events: list[EventType]
    enabled: bool
    disabled_at: datetime | None = Field(description="Since when it is disabled.")
    disabled_reason: DisabledReason | None = Field(
        description="`failing`: every attempt failed for 3 days; `manual`: PATCH."
    )
    failing_since: datetime | None = Field(
        description="The first failed attempt since the last success; null while it answers."
    )
    previous_secret_expires_at: datetime | None = Field(
        description="Until when the secret before the last rotation still signs too."
    )
    created_at: datetime
    updated_at: datetime


class WebhookEndpointCreated(WebhookEndpointRead):
    secret: str = Field(description="`whsec_…`: shown this once, never again.")


class WebhookEndpointList(BaseModel):
    items: list[WebhookEndpointRead]


class WebhookSecretRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    previous_valid_for: DurationStr = Field(
        default="P1D", description="How long the current secret keeps signing beside the new."
    )


class WebhookSecretRotated(BaseModel):
    secret: str = Field(description="The new `whsec_…`: shown this once.")
    previous_expires_at: datetime


class WebhookAttemptRead(BaseModel):
    attempt: int
    at: datetime
    status_code: int | None = Field(description="null: no HTTP answer (see `error`).")
    duration_ms: int
    error: str | None = Field(description="The network error, or the answer's first characters.")


class WebhookDeliveryRead(BaseModel):
    id: int
    message_id: str = Field(description="The `webhook-id` header: the same on every attempt.")
    event_type: EventType
    status: HookStatus
    attempts: int
    due_at: datetime | None = Field(description="The next attempt, while `scheduled`.")
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    attempt_log: list[WebhookAttemptRead]


class WebhookDeliveryPage(BaseModel):
    items: list[WebhookDeliveryRead]
    next_cursor: str | None
