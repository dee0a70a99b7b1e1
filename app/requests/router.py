"""Review-request API: list with filters, read one with its deliveries."""

from typing import Annotated

from fastapi import APIRouter, Query

from app.deps import AuthFirstRoute, CursorQuery, IdPath, IdQuery, ReadConnDep
from app.openapi import SHOP_RESPONSES
from app.requests import service
from app.requests.schemas import (
    ReviewRequestDetail,
    ReviewRequestPage,
    ReviewRequestRead,
)
from app.requests.vocabulary import Status
from app.shops.deps import ReadShopDep

router = APIRouter(
    prefix="/api/v1/shops/{shop_id}/review-requests",
    tags=["review requests"],
    route_class=AuthFirstRoute,
    responses=SHOP_RESPONSES,
)


@router.get("", summary="List review requests, newest first")
async def list_requests(
    shop: ReadShopDep,
    conn: ReadConnDep,
    status: Status | None = None,
    order_id: IdQuery = None,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ReviewRequestPage:
    rows, next_cursor = await service.list_requests(
        conn, shop.id, status=status, order_id=order_id, cursor=cursor, limit=limit
    )
    return ReviewRequestPage(
        items=[ReviewRequestRead.model_validate(r) for r in rows], next_cursor=next_cursor
    )


@router.get("/{request_id}", summary="One review request and each of its e-mails")
async def read_request(
    shop: ReadShopDep, conn: ReadConnDep, request_id: IdPath
) -> ReviewRequestDetail:
    return ReviewRequestDetail.model_validate(await service.get_request(conn, shop.id, request_id))
