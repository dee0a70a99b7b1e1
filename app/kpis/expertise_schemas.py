"""API schemas of the expertise level: the live answer and the weekly snapshots."""

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ExpertiseCriterion(BaseModel):
    name: Literal["seniority_months", "rating_mean", "positive_ratings", "after_sales_quality"]
    value: float | None = Field(description="null: no figure (no rating, no after-sales data).")
    threshold: float = Field(description="The next level's (the top level's once reached).")
    met: bool


class AfterSalesPart(BaseModel):
    name: Literal["response_rate", "response_time", "speed_rating", "quality_rating"]
    value: float | None = Field(
        description="The KPI over the window: response_rate (0-1), reply_business_s_mean "
        "(seconds) for response_time, speed_rating_mean and quality_rating_mean (1-5)."
    )
    score: float | None = Field(description="0-1; null: no figure, left out of the quality.")
    weight: float = Field(description="The shop's `kpis.quality_weights` entry.")


class AfterSalesQuality(BaseModel):
    """How after-sales quality was computed: the KPI report's `from`/`to` show the same figures."""

    model_config = ConfigDict(populate_by_name=True)

    from_: date = Field(alias="from", description="Local date, included.")
    to: date = Field(description="Local date, included: 7 days before `as_of` are left out.")
    score: float | None = Field(description="0-1, the weighted mean of the parts with a figure.")
    parts: list[AfterSalesPart]


class ExpertiseRead(BaseModel):
    level: str = Field(description="'none' or a level of the shop's ladder (by default "
                       "conqueror, captain, superhero).")  # fmt: skip
    as_of: datetime = Field(description="The instant the level is for (a Monday's start for a "
                            "snapshot).")  # fmt: skip
    criteria: list[ExpertiseCriterion]
    next_level: str | None = Field(description="null at the top of the ladder.")
    to_improve: list[str] = Field(description="What to improve to climb, in the shop's language.")
    after_sales: AfterSalesQuality


class ExpertiseSnapshotRead(ExpertiseRead):
    week_start: date = Field(description="The Monday (shop-local) the snapshot is for.")
    computed_at: datetime


class ExpertiseHistoryPage(BaseModel):
    items: list[ExpertiseSnapshotRead] = Field(description="Newest first.")
    next_cursor: str | None
