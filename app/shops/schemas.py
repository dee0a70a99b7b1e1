"""API schemas of shops and their settings."""

import re
from datetime import datetime, time
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from app.timeutil import Window, parse_duration
from app.validation import SenderAddress, SingleLine, StateId

LANGUAGE_RE = re.compile(r"^[a-z]{2}$")


def _duration(value: Any) -> str:
    if not isinstance(value, str | int | float):
        raise ValueError("expected an ISO 8601 duration such as 'P2D' or a number of seconds")
    return parse_duration(value).iso


def _timezone(value: Any) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{value!r} is not an IANA time zone such as 'Europe/Paris'") from exc
    return str(value)


def _language(value: Any) -> str:
    text = str(value).strip().lower()
    if not LANGUAGE_RE.match(text):
        raise ValueError(f"{value!r} is not an ISO 639-1 language code such as 'fr'")
    return text


DurationStr = Annotated[str, BeforeValidator(_duration)]
TimeZoneStr = Annotated[str, BeforeValidator(_timezone)]
LanguageStr = Annotated[str, BeforeValidator(_language)]


def _time_text(value: Any) -> Any:
    # pydantic reads a number as seconds after midnight UTC, an offset the window cannot use.
    if not isinstance(value, str | time):
        raise ValueError("expected a local time of day such as '09:00'")
    return value


def _without_offset(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("a local time of day in the shop's zone takes no offset: '09:00'")
    return value


# A wall-clock time in the shop's zone. Not `format: time`: JSON Schema's `time` is RFC 3339
# full-time, which requires an offset that these values never have.
LocalTime = Annotated[
    time,
    BeforeValidator(_time_text),
    AfterValidator(_without_offset),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$",
            "examples": ["09:00", "18:30:00"],
        }
    ),
]


class SendWindow(BaseModel):
    """When e-mails may leave, in the shop's time zone."""

    model_config = ConfigDict(extra="forbid")

    weekdays: list[Annotated[int, Field(ge=1, le=7)]] = Field(
        default=[1, 2, 3, 4, 5], min_length=1, description="ISO weekdays, 1 = Monday."
    )
    start: LocalTime = Field(default=time(9, 0), description="Local opening time, e.g. '09:00'.")
    end: LocalTime = Field(default=time(19, 0), description="Local closing time (exclusive).")
    holidays: str | None = Field(
        default=None, description="ISO 3166-1 country whose public holidays are skipped."
    )
    holidays_subdivision: str | None = None

    @model_validator(mode="after")
    def _check(self) -> "SendWindow":
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.holidays is not None:
            self.holidays = self.holidays.upper()
            supported = holidays.list_supported_countries()
            if self.holidays not in supported:
                raise ValueError(f"no public-holiday calendar for country {self.holidays!r}")
            subdivs = supported[self.holidays]
            if self.holidays_subdivision is not None and self.holidays_subdivision not in subdivs:
                raise ValueError(f"unknown subdivision {self.holidays_subdivision!r}")
        return self

    def to_window(self) -> Window:
        return Window(
            frozenset(self.weekdays), self.start, self.end, self.holidays, self.holidays_subdivision
        )


class ShopSettings(BaseModel):
    """Everything a merchant tunes. Durations are ISO 8601 (`P2D`, `PT30S`) or seconds."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "trigger_state_ids": [5],
                "cancel_state_ids": [6, 7, 8],
                "delay": "P2D",
                "require_paid": True,
                "default_language": "fr",
                "timezone": "Europe/Paris",
                "send_window": {
                    "weekdays": [1, 2, 3, 4, 5],
                    "start": "09:00",
                    "end": "19:00",
                    "holidays": "FR",
                },
                "customer_cooldown": "P30D",
                "max_age": "P30D",
                "fallback_delay": None,
                "reminders": [],
            }
        },
    )

    trigger_state_ids: list[StateId] = Field(default=[5], min_length=1, max_length=100)
    cancel_state_ids: list[StateId] = Field(default=[6, 7, 8], max_length=100)
    delay: DurationStr = "P2D"
    require_paid: bool = True
    default_language: LanguageStr = "en"
    timezone: TimeZoneStr = "UTC"
    send_window: SendWindow | None = None
    customer_cooldown: DurationStr | None = "P30D"
    max_age: DurationStr | None = "P30D"
    fallback_delay: DurationStr | None = None
    reminders: list[DurationStr] = Field(default=[], max_length=5)
    from_email: SenderAddress | None = Field(
        default=None, description="Sender address of the e-mails (ASCII)."
    )
    from_name: SingleLine | None = Field(default=None, max_length=200)
    reply_to: SenderAddress | None = None

    @field_validator("trigger_state_ids", "cancel_state_ids")
    @classmethod
    def _unique(cls, value: list[int]) -> list[int]:
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _disjoint(self) -> "ShopSettings":
        both = set(self.trigger_state_ids) & set(self.cancel_state_ids)
        if both:
            raise ValueError(f"states {sorted(both)} cannot both trigger and cancel a request")
        return self


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


class SendingState(BaseModel):
    paused: bool
    paused_at: datetime | None
    reason: str | None


ShopStatus = Literal["active", "paused"]


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
    cancel_state_ids: list[StateId] | None = Field(default=None, max_length=100)
    delay: DurationStr | None = None
    require_paid: bool | None = None
    default_language: LanguageStr | None = None
    timezone: TimeZoneStr | None = None
    send_window: SendWindow | None = None
    customer_cooldown: DurationStr | None = None
    max_age: DurationStr | None = None
    fallback_delay: DurationStr | None = None
    reminders: list[DurationStr] | None = Field(default=None, max_length=5)
    from_email: SenderAddress | None = None
    from_name: SingleLine | None = Field(default=None, max_length=200)
    reply_to: SenderAddress | None = None
