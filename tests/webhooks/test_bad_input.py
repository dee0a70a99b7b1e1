"""Every refusal of the webhook endpoint: its status, its problem+json, and nothing written."""

import base64
import json
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks.webhooks import Webhook

from app.orders.models import Order
from app.requests.models import ReviewRequest
from app.security import new_webhook_secret, webhook_secret_bytes
from app.shops.models import ShopWebhookSecret
from app.webhooks.models import WebhookEvent
from app.webhooks.signature import sign
from tests.factories import ShopInfo, create_shop, order_event, signed
from tests.problems import assert_problem, assert_validation_problem

MIB = 1024 * 1024
NOTHING = {"webhook_events": 0, "orders": 0, "review_requests": 0}

Headers = dict[str, str]
Mutation = Callable[[ShopInfo, dict[str, Any]], tuple[bytes, Headers]]


def url(shop_id: str) -> str:
    return f"/webhooks/prestashop/{shop_id}"


async def written(engine: AsyncEngine) -> dict[str, int]:
    """How many rows the inbox has written, per table."""
    async with engine.connect() as conn:
        return {
            model.__tablename__: await conn.scalar(select(func.count()).select_from(model)) or 0
            for model in (WebhookEvent, Order, ReviewRequest)
        }


def _random_signature() -> str:
    return "v1," + base64.b64encode(secrets.token_bytes(32)).decode()


def _without(header: str) -> Mutation:
    def mutate(shop: ShopInfo, payload: dict[str, Any]) -> tuple[bytes, Headers]:
        body, headers = signed(shop.webhook_secret, payload)
        del headers[header]
        return body, headers

    return mutate


def _with(header: str, value: str) -> Mutation:
    def mutate(shop: ShopInfo, payload: dict[str, Any]) -> tuple[bytes, Headers]:
        body, headers = signed(shop.webhook_secret, payload)
        return body, {**headers, header: value}

    return mutate


def _wrong_secret(shop: ShopInfo, payload: dict[str, Any]) -> tuple[bytes, Headers]:
    return signed(new_webhook_secret(), payload)


def _tampered_body(shop: ShopInfo, payload: dict[str, Any]) -> tuple[bytes, Headers]:
    _, headers = signed(shop.webhook_secret, payload)
    return json.dumps(order_event(1042, 9999, 5)).encode(), headers


def _signed_for_another_id(shop: ShopInfo, payload: dict[str, Any]) -> tuple[bytes, Headers]:
    body, headers = signed(shop.webhook_secret, payload, msg_id="msg_signed")
    return body, {**headers, "webhook-id": "msg_sent"}


def _signed_at(delta: timedelta) -> Mutation:
    def mutate(shop: ShopInfo, payload: dict[str, Any]) -> tuple[bytes, Headers]:
        return signed(shop.webhook_secret, payload, timestamp=datetime.now(UTC) + delta)

    return mutate


UNAUTHORIZED: list[Any] = [
    pytest.param(_without("webhook-signature"), id="missing-signature"),
    pytest.param(_with("webhook-signature", ""), id="empty-signature"),
    pytest.param(_with("webhook-signature", _random_signature()), id="bad-signature"),
    pytest.param(_with("webhook-signature", "v1,not base64!"), id="garbage-signature"),
    pytest.param(_wrong_secret, id="wrong-secret"),
    pytest.param(_tampered_body, id="body-not-the-one-signed"),
    pytest.param(_signed_for_another_id, id="webhook-id-not-the-one-signed"),
    pytest.param(_without("webhook-id"), id="missing-webhook-id"),
    pytest.param(_without("webhook-timestamp"), id="missing-timestamp"),
    pytest.param(_with("webhook-timestamp", "yesterday"), id="timestamp-not-unix-seconds"),
    pytest.param(_signed_at(timedelta(minutes=-6)), id="stale-timestamp"),
    pytest.param(_signed_at(timedelta(minutes=6)), id="future-timestamp"),
]


@pytest.mark.parametrize("mutate", UNAUTHORIZED)
async def test_bad_signature_is_refused_with_401(
    client: httpx.AsyncClient, engine: AsyncEngine, mutate: Mutation
) -> None:
    shop = await create_shop(client)
    body, headers = mutate(shop, order_event(1042, 5531, 5))
    response = await client.post(url(shop.id), content=body, headers=headers)
    assert_problem(response, 401)
    assert await written(engine) == NOTHING


@pytest.mark.parametrize("minutes", [-4, 4])
async def test_timestamp_within_five_minutes_is_accepted(
    client: httpx.AsyncClient, engine: AsyncEngine, minutes: int
) -> None:
    shop = await create_shop(client)
    at = datetime.now(UTC) + timedelta(minutes=minutes)
    body, headers = signed(shop.webhook_secret, order_event(1042, 5531, 5), timestamp=at)
    response = await client.post(url(shop.id), content=body, headers=headers)
    assert response.status_code == 202, response.text
    assert (await written(engine))["webhook_events"] == 1


async def test_signature_of_the_reference_package_verifies(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    shop = await create_shop(client)
    body = json.dumps(order_event(1042, 5531, 5)).encode()
    at = datetime.now(UTC)
    signature = Webhook(shop.webhook_secret).sign("msg_reference", at, body.decode())
    headers = {
        "webhook-id": "msg_reference",
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }
    response = await client.post(url(shop.id), content=body, headers=headers)
    assert response.status_code == 202, response.text
    assert await written(engine) == {"webhook_events": 1, "orders": 1, "review_requests": 1}


async def test_one_valid_signature_among_several_is_enough(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    body, headers = signed(shop.webhook_secret, order_event(1042, 5531, 5))
    others = f"v1,{_random_signature()[3:]} v2,whatever"
    headers["webhook-signature"] = f"{others} {headers['webhook-signature']}"
    response = await client.post(url(shop.id), content=body, headers=headers)
    assert response.status_code == 202, response.text


async def test_svix_header_spellings_are_accepted(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    body, headers = signed(shop.webhook_secret, order_event(1042, 5531, 5), msg_id="msg_svix")
    svix = {k.replace("webhook-", "svix-"): v for k, v in headers.items()}
    assert "webhook-signature" not in svix
    response = await client.post(url(shop.id), content=body, headers=svix)
    assert response.status_code == 202, response.text
    events = await client.get(f"/api/v1/shops/{shop.id}/events", headers=shop.auth)
    assert [e["webhook_id"] for e in events.json()["items"]] == ["msg_svix"]


async def test_bad_svix_signature_is_refused(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    shop = await create_shop(client)
    body, headers = signed(new_webhook_secret(), order_event(1042, 5531, 5))
    svix = {k.replace("webhook-", "svix-"): v for k, v in headers.items()}
    response = await client.post(url(shop.id), content=body, headers=svix)
    assert_problem(response, 401)
    assert await written(engine) == NOTHING


async def test_unknown_shop_is_404(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    shop = await create_shop(client)
    body, headers = signed(shop.webhook_secret, order_event(1042, 5531, 5))
    response = await client.post(url("shp_doesnotexist"), content=body, headers=headers)
    assert_problem(response, 404)
    assert await written(engine) == NOTHING


def _padded(size: int) -> bytes:
    """A well-formed order event of exactly `size` bytes (the module may send extra fields)."""
    payload = order_event(1042, 5531, 5)
    payload["padding"] = ""
    base = len(json.dumps(payload).encode())
    payload["padding"] = "x" * (size - base)
    body = json.dumps(payload).encode()
    assert len(body) == size
    return body


async def _chunks(body: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def test_body_of_exactly_one_mib_is_accepted(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    shop = await create_shop(client)
    body, headers = signed(shop.webhook_secret, _padded(MIB))
    response = await client.post(url(shop.id), content=body, headers=headers)
    assert response.status_code == 202, response.text
    assert (await written(engine))["webhook_events"] == 1


async def test_body_over_one_mib_with_content_length_is_413(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    shop = await create_shop(client)
    body, headers = signed(shop.webhook_secret, _padded(MIB + 1))
    request = client.build_request("POST", url(shop.id), content=body, headers=headers)
    assert request.headers["content-length"] == str(MIB + 1)
    response = await client.send(request)
    assert_problem(response, 413)
    assert await written(engine) == NOTHING


async def test_streamed_body_over_one_mib_without_content_length_is_413(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    shop = await create_shop(client)
    body, headers = signed(shop.webhook_secret, _padded(MIB + 1))
    request = client.build_request("POST", url(shop.id), content=_chunks(body), headers=headers)
    assert "content-length" not in request.headers
    response = await client.send(request)
    assert_problem(response, 413)
    assert await written(engine) == NOTHING


async def test_body_over_one_mib_with_a_lying_content_length_is_413(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    shop = await create_shop(client)
    body, headers = signed(shop.webhook_secret, _padded(MIB + 1))
    headers["content-length"] = "100"
    request = client.build_request("POST", url(shop.id), content=_chunks(body), headers=headers)
    response = await client.send(request)
    assert_problem(response, 413)
    assert await written(engine) == NOTHING


async def test_streamed_body_under_one_mib_is_accepted(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    shop = await create_shop(client)
    body, headers = signed(shop.webhook_secret, _padded(MIB - 10))
    request = client.build_request("POST", url(shop.id), content=_chunks(body), headers=headers)
    assert "content-length" not in request.headers
    response = await client.send(request)
    assert response.status_code == 202, response.text
    assert (await written(engine))["webhook_events"] == 1


def _event_with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A valid order event with the field at `path` set to `value` (or removed if ...)."""
    payload = order_event(1042, 5531, 5)
    node = payload
    for key in path[:-1]:
        node = node[key]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return payload


SCHEMA_ERRORS: list[Any] = [
    pytest.param(("data", "history", "id"), ..., id="missing-history-id"),
    pytest.param(("data", "history", "id"), "abc", id="history-id-not-an-int"),
    pytest.param(("data", "order", "id"), "abc", id="order-id-not-an-int"),
    pytest.param(("data", "order", "id"), None, id="order-id-null"),
    pytest.param(("data", "customer", "email"), "not-an-email", id="bad-email"),
    pytest.param(("data", "customer", "email"), ..., id="missing-email"),
    pytest.param(("data", "new_state"), ..., id="missing-new-state"),
    pytest.param(("data", "new_state", "id"), "delivered", id="state-id-not-an-int"),
    pytest.param(("data", "history", "date_add"), "last tuesday", id="bad-date"),
    pytest.param(("data",), ..., id="missing-data"),
    pytest.param(("type",), ..., id="missing-type"),
]


@pytest.mark.parametrize(("path", "value"), SCHEMA_ERRORS)
async def test_schema_error_is_422_naming_the_field(
    client: httpx.AsyncClient, engine: AsyncEngine, path: tuple[str, ...], value: Any
) -> None:
    shop = await create_shop(client)
    body, headers = signed(shop.webhook_secret, _event_with(path, value))
    response = await client.post(url(shop.id), content=body, headers=headers)
    assert_validation_problem(response, ["body", *path])
    assert await written(engine) == NOTHING


async def test_product_error_names_its_index(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    shop = await create_shop(client)
    payload = order_event(1042, 5531, 5)
    payload["data"]["products"][0]["quantity"] = "many"
    body, headers = signed(shop.webhook_secret, payload)
    response = await client.post(url(shop.id), content=body, headers=headers)
    assert_validation_problem(response, ["body", "data", "products", 0, "quantity"])
    assert await written(engine) == NOTHING


MALFORMED: list[Any] = [
    pytest.param(b'{"type": "order.status_changed", "data": ', id="truncated"),
    pytest.param(b"{'type': 'ping'}", id="single-quotes"),
    pytest.param(b"", id="empty"),
    pytest.param(b"\xff\xfe not utf-8", id="not-utf8"),
]


@pytest.mark.parametrize("raw", MALFORMED)
async def test_malformed_json_is_422(
    client: httpx.AsyncClient, engine: AsyncEngine, raw: bytes
) -> None:
    shop = await create_shop(client)
    msg_id, at = "msg_malformed", datetime.now(UTC)
    # Signed by hand: the reference package signs text, and some of these bodies are not.
    signature = sign(webhook_secret_bytes(shop.webhook_secret), msg_id, int(at.timestamp()), raw)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }
    response = await client.post(url(shop.id), content=raw, headers=headers)
    assert_validation_problem(response, ["body"])
    assert await written(engine) == NOTHING


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param([order_event(1042, 5531, 5)], id="array"),
        pytest.param("order.status_changed", id="string"),
        pytest.param(42, id="number"),
        pytest.param(None, id="null"),
    ],
)
async def test_json_that_is_not_an_object_is_422(
    client: httpx.AsyncClient, engine: AsyncEngine, payload: Any
) -> None:
    shop = await create_shop(client)
    body, headers = signed(shop.webhook_secret, json.dumps(payload).encode())
    response = await client.post(url(shop.id), content=body, headers=headers)
    assert_validation_problem(response, ["body", "type"])
    assert await written(engine) == NOTHING


async def _ping(client: httpx.AsyncClient, shop_id: str, secret: str) -> int:
    body, headers = signed(secret, {"type": "ping"})
    return (await client.post(url(shop_id), content=body, headers=headers)).status_code


async def _rotate_secret(client: httpx.AsyncClient, shop: ShopInfo) -> str:
    response = await client.post(
        f"/api/v1/shops/{shop.id}/webhook-secrets/rotate", json={}, headers=shop.auth
    )
    assert response.status_code == 200, response.text
    secret: str = response.json()["webhook_secret"]
    return secret


async def test_secret_rotation_keeps_the_previous_secret_for_a_while(
    client: httpx.AsyncClient,
) -> None:
    shop = await create_shop(client)
    first = shop.webhook_secret
    second = await _rotate_secret(client, shop)
    assert second.startswith("whsec_")
    assert len(base64.b64decode(second.removeprefix("whsec_"))) == 32
    assert second != first
    assert await _ping(client, shop.id, first) == 200
    assert await _ping(client, shop.id, second) == 200

    third = await _rotate_secret(client, shop)
    assert third not in (first, second)
    assert await _ping(client, shop.id, second) == 200
    assert await _ping(client, shop.id, third) == 200
    body, headers = signed(first, order_event(1042, 5531, 5))
    refused = await client.post(url(shop.id), content=body, headers=headers)
    assert_problem(refused, 401)


async def test_secret_rotation_needs_the_shop_key(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    shop = await create_shop(client)
    other = await create_shop(client, name="Autre boutique")
    rotate = f"/api/v1/shops/{shop.id}/webhook-secrets/rotate"
    assert_problem(await client.post(rotate, json={}), 401)
    assert_problem(await client.post(rotate, json={}, headers=other.auth), 404)
    async with engine.connect() as conn:
        secrets_of_shop = await conn.scalar(
            select(func.count())
            .select_from(ShopWebhookSecret)
            .where(ShopWebhookSecret.shop_id == shop.id)
        )
    assert secrets_of_shop == 1
