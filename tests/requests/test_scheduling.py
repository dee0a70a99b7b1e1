"""Scheduling rules: send windows, fallback after shipping, outcomes of each event."""

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from tests.factories import ShopInfo, create_shop, order_event, post_event

PARIS = ZoneInfo("Europe/Paris")


async def _requests(client: httpx.AsyncClient, shop: ShopInfo, order_id: int) -> list[Any]:
    response = await client.get(
        f"/api/v1/shops/{shop.id}/review-requests", params={"order_id": order_id}, headers=shop.auth
    )
    items: list[Any] = response.json()["items"]
    return items


async def test_due_time_moves_into_the_send_window(client: httpx.AsyncClient) -> None:
    shop = await create_shop(
        client,
        delay="P2D",
        send_window={
            "weekdays": [1, 2, 3, 4, 5],
            "start": "09:00",
            "end": "18:00",
            "holidays": "FR",
        },
        send_spread=None,  # the opening itself (the spread has its own tests)
    )
    # Delivered Wednesday 23 Dec 2026 at 20:00 Paris: +2 days = Friday 25th (Christmas),
    # then the weekend: Monday 28th at 09:00 Paris.
    delivered = datetime(2026, 12, 23, 20, 0, tzinfo=PARIS)
    await post_event(client, shop, order_event(1, 1, 5, delivered.astimezone(UTC)))
    [item] = await _requests(client, shop, 1)
    assert datetime.fromisoformat(item["due_at"]) == datetime(2026, 12, 28, 9, 0, tzinfo=PARIS)


async def test_fallback_after_shipping_then_the_real_trigger_takes_over(
    client: httpx.AsyncClient,
) -> None:
    shop = await create_shop(client, delay="P2D", fallback_delay="P10D")
    shipped = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    response = await post_event(client, shop, order_event(1, 1, 4, shipped))
    assert response.status_code == 202
    [item] = await _requests(client, shop, 1)
    assert item["source"] == "fallback"
    assert datetime.fromisoformat(item["due_at"]) == datetime(2026, 11, 12, 10, 0, tzinfo=UTC)

    delivered = datetime(2026, 11, 4, 15, 0, tzinfo=UTC)
    await post_event(client, shop, order_event(1, 2, 5, delivered))
    [item] = await _requests(client, shop, 1)
    assert item["source"] == "trigger"
    assert datetime.fromisoformat(item["due_at"]) == datetime(2026, 11, 6, 15, 0, tzinfo=UTC)
    events = (
        await client.get(
            f"/api/v1/shops/{shop.id}/events", params={"order_id": 1}, headers=shop.auth
        )
    ).json()["items"]
    assert [e["outcome"] for e in events] == ["rescheduled", "scheduled_fallback"]


async def test_without_fallback_a_shipped_state_schedules_nothing(
    client: httpx.AsyncClient,
) -> None:
    shop = await create_shop(client)
    await post_event(client, shop, order_event(1, 1, 4))
    assert await _requests(client, shop, 1) == []


async def test_trigger_by_custom_state_and_language_fallbacks(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client, trigger_state_ids=[42], default_language="de")
    await post_event(client, shop, order_event(1, 1, 42, language="nl"))  # no Dutch template
    await post_event(client, shop, order_event(2, 1, 5))  # 5 is not a trigger here
    [item] = await _requests(client, shop, 1)
    assert item["language"] == "de"
    assert await _requests(client, shop, 2) == []


async def test_cancel_without_pending_request_is_recorded(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    await post_event(client, shop, order_event(1, 1, 6))
    events = (await client.get(f"/api/v1/shops/{shop.id}/events", headers=shop.auth)).json()
    assert events["items"][0]["outcome"] == "recorded"
