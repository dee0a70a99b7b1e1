"""Changing a shop's timing settings moves what is not sent yet; what was sent stays."""

from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.requests.models import Delivery
from tests.dispatch.test_dispatch import LATER, at, dispatcher
from tests.factories import ShopInfo, create_shop, order_event, post_event
from tests.smtp_sink import smtp_sink


async def patch(client: httpx.AsyncClient, shop: ShopInfo, **changes: Any) -> None:
    response = await client.patch(
        f"/api/v1/shops/{shop.id}/settings", json=changes, headers=shop.auth
    )
    assert response.status_code == 200, response.text


async def deliveries(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(
                Delivery.request_id,
                Delivery.seq,
                Delivery.status,
                Delivery.reason,
                Delivery.due_at,
                Delivery.sent_at,
                Delivery.updated_at,
            ).order_by(Delivery.request_id, Delivery.seq)
        )
        return list(rows)


async def requests_of(client: httpx.AsyncClient, shop: ShopInfo) -> dict[int, Any]:
    items = (
        await client.get(f"/api/v1/shops/{shop.id}/review-requests", headers=shop.auth)
    ).json()["items"]
    return {i["order_id"]: i for i in items}


async def test_a_new_delay_moves_what_is_not_sent(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    shop = await create_shop(client, delay="P2D")
    delivered = at(-timedelta(days=3))
    assert (await post_event(client, shop, order_event(1, 1, 5, delivered))).status_code == 202
    with smtp_sink() as (_, port):  # order 1 is due, and sent
        assert (await dispatcher(engine, settings, port).tick(now=at(timedelta()))).sent == 1
    assert (
        await post_event(client, shop, order_event(2, 1, 5, at(timedelta())))
    ).status_code == 202
    before = await requests_of(client, shop)

    await patch(client, shop, delay="P5D")
    after = await requests_of(client, shop)
    assert after[1] == before[1]  # sent: untouched
    trigger = datetime.fromisoformat(after[2]["trigger_at"])
    assert datetime.fromisoformat(after[2]["due_at"]) == trigger + timedelta(days=5)
    [_, second] = await deliveries(engine)
    assert second.due_at == trigger + timedelta(days=5)


async def test_reminders_follow_the_new_settings_or_are_cancelled(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    shop = await create_shop(client, reminders=["P3D"])
    assert (await post_event(client, shop, order_event(1, 1, 5))).status_code == 202
    with smtp_sink() as (_, port):
        assert (await dispatcher(engine, settings, port).tick(now=at(LATER))).sent == 1
    [first, reminder] = await deliveries(engine)
    assert first.sent_at is not None and reminder.status == "scheduled"

    await patch(client, shop, reminders=["P7D"])
    [_, reminder] = await deliveries(engine)
    # Days are calendar days in the shop's zone: compare the wall clock there.
    assert (reminder.due_at - first.sent_at) in (
        timedelta(days=7),
        timedelta(days=7, hours=1),
        timedelta(days=7, hours=-1),
    )

    await patch(client, shop, reminders=[])
    [_, reminder] = await deliveries(engine)
    assert (reminder.status, reminder.reason) == ("cancelled", "manual")


async def test_a_change_that_is_not_about_time_moves_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    shop = await create_shop(client)
    assert (await post_event(client, shop, order_event(1, 1, 5))).status_code == 202
    before = await deliveries(engine)
    await patch(client, shop, from_name="La Poterie")
    assert await deliveries(engine) == before
