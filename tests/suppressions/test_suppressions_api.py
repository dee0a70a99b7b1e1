"""The suppression list API: create, read, list in pages, delete; bad input; tenant isolation."""

import hashlib

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.suppressions.models import Suppression
from tests.factories import create_shop
from tests.problems import assert_problem, assert_validation_problem


def url(shop_id: str, email: str | None = None) -> str:
    base = f"/api/v1/shops/{shop_id}/suppressions"
    return base if email is None else f"{base}/{email}"


async def test_create_read_list_delete(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    shop = await create_shop(client)
    created = await client.post(
        url(shop.id), json={"email": "Zoe@Example.FR", "reason": "complaint"}, headers=shop.auth
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["email"], body["reason"]) == ("zoe@example.fr", "complaint")

    again = await client.post(url(shop.id), json={"email": "zoe@example.fr"}, headers=shop.auth)
    assert again.status_code == 200
    assert again.json() == body  # unchanged: neither the reason nor the time moves

    manual = await client.post(url(shop.id), json={"email": "a/b@example.fr"}, headers=shop.auth)
    assert (manual.status_code, manual.json()["reason"]) == (201, "manual")

    one = await client.get(url(shop.id, "ZOE@example.fr"), headers=shop.auth)
    assert one.status_code == 200 and one.json() == body
    assert (await client.get(url(shop.id, "a/b@example.fr"), headers=shop.auth)).is_success

    # Stored by keyed hash: neither the address nor its plain SHA-256.
    async with engine.connect() as conn:
        hashes = set((await conn.execute(select(Suppression.email_hash))).scalars())
    assert len(hashes) == 2 and all(len(h) == 64 for h in hashes)
    assert hashlib.sha256(b"zoe@example.fr").hexdigest() not in hashes

    gone = await client.delete(url(shop.id, "zoe@EXAMPLE.fr"), headers=shop.auth)
    assert gone.status_code == 204 and gone.content == b""
    assert_problem(await client.delete(url(shop.id, "zoe@example.fr"), headers=shop.auth), 404)
    assert_problem(await client.get(url(shop.id, "zoe@example.fr"), headers=shop.auth), 404)
    assert (await client.delete(url(shop.id, "a/b@example.fr"), headers=shop.auth)).is_success
    listed = await client.get(url(shop.id), headers=shop.auth)
    assert listed.json() == {"items": [], "next_cursor": None}


async def test_the_list_comes_in_keyset_pages_newest_first(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    emails = [f"client{n}@example.fr" for n in range(5)]
    for email in emails:
        response = await client.post(url(shop.id), json={"email": email}, headers=shop.auth)
        assert response.status_code == 201
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(url(shop.id), params=params, headers=shop.auth)).json()
        seen += [item["email"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == emails[::-1]
    bad = await client.get(url(shop.id), params={"cursor": "not-a-cursor"}, headers=shop.auth)
    assert_validation_problem(bad, ["query", "cursor"], source="query")


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-address"},
        {"email": "two@example.fr, three@example.fr"},
        {"email": "x@example.fr\r\nBcc: y@example.fr"},
        {"email": "a" * 250 + "@example.fr"},
        {"email": "ok@example.fr", "reason": "bored"},
        {"email": "ok@example.fr", "colour": "blue"},
        {},
    ],
)
async def test_bad_input_is_422(client: httpx.AsyncClient, body: dict[str, str]) -> None:
    shop = await create_shop(client)
    assert_validation_problem(await client.post(url(shop.id), json=body, headers=shop.auth))
    listed = await client.get(url(shop.id), headers=shop.auth)
    assert listed.json()["items"] == []


async def test_a_bad_address_in_the_path_is_422(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    for method in ("GET", "DELETE"):
        response = await client.request(method, url(shop.id, "not-an-address"), headers=shop.auth)
        assert_validation_problem(response, ["path", "email"], source="path")


async def test_a_key_opens_its_own_shop_s_list_only(client: httpx.AsyncClient) -> None:
    mine = await create_shop(client, name="Mine")
    theirs = await create_shop(client, name="Theirs")
    body = {"email": "zoe@example.fr"}
    assert (await client.post(url(mine.id), json=body, headers=mine.auth)).status_code == 201

    for method, path, json in (
        ("GET", url(mine.id), None),
        ("POST", url(mine.id), body),
        ("GET", url(mine.id, "zoe@example.fr"), None),
        ("DELETE", url(mine.id, "zoe@example.fr"), None),
    ):
        other = await client.request(method, path, json=json, headers=theirs.auth)
        assert "errors" not in assert_problem(other, 404), (method, path)
        assert_problem(await client.request(method, path, json=json), 401)

    # Their list is their own: the address is not suppressed there.
    assert (await client.get(url(theirs.id), headers=theirs.auth)).json()["items"] == []
    assert_problem(await client.delete(url(theirs.id, "zoe@example.fr"), headers=theirs.auth), 404)
    [entry] = (await client.get(url(mine.id), headers=mine.auth)).json()["items"]
    assert entry["email"] == "zoe@example.fr"
