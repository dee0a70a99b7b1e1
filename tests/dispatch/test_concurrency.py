"""Concurrent sending: several conversations at once, a relay that says "slow down", a rate
limit, and fairness between shops sharing an instance."""

import asyncio
import time
from collections import Counter
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.requests.models import Delivery
from tests.dispatch.test_dispatch import LATER, at, dispatcher
from tests.factories import create_shop, order_event, post_event
from tests.smtp_sink import SinkHandler, smtp_sink


class PacedSink:
    """Wraps a sink's DATA handler: takes `delay` to answer, notes when each message came and
    how many conversations were in DATA at once, and answers 421 to every `refuse_every`-th."""

    def __init__(self, sink: SinkHandler, delay: float = 0.0, refuse_every: int = 0) -> None:
        self.delay = delay
        self.refuse_every = refuse_every
        self.arrivals: list[float] = []
        self.active = 0
        self.most_active = 0
        self.refused = 0
        self._original = sink.handle_DATA
        sink.handle_DATA = self.handle_DATA  # type: ignore[method-assign]

    async def handle_DATA(self, *args: Any) -> str:
        self.arrivals.append(time.monotonic())
        if self.refuse_every and len(self.arrivals) % self.refuse_every == 0:
            self.refused += 1
            return "421 4.7.0 Too many concurrent connections, slow down"
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            await asyncio.sleep(self.delay)
            return await self._original(*args)
        finally:
            self.active -= 1


async def due_orders(client: httpx.AsyncClient, count: int, **shop: Any) -> Any:
    created = await create_shop(client, **shop)
    for order_id in range(1, count + 1):
        event = order_event(order_id, order_id, 5, email=f"c{order_id}@example.fr")
        await post_event(client, created, event)
    return created


async def delivery_counts(engine: AsyncEngine, shop_id: str) -> Counter[tuple[str, int]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(Delivery.status, Delivery.attempts, func.count())
            .where(Delivery.shop_id == shop_id)
            .group_by(Delivery.status, Delivery.attempts)
        )
        return Counter({(r[0], r[1]): r[2] for r in rows})


async def test_conversations_run_at_once_up_to_the_concurrency(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    await due_orders(client, 12)
    with smtp_sink() as (sink, port):
        paced = PacedSink(sink, delay=0.2)
        stats = await dispatcher(engine, settings, port, smtp_concurrency=4).tick(now=at(LATER))
    assert stats.sent == 12
    assert len({str(m["Message-ID"]) for m in sink.messages}) == 12
    assert paced.most_active == 4


async def test_a_relay_that_says_slow_down_lowers_the_concurrency_and_loses_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    """Every fifth message is answered 421: it goes back in line (no attempt spent), the
    concurrency is halved, and every e-mail leaves exactly once."""
    shop = await due_orders(client, 20)
    with smtp_sink() as (sink, port):
        paced = PacedSink(sink, delay=0.05, refuse_every=5)
        worker = dispatcher(engine, settings, port, smtp_concurrency=4)
        stats = await worker.tick(now=at(LATER))
        for _ in range(3):  # any message throttled on every turn is retried later
            if (await delivery_counts(engine, shop.id)).total() == stats.sent:
                break
            stats.sent += (await worker.tick(now=at(LATER * 2))).sent
    throttle = worker._throttle("")
    assert paced.refused >= 4 and stats.throttled >= 4
    assert throttle.slow_downs == paced.refused and throttle.limit < 4
    ids = Counter(str(m["Message-ID"]) for m in sink.messages)
    assert len(ids) == 20 and set(ids.values()) == {1}
    counts = await delivery_counts(engine, shop.id)
    assert sum(n for (status, _), n in counts.items() if status == "sent") == 20
    # A throttled turn is not an attempt.
    assert counts[("sent", 1)] >= 20 - 1


async def test_the_rate_limit_spaces_messages(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    await due_orders(client, 8)
    with smtp_sink() as (sink, port):
        paced = PacedSink(sink)
        worker = dispatcher(engine, settings, port, smtp_concurrency=8, smtp_rate=10.0)
        assert (await worker.tick(now=at(LATER))).sent == 8
    # 10 a second: the eight leave over at least 0.7 s (less the jitter of one conversation),
    # although eight conversations were free; unlimited, they take a few milliseconds.
    span = paced.arrivals[-1] - paced.arrivals[0]
    assert span >= 0.5, span


async def test_one_shops_backlog_does_not_hold_back_another_shop(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    """Shop A has 120 e-mails due, older than shop B's one: B's leaves within the first
    claim (one batch of 20), not after A's backlog."""
    busy = await due_orders(client, 120, name="Busy")
    quiet = await create_shop(client, name="Quiet")
    await post_event(client, quiet, order_event(1, 1, 5, email="quiet@example.fr"))
    with smtp_sink() as (sink, port):
        worker = dispatcher(engine, settings, port, smtp_concurrency=1, claim_batch=20)
        assert (await worker.tick(now=at(LATER))).sent == 121
    order = [rcpts[0] for _, rcpts in sink.envelopes]
    assert order.index("quiet@example.fr") < 20, order.index("quiet@example.fr")
    assert len(order) == 121 and busy.id != quiet.id


async def test_a_shops_own_server_gets_at_most_its_max_connections(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    shop = await due_orders(client, 8)
    with smtp_sink() as (own_sink, own_port), smtp_sink() as (_, relay_port):
        paced = PacedSink(own_sink, delay=0.1)
        put = await client.put(
            f"/api/v1/shops/{shop.id}/mail-server",
            json={"url": f"smtp://127.0.0.1:{own_port}", "max_connections": 2},
            headers=shop.auth,
        )
        assert put.status_code == 200 and put.json()["max_connections"] == 2
        worker = dispatcher(engine, settings, relay_port, smtp_concurrency=6)
        assert (await worker.tick(now=at(LATER))).sent == 8
    assert len(own_sink.messages) == 8 and paced.most_active == 2
