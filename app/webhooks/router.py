"""`POST /webhooks/prestashop/{shop_id}` (as OpenAPI shows it; served by `inbox.py`) and the
event log of a shop."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.deps import CursorQuery, IdQuery, ReadConnDep
from app.openapi import SHOP_RESPONSES, WEBHOOK_RESPONSES
from app.shops.deps import ReadShopDep
from app.webhooks import inbox, service
from app.webhooks.schemas import EventPage, EventRead, WebhookAccepted

router = APIRouter(tags=["webhooks"])

ORDER_EVENT_EXAMPLE: dict[str, Any] = {
    "type": "order.status_changed",
    "timestamp": "2026-11-20T10:15:00+01:00",
    "data": {
        "order": {
            "id": 1042,
            "reference": "XKBKNABJK",
            "id_lang": 1,
            "total_paid": "59.90",
            "currency": "EUR",
            "date_add": "2026-11-14T18:02:11+01:00",
        },
        "customer": {
            "id": 7,
            "email": "marie@example.fr",
            "firstname": "Marie",
            "lastname": "Dupont",
            "language": "fr",
        },
        "history": {"id": 5531, "date_add": "2026-11-20T10:15:00+01:00"},
        "new_state": {
            "id": 5,
            "name": "Livré",
            "paid": True,
            "shipped": True,
            "delivery": True,
            "logable": True,
        },
        "old_state": {
            "id": 4,
            "name": "Expédié",
            "paid": True,
            "shipped": True,
            "delivery": True,
            "logable": True,
        },
        "products": [
            {
                "id": 12,
                "id_product_attribute": 0,
                "name": "Mug en grès",
                "reference": "MUG-01",
                "quantity": 1,
                "url": "https://shop.example/12-mug.html",
                "image_url": "https://shop.example/img/12.jpg",
            }
        ],
    },
}


@router.post(
    "/webhooks/prestashop/{shop_id}",
    status_code=202,
    summary="Receive a signed event from the PrestaShop module",
    response_model=WebhookAccepted,
    responses={
        200: {
            "model": WebhookAccepted,
            "description": "A repeat of a known webhook-id, or the answer to a ping.",
        },
        **WEBHOOK_RESPONSES,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "An event, signed with the shop's webhook secret (Standard Webhooks).",
            "content": {
                "application/json": {
                    "schema": {"type": "object"},
                    "example": ORDER_EVENT_EXAMPLE,
                }
            },
        }
    },
)
async def receive_webhook(shop_id: str, request: Request) -> Response:
    # Served by `inbox.serve` ahead of FastAPI (`main.Relance`); declared here for OpenAPI,
    # and answering the same through FastAPI if it ever routes the request.
    return await inbox.answer(request.app.state, shop_id, request.scope, request.receive)


@router.get(
    "/api/v1/shops/{shop_id}/events",
    summary="Events received, and what each did",
    responses=SHOP_RESPONSES,
)
async def list_events(
    shop: ReadShopDep,
    conn: ReadConnDep,
    order_id: IdQuery = None,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> EventPage:
    rows, next_cursor = await service.list_events(conn, shop.id, order_id, cursor, limit)
    return EventPage(items=[EventRead.model_validate(r) for r in rows], next_cursor=next_cursor)
