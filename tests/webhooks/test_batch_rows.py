"""What a group-committed batch writes, column by column, on both backends.

PostgreSQL takes a batch with statements of fixed text over arrays (`unnest`), SQLite with
SQLAlchemy's multi-row statements: the rows must be the same, whatever the mix of the batch.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.orders.models import Order, OrderHistory
from app.requests.models import Delivery, ReviewRequest
from app.webhooks.models import WebhookEvent
from tests.factories import create_shop, order_event, post_event
from tests.webhooks.test_group_commit import CANCELED, DELIVERED, one_batch

SHIPPED = 4


def with_customer(payload: dict[str, Any], **customer: Any) -> dict[str, Any]:
    payload["data"]["customer"].update(customer)
    return payload


async def rows(engine: AsyncEngine, model: Any, shop_id: str, order_id: int) -> list[Any]:
    async with engine.connect() as conn:
        found = await conn.execute(
            select(model)
            .where(model.shop_id == shop_id, model.order_id == order_id)
            .order_by(model.id if hasattr(model, "id") else model.order_id)
        )
        return list(found)


async def test_a_mixed_batch_writes_the_rows_one_webhook_at_a_time_would(
    client: httpx.AsyncClient, app: FastAPI, engine: AsyncEngine
) -> None:
    shop = await create_shop(
        client,
        delay="P3D",
        exclusions={"blocked_emails": ["*@blocked.example"]},
    )
    # An address on the suppression list: its request is skipped as suppressed.
    added = await client.post(
        f"/api/v1/shops/{shop.id}/suppressions",
        json={"email": "gone@example.fr", "reason": "manual"},
        headers=shop.auth,
    )
    assert added.status_code == 201, added.text
    # Order 4 is scheduled before the batch, and cancelled in it.
    at = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    assert (await post_event(client, shop, order_event(4, 1, DELIVERED, at))).status_code == 202

    full = with_customer(
        order_event(1, 10, DELIVERED, at),
        country="fr",
        group_ids=[3, 1],
        newsletter=True,
    )
    async with one_batch(client, app, engine) as held:
        await held.post(shop, full)
        await held.post(shop, order_event(2, 20, SHIPPED, at, email="x@blocked.example"))
        await held.post(shop, order_event(2, 21, DELIVERED, at, email="x@blocked.example"))
        await held.post(shop, order_event(3, 30, DELIVERED, at, email="Gone@Example.fr"))
        await held.post(shop, order_event(4, 2, CANCELED, at + timedelta(hours=1)))
        await held.post(shop, order_event(1, 9, SHIPPED, at - timedelta(hours=1)))
    answers = await held.answers()
    assert [a.status_code for a in answers] == [202] * 6, [a.text for a in answers]

    [order] = await rows(engine, Order, shop.id, 1)
    assert (order.country, order.group_ids, order.newsletter) == ("FR", [3, 1], True)
    assert (order.email, order.email_normalized) == (
        "Marie.Dupont@Example.fr",
        "marie.dupont@example.fr",
    )
    assert (order.state_id, order.state_name, order.history_id) == (DELIVERED, "Delivered", 10)
    assert (order.total_paid, order.currency, order.reference) == ("59.90", "EUR", "REF1")
    assert order.products[0]["name"] == "Mug en grès"
    # Paid since the older Shipped (paid too) arrived after the newer Delivered.
    assert order.paid_at == at - timedelta(hours=1)
    assert order.state_at == at
    assert order.ordered_at == at - timedelta(days=5)
    [other] = await rows(engine, Order, shop.id, 3)
    assert (other.country, other.group_ids, other.newsletter) == (None, None, None)
    history = await rows(engine, OrderHistory, shop.id, 1)
    assert [(h.history_id, h.state_id, h.paid, h.shipped) for h in history] == [
        (10, DELIVERED, True, True),
        (9, SHIPPED, True, True),
    ]

    def event_ids(order_id: int) -> list[int]:
        return [
            a.json()["event_id"]
            for a, o in zip(answers, (1, 2, 2, 3, 4, 1), strict=True)
            if o == order_id
        ]

    expected = {
        1: ["scheduled", "ignored_older"],
        2: ["recorded", "skipped"],
        3: ["skipped"],
        4: ["cancelled"],
    }
    for order_id, outcomes in expected.items():
        events = await rows(engine, WebhookEvent, shop.id, order_id)
        mine = [e for e in events if e.id in event_ids(order_id)]
        assert [e.outcome for e in mine] == outcomes, order_id
        assert all(e.received_at == mine[0].received_at for e in mine)

    def request_of(order_id: int, found: list[Any]) -> Any:
        [request] = found
        assert request.order_id == order_id
        assert len(request.public_id) == 16
        return request

    scheduled = request_of(1, await rows(engine, ReviewRequest, shop.id, 1))
    assert (scheduled.status, scheduled.reason, scheduled.source) == ("scheduled", None, "trigger")
    assert (scheduled.language, scheduled.trigger_history_id) == ("fr", 10)
    assert scheduled.trigger_at == at and scheduled.due_at >= at + timedelta(days=3)
    excluded = request_of(2, await rows(engine, ReviewRequest, shop.id, 2))
    assert (excluded.status, excluded.reason) == ("skipped", "excluded")
    suppressed = request_of(3, await rows(engine, ReviewRequest, shop.id, 3))
    assert (suppressed.status, suppressed.reason) == ("skipped", "suppressed")
    cancelled = request_of(4, await rows(engine, ReviewRequest, shop.id, 4))
    assert (cancelled.status, cancelled.reason) == ("cancelled", "order_cancelled")

    async with engine.connect() as conn:
        deliveries = {
            d.request_id: d
            for d in await conn.execute(
                select(Delivery).where(Delivery.shop_id == shop.id).order_by(Delivery.id)
            )
        }
    first = deliveries[scheduled.id]
    assert (first.kind, first.seq, first.status, first.attempts, first.dry_run) == (
        "first", 0, "scheduled", 0, False
    )  # fmt: skip
    assert first.due_at == scheduled.due_at and first.last_error is None
    assert (first.window_from is None) == (first.due_at == at + timedelta(days=3))
    assert (deliveries[excluded.id].status, deliveries[excluded.id].reason) == (
        "skipped", "excluded"
    )  # fmt: skip
    assert deliveries[excluded.id].last_error  # the rule that matched
    assert (deliveries[suppressed.id].status, deliveries[suppressed.id].reason) == (
        "skipped", "suppressed"
    )  # fmt: skip
    assert (deliveries[cancelled.id].status, deliveries[cancelled.id].reason) == (
        "cancelled", "order_cancelled"
    )  # fmt: skip
