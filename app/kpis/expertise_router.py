"""Expertise API: the level if computed now, and the Monday snapshots."""

from typing import Annotated

from fastapi import APIRouter, Query

from app.db import utcnow
from app.deps import AuthFirstRoute, CursorQuery, ReadConnDep
from app.kpis import expertise_service as service
from app.kpis.expertise_schemas import ExpertiseHistoryPage, ExpertiseRead, ExpertiseSnapshotRead
from app.openapi import SHOP_RESPONSES
from app.shops.deps import ReadShopDep

router = APIRouter(
    prefix="/api/v1/shops/{shop_id}/expertise",
    tags=["kpis"],
    route_class=AuthFirstRoute,
    responses=SHOP_RESPONSES,
)


@router.get("", summary="The expertise level if computed now, and what to improve to climb")
async def get_expertise(shop: ReadShopDep, conn: ReadConnDep) -> ExpertiseRead:
    now = utcnow()
    found = await service.expertise(conn, shop, now, now, concurrent=True)
    return ExpertiseRead.model_validate(found)


@router.get("/history", summary="The weekly snapshots (each Monday, shop-local), newest first")
async def expertise_history(
    shop: ReadShopDep,
    conn: ReadConnDep,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 52,
) -> ExpertiseHistoryPage:
    items, next_cursor = await service.history(conn, shop.id, cursor, limit)
    return ExpertiseHistoryPage(
        items=[ExpertiseSnapshotRead.model_validate(i) for i in items], next_cursor=next_cursor
    )
