"""The inbox served ahead of FastAPI (`webhooks/inbox.py`, `main.Relance`): it answers as the
route FastAPI serves it does, byte for byte; every other request is routed by FastAPI; a bug
is a logged 500; a sender that leaves before its body is read gets nothing recorded."""

import json
import logging
from collections.abc import AsyncIterator, MutableMapping
from functools import partial
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.webhooks import batching, inbox
from app.webhooks.models import WebhookEvent
from tests.conftest import BASE_URL
from tests.factories import ShopInfo, create_shop, order_event, signed
from tests.problems import assert_problem

MIB = 1024 * 1024


@pytest.fixture
async def through_fastapi(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the same app as FastAPI alone would serve it: the inbox then goes through
    FastAPI's middleware, routing and the route declared in `webhooks/router.py`."""
    transport = httpx.ASGITransport(app=partial(FastAPI.__call__, app))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as c:
        yield c


def _url(shop_id: str) -> str:
    return f"/webhooks/prestashop/{shop_id}"


async def _events(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(select(func.count()).select_from(WebhookEvent)) or 0


def _requests(shop: ShopInfo, order_id: int) -> dict[str, tuple[str, bytes, dict[str, str]]]:
    """Requests, by name, each refused or answered in its own way: url, body, headers."""
    payload = order_event(order_id=order_id, history_id=order_id * 10, state_id=5)
    body, headers = signed(shop.webhook_secret, payload, f"msg-{order_id}")
    bad_json, bad_json_headers = signed(shop.webhook_secret, b'{"type": "order.status_cha')
    invalid, invalid_headers = signed(shop.webhook_secret, {"type": "order.status_changed"})
    ping, ping_headers = signed(shop.webhook_secret, {"type": "ping"})
    big, big_headers = signed(shop.webhook_secret, b" " * (MIB + 1))
    return {
        "accepted": (_url(shop.id), body, headers),
        "duplicate": (_url(shop.id), body, headers),
        "pong": (_url(shop.id), ping, ping_headers),
        "unknown shop": (_url("shp_nosuchshop"), body, headers),
        "not a shop id": (_url("..%20x"), body, headers),
        "bad signature": (_url(shop.id), body, {**headers, "webhook-signature": "v1,AAAA"}),
        "no signature": (_url(shop.id), body, {"content-type": "application/json"}),
        "not json": (_url(shop.id), bad_json, bad_json_headers),
        "invalid event": (_url(shop.id), invalid, invalid_headers),
        "too large": (_url(shop.id), big, big_headers),
    }


async def test_the_inbox_answers_as_fastapi_would(
    client: httpx.AsyncClient, through_fastapi: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    shop = await create_shop(client)
    ours = _requests(shop, 1)
    theirs = _requests(shop, 2)
    statuses = {}
    for name in ours:
        url, body, headers = ours[name]
        got = await client.post(url, content=body, headers=headers)
        url, body, headers = theirs[name]
        expected = await through_fastapi.post(url, content=body, headers=headers)
        statuses[name] = got.status_code
        assert got.status_code == expected.status_code, (name, got.text, expected.text)
        assert got.headers == expected.headers, name
        if name in ("accepted", "duplicate"):  # their own event ids; the same shape
            assert got.json().keys() == expected.json().keys(), name
            assert got.json()["status"] == expected.json()["status"] == name
        else:
            assert got.content == expected.content, name
        if got.status_code >= 400:
            assert_problem(got, got.status_code)
    assert statuses == {
        "accepted": 202,
        "duplicate": 200,
        "pong": 200,
        "unknown shop": 404,
        "not a shop id": 404,
        "bad signature": 401,
        "no signature": 401,
        "not json": 422,
        "invalid event": 422,
        "too large": 413,
    }
    assert await _events(engine) == 2  # one per accepted webhook, through either path


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/webhooks/prestashop/{shop}"),
        ("PUT", "/webhooks/prestashop/{shop}"),
        ("POST", "/webhooks/prestashop/{shop}/"),
        ("POST", "/webhooks/prestashop/{shop}/extra"),
        ("POST", "/webhooks/prestashop/"),
        ("POST", "/webhooks/prestashop"),
    ],
)
async def test_every_other_request_is_routed_by_fastapi(
    client: httpx.AsyncClient, through_fastapi: httpx.AsyncClient, method: str, path: str
) -> None:
    shop = await create_shop(client)
    body, headers = signed(shop.webhook_secret, order_event(order_id=1, history_id=1, state_id=5))
    url = path.format(shop=shop.id)
    assert inbox.shop_id_of({"type": "http", "method": method, "path": url}) is None
    got = await client.request(method, url, content=body, headers=headers)
    expected = await through_fastapi.request(method, url, content=body, headers=headers)
    assert (got.status_code, got.content) == (expected.status_code, expected.content)
    assert got.status_code in (404, 405, 307), got.text


def test_the_match_is_one_path_segment_after_the_prefix() -> None:
    scope: dict[str, Any] = {"type": "http", "method": "POST", "path": "/webhooks/prestashop/s1"}
    assert inbox.shop_id_of(scope) == "s1"
    behind = {**scope, "root_path": "/relance", "path": "/relance/webhooks/prestashop/s1"}
    assert inbox.shop_id_of(behind) == "s1"
    assert inbox.shop_id_of({**scope, "type": "websocket"}) is None
    assert inbox.shop_id_of({**scope, "type": "lifespan"}) is None


async def _call(
    app: FastAPI, shop_id: str, messages: list[dict[str, Any]], headers: list[Any]
) -> list[MutableMapping[str, Any]]:
    """Call the app as a server would, with these request messages; what it sent back."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": _url(shop_id),
        "raw_path": _url(shop_id).encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    queue = list(messages)
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def _raw_headers(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode(), v.encode()) for k, v in headers.items()]


async def test_a_sender_that_leaves_mid_body_gets_nothing_recorded(
    app: FastAPI, client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    shop = await create_shop(client)
    body, headers = signed(shop.webhook_secret, order_event(order_id=1, history_id=1, state_id=5))
    first_half = {"type": "http.request", "body": body[:50], "more_body": True}
    sent = await _call(app, shop.id, [first_half], _raw_headers(headers))
    assert sent == []
    assert await _events(engine) == 0
    # The whole body in two pieces is read as one.
    rest = {"type": "http.request", "body": body[50:], "more_body": False}
    sent = await _call(app, shop.id, [first_half, rest], _raw_headers(headers))
    assert sent[0]["status"] == 202, sent
    assert json.loads(sent[1]["body"])["status"] == "accepted"
    assert await _events(engine) == 1


@pytest.mark.parametrize("declared", ["1048577", "9" * 5000, "000000000001048577"])
async def test_a_declared_length_over_1_mib_is_refused_before_reading(
    app: FastAPI, client: httpx.AsyncClient, declared: str
) -> None:
    shop = await create_shop(client)
    body, headers = signed(shop.webhook_secret, order_event(order_id=1, history_id=1, state_id=5))
    raw = [*_raw_headers(headers), (b"content-length", declared.encode())]
    sent = await _call(app, shop.id, [{"type": "http.request", "body": body}], raw)
    assert sent[0]["status"] == 413, sent
    assert json.loads(sent[1]["body"])["title"] == "Payload too large"


async def test_a_leading_zero_length_within_the_bound_is_read(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    shop = await create_shop(client)
    body, headers = signed(shop.webhook_secret, order_event(order_id=1, history_id=1, state_id=5))
    raw = [*_raw_headers(headers), (b"content-length", b"000" + str(len(body)).encode())]
    sent = await _call(app, shop.id, [{"type": "http.request", "body": body}], raw)
    assert sent[0]["status"] == 202, sent


class _Broken:
    async def submit(self, arrival: Any) -> Any:
        raise RuntimeError("a bug in the group committer")


async def test_a_bug_is_a_logged_500_problem(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    shop = await create_shop(client)
    body, headers = signed(shop.webhook_secret, order_event(order_id=1, history_id=1, state_id=5))
    monkeypatch.setattr(batching, "committer", lambda *_: _Broken())
    with caplog.at_level(logging.ERROR, logger="relance.errors"):
        response = await client.post(_url(shop.id), content=body, headers=headers)
    body_json = assert_problem(response, 500)
    assert body_json["type"] == "https://relance.dev/problems/internal"
    assert "a bug in the group committer" not in response.text  # no internals to the sender
    [record] = [r for r in caplog.records if r.name == "relance.errors"]
    assert record.exc_info is not None and "a bug in the group committer" in str(record.exc_info[1])
    assert await _events(engine) == 0
