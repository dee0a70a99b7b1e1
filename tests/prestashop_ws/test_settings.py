"""The shop's Webservice settings: the key stored encrypted and never shown."""

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.prestashop.models import PrestashopWebservice
from app.prestashop.service import shop_of_token
from tests.factories import create_shop
from tests.prestashop_ws.standin import KEY, URL
from tests.problems import assert_problem


async def test_put_get_delete(api: httpx.AsyncClient, engine: AsyncEngine) -> None:
    shop = await create_shop(api)
    path = f"/api/v1/shops/{shop.id}/prestashop-webservice"
    assert_problem(await api.get(path, headers=shop.auth), 404)
    put = await api.put(path, json={"url": URL, "key": KEY}, headers=shop.auth)
    assert put.status_code == 200, put.text
    assert KEY not in put.text
    assert put.json()["thin_events_token"] is None
    read = await api.get(path, headers=shop.auth)
    assert read.json()["url"] == URL and KEY not in read.text
    async with engine.connect() as conn:
        stored = await conn.scalar(select(PrestashopWebservice.key_encrypted))
    assert stored is not None and KEY not in stored
    assert (await api.delete(path, headers=shop.auth)).status_code == 204
    assert_problem(await api.delete(path, headers=shop.auth), 404)


async def test_bad_urls_and_keys_are_refused_naming_the_field(api: httpx.AsyncClient) -> None:
    shop = await create_shop(api)
    path = f"/api/v1/shops/{shop.id}/prestashop-webservice"
    for url in ("ftp://shop.example/api", "https://user:pw@shop.example", "https://x/?a=1"):
        answer = await api.put(path, json={"url": url, "key": KEY}, headers=shop.auth)
        assert_problem(answer, 422)
        assert answer.json()["errors"][0]["loc"] == ["body", "url"], url
    answer = await api.put(path, json={"url": URL, "key": "bad key here"}, headers=shop.auth)
    assert_problem(answer, 422)
    assert answer.json()["errors"][0]["loc"] == ["body", "key"]


async def test_private_addresses_are_refused_by_default(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    answer = await client.put(
        f"/api/v1/shops/{shop.id}/prestashop-webservice",
        json={"url": URL, "key": KEY},
        headers=shop.auth,
    )
    assert_problem(answer, 422)
    assert "loopback" in answer.json()["detail"]


async def test_thin_events_token_is_shown_once(api: httpx.AsyncClient, engine: AsyncEngine) -> None:
    shop = await create_shop(api)
    path = f"/api/v1/shops/{shop.id}/prestashop-webservice"
    body = {"url": URL, "key": KEY, "thin_events": True}
    token = (await api.put(path, json=body, headers=shop.auth)).json()["thin_events_token"]
    assert token.startswith("pst_")
    again = await api.put(path, json=body, headers=shop.auth)
    assert again.json()["thin_events_token"] is None
    async with engine.connect() as conn:
        assert await shop_of_token(conn, token) == shop.id
        assert token not in str((await conn.execute(select(PrestashopWebservice))).all())
    await api.put(path, json={"url": URL, "key": KEY}, headers=shop.auth)
    async with engine.connect() as conn:
        assert await shop_of_token(conn, token) is None


async def test_another_shops_key_opens_nothing(api: httpx.AsyncClient) -> None:
    mine, theirs = await create_shop(api), await create_shop(api)
    answer = await api.put(
        f"/api/v1/shops/{mine.id}/prestashop-webservice",
        json={"url": URL, "key": KEY},
        headers=theirs.auth,
    )
    assert_problem(answer, 404)
    backfill = await api.post(f"/api/v1/shops/{mine.id}/backfill", json={}, headers=theirs.auth)
    assert_problem(backfill, 404)
    assert_problem(await api.post(f"/api/v1/shops/{mine.id}/backfill", json={}), 401)
