"""Outgoing webhooks hold what they tell (the customer's address, a comment): the personal-data
export lists them, erasing the address removes them, delivered or not, and the finished ones
are purged after RELANCE_EVENT_RETENTION."""

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.dispatch.jobs import Dispatcher
from app.hooks.jobs import purge
from app.hooks.models import HookDelivery
from tests.factories import order_event, post_event
from tests.hooks.test_delivery import Setup, hook_receiver, now, setup

__all__ = ["hook_receiver", "setup"]  # the fixtures this module uses


async def hook_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(HookDelivery)) or 0)


async def test_export_lists_and_erase_removes_the_addresss_outgoing_webhooks(
    setup: Setup, engine: AsyncEngine
) -> None:
    client, shop = setup.client, setup.shop
    for order_id, email in ((1, "marie@example.fr"), (2, "paul@example.fr")):
        event = order_event(order_id, 1, 5, email=email)
        assert (await post_event(client, shop, event)).is_success
    assert (await Dispatcher(engine, setup.settings).tick(now=now() + timedelta(days=3))).sent == 2
    assert await hook_rows(engine) == 2  # review_request.sent, one per customer

    url = f"/api/v1/shops/{shop.id}/personal-data"
    exported = await client.get(url, params={"email": "Marie@Example.fr"}, headers=shop.auth)
    assert exported.status_code == 200, exported.text
    [told] = exported.json()["outgoing_webhooks"]
    assert told["event_type"] == "review_request.sent"
    assert told["body"]["data"]["email"] == "marie@example.fr"

    erased = await client.delete(url, params={"email": "marie@example.fr"}, headers=shop.auth)
    assert erased.status_code == 200, erased.text
    assert erased.json()["erased"]["outgoing_webhooks"] == 1
    assert await hook_rows(engine) == 1  # Paul's stays
    again = await client.get(url, params={"email": "paul@example.fr"}, headers=shop.auth)
    assert [t["body"]["data"]["email"] for t in again.json()["outgoing_webhooks"]] == [
        "paul@example.fr"
    ]


async def test_finished_deliveries_are_purged_after_the_retention(
    setup: Setup, engine: AsyncEngine
) -> None:
    client, shop = setup.client, setup.shop
    for order_id in (1, 2):
        event = order_event(order_id, 1, 5, email=f"c{order_id}@example.fr")
        assert (await post_event(client, shop, event)).is_success
    sent_at = now() + timedelta(days=3)
    assert (await Dispatcher(engine, setup.settings).tick(now=sent_at)).sent == 2
    assert (await setup.sender.tick(now=sent_at)).delivered == 2
    # A third, still waiting for its turn, is kept whatever its age.
    await setup.cancel_order(3)
    assert await hook_rows(engine) == 3
    assert await purge(engine, "P90D", sent_at + timedelta(days=89)) == 0
    assert await purge(engine, "P90D", sent_at + timedelta(days=91)) == 2
    assert await hook_rows(engine) == 1
