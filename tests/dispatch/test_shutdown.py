"""Shutdown: the running tick finishes its in-flight messages and gives back the rest."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.dispatch.jobs import Dispatcher
from app.requests.models import Delivery
from tests.factories import create_shop, order_event, post_event
from tests.smtp_sink import SinkHandler, smtp_sink


async def test_stop_mid_batch_releases_unsent_claims(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    shop = await create_shop(client, delay="PT0S")
    for order_id in range(1, 7):
        await post_event(client, shop, order_event(order_id, 1, 5, email=f"c{order_id}@ex.fr"))
    with smtp_sink() as (sink, port):
        two_arrived = asyncio.Event()
        loop = asyncio.get_running_loop()
        original = SinkHandler.handle_DATA

        async def slow_data(self: SinkHandler, *args: Any) -> str:
            answer = await original(self, *args)
            if len(self.messages) == 2:  # both conversations are in flight
                loop.call_soon_threadsafe(two_arrived.set)
            await asyncio.sleep(0.3)
            return answer

        sink.handle_DATA = slow_data.__get__(sink)  # type: ignore[method-assign]
        smtp = settings.model_copy(
            update={
                "mail_url": f"smtp://127.0.0.1:{port}",
                "smtp_timeout": 5.0,
                "smtp_concurrency": 2,
            }
        )
        worker = Dispatcher(engine, smtp)
        tick = asyncio.create_task(worker.tick())
        await asyncio.wait_for(two_arrived.wait(), 10)
        await asyncio.wait_for(worker.stop(), 10)
        stats = await tick
    assert stats.sent == 2 and stats.released == 4
    assert len(sink.messages) == 2
    async with engine.connect() as conn:
        rows = (
            await conn.execute(select(Delivery.status, Delivery.attempts, Delivery.claimed_by))
        ).all()
    assert sorted(r.status for r in rows) == ["scheduled"] * 4 + ["sent"] * 2
    assert all(r.attempts == 0 for r in rows if r.status == "scheduled")
    assert all(r.claimed_by is None for r in rows)
    # A stopped dispatcher takes no more work.
    assert (await worker.tick(now=datetime.now(UTC) + timedelta(days=3))).sent == 0
