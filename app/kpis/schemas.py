"""The KPI report as the API answers it (keys and units: `shops.settings.KPI_UNITS`)."""

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["ok", "watch", "bad"]


class Part(BaseModel):
    """One slice of a KPI (a level, a reason, a language)."""

    value: float | None
    count: int


class Kpi(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: float | None = Field(description="null when count is 0.")
    count: int = Field(description="How many items the value is computed on.")
    target: float | None
    status: Status | None = Field(
        description="ok: target met; watch: missed by less than 20 % of the target; bad: "
        "beyond; null: no target or no value."
    )
    unit: str = Field(description="ratio (0-1), seconds, messages, score, rating, count.")
    breakdown: dict[str, Part] | None = Field(
        default=None,
        description="exchanges_per_ticket by level (1, 2, none); skipped and cancelled review "
        "requests by reason; sentiment shares by language.",
    )
    indicative_languages: list[str] | None = Field(
        default=None,
        description="Sentiment only: languages of the period's comments whose analyser "
        "accuracy is below 80 %: the share is indicative for them.",
    )


class SeriesPoint(BaseModel):
    period_start: date = Field(description="The Monday or the first day of the month (local).")
    kpis: dict[str, Kpi]


class KpiReport(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: date = Field(alias="from")
    to: date
    timezone: str
    granularity: Literal["week", "month"] | None = None
    kpis: dict[str, Kpi]
    series: list[SeriesPoint] | None = None
