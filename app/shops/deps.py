"""Who is calling the shop API: the shop its key opens, as a typed principal."""

from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import utcnow
from app.deps import BearerDep, ConnDep, ReadConnDep
from app.errors import Unauthorized
from app.shops import service
from app.shops.service import ShopAccount


async def _shop(conn: AsyncConnection, shop_id: str, credentials: BearerDep) -> ShopAccount:
    if credentials is None:
        raise Unauthorized("A shop API key is required: 'Authorization: Bearer <api_key>'.")
    return await service.authenticate(conn, shop_id, credentials.credentials, utcnow())


async def shop_for_write(shop_id: str, conn: ConnDep, credentials: BearerDep) -> ShopAccount:
    return await _shop(conn, shop_id, credentials)


async def shop_for_read(shop_id: str, conn: ReadConnDep, credentials: BearerDep) -> ShopAccount:
    return await _shop(conn, shop_id, credentials)


# In the request's transaction (write or read-only), so authenticating costs no extra one.
ShopDep = Annotated[ShopAccount, Depends(shop_for_write, scope="function")]
ReadShopDep = Annotated[ShopAccount, Depends(shop_for_read, scope="function")]
