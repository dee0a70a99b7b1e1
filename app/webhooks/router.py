"""`POST /webhooks/prestashop/{shop_id}` and the event log of a shop."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app import counters
from app.deps import CursorQuery, IdQuery, ReadConnDep
from app.errors import NotFound, PayloadTooLarge
from app.openapi import SHOP_RESPONSES, WEBHOOK_RESPONSES
from app.shops import service as shops
from app.shops.deps import ReadShopDep
from app.webhooks import batching, service
from app.webhooks.intake import SIGNATURE_HEADERS, Arrival
from app.webhooks.schemas import EventPage, EventRead, WebhookAccepted

MAX_BODY = 1024 * 1024

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


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise PayloadTooLarge("The body is over 1 MiB.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise PayloadTooLarge("The body is over 1 MiB.")
        chunks.append(chunk)
    return b"".join(chunks)


def _signature_headers(request: Request) -> dict[str, str]:
    """The headers the signature check reads, the first of each name (as `headers.get` does)."""
    found: dict[str, str] = {}
    for raw_name, raw_value in request.scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        if name in SIGNATURE_HEADERS and name not in found:
            found[name] = raw_value.decode("latin-1")
    return found


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
async def receive_webhook(shop_id: str, request: Request) -> JSONResponse:
    # The body is read and parsed before the webhook joins a batch, so a slow sender never
    # holds a transaction; the answer comes after the COMMIT of the batch (batching.py).
    # The engine and settings are read from the app, not through dependencies: on the
    # hottest route, FastAPI's dependency solving was a visible share of the CPU.
    state = request.app.state
    body = await _read_body(request)
    if not shops.is_shop_id(shop_id):
        raise NotFound(f"No shop {shop_id!r}.")
    kind: str | None = None
    event: BaseModel | None = None
    error: Exception | None = None
    try:
        kind, event = service.parse(body)
    except Exception as exc:
        error = exc  # answered only to a sender whose signature is good, as before
    arrival = Arrival(shop_id, _signature_headers(request), body, kind, event, error)
    answer = await batching.committer(state.engine, state.settings.secret_key).submit(arrival)
    if isinstance(answer, Exception):
        raise answer
    status, accepted = answer
    counters.note_webhook_outcome(request, accepted.status)
    return JSONResponse(accepted.model_dump(exclude_none=True), status_code=status)


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
