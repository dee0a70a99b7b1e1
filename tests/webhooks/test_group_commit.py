"""Group commit: webhooks that arrive together share one transaction, each answered after it.

To put chosen webhooks in one batch, a test holds a lock the batch under way needs (SQLite's
write lock, or on PostgreSQL an exclusive lock on `webhook_events`): the webhooks posted
meanwhile queue up, and all go in the next batch once the lock is released.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.orders.models import Order
from app.requests.models import ReviewRequest
from app.webhooks import batching
from app.webhooks.models import WebhookEvent
from tests.dispatch.test_dispatch import dispatcher
from tests.factories import ShopInfo, create_shop, order_event, post_event, signed, unix
from tests.problems import assert_problem, assert_validation_problem
from tests.smtp_sink import smtp_sink

DELIVERED, CANCELED = 5, 6
CANCELLED = ("cancelled", "order_cancelled")


def committer_of(app: FastAPI) -> batching.GroupCommitter:
    return batching.committer(app.state.engine, app.state.settings.secret_key)


async def until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


@dataclass
class Held:
    """Webhooks posted while a batch is held: they queue up, in the order posted."""

    client: httpx.AsyncClient
    committer: batching.GroupCommitter
    posted: list["asyncio.Task[httpx.Response]"] = field(default_factory=list)

    async def post(self, shop: ShopInfo, payload: Any, msg_id: str | None = None) -> None:
        queued = self.committer.waiting
        self.posted.append(asyncio.create_task(post_event(self.client, shop, payload, msg_id)))
        await until(lambda: self.committer.waiting == queued + 1, "the webhook to be queued")

    async def send(self, body: bytes, headers: dict[str, str], url: str) -> None:
        queued = self.committer.waiting
        self.posted.append(
            asyncio.create_task(self.client.post(url, content=body, headers=headers))
        )
        await until(lambda: self.committer.waiting == queued + 1, "the webhook to be queued")

    async def answers(self) -> list[httpx.Response]:
        return [await task for task in self.posted]


@asynccontextmanager
async def one_batch(
    client: httpx.AsyncClient, app: FastAPI, engine: AsyncEngine
) -> AsyncIterator[Held]:
    """Everything posted through the `Held` inside the block is committed in one batch.

    The batch held meanwhile is a webhook of a shop of its own, which schedules nothing due.
    """
    shop = await create_shop(client, name="Blocker")
    committer = committer_of(app)
    batches = committer.batches
    async with engine.begin() as conn:  # on SQLite: BEGIN IMMEDIATE, the write lock
        await conn.execute(text("SELECT 1"))
        if conn.dialect.name == "postgresql":
            await conn.execute(text("LOCK TABLE webhook_events IN EXCLUSIVE MODE"))
        blocker = asyncio.create_task(post_event(client, shop, order_event(10**9, 1, DELIVERED)))
        await until(
            lambda: committer.in_flight == 1 and committer.waiting == 0,
            "the blocking webhook's batch to start",
        )
        held = Held(client, committer)
        yield held
        assert not blocker.done(), "the batch under way was not held"
    assert (await blocker).status_code == 202
    answers = await held.answers()
    assert committer.batches == batches + 2, "the held webhooks were not committed together"
    assert committer.largest >= len(answers)


async def events_of(engine: AsyncEngine, shop_id: str, order_id: int) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(WebhookEvent.history_id, WebhookEvent.outcome)
            .where(WebhookEvent.shop_id == shop_id, WebhookEvent.order_id == order_id)
            .order_by(WebhookEvent.id)
        )
        return [tuple(r) for r in rows]


async def requests_of(engine: AsyncEngine, shop_id: str, order_id: int) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(ReviewRequest.status, ReviewRequest.reason)
            .where(ReviewRequest.shop_id == shop_id, ReviewRequest.order_id == order_id)
            .order_by(ReviewRequest.id)
        )
        return [tuple(r) for r in rows]


async def test_webhooks_arriving_together_share_a_transaction_and_are_visible_when_answered(
    client: httpx.AsyncClient, app: FastAPI, engine: AsyncEngine
) -> None:
    shop = await create_shop(client)
    committer = committer_of(app)
    batches, webhooks = committer.batches, committer.webhooks
    count = 40

    async def post_and_look(order_id: int) -> None:
        answer = await post_event(client, shop, order_event(order_id, 1, DELIVERED))
        assert answer.status_code == 202, answer.text
        # Answered means committed: the event and the request it scheduled are there now.
        async with engine.connect() as conn:
            found = await conn.scalar(
                select(WebhookEvent.outcome).where(WebhookEvent.id == answer.json()["event_id"])
            )
            scheduled = await conn.scalar(
                select(func.count())
                .select_from(ReviewRequest)
                .where(ReviewRequest.shop_id == shop.id, ReviewRequest.order_id == order_id)
            )
        assert (found, scheduled) == ("scheduled", 1)

    await asyncio.gather(*(post_and_look(order_id) for order_id in range(1, count + 1)))
    assert committer.webhooks - webhooks == count
    assert committer.batches - batches < count, "no two webhooks shared a transaction"


@pytest.mark.parametrize(
    ("arrivals", "outcomes", "request_status", "sent"),
    [
        # Cancelled just before it is due, in the same batch: nothing is sent.
        ([(1, DELIVERED), (2, CANCELED)], ["scheduled", "cancelled"], [CANCELLED], 0),
        ([(2, CANCELED), (1, DELIVERED)], ["recorded", "ignored_older"], [], 0),
        # An older Canceled arriving after Delivered never overrides it.
        ([(2, DELIVERED), (1, CANCELED)], ["scheduled", "ignored_older"], [("scheduled", None)], 1),
        ([(1, CANCELED), (2, DELIVERED)], ["recorded", "scheduled"], [("scheduled", None)], 1),
    ],
)  # fmt: skip
async def test_delivered_and_canceled_of_one_order_in_one_batch_apply_in_arrival_order(
    client: httpx.AsyncClient,
    app: FastAPI,
    engine: AsyncEngine,
    settings: Settings,
    arrivals: list[tuple[int, int]],
    outcomes: list[str],
    request_status: list[tuple[str, str | None]],
    sent: int,
) -> None:
    shop = await create_shop(client, delay="PT0S")
    async with one_batch(client, app, engine) as held:
        for history_id, state in arrivals:
            await held.post(shop, order_event(7, history_id, state))
    answers = await held.answers()
    assert [a.status_code for a in answers] == [202, 202], [a.text for a in answers]
    # The same as one after another (the path without batches): another order, sequentially.
    for history_id, state in arrivals:
        payload = order_event(8, history_id, state, email="c8@example.fr")
        alone = await post_event(client, shop, payload)
        assert alone.status_code == 202, alone.text
    arrived = [history_id for history_id, _ in arrivals]
    assert await events_of(engine, shop.id, 7) == list(zip(arrived, outcomes, strict=True))
    assert await events_of(engine, shop.id, 8) == list(zip(arrived, outcomes, strict=True))
    assert await requests_of(engine, shop.id, 7) == request_status
    assert await requests_of(engine, shop.id, 8) == request_status
    async with engine.connect() as conn:
        states = await conn.scalars(
            select(Order.state_id).where(Order.shop_id == shop.id).order_by(Order.order_id)
        )
        newest = max(arrivals)[1]
        assert list(states) == [newest, newest]
    with smtp_sink() as (_, port):
        stats = await dispatcher(engine, settings, port).tick()
    assert stats.sent == 2 * sent


async def test_refused_webhooks_in_a_batch_are_answered_alone(
    client: httpx.AsyncClient, app: FastAPI, engine: AsyncEngine
) -> None:
    shop = await create_shop(client)
    other = await create_shop(client, name="Autre")
    url = f"/webhooks/prestashop/{shop.id}"
    async with one_batch(client, app, engine) as held:
        await held.post(shop, order_event(1, 1, DELIVERED))
        body, headers = signed(other.webhook_secret, order_event(2, 1, DELIVERED))
        await held.send(body, headers, url)  # signed with another shop's secret
        body, headers = signed(shop.webhook_secret, {"type": "order.status_changed"})
        await held.send(body, headers, url)  # no data
        body, headers = signed(shop.webhook_secret, order_event(3, 1, DELIVERED))
        await held.send(body, headers, "/webhooks/prestashop/shp_nosuchshop")
        await held.post(shop, {"type": "ping"})
        await held.post(shop, order_event(4, 1, DELIVERED), msg_id="msg_twice")
        await held.post(shop, order_event(4, 1, DELIVERED), msg_id="msg_twice")
        await held.post(shop, order_event(5, 1, DELIVERED))
    accepted, forged, empty, nowhere, ping, first, again, last = await held.answers()
    assert_problem(forged, 401)
    assert_validation_problem(empty, ["body", "data"])
    assert_problem(nowhere, 404)
    assert (ping.status_code, ping.json()) == (200, {"status": "pong"})
    for answer in (accepted, first, last):
        assert (answer.status_code, answer.json()["status"]) == (202, "accepted")
    assert (again.status_code, again.json()) == (
        200,
        {"status": "duplicate", "event_id": first.json()["event_id"]},
    )
    for order_id, status in ((1, "scheduled"), (2, None), (3, None), (4, "scheduled")):
        expected = [(status, None)] if status else []
        assert await requests_of(engine, shop.id, order_id) == expected


@asynccontextmanager
async def refusing_order(engine: AsyncEngine, order_id: int) -> AsyncIterator[None]:
    """The database refuses any history row of this order (a trigger raises), as it would a
    value it cannot store: the statement that writes it fails."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(
                text(
                    "CREATE FUNCTION refuse_order() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'order refused'; END $$"
                )
            )
            await conn.execute(
                text(
                    "CREATE TRIGGER refuse_order BEFORE INSERT ON order_history FOR EACH ROW "
                    f"WHEN (NEW.order_id = {order_id}) EXECUTE FUNCTION refuse_order()"
                )
            )
        else:
            await conn.execute(
                text(
                    "CREATE TRIGGER refuse_order BEFORE INSERT ON order_history "
                    f"WHEN NEW.order_id = {order_id} "
                    "BEGIN SELECT RAISE(ABORT, 'order refused'); END"
                )
            )
    try:
        yield
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("DROP TRIGGER refuse_order ON order_history")
                               if conn.dialect.name == "postgresql"
                               else text("DROP TRIGGER refuse_order"))  # fmt: skip
            if conn.dialect.name == "postgresql":
                await conn.execute(text("DROP FUNCTION refuse_order()"))


async def test_a_webhook_the_database_refuses_fails_alone_and_its_neighbours_commit(
    app: FastAPI, engine: AsyncEngine
) -> None:
    # A 500 is answered, not raised into the test.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://relance.test") as client:
        shop = await create_shop(client)
        committer = committer_of(app)
        fallbacks = committer.fallbacks
        async with refusing_order(engine, 666), one_batch(client, app, engine) as held:
            await held.post(shop, order_event(1, 1, DELIVERED))
            await held.post(shop, order_event(666, 1, DELIVERED), msg_id="msg_refused")
            await held.post(shop, order_event(2, 1, DELIVERED))
        before, refused, after = await held.answers()
    assert committer.fallbacks == fallbacks + 1
    assert_problem(refused, 500)
    for answer in (before, after):
        assert (answer.status_code, answer.json()["status"]) == (202, "accepted"), answer.text
    assert await requests_of(engine, shop.id, 1) == [("scheduled", None)]
    assert await requests_of(engine, shop.id, 2) == [("scheduled", None)]
    assert await requests_of(engine, shop.id, 666) == []
    async with engine.connect() as conn:
        stored = set(
            await conn.scalars(
                select(WebhookEvent.webhook_id).where(WebhookEvent.shop_id == shop.id)
            )
        )
    assert "msg_refused" not in stored, "the refused webhook was recorded"
    assert len(stored) == 2


@pytest.mark.postgres_only
async def test_a_batch_whose_commit_fails_answers_503_to_all_and_loses_no_accepted_webhook(
    client: httpx.AsyncClient, app: FastAPI, engine: AsyncEngine
) -> None:
    shop = await create_shop(client)
    earlier = [await post_event(client, shop, order_event(i, 1, DELIVERED)) for i in (1, 2)]
    assert [a.status_code for a in earlier] == [202, 202]
    async with engine.begin() as conn:
        # At COMMIT (a deferred trigger), the server ends the connection of a batch holding
        # a webhook-id starting with "die-": the database is gone at the worst moment.
        await conn.execute(
            text(
                "CREATE FUNCTION die_at_commit() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NULL; END $$"
            )
        )
        await conn.execute(
            text(
                "CREATE CONSTRAINT TRIGGER die_at_commit AFTER INSERT ON webhook_events "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                "WHEN (NEW.webhook_id LIKE 'die-%') EXECUTE FUNCTION die_at_commit()"
            )
        )
    try:
        async with one_batch(client, app, engine) as held:
            await held.post(shop, order_event(3, 1, DELIVERED))
            await held.post(shop, order_event(4, 1, DELIVERED), msg_id=f"die-{unix()}")
            await held.post(shop, order_event(5, 1, DELIVERED))
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("DROP TRIGGER die_at_commit ON webhook_events"))
            await conn.execute(text("DROP FUNCTION die_at_commit()"))
    for answer in await held.answers():
        assert_problem(answer, 503)
    async with engine.connect() as conn:
        stored = set(
            await conn.scalars(select(WebhookEvent.id).where(WebhookEvent.shop_id == shop.id))
        )
        orders = set(await conn.scalars(select(Order.order_id).where(Order.shop_id == shop.id)))
    assert {a.json()["event_id"] for a in earlier} <= stored, "an accepted webhook was lost"
    assert orders == {1, 2}, "a webhook answered 503 was recorded"
    # The service goes on: the next webhook is accepted.
    again = await post_event(client, shop, order_event(3, 1, DELIVERED))
    assert (again.status_code, again.json()["status"]) == (202, "accepted"), again.text
