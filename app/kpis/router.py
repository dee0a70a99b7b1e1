"""KPI API: the report over a period of the shop's local dates."""

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from app.db import utcnow
from app.deps import AuthFirstRoute, ReadConnDep
from app.kpis import service
from app.kpis.schemas import KpiReport
from app.openapi import SHOP_RESPONSES
from app.shops.deps import ReadShopDep

router = APIRouter(
    prefix="/api/v1/shops/{shop_id}/kpis",
    tags=["kpis"],
    route_class=AuthFirstRoute,
    responses=SHOP_RESPONSES,
)


@router.get("", summary="After-sales and review KPIs over a period", response_model_by_alias=True)
async def read_kpis(
    shop: ReadShopDep,
    conn: ReadConnDep,
    from_: Annotated[date, Query(alias="from", description="Local date of the shop, included.")],
    to: Annotated[date, Query(description="Local date of the shop, included.")],
    granularity: Annotated[
        Literal["week", "month"] | None,
        Query(description="Adds `series`: the same KPIs per week (from Monday) or month."),
    ] = None,
    series: Annotated[
        str | None,
        Query(
            max_length=1000,
            description="Comma-separated KPI keys: the series holds only these (the whole "
            "period keeps every KPI), and is computed faster. Default: every KPI.",
        ),
    ] = None,
) -> KpiReport:
    keys = None if series is None else [k.strip() for k in series.split(",") if k.strip()]
    return await service.report(
        conn,
        shop.id,
        from_,
        to,
        now=utcnow(),
        granularity=granularity,
        concurrent=True,
        series_keys=keys,
    )
