"""A shop's settings: the domain type every part reads, validated once where it is parsed."""

import re
from datetime import datetime, time
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal
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
from app.validation import Int64, SenderAddress, SingleLine, StateId

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


def _http_url(value: Any) -> str:
    text = str(value).strip()
    if not re.fullmatch(r"https?://[^\s<>\"']{1,2000}", text):
        raise ValueError("expected an http(s) URL")
    return text


DurationStr = Annotated[str, BeforeValidator(_duration)]
HttpUrlStr = Annotated[str, BeforeValidator(_http_url)]
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


def _money_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("expected a decimal amount such as '10.00'")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError("expected a decimal amount such as '10.00'") from None
    if not amount.is_finite() or amount < 0 or amount >= 10**9:
        raise ValueError("expected an amount from 0 to 999999999")
    return str(amount)


def _address_glob(value: Any) -> str:
    text = str(value).strip().lower()
    if not text or len(text) > 254 or any(c.isspace() or c in ',;<>"' for c in text):
        raise ValueError("expected an address or a pattern such as '*@marketplace.amazon.*'")
    return text


class Exclusions(BaseModel):
    """Orders never asked for a review; a match skips the request with reason `excluded`."""

    model_config = ConfigDict(extra="forbid")

    blocked_emails: list[Annotated[str, BeforeValidator(_address_glob)]] = Field(
        default=[],
        max_length=1000,
        description="Addresses or patterns with `*`, e.g. '*@marketplace.amazon.*'.",
    )
    excluded_product_ids: list[Int64] = Field(
        default=[], max_length=10000, description="An order whose products are all here."
    )
    excluded_group_ids: list[Int64] = Field(
        default=[], max_length=1000, description="Customer groups (when the event carries them)."
    )
    min_order_total: Annotated[str | None, BeforeValidator(_money_text)] = Field(
        default=None, description="Orders paid less than this (in the order's currency)."
    )
    newsletter_only: bool = Field(
        default=False, description="Only customers who opted in (when the event says)."
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
    trigger_state_names: list[Annotated[SingleLine, Field(min_length=1, max_length=255)]] = Field(
        default=[],
        max_length=20,
        description="States that also trigger, by name in any language of the shop's catalogue "
        "(case-insensitive): a re-created 'Delivered' keeps working.",
    )
    cancel_state_ids: list[StateId] = Field(default=[6, 7, 8], max_length=100)
    delay: DurationStr = "P2D"
    require_paid: bool = True
    default_language: LanguageStr = "en"
    timezone: TimeZoneStr = "UTC"
    send_window: SendWindow | None = None
    send_spread: DurationStr | None = Field(
        default="PT30M",
        description="E-mails due at a send window's opening are spread over this span; null: off.",
    )
    customer_cooldown: DurationStr | None = "P30D"
    max_age: DurationStr | None = "P30D"
    fallback_delay: DurationStr | None = None
    reminders: list[DurationStr] = Field(default=[], max_length=5)
    from_email: SenderAddress | None = Field(
        default=None, description="Sender address of the e-mails (ASCII)."
    )
    from_name: SingleLine | None = Field(default=None, max_length=200)
    reply_to: SenderAddress | None = None
    review_product_ratings: bool = Field(
        default=True, description="The review page asks a 1-5 rating for each ordered product."
    )
    review_nps: bool = Field(
        default=True, description="The review page asks the 0-10 recommendation question."
    )
    review_policy_url: HttpUrlStr | None = Field(
        default=None, description="The shop's review policy, linked from the review page."
    )
    review_default_status: Literal["pending", "published"] = Field(
        default="pending", description="Moderation status of a new review."
    )
    review_edit_grace: DurationStr = Field(
        default="P7D", description="How long a customer may change a review once sent."
    )
    review_link_ttl: DurationStr = Field(
        default="P180D", description="How long the links of an e-mail keep working."
    )
    exclusions: Exclusions = Field(default_factory=Exclusions)
    notification_email: SenderAddress | None = Field(
        default=None, description="Where alerts to the merchant go (low reviews, paused sending)."
    )
    alert_rating_threshold: int | None = Field(
        default=2, ge=1, le=5, description="A review at or below this rating is alerted; null: off."
    )
    dry_run: bool = Field(
        default=False,
        description="Everything happens, but e-mails go to the dry-run outbox "
        "(RELANCE_DRY_RUN_OUTBOX) and count neither for the cooldown nor in the figures.",
    )

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


_PARSED: dict[tuple[str, datetime], ShopSettings] = {}


def parsed_settings(shop_id: str, updated_at: datetime, raw: dict[str, Any]) -> ShopSettings:
    """A shop's validated settings, parsed again only when the shop row changed.

    Every settings change bumps `shops.updated_at`, so the key never serves stale settings.
    """
    key = (shop_id, updated_at)
    parsed = _PARSED.get(key)
    if parsed is None:
        if len(_PARSED) > 10_000:
            _PARSED.clear()
        parsed = _PARSED[key] = ShopSettings.model_validate(raw)
    return parsed
