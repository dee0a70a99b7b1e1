"""The shop API: admin creation, keys, isolation between shops, settings, pagination."""

import base64
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.models import metadata
from app.shops.models import Shop, ShopApiKey, ShopWebhookSecret
from tests.factories import ADMIN, ClientFor, ShopInfo, create_shop, order_event, post_event
from tests.problems import assert_problem, assert_validation_problem

NEW_SHOP = {"name": "Ma Boutique", "timezone": "Europe/Paris", "language": "fr"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def count_shops(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(select(func.count()).select_from(Shop)) or 0


async def all_stored_text(engine: AsyncEngine) -> str:
    """Every value of every row of every table, as one string."""
    lines: list[str] = []
    async with engine.connect() as conn:
        for table in metadata.sorted_tables:
            lines += [repr(tuple(row)) for row in await conn.execute(select(table))]
    return "\n".join(lines)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-token"),
        pytest.param(bearer("wrong-token"), id="wrong-token"),
        pytest.param(bearer("admin-token-for-tests-but-longer"), id="token-with-suffix"),
        pytest.param({"Authorization": "Basic YWRtaW46YWRtaW4="}, id="not-bearer"),
    ],
)
async def test_shop_creation_requires_the_admin_token(
    client: httpx.AsyncClient, engine: AsyncEngine, headers: dict[str, str]
) -> None:
    response = await client.post("/api/v1/shops", json=NEW_SHOP, headers=headers)
    assert_problem(response, 401)
    assert await count_shops(engine) == 0


async def test_shop_creation_with_the_admin_token(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    response = await client.post("/api/v1/shops", json=NEW_SHOP, headers=ADMIN)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "Ma Boutique"
    assert body["webhook_secret"].startswith("whsec_")
    assert len(base64.b64decode(body["webhook_secret"].removeprefix("whsec_"))) == 32
    assert body["api_key"].startswith("rlk_")
    assert len(base64.urlsafe_b64decode(body["api_key"].removeprefix("rlk_") + "=")) == 32
    assert body["id"].startswith("shp_")
    assert await count_shops(engine) == 1


@pytest.mark.parametrize(
    "headers", [pytest.param(ADMIN, id="admin-token"), pytest.param({}, id="no-token")]
)
async def test_admin_api_is_404_when_no_admin_token_is_set(
    settings: Settings, engine: AsyncEngine, client_for: ClientFor, headers: dict[str, str]
) -> None:
    c = await client_for(settings.model_copy(update={"admin_token": None}))
    response = await c.post("/api/v1/shops", json=NEW_SHOP, headers=headers)
    empty_token = await c.post("/api/v1/shops", json=NEW_SHOP, headers=bearer(""))
    assert_problem(response, 404)
    assert_problem(empty_token, 404)
    assert await count_shops(engine) == 0


async def test_shop_ids_are_opaque(client: httpx.AsyncClient) -> None:
    shops = [await create_shop(client, name=f"Boutique {n}") for n in range(3)]
    ids = [s.id for s in shops]
    assert len(set(ids)) == 3
    for shop_id in ids:
        assert shop_id.startswith("shp_")
        random_part = shop_id.removeprefix("shp_")
        assert not random_part.isdigit()
        assert len(random_part) >= 16
        assert not shop_id.isdigit()


async def test_api_key_and_webhook_secret_are_never_stored_in_clear(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    shop = await create_shop(client)
    rotated = await client.post(
        f"/api/v1/shops/{shop.id}/api-keys/rotate",
        json={"previous_valid_for": "PT1H"},
        headers=shop.auth,
    )
    new_secret = await client.post(
        f"/api/v1/shops/{shop.id}/webhook-secrets/rotate", json={}, headers=shop.auth
    )
    assert rotated.status_code == 200, rotated.text
    assert new_secret.status_code == 200, new_secret.text
    keys = [shop.api_key, rotated.json()["api_key"]]
    secrets = [shop.webhook_secret, new_secret.json()["webhook_secret"]]

    async with engine.connect() as conn:
        key_rows = (await conn.execute(select(ShopApiKey))).all()
        secret_rows = (await conn.execute(select(ShopWebhookSecret))).all()
    assert len(key_rows) == 2
    assert len(secret_rows) == 2
    stored = await all_stored_text(engine)
    assert shop.id in stored
    for key in keys:
        assert key not in repr(key_rows)
        assert key not in stored
    for secret in secrets:
        raw = secret.removeprefix("whsec_")
        assert raw not in repr(secret_rows)
        assert raw not in stored
        assert base64.b64decode(raw).hex() not in stored


async def test_wrong_or_missing_api_key_is_401(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    settings_url = f"/api/v1/shops/{shop.id}/settings"
    assert_problem(await client.get(settings_url), 401)
    assert_problem(await client.get(settings_url, headers=bearer("rlk_not-a-key")), 401)
    assert_problem(await client.get(settings_url, headers=bearer(shop.webhook_secret)), 401)
    assert_problem(await client.get(settings_url, headers=ADMIN), 401)
    assert (await client.get(settings_url, headers=shop.auth)).status_code == 200


@pytest.mark.parametrize(
    "path",
    ["", "/settings", "/review-requests", "/events", "/order-states", "/sending"],
)
async def test_another_shops_key_is_404(client: httpx.AsyncClient, path: str) -> None:
    mine = await create_shop(client, name="Mine")
    theirs = await create_shop(client, name="Theirs")
    await post_event(client, theirs, order_event(1, 10, 5))
    response = await client.get(f"/api/v1/shops/{theirs.id}{path}", headers=mine.auth)
    assert_problem(response, 404)
    unknown = await client.get(f"/api/v1/shops/shp_doesnotexist{path}", headers=mine.auth)
    assert_problem(unknown, 404)
    own = await client.get(f"/api/v1/shops/{mine.id}{path}", headers=mine.auth)
    assert own.status_code == 200, own.text


async def test_another_shops_key_cannot_write(client: httpx.AsyncClient) -> None:
    mine = await create_shop(client, name="Mine")
    theirs = await create_shop(client, name="Theirs")
    base = f"/api/v1/shops/{theirs.id}"
    patched = await client.patch(f"{base}/settings", json={"delay": "PT1S"}, headers=mine.auth)
    assert_problem(patched, 404)
    rotated = await client.post(f"{base}/api-keys/rotate", json={}, headers=mine.auth)
    assert_problem(rotated, 404)
    unchanged = await client.get(f"{base}/settings", headers=theirs.auth)
    assert unchanged.status_code == 200
    assert unchanged.json()["delay"] == "P2D"


async def test_settings_have_the_contract_defaults(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/api/v1/shops",
        json={"name": "Montreal", "timezone": "America/Montreal", "language": "de"},
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    shop = ShopInfo(created.json()["id"], created.json()["api_key"], "")
    response = await client.get(f"/api/v1/shops/{shop.id}/settings", headers=shop.auth)
    assert response.status_code == 200, response.text
    expected = {
        "trigger_state_ids": [5],
        "cancel_state_ids": [6, 7, 8],
        "delay": "P2D",
        "require_paid": True,
        "customer_cooldown": "P30D",
        "max_age": "P30D",
        "fallback_delay": None,
        "reminders": [],
        "send_window": None,
        "timezone": "America/Montreal",
        "default_language": "de",
    }
    body = response.json()
    assert {k: body.get(k, "<missing>") for k in expected} == expected


async def _settings(client: httpx.AsyncClient, shop: ShopInfo) -> dict[str, Any]:
    response = await client.get(f"/api/v1/shops/{shop.id}/settings", headers=shop.auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _patch(client: httpx.AsyncClient, shop: ShopInfo, changes: Any) -> httpx.Response:
    return await client.patch(f"/api/v1/shops/{shop.id}/settings", json=changes, headers=shop.auth)


async def test_patch_merges_into_the_settings(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    before = await _settings(client, shop)

    first = await _patch(client, shop, {"delay": "PT30S"})
    assert first.status_code == 200, first.text
    assert first.json() == {**before, "delay": "PT30S"}

    second = await _patch(client, shop, {"require_paid": False, "reminders": ["P7D"]})
    assert second.status_code == 200, second.text
    expected = {**before, "delay": "PT30S", "require_paid": False, "reminders": ["P7D"]}
    assert second.json() == expected
    assert await _settings(client, shop) == expected


@pytest.mark.parametrize(
    ("given", "stored"),
    [("PT30S", "PT30S"), (30, "PT30S"), ("P3D", "P3D"), ("PT1H", "PT1H")],
)
async def test_delay_accepts_iso_durations_and_seconds(
    client: httpx.AsyncClient, given: Any, stored: str
) -> None:
    shop = await create_shop(client)
    response = await _patch(client, shop, {"delay": given})
    assert response.status_code == 200, response.text
    assert response.json()["delay"] == stored
    assert (await _settings(client, shop))["delay"] == stored


REFUSED: list[Any] = [
    pytest.param({"delay": "P1M"}, ["body", "delay"], id="delay-in-months"),
    pytest.param({"delay": "P1Y"}, ["body", "delay"], id="delay-in-years"),
    pytest.param({"delay": "soon"}, ["body", "delay"], id="delay-not-a-duration"),
    pytest.param({"delay": -5}, ["body", "delay"], id="delay-negative"),
    pytest.param({"delay": None}, ["body", "delay"], id="delay-null"),
    pytest.param({"timezone": "Mars/Olympus"}, ["body", "timezone"], id="unknown-timezone"),
    pytest.param({"default_language": "french"}, ["body", "default_language"], id="bad-lang"),
    pytest.param({"trigger_state_ids": [5], "cancel_state_ids": [5, 6]}, None, id="overlap"),
    pytest.param({"cancel_state_ids": [5]}, None, id="overlap-with-stored-trigger"),
    pytest.param(
        {"send_window": {"start": "18:00", "end": "09:00"}}, None, id="window-ends-before-start"
    ),
    pytest.param({"colour": "blue"}, ["body", "colour"], id="unknown-field"),
    pytest.param({"delay": "P5D", "timezone": "Mars/Olympus"}, None, id="one-good-one-bad"),
]


@pytest.mark.parametrize(("changes", "loc"), REFUSED)
async def test_refused_patch_is_422_and_changes_nothing(
    client: httpx.AsyncClient, changes: dict[str, Any], loc: list[Any] | None
) -> None:
    shop = await create_shop(client, delay="PT30S")
    before = await _settings(client, shop)
    response = await _patch(client, shop, changes)
    assert_validation_problem(response, loc)
    assert await _settings(client, shop) == before


async def test_send_window_error_names_the_field(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    response = await _patch(client, shop, {"send_window": {"start": "18:00", "end": "09:00"}})
    assert_validation_problem(response)
    locs = [e["loc"] for e in response.json()["errors"]]
    assert any(loc[:2] == ["body", "send_window"] for loc in locs), locs


@pytest.mark.parametrize("body", [pytest.param([], id="array"), pytest.param("P2D", id="string")])
async def test_patch_body_must_be_an_object(client: httpx.AsyncClient, body: Any) -> None:
    shop = await create_shop(client)
    before = await _settings(client, shop)
    assert_validation_problem(await _patch(client, shop, body))
    assert await _settings(client, shop) == before


async def _rotate_key(client: httpx.AsyncClient, shop: ShopInfo, **body: Any) -> str:
    response = await client.post(
        f"/api/v1/shops/{shop.id}/api-keys/rotate", json=body, headers=shop.auth
    )
    assert response.status_code == 200, response.text
    key: str = response.json()["api_key"]
    return key


async def _status_with(client: httpx.AsyncClient, shop: ShopInfo, key: str) -> int:
    url = f"/api/v1/shops/{shop.id}/settings"
    return (await client.get(url, headers=bearer(key))).status_code


async def test_rotated_key_replaces_the_old_one_at_once_by_default(
    client: httpx.AsyncClient,
) -> None:
    shop = await create_shop(client)
    new_key = await _rotate_key(client, shop)
    assert new_key != shop.api_key
    assert await _status_with(client, shop, new_key) == 200
    old = await client.get(f"/api/v1/shops/{shop.id}/settings", headers=shop.auth)
    assert_problem(old, 401)


async def test_rotated_key_with_a_grace_period_keeps_both(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    new_key = await _rotate_key(client, shop, previous_valid_for="PT1H")
    assert new_key != shop.api_key
    assert await _status_with(client, shop, new_key) == 200
    assert await _status_with(client, shop, shop.api_key) == 200


async def test_rotation_without_grace_ends_every_previous_key(
    client: httpx.AsyncClient,
) -> None:
    shop = await create_shop(client)
    second = await _rotate_key(client, shop, previous_valid_for="PT1H")
    third = await _rotate_key(
        client, ShopInfo(shop.id, second, shop.webhook_secret), previous_valid_for="PT0S"
    )
    assert await _status_with(client, shop, third) == 200
    assert await _status_with(client, shop, second) == 401
    assert await _status_with(client, shop, shop.api_key) == 401


async def test_rotation_refuses_a_bad_grace_period(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    response = await client.post(
        f"/api/v1/shops/{shop.id}/api-keys/rotate",
        json={"previous_valid_for": "soon"},
        headers=shop.auth,
    )
    assert_validation_problem(response, ["body", "previous_valid_for"])
    assert await _status_with(client, shop, shop.api_key) == 200


async def _five_requests(client: httpx.AsyncClient, shop: ShopInfo) -> None:
    for order_id in range(1, 6):
        event = order_event(order_id, 100 + order_id, 5, email=f"buyer{order_id}@example.fr")
        response = await post_event(client, shop, event)
        assert response.status_code == 202, response.text


async def test_review_requests_paginate_with_a_cursor(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    await _five_requests(client, shop)
    url = f"/api/v1/shops/{shop.id}/review-requests"

    seen: list[int] = []
    orders: list[int] = []
    sizes: list[int] = []
    params: dict[str, Any] = {"limit": 2}
    for _ in range(10):
        response = await client.get(url, params=params, headers=shop.auth)
        assert response.status_code == 200, response.text
        page = response.json()
        sizes.append(len(page["items"]))
        seen += [item["id"] for item in page["items"]]
        orders += [item["order_id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        params = {"limit": 2, "cursor": page["next_cursor"]}
    assert sizes == [2, 2, 1]
    assert len(seen) == len(set(seen)) == 5
    assert sorted(orders) == [1, 2, 3, 4, 5]

    whole = (await client.get(url, params={"limit": 5}, headers=shop.auth)).json()
    assert [item["id"] for item in whole["items"]] == seen
    assert whole["next_cursor"] is None


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    ["garbage", "!!!", _b64("id:abc"), _b64("offset:2"), _b64("id:")],
)
async def test_garbage_cursor_is_422(client: httpx.AsyncClient, cursor: str) -> None:
    shop = await create_shop(client)
    await _five_requests(client, shop)
    response = await client.get(
        f"/api/v1/shops/{shop.id}/review-requests",
        params={"cursor": cursor, "limit": 2},
        headers=shop.auth,
    )
    assert_validation_problem(response, ["query", "cursor"], source="query")


async def test_rotation_endpoints_take_an_empty_body(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    key = await client.post(f"/api/v1/shops/{shop.id}/api-keys/rotate", headers=shop.auth)
    assert key.status_code == 200, key.text
    new_auth = {"Authorization": f"Bearer {key.json()['api_key']}"}
    secret = await client.post(f"/api/v1/shops/{shop.id}/webhook-secrets/rotate", headers=new_auth)
    assert secret.status_code == 200, secret.text
    assert secret.json()["webhook_secret"].startswith("whsec_")
