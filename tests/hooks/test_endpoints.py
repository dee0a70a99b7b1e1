"""The webhook-endpoints API: registration, the secret shown once, refusals, isolation."""

from typing import Any

import httpx
import pytest

from app.config import Settings
from app.hooks.service import MAX_ENDPOINTS
from tests.factories import ClientFor, ShopInfo, create_shop
from tests.problems import assert_problem, assert_validation_problem

EVENTS = ["review.submitted", "review_request.cancelled"]


def path(shop: ShopInfo, rest: str = "") -> str:
    return f"/api/v1/shops/{shop.id}/webhook-endpoints{rest}"


async def allowing(client_for: ClientFor, settings: Settings) -> httpx.AsyncClient:
    return await client_for(settings.model_copy(update={"webhook_allow_private": True}))


async def register(
    client: httpx.AsyncClient, shop: ShopInfo, url: str = "http://127.0.0.1:9/hook", **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        path(shop), json={"url": url, "events": EVENTS, **extra}, headers=shop.auth
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_the_secret_is_shown_once_and_never_again(
    client_for: ClientFor, settings: Settings
) -> None:
    client = await allowing(client_for, settings)
    shop = await create_shop(client)
    created = await register(client, shop)
    assert created["secret"].startswith("whsec_")
    assert created["id"].startswith("we_")
    assert created["events"] == EVENTS
    assert created["enabled"] is True
    assert (created["disabled_at"], created["disabled_reason"], created["failing_since"]) == (
        None,
        None,
        None,
    )
    one = await client.get(path(shop, f"/{created['id']}"), headers=shop.auth)
    listed = await client.get(path(shop), headers=shop.auth)
    assert one.status_code == listed.status_code == 200
    assert "secret" not in one.json()
    assert [set(i) for i in listed.json()["items"]] == [set(one.json())]
    assert created["secret"] not in one.text + listed.text


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"url": "ftp://example.com/x", "events": EVENTS}, ["body", "url"]),
        ({"url": "https://user:pw@example.com/x", "events": EVENTS}, ["body", "url"]),
        ({"url": "https://" + "a" * 2050 + ".com", "events": EVENTS}, ["body", "url"]),
        ({"url": "https://shop.example/x", "events": ["review.deleted"]}, ["body", "events", 0]),
        ({"url": "https://shop.example/x", "events": []}, ["body", "events"]),
        ({"url": "https://shop.example/x", "events": EVENTS * 2}, ["body", "events"]),
        ({"events": EVENTS}, ["body", "url"]),
    ],
)
async def test_bad_input_is_a_problem_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], loc: list[Any]
) -> None:
    shop = await create_shop(client)
    response = await client.post(path(shop), json=body, headers=shop.auth)
    assert_validation_problem(response, loc)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",  # a name that resolves to loopback
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",  # link-local: cloud metadata
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
    ],
)
async def test_private_addresses_are_refused_unless_allowed(
    client: httpx.AsyncClient, client_for: ClientFor, settings: Settings, url: str
) -> None:
    shop = await create_shop(client)
    refused = await client.post(path(shop), json={"url": url, "events": EVENTS}, headers=shop.auth)
    [error] = assert_validation_problem(refused, ["body", "url"])
    assert "address" in error["msg"]
    allowed = await allowing(client_for, settings)
    if "0.0.0.0" not in url and "169.254" not in url:  # never meant, but allowed all the same
        await register(allowed, shop, url)


async def test_a_host_that_does_not_resolve_is_refused(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    response = await client.post(
        path(shop), json={"url": "https://no-such-host.invalid/x", "events": EVENTS},
        headers=shop.auth,
    )  # fmt: skip
    [error] = assert_validation_problem(response, ["body", "url"])
    assert "does not resolve" in error["msg"]


async def test_another_shops_key_gets_404(client_for: ClientFor, settings: Settings) -> None:
    client = await allowing(client_for, settings)
    shop, other = await create_shop(client), await create_shop(client, name="Autre")
    endpoint = await register(client, shop)
    foreign = {"Authorization": f"Bearer {other.api_key}"}
    for method, rest in [
        ("GET", ""), ("GET", f"/{endpoint['id']}"), ("PATCH", f"/{endpoint['id']}"),
        ("DELETE", f"/{endpoint['id']}"), ("GET", f"/{endpoint['id']}/deliveries"),
        ("POST", f"/{endpoint['id']}/rotate-secret"),
    ]:  # fmt: skip
        response = await client.request(method, path(shop, rest), headers=foreign, json={})
        assert_problem(response, 404)
    # Its own path, another shop's endpoint id: 404 too.
    for method in ("GET", "DELETE"):
        response = await client.request(method, path(other, f"/{endpoint['id']}"), headers=foreign)
        assert_problem(response, 404)
    assert (await client.get(path(shop, f"/{endpoint['id']}"), headers=shop.auth)).is_success


async def test_patch_changes_url_and_events_and_toggles_the_endpoint(
    client_for: ClientFor, settings: Settings
) -> None:
    client = await allowing(client_for, settings)
    shop = await create_shop(client)
    endpoint = await register(client, shop)
    one = path(shop, f"/{endpoint['id']}")
    changed = await client.patch(
        one, json={"url": "http://127.0.0.1:10/other", "events": ["review.published"]},
        headers=shop.auth,
    )  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert (changed.json()["url"], changed.json()["events"]) == (
        "http://127.0.0.1:10/other",
        ["review.published"],
    )
    off = (await client.patch(one, json={"enabled": False}, headers=shop.auth)).json()
    assert (off["enabled"], off["disabled_reason"]) == (False, "manual")
    assert off["disabled_at"] is not None
    on = (await client.patch(one, json={"enabled": True}, headers=shop.auth)).json()
    assert (on["enabled"], on["disabled_reason"], on["disabled_at"]) == (True, None, None)
    bad = await client.patch(one, json={"events": ["nope"]}, headers=shop.auth)
    assert_validation_problem(bad, ["body", "events", 0])


async def test_patch_rechecks_the_address(client: httpx.AsyncClient, client_for: ClientFor,
                                          settings: Settings) -> None:  # fmt: skip
    shop = await create_shop(client)
    endpoint = await register(await allowing(client_for, settings), shop)
    response = await client.patch(
        path(shop, f"/{endpoint['id']}"), json={"url": "http://127.0.0.2/x"}, headers=shop.auth
    )
    assert_validation_problem(response, ["body", "url"])


async def test_at_most_twenty_endpoints_and_delete(
    client_for: ClientFor, settings: Settings
) -> None:
    client = await allowing(client_for, settings)
    shop = await create_shop(client)
    ids = [(await register(client, shop))["id"] for _ in range(MAX_ENDPOINTS)]
    refused = await client.post(
        path(shop), json={"url": "http://127.0.0.1:9/x", "events": EVENTS}, headers=shop.auth
    )
    assert_problem(refused, 409)
    deleted = await client.delete(path(shop, f"/{ids[0]}"), headers=shop.auth)
    assert deleted.status_code == 204
    assert_problem(await client.get(path(shop, f"/{ids[0]}"), headers=shop.auth), 404)
    await register(client, shop)
