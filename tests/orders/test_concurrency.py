"""Events of one order applied at the same time on PostgreSQL: the newest state always wins.

Each order gets six events (PrestaShop history ids 1..6), started newest first and all at once,
so that several transactions race on the same order row. Whatever the interleaving, the order
must end in the state of history id 6, keep every history row, remember the earliest paid
state, and the review request must follow the newest state only.
"""

import asyncio
import itertools
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.orders.models import Order, OrderHistory
from app.orders.service import apply_event
from app.requests.models import Delivery, ReviewRequest
from app.requests.service import on_state
from app.shops.settings import ShopSettings
from app.webhooks.handlers import status_change
from app.webhooks.models import WebhookEvent
from app.webhooks.schemas import OrderStatusChanged
from tests.factories import ShopInfo, create_shop, order_event, post_event

pytestmark = pytest.mark.postgres_only

ORDERS = 30
ROUNDS = 4
# States by history id 1..6: awaiting wire (unpaid), paid, processing, shipped, then either
# delivered and cancelled (newest: Canceled) or cancelled and delivered again (newest: Delivered).
CANCELLED_LAST = (10, 2, 3, 4, 5, 6)
DELIVERED_LAST = (10, 2, 3, 4, 6, 5)
FIRST_PAID_HISTORY = 2


def states_of(order_id: int) -> tuple[int, ...]:
    return CANCELLED_LAST if order_id % 2 else DELIVERED_LAST


def history_time(base: datetime, history_id: int) -> datetime:
    return base + timedelta(minutes=history_id)


def events_newest_first(order_ids: list[int], base: datetime) -> list[dict[str, Any]]:
    """Each order's six events, newest first; one order's events are adjacent, to race."""
    return [
        order_event(
            order_id,
            history_id,
            states_of(order_id)[history_id - 1],
            history_time(base, history_id),
            email=f"customer{order_id}@example.fr",
        )
        for order_id in order_ids
        for history_id in range(6, 0, -1)
    ]


async def check_orders(
    engine: AsyncEngine, shop_id: str, order_ids: list[int], base: datetime
) -> None:
    """Every order in its newest state, all history kept, request consistent with the state."""
    async with engine.connect() as conn:
        orders = {
            r.order_id: r
            for r in await conn.execute(
                select(Order.order_id, Order.state_id, Order.history_id, Order.paid_at).where(
                    Order.shop_id == shop_id
                )
            )
        }
        history: dict[int, list[int]] = defaultdict(list)
        for r in await conn.execute(
            select(OrderHistory.order_id, OrderHistory.history_id).where(
                OrderHistory.shop_id == shop_id
            )
        ):
            history[r.order_id].append(r.history_id)
        requests: dict[int, list[Any]] = defaultdict(list)
        for r in await conn.execute(
            select(
                ReviewRequest.id,
                ReviewRequest.order_id,
                ReviewRequest.status,
                ReviewRequest.reason,
                ReviewRequest.trigger_history_id,
            ).where(ReviewRequest.shop_id == shop_id)
        ):
            requests[r.order_id].append(r)
        deliveries: dict[int, list[str]] = defaultdict(list)
        for r in await conn.execute(
            select(ReviewRequest.order_id, Delivery.status)
            .join(ReviewRequest, ReviewRequest.id == Delivery.request_id)
            .where(ReviewRequest.shop_id == shop_id)
        ):
            deliveries[r.order_id].append(r.status)

    assert sorted(orders) == sorted(order_ids)
    wrong = {
        order_id: (row.history_id, row.state_id)
        for order_id, row in orders.items()
        if (row.history_id, row.state_id) != (6, states_of(order_id)[-1])
    }
    assert wrong == {}, f"orders not in their newest state (history id, state): {wrong}"
    first_paid = history_time(base, FIRST_PAID_HISTORY)
    wrong_paid = {o: r.paid_at for o, r in orders.items() if r.paid_at != first_paid}
    assert wrong_paid == {}, f"paid_at should be the earliest paid state, {first_paid}"
    incomplete = {o: sorted(h) for o, h in history.items() if sorted(h) != [1, 2, 3, 4, 5, 6]}
    assert incomplete == {} and sorted(history) == sorted(order_ids)

    for order_id in order_ids:
        found = requests[order_id]
        if states_of(order_id)[-1] == 5:
            # Newest is Delivered: exactly one live request, triggered by history 6.
            assert [(r.status, r.trigger_history_id) for r in found] == [("scheduled", 6)], (
                order_id,
                found,
            )
            assert deliveries[order_id] == ["scheduled"], (order_id, deliveries[order_id])
        else:
            # Newest is Canceled: nothing may stay scheduled; a request the Delivered event
            # created before the cancel was applied must be cancelled with its reason.
            assert all((r.status, r.reason) == ("cancelled", "order_cancelled") for r in found), (
                order_id,
                found,
            )
            assert all(s == "cancelled" for s in deliveries[order_id]), (
                order_id,
                deliveries[order_id],
            )


async def apply_together(
    engine: AsyncEngine,
    shop_id: str,
    settings: ShopSettings,
    payloads: list[dict[str, Any]],
    event_ids: Iterator[int],
) -> None:
    """Each event in its own transaction, all opened first, then applied at the same instant,
    as the inbox does: `apply_event`, then the scheduling rules if the order moved forward."""
    barrier = asyncio.Barrier(len(payloads))

    async def apply(payload: dict[str, Any]) -> None:
        change = status_change(OrderStatusChanged.model_validate(payload), settings.timezone)
        async with engine.begin() as conn:
            await conn.execute(select(1))  # the transaction is open on the server
            await barrier.wait()
            now = datetime.now(UTC)
            applied = await apply_event(conn, shop_id, change, next(event_ids), now)
            if applied.moved_forward:
                await on_state(conn, shop_id, settings, change, now)

    await asyncio.gather(*(apply(p) for p in payloads))


async def test_reverse_order_events_over_http_end_in_the_newest_state(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    for round_ in range(ROUNDS):
        shop: ShopInfo = await create_shop(client, name=f"Concurrency {round_}")
        order_ids = list(range(1000 * (round_ + 1), 1000 * (round_ + 1) + ORDERS))
        payloads = events_newest_first(order_ids, base)
        responses = await asyncio.wait_for(
            asyncio.gather(*(post_event(client, shop, p) for p in payloads)), timeout=120
        )
        statuses = [(r.status_code, r.json().get("status")) for r in responses]
        assert statuses == [(202, "accepted")] * len(payloads), [
            r.text for r in responses if r.status_code != 202
        ][:3]
        await check_orders(engine, shop.id, order_ids, base)

        async with engine.connect() as conn:
            outcomes = {
                (r.order_id, r.history_id): r.outcome
                for r in await conn.execute(
                    select(
                        WebhookEvent.order_id, WebhookEvent.history_id, WebhookEvent.outcome
                    ).where(WebhookEvent.shop_id == shop.id)
                )
            }
        assert len(outcomes) == len(payloads)
        # The newest event of an order can never be "older" than another one.
        newest = {o: outcomes[(o, 6)] for o in order_ids}
        expected = {o: "scheduled" if states_of(o)[-1] == 5 else "cancelled" for o in order_ids}
        for order_id, outcome in newest.items():
            if expected[order_id] == "cancelled":
                # Cancelled something, or nothing was scheduled yet ("recorded").
                assert outcome in ("cancelled", "recorded"), (order_id, outcome)
            else:
                assert outcome == "scheduled", (order_id, outcome)


async def test_reverse_order_events_applied_directly_in_parallel_transactions(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """`apply_event` (and the scheduling it leads to) from many connections started together."""
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    event_ids = itertools.count(1)
    # Three orders at a time: at most 18 connections, within the engine's pool (10 + 10
    # overflow), so every transaction of a group is open before any runs its first statement.
    per_group = 3
    for round_ in range(ROUNDS):
        shop = await create_shop(client, name=f"Direct {round_}")
        raw = await client.get(f"/api/v1/shops/{shop.id}/settings", headers=shop.auth)
        settings = ShopSettings.model_validate(raw.json())
        order_ids = list(range(1000 * (round_ + 1), 1000 * (round_ + 1) + ORDERS))
        for start in range(0, ORDERS, per_group):
            group = order_ids[start : start + per_group]
            payloads = events_newest_first(group, base)
            # Odd rounds race on inserting the order row; even rounds know the order from its
            # oldest event first, and race on updating it.
            if round_ % 2 == 0:
                oldest = [p for p in payloads if p["data"]["history"]["id"] == 1]
                payloads = [p for p in payloads if p["data"]["history"]["id"] != 1]
                await apply_together(engine, shop.id, settings, oldest, event_ids)
            await asyncio.wait_for(
                apply_together(engine, shop.id, settings, payloads, event_ids), timeout=60
            )
        await check_orders(engine, shop.id, order_ids, base)

    async with engine.connect() as conn:
        rows = await conn.scalar(select(func.count()).select_from(ReviewRequest))
    # Half the orders end Delivered, one request each; the others may have cancelled ones.
    assert rows is not None and rows >= ROUNDS * ORDERS // 2
