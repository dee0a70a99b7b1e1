"""Thin events: the ps_webhooks module's unsigned `{"action", "entity", "data"}` posts, accepted
on a path holding the shop's token, completed through the Webservice and applied like a
webhook."""

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.prestashop_ws.conftest import connected_shop
from tests.prestashop_ws.standin import KEY, URL, Shop
from tests.prestashop_ws.test_backfill import local
from tests.problems import assert_problem, assert_validation_problem


async def token_of(api: httpx.AsyncClient, shop_id: str, auth: dict[str, str]) -> str:
    put = await api.put(
        f"/api/v1/shops/{shop_id}/prestashop-webservice",
        json={"url": URL, "key": KEY, "thin_events": True},
        headers=auth,
    )
    assert put.status_code == 200, put.text
    token: str = put.json()["thin_events_token"]
    return token


def history_added(order_id: int, state_id: int) -> dict[str, object]:
    """What ps_webhooks posts for a new OrderHistory: the object's fields (strings)."""
    return {
        "action": "add",
        "entity": "OrderHistory",
        "data": {"id": 900, "id_order": str(order_id), "id_order_state": str(state_id),
                 "id_employee": "0", "date_add": local(0)},
    }  # fmt: skip


async def test_a_thin_event_is_completed_and_schedules_a_request(
    api: httpx.AsyncClient, ps: Shop, engine: AsyncEngine
) -> None:
    ps.customer(7, "marie@example.fr")
    ps.order(101, 7, [(1, 2, local(3)), (2, 5, local(0.01))], local(0.01))
    shop = await connected_shop(api)
    token = await token_of(api, shop.id, shop.auth)

    answer = await api.post(f"/prestashop/thin-events/{token}", json=history_added(101, 5))
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"status": "scheduled", "order_id": 101}
    [request] = (
        await api.get(f"/api/v1/shops/{shop.id}/review-requests", headers=shop.auth)
    ).json()["items"]
    assert (request["order_id"], request["email"]) == (101, "marie@example.fr")
    # The same event again, or the real signed webhook of that history row: nothing new.
    again = await api.post(f"/prestashop/thin-events/{token}", json=history_added(101, 5))
    assert again.json()["status"] == "up_to_date"


async def test_other_objects_are_ignored_and_bad_posts_refused(
    api: httpx.AsyncClient, ps: Shop
) -> None:
    shop = await connected_shop(api)
    token = await token_of(api, shop.id, shop.auth)
    path = f"/prestashop/thin-events/{token}"
    product = {"action": "update", "entity": "Product", "data": {"id": 3}}
    assert (await api.post(path, json=product)).json() == {"status": "ignored", "order_id": None}
    missing = await api.post(path, json=history_added(999, 5))
    assert missing.json()["status"] == "not_found"
    assert_validation_problem(await api.post(path, json={"entity": "Order"}), ["body", "action"])
    assert_problem(await api.post(path, content=b"x" * 300_000), 413)


async def test_an_unknown_token_or_thin_events_off_is_404(api: httpx.AsyncClient, ps: Shop) -> None:
    shop = await connected_shop(api)
    assert_problem(await api.post("/prestashop/thin-events/pst_nope", json={}), 404)
    token = await token_of(api, shop.id, shop.auth)
    off = await api.put(
        f"/api/v1/shops/{shop.id}/prestashop-webservice",
        json={"url": URL, "key": KEY, "thin_events": False},
        headers=shop.auth,
    )
    assert off.status_code == 200
    answer = await api.post(f"/prestashop/thin-events/{token}", json=history_added(1, 5))
    assert_problem(answer, 404)
    assert token not in answer.text
