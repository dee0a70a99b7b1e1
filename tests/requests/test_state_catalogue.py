"""The shop's catalogue of order states in use: ids checked against it, triggers by name."""

from typing import Any

import httpx

from tests.factories import ShopInfo, create_shop, order_event, post_event
from tests.problems import assert_validation_problem

CATALOGUE = [
    {"id": 4, "names": {"fr": "Expédié", "en": "Shipped"}, "paid": True, "shipped": True},
    {"id": 5, "names": {"fr": "Livré", "en": "Delivered"}, "paid": True, "shipped": True},
    {"id": 6, "names": {"fr": "Annulé", "en": "Canceled"}},
    # The merchant re-created "Delivered" as a new state, 31.
    {"id": 31, "names": {"fr": "Livré (nouveau)", "en": "Delivered (new)"}, "paid": True,
     "shipped": True, "delivery": True},
]  # fmt: skip


async def with_catalogue(client: httpx.AsyncClient) -> ShopInfo:
    shop = await create_shop(client)
    event = {"type": "shop.order_states", "data": {"states": CATALOGUE}}
    assert (await post_event(client, shop, event)).status_code == 202
    return shop


async def patch(client: httpx.AsyncClient, shop: ShopInfo, **changes: Any) -> httpx.Response:
    return await client.patch(f"/api/v1/shops/{shop.id}/settings", json=changes, headers=shop.auth)


async def test_state_ids_must_be_in_the_catalogue_once_known(client: httpx.AsyncClient) -> None:
    shop = await with_catalogue(client)
    refused = await patch(client, shop, trigger_state_ids=[5, 99], cancel_state_ids=[6, 98])
    assert_validation_problem(refused, ["body", "trigger_state_ids", 1])
    assert_validation_problem(refused, ["body", "cancel_state_ids", 1])
    assert (await patch(client, shop, trigger_state_ids=[5, 31])).status_code == 200
    # An unrelated change is not refused for ids set before the catalogue changed.
    assert (await patch(client, shop, delay="P3D")).status_code == 200


async def test_without_a_catalogue_ids_are_taken_on_trust(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    assert (await patch(client, shop, trigger_state_ids=[77])).status_code == 200


async def test_a_trigger_by_name_matches_any_language_of_the_catalogue(
    client: httpx.AsyncClient,
) -> None:
    shop = await with_catalogue(client)
    assert (await patch(client, shop, trigger_state_names=["delivered (NEW)"])).status_code == 200
    event = order_event(1, 1, 31)
    event["data"]["new_state"]["name"] = "Livré (nouveau)"  # the event says it in French
    assert (await post_event(client, shop, event)).status_code == 202
    other = order_event(2, 1, 4)  # Shipped: no trigger
    assert (await post_event(client, shop, other)).status_code == 202
    items = (
        await client.get(f"/api/v1/shops/{shop.id}/review-requests", headers=shop.auth)
    ).json()["items"]
    assert [i["order_id"] for i in items] == [1]
    states = (await client.get(f"/api/v1/shops/{shop.id}/order-states", headers=shop.auth)).json()
    assert {s["state_id"]: s["used_as"] for s in states} == {
        4: None, 5: "trigger", 6: "cancel", 31: "trigger"
    }  # fmt: skip


async def test_a_trigger_by_the_event_s_own_name_without_a_catalogue(
    client: httpx.AsyncClient,
) -> None:
    shop = await create_shop(client, trigger_state_names=["Livré"])
    event = order_event(1, 1, 40)
    event["data"]["new_state"].update(name=" LIVRÉ ", paid=True)
    assert (await post_event(client, shop, event)).status_code == 202
    items = (
        await client.get(f"/api/v1/shops/{shop.id}/review-requests", headers=shop.auth)
    ).json()["items"]
    assert [(i["order_id"], i["status"]) for i in items] == [(1, "scheduled")]
