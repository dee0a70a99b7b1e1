"""Review-request API: list with filters, read one with its deliveries."""

from datetime import UTC
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from app.db import utcnow
from app.deps import AuthFirstRoute, ConnDep, CursorQuery, IdPath, IdQuery, ReadConnDep
from app.openapi import CONFLICT_RESPONSES, SHOP_RESPONSES
from app.requests import actions, service
from app.requests.schemas import (
    ReviewRequestDetail,
    ReviewRequestPage,
    ReviewRequestRead,
)
from app.requests.vocabulary import Reason, Status
from app.shops.deps import ReadShopDep, ShopDep
from app.validation import Moment

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
    reason: Reason | None = None,
    order_id: IdQuery = None,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ReviewRequestPage:
    rows, next_cursor = await service.list_requests(
        conn,
        shop.id,
        status=status,
        reason=reason,
        order_id=order_id,
        cursor=cursor,
        limit=limit,
    )
    return ReviewRequestPage(
        items=[ReviewRequestRead.model_validate(r) for r in rows], next_cursor=next_cursor
    )


@router.get("/{request_id}", summary="One review request and each of its e-mails")
async def read_request(
    shop: ReadShopDep, conn: ReadConnDep, request_id: IdPath
) -> ReviewRequestDetail:
    return ReviewRequestDetail.model_validate(await service.get_request(conn, shop.id, request_id))


class Reschedule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    due_at: Moment


@router.post(
    "/{request_id}/cancel",
    responses=CONFLICT_RESPONSES,
    summary="Cancel what is still to be sent (reason manual)",
)
async def cancel_request(shop: ShopDep, conn: ConnDep, request_id: IdPath) -> ReviewRequestDetail:
    await actions.cancel(conn, shop.id, request_id, utcnow())
    return ReviewRequestDetail.model_validate(await service.get_request(conn, shop.id, request_id))


@router.post(
    "/{request_id}/send-now",
    responses=CONFLICT_RESPONSES,
    summary="Send the next e-mail now (the rules still apply)",
)
async def send_now(shop: ShopDep, conn: ConnDep, request_id: IdPath) -> ReviewRequestDetail:
    now = utcnow()
    await actions.move(conn, shop.id, request_id, now, now)
    return ReviewRequestDetail.model_validate(await service.get_request(conn, shop.id, request_id))


@router.post(
    "/{request_id}/reschedule",
    responses=CONFLICT_RESPONSES,
    summary="Move the next e-mail to another time",
)
async def reschedule(
    shop: ShopDep, conn: ConnDep, request_id: IdPath, body: Reschedule
) -> ReviewRequestDetail:
    due = body.due_at if body.due_at.tzinfo else body.due_at.replace(tzinfo=UTC)
    await actions.move(conn, shop.id, request_id, due.astimezone(UTC), utcnow())
    return ReviewRequestDetail.model_validate(await service.get_request(conn, shop.id, request_id))


@router.post(
    "/{request_id}/requeue", responses=CONFLICT_RESPONSES, summary="Try a failed e-mail again"
)
async def requeue(shop: ShopDep, conn: ConnDep, request_id: IdPath) -> ReviewRequestDetail:
    await actions.requeue(conn, shop.id, request_id, utcnow())
    return ReviewRequestDetail.model_validate(await service.get_request(conn, shop.id, request_id))
