"""The expertise level's I/O: a shop's figures, its level as of an instant, its snapshots."""

from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from app.kpis import service as kpis_service
from app.kpis.expertise import (
    DEFAULT_RESPONSE_TIME_TARGET_S,
    AfterSales,
    Component,
    Figures,
    assess,
    quality_window,
)
from app.kpis.models import ExpertiseSnapshot
from app.pagination import page
from app.requests.models import ReviewRequest
from app.reviews.models import Review
from app.shops.service import ShopAccount

# The KPI each part of after-sales quality is read from (`value` of the part in the answer;
# `expertise.AfterSales` names its fields after them).
PART_KPIS: dict[Component, str] = {
    "response_rate": "response_rate",
    "response_time": "reply_business_s_mean",
    "speed_rating": "speed_rating_mean",
    "quality_rating": "quality_rating_mean",
}


async def rating_totals(
    conn: AsyncConnection, shop_id: str, before: datetime
) -> tuple[int, int, int]:
    """Order ratings received before `before`: how many, their sum, how many are 4 or 5.

    Every review counts whatever its moderation status: rejecting a review hides its text, it
    does not undo the customer's rating (so a level cannot be bought by rejecting low ones).
    Reviews of dry-run requests never count, like everything else of a dry run.
    """
    row = (
        await conn.execute(
            select(
                func.count(),
                func.coalesce(func.sum(Review.rating), 0),
                func.count().filter(Review.rating >= 4),
            )
            .select_from(Review)
            .join(ReviewRequest, ReviewRequest.id == Review.request_id)
            .where(
                Review.shop_id == shop_id,
                Review.created_at < before,
                ReviewRequest.dry_run.is_(False),
            )
        )
    ).one()
    return int(row[0]), int(row[1]), int(row[2])


async def after_sales(
    conn: AsyncConnection,
    shop_id: str,
    start: date,
    end: date,
    now: datetime,
    concurrent: bool = False,
) -> AfterSales:
    """The KPI report's four after-sales figures over `start`..`end` (local dates, included)."""
    report = await kpis_service.report(conn, shop_id, start, end, now=now, concurrent=concurrent)
    kpis = report.kpis
    values = {key: kpis[key].value for key in PART_KPIS.values()}
    return AfterSales(**values, start=start, end=end)


async def expertise(
    conn: AsyncConnection, shop: ShopAccount, at: datetime, now: datetime, concurrent: bool = False
) -> dict[str, Any]:
    """The level as of `at` (live: `at = now`; a snapshot: its Monday's start), as the API
    answers it (JSON-ready). `now` is the report's clock (which deadlines have passed).
    `concurrent`: as for `kpis.service.report` (read-only callers only)."""
    settings = shop.settings
    zone = ZoneInfo(settings.timezone)
    as_of = at.astimezone(zone).date()
    since = settings.kpis.seller_since or shop.created_at.astimezone(zone).date()
    ratings, rating_sum, positive = await rating_totals(conn, shop.id, at)
    start, end = quality_window(as_of)
    figures = Figures(
        seller_since=since,
        as_of=as_of,
        ratings=ratings,
        rating_sum=rating_sum,
        positive_ratings=positive,
        after_sales=await after_sales(conn, shop.id, start, end, now, concurrent),
    )
    # A shop's own reply-time target, when it set one; else 24 business hours.
    target_s = settings.kpis.targets.get("reply_business_s_mean", DEFAULT_RESPONSE_TIME_TARGET_S)
    weights = settings.kpis.quality_weights
    result = assess(
        figures, settings.kpis.expertise_levels, weights, settings.default_language, target_s
    )
    scores = {name: None if s is None else round(s, 4) for name, s in result.scores.items()}
    parts = [
        {
            "name": name,
            "value": getattr(figures.after_sales, key),
            "score": scores[name],
            "weight": getattr(weights, name),
        }
        for name, key in PART_KPIS.items()
    ]
    return {
        **result.as_json(),
        "as_of": at.astimezone(UTC).isoformat(),
        "after_sales": {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "score": result.quality,
            "parts": parts,
        },
    }


def week_start(at: datetime, timezone: str) -> date:
    """The Monday of the shop-local week `at` falls in."""
    local = at.astimezone(ZoneInfo(timezone)).date()
    return date.fromordinal(local.toordinal() - local.weekday())


def week_instant(monday: date, timezone: str) -> datetime:
    """When that Monday begins in the shop's zone (00:00 local, or the first instant after a
    gap), the instant a snapshot is taken as of."""
    return datetime.combine(monday, time(), ZoneInfo(timezone))


async def has_snapshot(conn: AsyncConnection, shop_id: str, monday: date) -> bool:
    found = await conn.scalar(
        select(ExpertiseSnapshot.id).where(
            ExpertiseSnapshot.shop_id == shop_id, ExpertiseSnapshot.week_start == monday
        )
    )
    return found is not None


async def store_snapshot(
    conn: AsyncConnection, shop_id: str, monday: date, data: dict[str, Any], now: datetime
) -> bool:
    """Insert the week's snapshot unless one is there (two writers never make two); whether
    this one was stored."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    done = await conn.execute(
        insert(ExpertiseSnapshot)
        .values(shop_id=shop_id, week_start=monday, level=data["level"], data=data, computed_at=now)
        .on_conflict_do_nothing(index_elements=["shop_id", "week_start"])
    )
    return bool(done.rowcount)


async def history(
    conn: AsyncConnection, shop_id: str, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """The shop's snapshots, newest first: each is the answer of its Monday, with its week."""
    stmt = select(
        ExpertiseSnapshot.id,
        ExpertiseSnapshot.week_start,
        ExpertiseSnapshot.computed_at,
        ExpertiseSnapshot.data,
    ).where(ExpertiseSnapshot.shop_id == shop_id)
    rows, next_cursor = await page(conn, stmt, ExpertiseSnapshot.id, cursor, limit)
    items = [
        {**r["data"], "week_start": r["week_start"], "computed_at": r["computed_at"]} for r in rows
    ]
    return items, next_cursor
