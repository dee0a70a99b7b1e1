"""The suppression list API: the addresses a shop never writes to, by the shop's key."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from app.db import utcnow
from app.deps import AuthFirstRoute, ConnDep, CursorQuery, ReadConnDep, SettingsDep
from app.errors import NotFound
from app.openapi import SHOP_RESPONSES
from app.security import address_key
from app.shops.deps import ReadShopDep, ShopDep
from app.suppressions import service
from app.suppressions.schemas import SuppressionCreate, SuppressionPage, SuppressionRead
from app.validation import EmailAddress

router = APIRouter(
    prefix="/api/v1/shops/{shop_id}/suppressions",
    tags=["suppressions"],
    route_class=AuthFirstRoute,
    responses=SHOP_RESPONSES,
)

# `:path`: an address may hold a `/` (RFC 5322 atext), which a plain segment would not match.
EmailPath = Annotated[EmailAddress, Path(description="The address; compared case-insensitively.")]


@router.get("", summary="The suppressed addresses, newest first")
async def list_suppressions(
    shop: ReadShopDep,
    conn: ReadConnDep,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> SuppressionPage:
    rows, next_cursor = await service.list_page(conn, shop.id, cursor, limit)
    return SuppressionPage(
        items=[SuppressionRead.model_validate(r) for r in rows], next_cursor=next_cursor
    )


@router.post(
    "",
    status_code=201,
    summary="Never write to an address again",
    responses={200: {"model": SuppressionRead, "description": "Already suppressed: unchanged."}},
)
async def add_suppression(
    shop: ShopDep,
    conn: ConnDep,
    settings: SettingsDep,
    body: SuppressionCreate,
    response: Response,
) -> SuppressionRead:
    key = address_key(settings.secret_key)
    if not await service.add(conn, shop.id, key, body.email, body.reason, utcnow()):
        response.status_code = 200
    return SuppressionRead.model_validate(await service.get(conn, shop.id, key, body.email))


@router.get("/{email:path}", summary="Whether an address is suppressed, and why")
async def get_suppression(
    shop: ReadShopDep, conn: ReadConnDep, settings: SettingsDep, email: EmailPath
) -> SuppressionRead:
    row = await service.get(conn, shop.id, address_key(settings.secret_key), email)
    if row is None:
        raise NotFound("This address is not suppressed.")
    return SuppressionRead.model_validate(row)


@router.delete("/{email:path}", status_code=204, summary="Write to an address again")
async def remove_suppression(
    shop: ShopDep, conn: ConnDep, settings: SettingsDep, email: EmailPath
) -> None:
    if not await service.remove(conn, shop.id, address_key(settings.secret_key), email):
        raise NotFound("This address is not suppressed.")
