"""An app of its own per test, whose backfills reach the stand-in shop (no sleeping)."""

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.main import create_app
from app.prestashop.client import Connector
from app.prestashop.router import webservice_connector
from tests.conftest import BASE_URL
from tests.factories import ShopInfo, create_shop
from tests.prestashop_ws.standin import KEY, URL, Shop


async def no_sleep(_: float) -> None:
    return None


@pytest.fixture
def ps() -> Shop:
    return Shop()


@pytest.fixture
def connector(ps: Shop) -> Connector:
    return Connector(transport=ps.transport(), sleep=no_sleep)


@pytest.fixture
async def api(
    settings: Settings, engine: AsyncEngine, connector: Connector
) -> AsyncIterator[httpx.AsyncClient]:
    # The stand-in's URL is a loopback address: allowed here as for a local test shop.
    application = create_app(settings.model_copy(update={"webhook_allow_private": True}))
    application.dependency_overrides[webservice_connector] = lambda: connector
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield client


async def connected_shop(api: httpx.AsyncClient, **settings: object) -> ShopInfo:
    shop = await create_shop(api, **settings)
    put = await api.put(
        f"/api/v1/shops/{shop.id}/prestashop-webservice",
        json={"url": URL, "key": KEY},
        headers=shop.auth,
    )
    assert put.status_code == 200, put.text
    return shop
