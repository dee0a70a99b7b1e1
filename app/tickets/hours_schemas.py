"""API schemas of a shop's business hours: the week, public holidays, closed dates."""

import re
from datetime import date, datetime
from itertools import pairwise
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from app.shops.settings import TimeZoneStr
from app.tickets.calendar import MAX_INTERVALS_PER_DAY, holiday_countries

MAX_CLOSED_DATES = 366
# `[0-9]`, not `\d`: `\d` also matches other scripts' digits. "24:00" only ends an interval.
CLOCK_PATTERN = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_EARLIEST, _LATEST = date(1970, 1, 1), date(2199, 12, 31)

Clock = Annotated[
    str,
    Field(pattern=CLOCK_PATTERN, examples=["09:00", "24:00"]),
]


def _ordered(interval: tuple[str, str]) -> tuple[str, str]:
    # Zero-padded "HH:MM" strings sort like the times they name.
    if not interval[0] < interval[1]:
        raise ValueError("the opening must come before the closing ('24:00' only closes)")
    return interval


Interval = Annotated[
    tuple[Clock, Clock],
    AfterValidator(_ordered),
    Field(description="`[opening, closing)` in local wall-clock time, `HH:MM`."),
]
Day = Annotated[
    list[Interval],
    Field(
        default_factory=list,
        max_length=MAX_INTERVALS_PER_DAY,
        description="Opening intervals in order, without overlap; `[]`: closed.",
    ),
]


class BusinessWeek(BaseModel):
    """ISO weekday (1 = Monday … 7 = Sunday) → opening intervals; a day left out is closed."""

    model_config = ConfigDict(extra="forbid", serialize_by_alias=True)

    monday: Day = Field(alias="1")
    tuesday: Day = Field(alias="2")
    wednesday: Day = Field(alias="3")
    thursday: Day = Field(alias="4")
    friday: Day = Field(alias="5")
    saturday: Day = Field(alias="6")
    sunday: Day = Field(alias="7")

    @field_validator("*")
    @classmethod
    def _in_order(cls, intervals: list[tuple[str, str]]) -> list[tuple[str, str]]:
        for before, after in pairwise(intervals):
            if after[0] < before[1]:
                raise ValueError("intervals must be in order and must not overlap")
        return intervals


def _date_text(value: Any) -> Any:
    # pydantic would also read a number as a Unix timestamp, and "20261224" as one.
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise ValueError("expected a date such as '2026-12-24'")
    return value


def _in_range(value: date) -> date:
    if not _EARLIEST <= value <= _LATEST:
        raise ValueError("must be between 1970-01-01 and 2199-12-31")
    return value


ClosedDate = Annotated[date, BeforeValidator(_date_text), AfterValidator(_in_range)]


class BusinessHoursUpdate(BaseModel):
    """All of a shop's business hours: a PUT replaces them, and what it leaves out is cleared
    (no holidays, no closed dates; a weekday left out is closed)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "timezone": "Europe/Paris",
                    "week": {
                        **{str(d): [["09:00", "12:30"], ["14:00", "18:00"]] for d in range(1, 6)},
                        "6": [["10:00", "12:00"]],
                        "7": [],
                    },
                    "holidays": "FR",
                    "holidays_subdivision": None,
                    "closed_dates": ["2026-12-24", "2026-12-31"],
                }
            ]
        },
    )

    timezone: Annotated[TimeZoneStr, Field(max_length=64, examples=["Europe/Paris"])] = Field(
        description="IANA time zone the intervals and dates are read in."
    )
    week: BusinessWeek
    holidays: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z]{2}$",
        description="ISO 3166-1 country whose public holidays are closed (`holidays` package).",
    )
    holidays_subdivision: str | None = Field(
        default=None,
        max_length=32,
        description="A region of that country with holidays of its own, e.g. `BY` for Bavaria.",
    )
    closed_dates: list[ClosedDate] = Field(
        default_factory=list,
        max_length=MAX_CLOSED_DATES,
        description="Other local dates the support is closed (a duplicate counts once).",
    )

    @field_validator("holidays")
    @classmethod
    def _known_country(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.upper() not in holiday_countries():
            raise ValueError(f"no public-holiday calendar for country {value!r}")
        return value.upper()

    @field_validator("holidays_subdivision")
    @classmethod
    def _known_subdivision(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if "holidays" not in info.data:  # the country itself was refused
            raise ValueError("needs a valid `holidays` country")
        country = info.data["holidays"]
        if country is None:
            raise ValueError("a subdivision needs a `holidays` country")
        known = {s.upper(): s for s in holiday_countries()[country]}
        if value.upper() not in known:
            raise ValueError(f"{country} has no subdivision {value!r}")
        return known[value.upper()]

    @field_validator("closed_dates")
    @classmethod
    def _sorted(cls, value: list[date]) -> list[date]:
        return sorted(set(value))


class BusinessHoursRead(BaseModel):
    timezone: str
    week: BusinessWeek = Field(description="All seven days, `[]` where closed.")
    holidays: str | None
    holidays_subdivision: str | None
    closed_dates: list[date]
    is_default: bool = Field(
        description="True: the shop never set its hours; these are the defaults (Monday to "
        "Friday 09:00-18:00 in the shop's settings time zone, no public holidays)."
    )
    updated_at: datetime | None = Field(description="When the hours were last set.")
