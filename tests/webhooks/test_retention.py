"""Raw webhook bodies are purged after the retention period; what they caused stays."""

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.orders.models import Order
from app.webhooks.jobs import purge_payloads
from app.webhooks.models import WebhookEvent
from tests.factories import create_shop, order_event, post_event


async def test_old_bodies_are_emptied_and_the_facts_stay(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    shop = await create_shop(client)
    for order_id in (1, 2, 3):
        assert (await post_event(client, shop, order_event(order_id, 1, 5))).status_code == 202
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(
            update(WebhookEvent)
            .where(WebhookEvent.order_id.in_([1, 2]))
            .values(received_at=now - timedelta(days=91))
        )

    assert await purge_payloads(engine, "P90D", now) == 2
    assert await purge_payloads(engine, "P90D", now) == 0  # nothing left to purge
    async with engine.connect() as conn:
        payloads = dict(
            (await conn.execute(select(WebhookEvent.order_id, WebhookEvent.payload))).all()
        )
        orders = await conn.scalar(select(func.count()).select_from(Order))
    assert payloads[1] == payloads[2] == ""
    assert "Marie" in payloads[3]
    assert orders == 3
    events = await client.get(f"/api/v1/shops/{shop.id}/events", headers=shop.auth)
    assert [e["outcome"] for e in events.json()["items"]] == ["scheduled"] * 3


def test_the_purge_is_one_of_the_scheduler_s_jobs(engine: AsyncEngine) -> None:
    from app.config import Settings
    from app.scheduler import collect

    settings = Settings(secret_key="k", _env_file=None)  # type: ignore[call-arg]
    jobs = {job.name: job.interval for job in collect(engine, settings)}
    assert jobs["purge_event_bodies"] == 86400
    assert "dispatch" in jobs and "alerts" in jobs
