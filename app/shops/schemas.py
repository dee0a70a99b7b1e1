"""API schemas of shops and their settings."""

import re
from datetime import datetime, time
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from app.timeutil import Window, parse_duration

LANGUAGE_RE = re.compile(r"^[a-z]{2}$")
EMAIL_RE = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$")


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
StateId = Annotated[int, Field(ge=0)]


class SendWindow(BaseModel):
    """When e-mails may leave, in the shop's time zone."""

    model_config = ConfigDict(extra="forbid")

    weekdays: list[Annotated[int, Field(ge=1, le=7)]] = Field(
        default=[1, 2, 3, 4, 5], min_length=1, description="ISO weekdays, 1 = Monday."
    )
    start: time = Field(default=time(9, 0), description="Local opening time, e.g. '09:00'.")
    end: time = Field(default=time(19, 0), description="Local closing time (exclusive).")
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

    trigger_state_ids: list[StateId] = Field(default=[5], min_length=1)
    cancel_state_ids: list[StateId] = Field(default=[6, 7, 8])
    delay: DurationStr = "P2D"
    require_paid: bool = True
    default_language: LanguageStr = "en"
    timezone: TimeZoneStr = "UTC"
    send_window: SendWindow | None = None
    customer_cooldown: DurationStr | None = "P30D"
    max_age: DurationStr | None = "P30D"
    fallback_delay: DurationStr | None = None
    reminders: list[DurationStr] = Field(default=[], max_length=5)
    from_email: str | None = Field(default=None, description="Sender address of the e-mails.")
    from_name: str | None = Field(default=None, max_length=200)
    reply_to: str | None = None

    @field_validator("from_email", "reply_to")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not EMAIL_RE.match(value):
            raise ValueError(f"{value!r} is not an e-mail address")
        return value

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

    name: str = Field(min_length=1, max_length=200)
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
