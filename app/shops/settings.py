"""A shop's settings: the domain type every part reads, validated once where it is parsed."""

import re
from datetime import date, datetime, time
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
# The secret of a private product-reviews feed (`?token=`).
FeedToken = Annotated[str, Field(min_length=16, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]


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


# --- KPIs (owned by the kpis part; docs/kpis.md) -------------------------------------------

# Every KPI key of the contract and its unit: the one list the settings, the report and the
# docs share (app.kpis imports it; shops imports no other domain).
KPI_UNITS: dict[str, str] = {
    "acknowledged_24h_rate": "ratio",
    "first_reply_business_s_mean": "seconds",
    "first_reply_business_s_median": "seconds",
    "first_reply_calendar_s_mean": "seconds",
    "first_reply_calendar_s_median": "seconds",
    "reply_business_s_mean": "seconds",
    "reply_business_s_median": "seconds",
    "response_rate": "ratio",
    "resolution_s_mean": "seconds",
    "resolution_s_median": "seconds",
    "exchanges_per_ticket": "messages",
    "first_contact_resolution_rate": "ratio",
    "reopen_rate": "ratio",
    "pre_sale_contact_rate": "ratio",
    "after_sale_contact_rate": "ratio",
    "complaint_rate": "ratio",
    "return_rate": "ratio",
    "csat": "ratio",
    "nps": "score",
    "speed_rating_mean": "rating",
    "quality_rating_mean": "rating",
    "conversion_after_pre_sale_rate": "ratio",
    "review_requests_sent": "count",
    "review_requests_skipped": "count",
    "review_requests_cancelled": "count",
    "review_click_rate": "ratio",
    "review_rate": "ratio",
    "review_rating_mean": "rating",
    "sentiment_positive_share": "ratio",
    "sentiment_negative_share": "ratio",
}
# The range a target may take, per unit (ten years of seconds; 10**9 requests).
_TARGET_RANGE: dict[str, tuple[float, float]] = {
    "ratio": (0.0, 1.0),
    "seconds": (0.0, 315_360_000.0),
    "messages": (0.0, 1000.0),
    "score": (-100.0, 100.0),
    "rating": (1.0, 5.0),
    "count": (0.0, 1e9),
}
# The seeds' targets: marketplaces' 24-hour acknowledgement (Amazon asks 90 % of contacts
# answered within 24 h), PrestaShop Marketplace's pre-sale < 10 % and after-sale < 15 %
# contact rates, and about 5 exchanges per ticket (met at 5 or fewer).
DEFAULT_KPI_TARGETS: dict[str, float] = {
    "acknowledged_24h_rate": 0.9,
    "pre_sale_contact_rate": 0.10,
    "after_sale_contact_rate": 0.15,
    "exchanges_per_ticket": 5.0,
}
LEVEL_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,15}$")


class ExpertiseLevel(BaseModel):
    """One rung of the expertise ladder: all four thresholds must be met to hold it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Lower-case id such as 'captain' (not 'none').")
    months: int = Field(ge=0, le=600, description="Seniority in months since `seller_since`.")
    rating_mean: float = Field(ge=0, le=5, description="Mean order rating over the history.")
    positive_ratings: int = Field(ge=0, le=10**9, description="Ratings of 4 or 5, ever.")
    after_sales_quality: float = Field(ge=0, le=1, description="0-1 over the last 6 months.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not LEVEL_NAME_RE.match(value) or value == "none":
            raise ValueError("expected a lower-case id such as 'captain', other than 'none'")
        return value


# PrestaShop Marketplace's published ladder.
DEFAULT_EXPERTISE_LEVELS: list[dict[str, Any]] = [
    {"name": "conqueror", "months": 3, "rating_mean": 2.5, "positive_ratings": 1,
     "after_sales_quality": 0.75},
    {"name": "captain", "months": 6, "rating_mean": 3.5, "positive_ratings": 3,
     "after_sales_quality": 0.85},
    {"name": "superhero", "months": 12, "rating_mean": 4.0, "positive_ratings": 5,
     "after_sales_quality": 0.95},
]  # fmt: skip


class QualityWeights(BaseModel):
    """How after-sales quality (0-1) combines its four parts; PrestaShop publishes none, so
    ours are equal by default. They must add up to 1."""

    model_config = ConfigDict(extra="forbid")

    response_rate: float = Field(default=0.25, ge=0, le=1)
    response_time: float = Field(default=0.25, ge=0, le=1)
    speed_rating: float = Field(default=0.25, ge=0, le=1)
    quality_rating: float = Field(default=0.25, ge=0, le=1)

    @model_validator(mode="after")
    def _sum(self) -> "QualityWeights":
        total = self.response_rate + self.response_time + self.speed_rating + self.quality_rating
        if abs(total - 1) > 1e-6:
            raise ValueError(f"the weights must add up to 1 (they add up to {total:g})")
        return self


class KpiSettings(BaseModel):
    """Targets of the KPI report and the expertise ladder (docs/kpis.md)."""

    model_config = ConfigDict(extra="forbid")

    targets: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_KPI_TARGETS),
        max_length=len(KPI_UNITS),
        description="KPI key -> target; replaces the whole default set when given. Lower is "
        "better for contact, complaint, return, reopen rates, durations and exchanges.",
    )
    refund_state_ids: list[StateId] = Field(
        default=[7], max_length=100, description="Order states that mean a refund (return rate)."
    )
    seller_since: date | None = Field(
        default=None,
        description="Start of seniority for the expertise level; null: the shop's creation.",
    )
    expertise_levels: list[ExpertiseLevel] = Field(
        default_factory=lambda: [ExpertiseLevel(**level) for level in DEFAULT_EXPERTISE_LEVELS],
        min_length=1,
        max_length=10,
        description="From the lowest to the highest; each at least as demanding as the one before.",
    )
    quality_weights: QualityWeights = Field(default_factory=QualityWeights)

    @field_validator("targets")
    @classmethod
    def _targets(cls, value: dict[str, float]) -> dict[str, float]:
        for key, target in value.items():
            unit = KPI_UNITS.get(key)
            if unit is None:
                raise ValueError(f"{key[:64]!r} is not a KPI key")
            low, high = _TARGET_RANGE[unit]
            if not low <= target <= high:  # also refuses NaN
                raise ValueError(f"the target of {key} must be from {low:g} to {high:g}")
        return value

    @field_validator("seller_since")
    @classmethod
    def _since(cls, value: date | None) -> date | None:
        if value is not None and not date(1990, 1, 1) <= value <= date(2199, 12, 31):
            raise ValueError("must be between 1990-01-01 and 2199-12-31")
        return value

    @field_validator("refund_state_ids")
    @classmethod
    def _unique_states(cls, value: list[int]) -> list[int]:
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _ladder(self) -> "KpiSettings":
        names = [level.name for level in self.expertise_levels]
        if len(set(names)) != len(names):
            raise ValueError("expertise level names must be unique")
        for low, high in zip(self.expertise_levels, self.expertise_levels[1:], strict=False):
            if (
                high.months < low.months
                or high.rating_mean < low.rating_mean
                or high.positive_ratings < low.positive_ratings
                or high.after_sales_quality < low.after_sales_quality
            ):
                raise ValueError(f"level {high.name} must be at least as demanding as {low.name}")
        return self


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
    review_feed_token: FeedToken | None = Field(
        default=None,
        description="Makes the Google product-reviews feed private: it then answers only with "
        "`?token=` equal to this value (16-128 letters, digits, `-`, `_`); null: public.",
    )
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
    kpis: KpiSettings = Field(
        default_factory=KpiSettings, description="KPI targets and the expertise ladder."
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
