"""The inbox: accepted events are committed with their effect; repeats are no-ops."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.orders.models import Order
from app.requests.models import Delivery, ReviewRequest
from app.webhooks.models import WebhookEvent
from tests.factories import create_shop, order_event, post_event, signed

PARIS = ZoneInfo("Europe/Paris")  # the factory shop's zone


async def test_delivered_order_schedules_a_request_at_delivery_plus_delay(
    client: httpx.AsyncClient,
) -> None:
    shop = await create_shop(client)
    delivered_at = datetime(2026, 11, 20, 9, 15, tzinfo=UTC)
    response = await post_event(client, shop, order_event(1042, 5531, 5, delivered_at))
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "accepted"

    page = (await client.get(f"/api/v1/shops/{shop.id}/review-requests", headers=shop.auth)).json()
    [item] = page["items"]
    assert item["order_id"] == 1042
    assert item["status"] == "scheduled"
    assert item["email"] == "Marie.Dupont@Example.fr"
    assert item["language"] == "fr"
    # P2D is two calendar days in Europe/Paris: same wall-clock time.
    assert datetime.fromisoformat(item["due_at"]) == delivered_at + timedelta(days=2)
    assert page["next_cursor"] is None


async def test_same_webhook_id_is_a_duplicate(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    shop = await create_shop(client)
    payload = order_event(1, 10, 5)
    first = await post_event(client, shop, payload, msg_id="msg_same")
    again = await post_event(client, shop, payload, msg_id="msg_same")
    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate", "event_id": first.json()["event_id"]}
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(WebhookEvent)) == 1
        assert await conn.scalar(select(func.count()).select_from(ReviewRequest)) == 1


async def test_same_history_id_with_new_webhook_id_changes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    shop = await create_shop(client)
    await post_event(client, shop, order_event(1, 10, 5))
    repeat = await post_event(client, shop, order_event(1, 10, 5))
    assert repeat.status_code == 202
    events = (
        await client.get(f"/api/v1/shops/{shop.id}/events?order_id=1", headers=shop.auth)
    ).json()
    assert [e["outcome"] for e in events["items"]] == ["duplicate_history", "scheduled"]
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(ReviewRequest)) == 1
        assert await conn.scalar(select(func.count()).select_from(Delivery)) == 1


async def test_older_event_is_recorded_but_never_overrides(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    shop = await create_shop(client)
    await post_event(client, shop, order_event(7, 20, 5))  # Delivered, newer
    late = await post_event(client, shop, order_event(7, 19, 4))  # Shipped, older, late
    assert late.status_code == 202
    async with engine.connect() as conn:
        state = await conn.scalar(select(Order.state_id).where(Order.order_id == 7))
    assert state == 5
    events = (await client.get(f"/api/v1/shops/{shop.id}/events", headers=shop.auth)).json()
    assert events["items"][0]["outcome"] == "ignored_older"


async def test_cancel_state_cancels_the_pending_request_with_its_reason(
    client: httpx.AsyncClient,
) -> None:
    shop = await create_shop(client)
    for order_id, state, reason in (
        (1, 6, "order_cancelled"),
        (2, 7, "order_refunded"),
        (3, 8, "payment_error"),
    ):
        await post_event(client, shop, order_event(order_id, 100, 5))
        await post_event(client, shop, order_event(order_id, 101, state))
        items = (
            await client.get(
                f"/api/v1/shops/{shop.id}/review-requests?order_id={order_id}", headers=shop.auth
            )
        ).json()["items"]
        assert [(i["status"], i["reason"]) for i in items] == [("cancelled", reason)]


async def test_trigger_again_after_cancel_creates_a_fresh_request(
    client: httpx.AsyncClient,
) -> None:
    shop = await create_shop(client)
    await post_event(client, shop, order_event(5, 1, 5))
    await post_event(client, shop, order_event(5, 2, 6))
    later = datetime.now(UTC) + timedelta(hours=1)
    await post_event(client, shop, order_event(5, 3, 5, later))
    await post_event(client, shop, order_event(5, 4, 5, later))  # duplicate trigger: no-op
    items = (
        await client.get(f"/api/v1/shops/{shop.id}/review-requests?order_id=5", headers=shop.auth)
    ).json()["items"]
    assert [i["status"] for i in items] == ["scheduled", "cancelled"]
    # The fresh request counts from the new trigger: P2D, calendar days in Europe/Paris.
    wall = later.astimezone(PARIS).replace(tzinfo=None) + timedelta(days=2)
    assert datetime.fromisoformat(items[0]["due_at"]) == wall.replace(tzinfo=PARIS)


async def test_unknown_type_is_recorded_and_ignored(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    response = await post_event(client, shop, {"type": "cart.abandoned", "data": {}})
    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    events = (await client.get(f"/api/v1/shops/{shop.id}/events", headers=shop.auth)).json()
    assert events["items"][0]["outcome"] == "ignored_type"


async def test_ping_answers_pong(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    response = await post_event(client, shop, {"type": "ping"})
    assert response.status_code == 200
    assert response.json() == {"status": "pong"}


async def test_order_states_catalogue_is_replaced(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    states = [
        {
            "id": 5,
            "names": {"fr": "Livré", "en": "Delivered"},
            "paid": True,
            "shipped": True,
            "delivery": True,
            "logable": True,
        }
    ]
    await post_event(client, shop, {"type": "shop.order_states", "data": {"states": states * 1}})
    states2 = [
        {
            "id": 42,
            "names": {"fr": "Remis au client"},
            "paid": True,
            "shipped": True,
            "delivery": True,
            "logable": True,
        }
    ]
    response = await post_event(
        client, shop, {"type": "shop.order_states", "data": {"states": states2}}
    )
    assert response.status_code == 202
    catalogue = (
        await client.get(f"/api/v1/shops/{shop.id}/order-states", headers=shop.auth)
    ).json()
    assert [(s["state_id"], s["names"]) for s in catalogue] == [(42, {"fr": "Remis au client"})]


async def test_svix_header_spellings_are_accepted(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    body, headers = signed(shop.webhook_secret, order_event(1, 1, 5))
    svix = {k.replace("webhook-", "svix-"): v for k, v in headers.items()}
    response = await client.post(f"/webhooks/prestashop/{shop.id}", content=body, headers=svix)
    assert response.status_code == 202, response.text
