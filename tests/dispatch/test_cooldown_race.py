"""One first e-mail per customer in flight, whatever the interleaving of claims.

Two orders of one customer due together: the claim that takes the first e-mail of one holds the
customer until its commit; a claim made meanwhile, or after, leaves the others for later; once
the first is recorded sent, the next one is claimed with the customer's last e-mail and skipped
by the cooldown. Each step runs on its own connection in an explicit order, no sleeps.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.dispatch import outcomes, service
from app.orders.models import Order
from app.requests.models import Delivery, ReviewRequest
from app.requests.rules import skip_reason
from app.requests.vocabulary import Reason
from tests.factories import create_shop

EMAIL = "marie@example.fr"


async def due_siblings(engine: AsyncEngine, shop_id: str, count: int) -> list[int]:
    """`count` orders of one customer, each with its first e-mail due a minute ago; the
    delivery ids, due first first."""
    now = datetime.now(UTC)
    due = now - timedelta(minutes=1)
    orders = range(1, count + 1)
    async with engine.begin() as conn:
        await conn.execute(
            insert(Order),
            [
                {
                    "shop_id": shop_id, "order_id": i, "reference": f"REF{i}", "customer_id": 7,
                    "email": EMAIL, "email_normalized": EMAIL, "firstname": "Marie",
                    "lastname": "Dupont", "language": "fr", "currency": "EUR",
                    "total_paid": "59.90", "ordered_at": now - timedelta(days=5), "products": [],
                    "state_id": 5, "state_name": "Delivered", "history_id": 1, "state_at": now,
                    "paid_at": now, "created_at": now, "updated_at": now,
                }
                for i in orders
            ],
        )  # fmt: skip
        requests = await conn.scalars(
            insert(ReviewRequest).returning(ReviewRequest.id, sort_by_parameter_order=True),
            [
                {
                    "shop_id": shop_id, "order_id": i, "email": EMAIL, "email_normalized": EMAIL,
                    "language": "fr", "status": "scheduled", "source": "trigger",
                    "trigger_history_id": 1, "trigger_at": now, "due_at": due,
                    "created_at": now, "updated_at": now,
                }
                for i in orders
            ],
        )  # fmt: skip
        deliveries = await conn.scalars(
            insert(Delivery).returning(Delivery.id, sort_by_parameter_order=True),
            [
                {
                    "request_id": request_id, "shop_id": shop_id, "kind": "first", "seq": 0,
                    "status": "scheduled", "due_at": due + timedelta(seconds=n),
                    "attempts": 0, "created_at": now, "updated_at": now,
                }
                for n, request_id in enumerate(requests.all())
            ],
        )  # fmt: skip
        return list(deliveries.all())


@asynccontextmanager
async def claimer(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A worker's claim transaction, left open until the block ends (then committed)."""
    async with engine.connect() as conn, conn.begin():
        yield conn


async def claim(conn: AsyncConnection, worker: str, limit: int = 20) -> service.Batch:
    return await service.claim(
        conn,
        worker=worker,
        now=datetime.now(UTC),
        lease=120,
        limit=limit,
        message_domain="relance.test",
    )


async def statuses(engine: AsyncEngine, ids: list[int]) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(Delivery.id, Delivery.status).where(Delivery.id.in_(ids)))
        by_id = {i: status for i, status in rows}
    return [by_id[i] for i in ids]


async def test_one_claim_takes_one_first_email_of_a_customer(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    shop = await create_shop(client, delay="PT0S")
    ids = await due_siblings(engine, shop.id, 4)
    async with claimer(engine) as conn:
        batch = await claim(conn, "w1")
    assert [c.delivery_id for c in batch.claims] == ids[:1]
    assert batch.deferred == 3
    # The next claim (of any worker) leaves the others while the first is in flight.
    async with claimer(engine) as conn:
        again = await claim(conn, "w2")
    assert (again.claims, again.deferred) == ([], 3)
    assert await statuses(engine, ids) == ["sending", "scheduled", "scheduled", "scheduled"]


@pytest.mark.postgres_only
async def test_a_claim_running_at_once_leaves_the_customer_to_the_claim_holding_it(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """Worker 1 has taken the first order's e-mail and not committed yet; worker 2's claim,
    made meanwhile, finds the other orders unlocked (worker 1 never looked at them) but cannot
    hold the customer, so it takes none of them. Without the per-customer lock, its update
    would not see worker 1's uncommitted claim, and the customer would get two e-mails."""
    shop = await create_shop(client, delay="PT0S")
    ids = await due_siblings(engine, shop.id, 4)
    async with claimer(engine) as first:
        taken = await claim(first, "w1", limit=1)
        assert [c.delivery_id for c in taken.claims] == ids[:1]
        async with claimer(engine) as second:
            meanwhile = await claim(second, "w2")
        assert (meanwhile.claims, meanwhile.deferred) == ([], 3)
    # Worker 1 committed: a claim now sees its e-mail in flight and still takes none.
    async with claimer(engine) as third:
        after = await claim(third, "w3")
    assert (after.claims, after.deferred) == ([], 3)
    assert await statuses(engine, ids) == ["sending", "scheduled", "scheduled", "scheduled"]


@pytest.mark.postgres_only
async def test_a_claim_that_cannot_hold_the_customer_takes_its_other_emails(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """The lock is per customer: another customer's e-mail in the same claim is taken."""
    shop = await create_shop(client, delay="PT0S")
    ids = await due_siblings(engine, shop.id, 2)
    async with engine.begin() as conn:
        await conn.execute(
            update(ReviewRequest)
            .where(
                ReviewRequest.id
                == select(Delivery.request_id).where(Delivery.id == ids[1]).scalar_subquery()
            )
            .values(email="paul@example.fr", email_normalized="paul@example.fr")
        )
    async with claimer(engine) as first:
        assert [c.delivery_id for c in (await claim(first, "w1", limit=1)).claims] == ids[:1]
        async with claimer(engine) as second:
            other = await claim(second, "w2")
        assert [c.email for c in other.claims] == ["paul@example.fr"]


async def test_the_next_order_claimed_after_the_first_is_recorded_is_skipped_by_the_cooldown(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    shop = await create_shop(client, delay="PT0S")
    ids = await due_siblings(engine, shop.id, 2)
    async with claimer(engine) as conn:
        [first] = (await claim(conn, "w1")).claims
    sent_at = datetime.now(UTC)
    async with claimer(engine) as conn:
        recorded = await outcomes.mark_sent(
            conn, [outcomes.Sent(first, sent_at, None, False)], "w1"
        )
    assert recorded == {ids[0]}
    async with claimer(engine) as conn:
        [second] = (await claim(conn, "w2")).claims
    assert second.delivery_id == ids[1]
    assert second.last_sent_to_customer == sent_at
    reason = skip_reason(
        settings=second.settings,
        order_state_id=second.order.state_id,
        paid_at=second.order.paid_at,
        last_sent_to_customer=second.last_sent_to_customer,
        trigger_at=second.trigger_at,
        is_first=True,
        now=datetime.now(UTC),
    )
    assert reason is Reason.CUSTOMER_COOLDOWN


async def test_a_claim_taken_over_after_its_lease_still_holds_the_customer(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """A worker died holding the first order's e-mail: the claim that takes it over takes
    none of the customer's other orders with it."""
    shop = await create_shop(client, delay="PT0S")
    ids = await due_siblings(engine, shop.id, 3)
    expired = datetime.now(UTC) - timedelta(seconds=1)
    async with engine.begin() as conn:
        await conn.execute(
            update(Delivery)
            .where(Delivery.id == ids[0])
            .values(status="sending", claimed_by="dead", claim_expires_at=expired, attempts=1)
        )
    async with claimer(engine) as conn:
        batch = await claim(conn, "w1")
    assert [(c.delivery_id, c.attempts) for c in batch.claims] == [(ids[0], 2)]
    assert batch.deferred == 2
    assert await statuses(engine, ids) == ["sending", "scheduled", "scheduled"]
