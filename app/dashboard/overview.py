"""The overview: KPI cards and weekly trends from the KPI report, the expertise level, the
review-request funnel. Every figure comes from `kpis.service.report`, the API's own; the level
from the latest Monday snapshot (`GET …/expertise/history`'s), live only before the first."""

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date
from babel.numbers import format_decimal
from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.dashboard.auth import Merchant, PageRoute, ReadMerchantDep
from app.dashboard.rendering import texts
from app.dashboard.views import shop_page, timezone_of
from app.db import utcnow
from app.deps import ReadConnDep
from app.errors import InvalidInput
from app.kpis import expertise_service
from app.kpis import service as kpis
from app.kpis.expertise_texts import LEVEL_NAMES
from app.kpis.models import ExpertiseSnapshot
from app.kpis.schemas import Kpi, KpiReport

router = APIRouter(include_in_schema=False, route_class=PageRoute)

# The picker's periods, in days ending today (shop-local), and the default.
PERIODS = {"4w": 28, "3m": 91, "6m": 182}
DEFAULT_PERIOD = "4w"

# The cards, grouped as a merchant reads them; every KPI of the report is in one group.
GROUPS: dict[str, list[str]] = {
    "reviews": [
        "review_requests_sent", "review_click_rate", "review_rate", "review_rating_mean",
        "review_requests_skipped", "review_requests_cancelled", "sentiment_positive_share",
        "sentiment_negative_share",
    ],
    "support": [
        "acknowledged_24h_rate", "response_rate", "first_reply_business_s_median",
        "first_reply_business_s_mean", "first_reply_calendar_s_median",
        "first_reply_calendar_s_mean", "reply_business_s_median", "reply_business_s_mean",
        "resolution_s_median", "resolution_s_mean", "first_contact_resolution_rate",
        "reopen_rate", "exchanges_per_ticket", "csat", "nps", "speed_rating_mean",
        "quality_rating_mean",
    ],
    "orders": [
        "pre_sale_contact_rate", "after_sale_contact_rate", "complaint_rate", "return_rate",
        "conversion_after_pre_sale_rate",
    ],
}  # fmt: skip
# The weekly trends drawn as charts.
CHARTS = [
    "review_requests_sent",
    "review_rate",
    "review_rating_mean",
    "response_rate",
    "first_reply_business_s_median",
    "csat",
]


@dataclass(frozen=True)
class Period:
    name: str
    start: date
    end: date
    error: str | None = None


def choose_period(name: str | None, start: str | None, end: str | None, today: date) -> Period:
    """The picker's choice; a custom one that does not parse or is out of bounds falls back to
    the default with an error to show."""
    if name == "custom":
        try:
            first, last = date.fromisoformat(start or ""), date.fromisoformat(end or "")
            kpis.check_period(first, last)
        except (ValueError, InvalidInput):
            days = PERIODS[DEFAULT_PERIOD]
            return Period("custom", today - timedelta(days=days - 1), today, "period_invalid")
        return Period("custom", first, last)
    chosen = name if name in PERIODS else DEFAULT_PERIOD
    return Period(chosen, today - timedelta(days=PERIODS[chosen] - 1), today)


def _chart_value(kpi: Kpi) -> float | None:
    """What a chart plots: percentages for ratios, hours for durations."""
    if kpi.value is None:
        return None
    if kpi.unit == "ratio":
        return round(kpi.value * 100, 2)
    if kpi.unit == "seconds":
        return round(kpi.value / 3600, 2)
    return kpi.value


def charts(report: KpiReport, t: dict[str, str], language: str) -> list[dict[str, Any]]:
    """Each trend chart's data: one point a week, the target as a second line."""
    points = report.series or []
    found = []
    for key in CHARTS:
        whole = report.kpis[key]
        values = [_chart_value(p.kpis[key]) for p in points]
        target = None
        if whole.target is not None:
            target = _chart_value(whole.model_copy(update={"value": whole.target}))
        found.append(
            {
                "key": key,
                "label": t[f"kpi_{key}"],
                "unit": t[f"chart_unit_{whole.unit}"],
                "labels": [p.period_start.isoformat() for p in points],
                "label_texts": [
                    format_date(p.period_start, format="d MMM", locale=language) for p in points
                ],
                "values": values,
                "counts": [p.kpis[key].count for p in points],
                "target": target,
                "target_label": t["target"],
                "empty": all(v is None for v in values),
            }
        )
    return found


def funnel(report: KpiReport) -> dict[str, Any]:
    """Sent → clicked → reviewed, and the skipped and cancelled requests by reason."""
    k = report.kpis
    sent = k["review_requests_sent"].count

    def of(key: str) -> int:
        value = k[key].value
        return 0 if value is None else round(value * k[key].count)

    return {
        "sent": sent,
        "clicked": of("review_click_rate"),
        "reviewed": of("review_rate"),
        "skipped": {r: p.count for r, p in (k["review_requests_skipped"].breakdown or {}).items()},
        "cancelled": {
            r: p.count for r, p in (k["review_requests_cancelled"].breakdown or {}).items()
        },
    }


def _number(value: float | None, language: str) -> str:
    return "—" if value is None else format_decimal(value, format="#,##0.##", locale=language)


def level_name(level: str | None, language: str) -> str | None:
    if level is None:
        return None
    names = LEVEL_NAMES.get(level)
    return names.get(language, names["en"]) if names else level


async def stored_expertise(
    conn: AsyncConnection, shop_id: str
) -> tuple[dict[str, Any], date] | None:
    """The latest Monday snapshot (the answer of GET .../expertise on that Monday) and its
    Monday, or None when the shop has none yet. One row by the (shop, week) unique index."""
    row = (
        await conn.execute(
            select(ExpertiseSnapshot.data, ExpertiseSnapshot.week_start)
            .where(ExpertiseSnapshot.shop_id == shop_id)
            .order_by(ExpertiseSnapshot.week_start.desc())
            .limit(1)
        )
    ).first()
    return None if row is None else (dict(row.data), row.week_start)


async def _context(
    merchant: Merchant, conn: AsyncConnection, period: Period, t: dict[str, str]
) -> dict[str, Any]:
    now = utcnow()
    report = await kpis.report(
        conn, merchant.shop.id, period.start, period.end, now=now, granularity="week",
        concurrent=True, series_keys=CHARTS,  # the cards need the whole period, not series
    )  # fmt: skip
    language = merchant.language
    # The level from the latest Monday snapshot: computing it live runs a second KPI report
    # over six months, which would double the page's cost. Live only before the first Monday.
    stored = await stored_expertise(conn, merchant.shop.id)
    if stored is None:
        expertise = await expertise_service.expertise(
            conn, merchant.shop, now, now, concurrent=True
        )
        as_of = None
    else:
        expertise, monday = stored
        as_of = t["expertise_as_of"].format(date=format_date(monday, "full", locale=language))
    return {
        "period": period,
        "periods": [*PERIODS, "custom"],
        "report": report,
        "groups": GROUPS,
        "charts": charts(report, t, language),
        "funnel": funnel(report),
        "expertise": expertise,
        "expertise_as_of": as_of,
        "criteria": [
            {
                "name": c["name"],
                "value_text": _number(c["value"], language),
                "threshold_text": _number(c["threshold"], language),
                "met": c["met"],
            }
            for c in expertise["criteria"]
        ],
        "level": level_name(expertise["level"], language) if expertise["level"] != "none" else None,
        "next_level": level_name(expertise["next_level"], language),
    }


@router.get("/dashboard")
async def overview(
    merchant: ReadMerchantDep,
    conn: ReadConnDep,
    period: str | None = None,
    from_: str | None = Query(default=None, alias="from", max_length=20),
    to: str | None = Query(default=None, max_length=20),
) -> HTMLResponse:
    today = utcnow().astimezone(ZoneInfo(timezone_of(merchant))).date()
    chosen = choose_period(period, from_, to, today)
    context = await _context(merchant, conn, chosen, texts(merchant.language))
    return shop_page(merchant, "overview.html", "overview", context)
