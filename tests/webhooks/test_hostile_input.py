"""Hostile webhook bodies a probe sent: each gets a 422 naming its field, and nothing is written.

Before the hardening each of these answered a 500 `text/plain` (or overflowed later).
"""

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.security import webhook_secret_bytes
from app.webhooks.signature import sign
from tests.factories import create_shop, order_event, signed
from tests.problems import assert_problem, assert_validation_problem
from tests.webhooks.test_bad_input import NOTHING, url, written

Payload = dict[str, Any]

BIG = 2**63  # one past the largest signed 64-bit integer


def _set(path: str, value: Any) -> Callable[[Payload], Payload]:
    def mutate(payload: Payload) -> Payload:
        node = payload
        *parents, leaf = path.split(".")
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[leaf] = value
        return payload

    return mutate


CASES = {
    "order id beyond 64 bits": (_set("data.order.id", BIG), ["body", "data", "order", "id"]),
    "history id beyond 64 bits": (
        _set("data.history.id", BIG),
        ["body", "data", "history", "id"],
    ),
    "customer id beyond 64 bits": (
        _set("data.customer.id", -BIG - 1),
        ["body", "data", "customer", "id"],
    ),
    "state id beyond 32 bits": (
        _set("data.new_state.id", 2**31),
        ["body", "data", "new_state", "id"],
    ),
    "product id beyond 64 bits": (
        lambda p: (p["data"]["products"][0].update(id=BIG), p)[1],
        ["body", "data", "products", 0, "id"],
    ),
    "history date near year 9999": (
        _set("data.history.date_add", "9999-12-31T23:59:59+00:00"),
        ["body", "data", "history", "date_add"],
    ),
    "history date near year 1": (
        _set("data.history.date_add", "0001-01-01T00:00:00+00:00"),
        ["body", "data", "history", "date_add"],
    ),
    "naive history date near year 1": (
        _set("data.history.date_add", "0001-01-01T00:30:00"),
        ["body", "data", "history", "date_add"],
    ),
    "order date near year 9999": (
        _set("data.order.date_add", "9999-12-31T23:00:00-10:00"),
        ["body", "data", "order", "date_add"],
    ),
    "NUL in the first name": (
        _set("data.customer.firstname", "Ma\x00rie"),
        ["body", "data", "customer", "firstname"],
    ),
    "NUL in a product name": (
        lambda p: (p["data"]["products"][0].update(name="Mug\x00"), p)[1],
        ["body", "data", "products", 0, "name"],
    ),
    "lone surrogate in the reference": (
        _set("data.order.reference", "REF\ud800"),
        ["body", "data", "order", "reference"],
    ),
    "NUL in an unknown field": (_set("data.extra", "\x00"), ["body", "data", "extra"]),
    "comma in the e-mail": (
        _set("data.customer.email", "a,victim@evil.example"),
        ["body", "data", "customer", "email"],
    ),
    "two addresses": (
        _set("data.customer.email", "a@b.fr victim@evil.example"),
        ["body", "data", "customer", "email"],
    ),
    "e-mail over 254 characters": (
        _set("data.customer.email", "a" * 64 + "@" + "b" * 190 + ".fr"),
        ["body", "data", "customer", "email"],
    ),
    "e-mail with a newline inside": (
        _set("data.customer.email", "marie@exa\nmple.fr"),
        ["body", "data", "customer", "email"],
    ),
    "total over 32 characters": (
        _set("data.order.total_paid", "1" * 40 + ".90"),
        ["body", "data", "order", "total_paid"],
    ),
    "total that is not a number": (
        _set("data.order.total_paid", "NaN"),
        ["body", "data", "order", "total_paid"],
    ),
    "infinite total": (
        _set("data.order.total_paid", "Infinity"),
        ["body", "data", "order", "total_paid"],
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
async def test_hostile_field_is_422_naming_it_and_writes_nothing(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    case: tuple[Callable[[Payload], Payload], list[Any]],
) -> None:
    mutate, loc = case
    shop = await create_shop(client)
    payload = mutate(order_event(1042, 5531, 5))
    # ensure_ascii: NUL and lone surrogates travel as JSON escapes, as a sender would write them.
    body, headers = signed(shop.webhook_secret, json.dumps(payload).encode())
    response = await client.post(url(shop.id), content=body, headers=headers)
    assert_validation_problem(response, loc)
    assert await written(engine) == NOTHING


@pytest.mark.parametrize(
    "encoding", ["utf-16", "utf-16-le", "utf-32", "latin-1"], ids=lambda e: str(e)
)
async def test_body_that_is_not_utf8_is_422(
    client: httpx.AsyncClient, engine: AsyncEngine, encoding: str
) -> None:
    shop = await create_shop(client)
    text = json.dumps(order_event(1042, 5531, 5, firstname="Zoé"), ensure_ascii=False)
    body = text.encode(encoding)
    _, headers = signed(shop.webhook_secret, b"{}")
    key = webhook_secret_bytes(shop.webhook_secret)
    headers["webhook-signature"] = sign(
        key, headers["webhook-id"], int(headers["webhook-timestamp"]), body
    )
    response = await client.post(url(shop.id), content=body, headers=headers)
    assert_validation_problem(response, ["body"])
    assert await written(engine) == NOTHING


@pytest.mark.parametrize("depth", [2_000, 100_000])
async def test_deeply_nested_json_is_422(
    client: httpx.AsyncClient, engine: AsyncEngine, depth: int
) -> None:
    shop = await create_shop(client)
    nested = b'{"type": "order.status_changed", "data": ' + b"[" * depth + b"]" * depth + b"}"
    body, headers = signed(shop.webhook_secret, nested)
    response = await client.post(url(shop.id), content=body, headers=headers)
    assert_validation_problem(response, ["body"])
    assert await written(engine) == NOTHING


async def test_deep_nesting_with_an_escaped_nul_is_422(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    # Under the JSON parser's limit, but deep enough to matter for a recursive walk.
    shop = await create_shop(client)
    depth = 900
    nested = b'{"type": "x", "data": ' + b"[" * depth + b'"\\u0000"' + b"]" * depth + b"}"
    body, headers = signed(shop.webhook_secret, nested)
    response = await client.post(url(shop.id), content=body, headers=headers)
    assert_validation_problem(response)
    assert await written(engine) == NOTHING


async def test_emoji_escaped_as_a_surrogate_pair_is_accepted(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    payload = order_event(1042, 5531, 5, firstname="Marie \U0001f600")
    body, headers = signed(shop.webhook_secret, json.dumps(payload).encode())
    assert b"\\ud83d\\ude00" in body
    response = await client.post(url(shop.id), content=body, headers=headers)
    assert response.status_code == 202, response.text


async def test_internationalised_address_is_accepted(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    payload = order_event(1042, 5531, 5, email="mårie@exämple.fr")
    body, headers = signed(shop.webhook_secret, payload)
    response = await client.post(url(shop.id), content=body, headers=headers)
    assert response.status_code == 202, response.text


@pytest.mark.parametrize("shop_id", ["shp_" + "a" * 500, "shp_a%00b", "../../etc", "shp_ü"])
async def test_malformed_shop_id_is_404(
    client: httpx.AsyncClient, engine: AsyncEngine, shop_id: str
) -> None:
    shop = await create_shop(client)
    body, headers = signed(shop.webhook_secret, order_event(1, 1, 5))
    response = await client.post(url(shop_id), content=body, headers=headers)
    assert_problem(response, 404)
    read = await client.get(f"/api/v1/shops/{shop_id}/settings", headers=shop.auth)
    assert_problem(read, 404)
    assert await written(engine) == NOTHING
