"""Outgoing webhooks API: the shop's endpoints, their secrets and their delivery log."""

from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.db import utcnow
from app.deps import AuthFirstRoute, ConnDep, CursorQuery, ReadConnDep, SettingsDep
from app.errors import PROBLEM_JSON
from app.hooks import service
from app.hooks.schemas import (
    WebhookDeliveryPage,
    WebhookDeliveryRead,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointList,
    WebhookEndpointRead,
    WebhookEndpointUpdate,
    WebhookSecretRotate,
    WebhookSecretRotated,
)
from app.hooks.vocabulary import HookStatus
from app.openapi import REF, SHOP_RESPONSES, Responses
from app.shops.deps import ReadShopDep, ShopDep

router = APIRouter(
    prefix="/api/v1/shops/{shop_id}/webhook-endpoints",
    tags=["outgoing webhooks"],
    route_class=AuthFirstRoute,
    responses=SHOP_RESPONSES,
)

EndpointPath = Annotated[str, Path(max_length=32, description="The endpoint's id (`we_…`).")]

_TOO_MANY: Responses = {
    409: {
        "description": "The shop already has the most endpoints allowed (20).",
        "content": {
            PROBLEM_JSON: {
                "schema": {"$ref": REF.format(model="Problem")},
                "example": {
                    "type": "https://relance.dev/problems/conflict",
                    "title": "Conflict",
                    "status": 409,
                    "detail": "A shop has at most 20 webhook endpoints.",
                },
            }
        },
    }
}


@router.get("", summary="The shop's webhook endpoints")
async def list_endpoints(shop: ReadShopDep, conn: ReadConnDep) -> WebhookEndpointList:
    rows = await service.list_endpoints(conn, shop.id)
    return WebhookEndpointList(items=[WebhookEndpointRead.model_validate(r) for r in rows])


@router.post(
    "",
    status_code=201,
    summary="Register an endpoint (its secret is in this answer only)",
    responses=_TOO_MANY,
)
async def create_endpoint(
    shop: ShopDep, conn: ConnDep, settings: SettingsDep, body: WebhookEndpointCreate
) -> WebhookEndpointCreated:
    row, secret = await service.create(
        conn, shop.id, body.url, body.events, secret_key=settings.secret_key,
        allow_private=settings.webhook_allow_private, now=utcnow(),
    )  # fmt: skip
    return WebhookEndpointCreated.model_validate({**row, "secret": secret})


@router.get("/{endpoint_id}", summary="Read an endpoint and its state")
async def read_endpoint(
    shop: ReadShopDep, conn: ReadConnDep, endpoint_id: EndpointPath
) -> WebhookEndpointRead:
    return WebhookEndpointRead.model_validate(await service.get(conn, shop.id, endpoint_id))


@router.patch("/{endpoint_id}", summary="Change the URL or events, or (re-)enable an endpoint")
async def update_endpoint(
    shop: ShopDep,
    conn: ConnDep,
    settings: SettingsDep,
    endpoint_id: EndpointPath,
    body: WebhookEndpointUpdate,
) -> WebhookEndpointRead:
    row = await service.update_endpoint(
        conn, shop.id, endpoint_id, body.model_dump(exclude_unset=True),
        allow_private=settings.webhook_allow_private, now=utcnow(),
    )  # fmt: skip
    return WebhookEndpointRead.model_validate(row)


@router.delete("/{endpoint_id}", status_code=204, summary="Delete an endpoint and its log")
async def delete_endpoint(shop: ShopDep, conn: ConnDep, endpoint_id: EndpointPath) -> None:
    await service.delete_endpoint(conn, shop.id, endpoint_id)


@router.post(
    "/{endpoint_id}/rotate-secret",
    summary="Issue a new secret; the current one keeps signing beside it for a while",
)
async def rotate_secret(
    shop: ShopDep,
    conn: ConnDep,
    settings: SettingsDep,
    endpoint_id: EndpointPath,
    body: WebhookSecretRotate | None = None,
) -> WebhookSecretRotated:
    body = body or WebhookSecretRotate()
    secret, expires = await service.rotate_secret(
        conn, shop.id, endpoint_id, body.previous_valid_for, secret_key=settings.secret_key,
        now=utcnow(),
    )  # fmt: skip
    return WebhookSecretRotated(secret=secret, previous_expires_at=expires)


@router.get("/{endpoint_id}/deliveries", summary="The endpoint's delivery log, newest first")
async def list_deliveries(
    shop: ReadShopDep,
    conn: ReadConnDep,
    endpoint_id: EndpointPath,
    status: HookStatus | None = None,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> WebhookDeliveryPage:
    rows, next_cursor = await service.list_deliveries(
        conn, shop.id, endpoint_id, status=status, cursor=cursor, limit=limit
    )
    return WebhookDeliveryPage(
        items=[WebhookDeliveryRead.model_validate(r) for r in rows], next_cursor=next_cursor
    )
