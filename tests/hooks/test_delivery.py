"""Outgoing webhooks end to end: real flows queue events, a real receiver verifies each one
with the `standardwebhooks` package; retries, back-off, failure, disabling, rotation, SSRF."""

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db import transaction
from app.dispatch.jobs import Dispatcher
from app.hooks import queue
from app.hooks.jobs import HookSender
from app.hooks.sender import Answer
from app.hooks.vocabulary import HookStatus
from app.rekey import rekey
from app.security import REVIEW, sign_token
from tests.factories import ClientFor, ShopInfo, create_shop, order_event, post_event
from tests.hooks.receiver import Receiver, receiver

ALL = [
    "review.submitted",
    "review.published",
    "review_request.sent",
    "review_request.skipped",
    "review_request.cancelled",
]


@dataclass
class Setup:
    client: httpx.AsyncClient
    settings: Settings  # webhook_allow_private: the receiver is on loopback
    shop: ShopInfo
    receiver: Receiver
    endpoint: dict[str, Any]
    sender: HookSender

    @property
    def secret(self) -> str:
        return str(self.endpoint["secret"])

    def url(self, rest: str = "") -> str:
        return f"/api/v1/shops/{self.shop.id}/webhook-endpoints/{self.endpoint['id']}{rest}"

    async def deliveries(self) -> list[dict[str, Any]]:
        response = await self.client.get(self.url("/deliveries"), headers=self.shop.auth)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def state(self) -> dict[str, Any]:
        response = await self.client.get(self.url(), headers=self.shop.auth)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def cancel_order(self, order_id: int) -> None:
        """A delivered order, then cancelled: one `review_request.cancelled`."""
        assert (await post_event(self.client, self.shop, order_event(order_id, 1, 5))).is_success
        assert (await post_event(self.client, self.shop, order_event(order_id, 2, 6))).is_success


@pytest.fixture
def hook_receiver() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


@pytest.fixture
async def setup(
    client_for: ClientFor, settings: Settings, engine: AsyncEngine, hook_receiver: Receiver
) -> AsyncIterator[Setup]:
    allowing = settings.model_copy(update={"webhook_allow_private": True})
    client = await client_for(allowing)
    shop = await create_shop(client)
    response = await client.post(
        f"/api/v1/shops/{shop.id}/webhook-endpoints",
        json={"url": hook_receiver.url, "events": ALL},
        headers=shop.auth,
    )
    assert response.status_code == 201, response.text
    yield Setup(
        client, allowing, shop, hook_receiver, response.json(), HookSender(engine, allowing)
    )


def now() -> datetime:
    return datetime.now(UTC)


async def test_real_flows_send_verified_events_once_each(setup: Setup, engine: AsyncEngine) -> None:
    client, shop = setup.client, setup.shop
    # Another shop's endpoint, and one of this shop's for reviews.published only.
    other = await create_shop(client, name="Autre")
    published_only = await client.post(
        f"/api/v1/shops/{shop.id}/webhook-endpoints",
        json={"url": setup.receiver.url + "?published", "events": ["review.published"]},
        headers=shop.auth,
    )
    assert published_only.status_code == 201
    secrets = {"/hook": setup.secret, "/hook?published": published_only.json()["secret"]}
    await post_event(client, other, order_event(7, 1, 5))

    # An e-mail sent by the dispatcher: review_request.sent.
    assert (
        await post_event(client, shop, order_event(1042, 1, 5, email="marie@example.fr"))
    ).is_success
    sent_at = now() + timedelta(days=3)
    # Two e-mails: the other shop's has no endpoint, so no event.
    assert (await Dispatcher(engine, setup.settings).tick(now=sent_at)).sent == 2
    stats = await setup.sender.tick(now=sent_at)
    assert (stats.delivered, stats.retried) == (1, 0)
    [sent] = setup.receiver.received
    assert sent.signed_by(setup.secret)
    event = sent.event
    assert event["type"] == "review_request.sent"
    assert datetime.fromisoformat(event["timestamp"]) == sent_at
    data = event["data"]
    assert data["order_id"] == 1042 and data["shop_id"] == shop.id
    assert (data["status"], data["reason"], data["email"]) == ("sent", None, "marie@example.fr")
    assert datetime.fromisoformat(data["sent_at"]) == sent_at
    assert set(data) >= {"id", "public_id", "language", "due_at", "dry_run"}

    # A review through the review page: review.submitted; published by the merchant: one
    # review.published to each endpoint that wants it.
    token = sign_token(setup.settings.secret_key, REVIEW, data["public_id"])
    page = await client.post(f"/r/{token}", data={"rating": "4", "comment": "Joli mug."})
    assert page.status_code == 200, page.text
    [review] = (await client.get(f"/api/v1/shops/{shop.id}/reviews", headers=shop.auth)).json()[
        "items"
    ]
    published = await client.patch(
        f"/api/v1/shops/{shop.id}/reviews/{review['id']}",
        json={"status": "published"},
        headers=shop.auth,
    )
    assert published.status_code == 200
    again = await client.patch(
        f"/api/v1/shops/{shop.id}/reviews/{review['id']}",
        json={"status": "published", "reply": "Merci !"},
        headers=shop.auth,
    )
    assert again.status_code == 200  # already published: no second event

    # Cancelled by a webhook, and by the merchant's hand.
    await setup.cancel_order(2)
    await post_event(client, shop, order_event(3, 1, 5))
    [manual] = (
        await client.get(
            f"/api/v1/shops/{shop.id}/review-requests", params={"order_id": 3}, headers=shop.auth
        )
    ).json()["items"]
    cancel = await client.post(
        f"/api/v1/shops/{shop.id}/review-requests/{manual['id']}/cancel", headers=shop.auth
    )
    assert cancel.status_code in (200, 204), cancel.text

    stats = await setup.sender.tick()
    assert (stats.delivered, stats.retried, stats.failed) == (5, 0, 0)
    assert (await setup.sender.tick()).delivered == 0
    later = setup.receiver.received[1:]
    for received in later:
        # Signature, timestamp tolerance and body, by the reference package.
        assert received.verify(secrets[received.path]) == received.event
    # Six messages, each once; one event to two endpoints keeps its webhook-id.
    assert len({(r.path, r.headers["webhook-id"]) for r in setup.receiver.received}) == 6
    assert len({r.headers["webhook-id"] for r in setup.receiver.received}) == 5
    by_type = sorted((r.event["type"], r.event["data"].get("reason")) for r in later)
    assert by_type == [
        ("review.published", None),
        ("review.published", None),
        ("review.submitted", None),
        ("review_request.cancelled", "manual"),
        ("review_request.cancelled", "order_cancelled"),
    ]
    submitted = next(r.event["data"] for r in later if r.event["type"] == "review.submitted")
    assert (submitted["rating"], submitted["comment"], submitted["status"]) == (
        4,
        "Joli mug.",
        "pending",
    )
    assert (submitted["order_id"], submitted["language"]) == (1042, "fr")
    public = [r for r in later if r.event["type"] == "review.published"]
    assert {r.event["data"]["status"] for r in public} == {"published"}
    log = await setup.deliveries()
    assert len(log) == 5  # the published-only endpoint's delivery is in its own log
    assert all(d["status"] == "delivered" and d["attempts"] == 1 for d in log)
    assert all(d["attempt_log"][0]["status_code"] == 204 for d in log)


async def test_a_receiver_that_fails_then_recovers_gets_each_event_once(setup: Setup) -> None:
    setup.receiver.status = 500
    await setup.cancel_order(1)
    t0 = now()
    first = await setup.sender.tick(now=t0)
    assert (first.delivered, first.retried) == (0, 1)
    [delivery] = await setup.deliveries()
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == (
        "scheduled",
        1,
        500,
    )
    [attempt] = delivery["attempt_log"]
    assert attempt["status_code"] == 500 and attempt["duration_ms"] >= 0
    assert attempt["error"] is not None and len(attempt["error"]) <= 200  # an excerpt only
    # Back-off: 30 s, then doubling.
    assert datetime.fromisoformat(delivery["due_at"]) == t0 + timedelta(seconds=30)
    assert (await setup.sender.tick(now=t0 + timedelta(seconds=29))).retried == 0
    assert (await setup.sender.tick(now=t0 + timedelta(seconds=30))).retried == 1
    [delivery] = await setup.deliveries()
    assert datetime.fromisoformat(delivery["due_at"]) == t0 + timedelta(seconds=90)
    assert (await setup.state())["failing_since"] is not None

    await setup.cancel_order(2)  # while it is down
    setup.receiver.status = 204
    back = t0 + timedelta(minutes=10)
    assert (await setup.sender.tick(now=back)).delivered == 2
    assert (await setup.sender.tick(now=back + timedelta(hours=2))).delivered == 0
    orders = sorted(r.event["data"]["order_id"] for r in setup.receiver.received)
    assert orders == [1, 2]
    assert all(r.signed_by(setup.secret) for r in setup.receiver.received)
    assert (await setup.state())["failing_since"] is None
    log = await setup.deliveries()
    assert [(d["status"], d["attempts"]) for d in log] == [("delivered", 1), ("delivered", 3)]


async def test_retries_end_24_hours_after_the_event(setup: Setup) -> None:
    setup.receiver.status = 503
    await setup.cancel_order(1)
    [queued] = await setup.deliveries()
    created = datetime.fromisoformat(queued["created_at"])
    await setup.sender.tick(now=created)
    almost = created + timedelta(hours=23, minutes=59)
    assert (await setup.sender.tick(now=almost)).retried == 1
    [delivery] = await setup.deliveries()
    # The back-off would go past the 24 hours: the last attempt is at the 24th hour.
    assert datetime.fromisoformat(delivery["due_at"]) == created + timedelta(hours=24)
    stats = await setup.sender.tick(now=created + timedelta(hours=24))
    assert (stats.failed, stats.retried) == (1, 0)
    [delivery] = await setup.deliveries()
    assert (delivery["status"], delivery["attempts"], delivery["due_at"]) == ("failed", 3, None)
    assert (await setup.sender.tick(now=created + timedelta(days=2))).failed == 0
    assert (await setup.state())["enabled"] is True  # one day of failures: still enabled


async def test_an_endpoint_failing_for_3_days_is_disabled(setup: Setup) -> None:
    setup.receiver.status = 500
    await setup.cancel_order(1)
    t0 = now()
    await setup.sender.tick(now=t0)
    await setup.cancel_order(2)
    await setup.sender.tick(now=t0 + timedelta(days=2, hours=23))
    assert (await setup.state())["enabled"] is True
    await setup.cancel_order(3)
    await setup.sender.tick(now=t0 + timedelta(days=3))
    state = await setup.state()
    assert (state["enabled"], state["disabled_reason"]) == (False, "failing")
    assert datetime.fromisoformat(state["disabled_at"]) == t0 + timedelta(days=3)
    assert datetime.fromisoformat(state["failing_since"]) == t0
    # Nothing is queued for a disabled endpoint, and nothing left is tried again.
    await setup.cancel_order(4)
    assert {d["status"] for d in await setup.deliveries()} == {"failed"}
    assert len(await setup.deliveries()) == 3
    # Re-enabled by the merchant: new events flow again.
    setup.receiver.status = 204
    on = await setup.client.patch(setup.url(), json={"enabled": True}, headers=setup.shop.auth)
    assert (on.json()["enabled"], on.json()["failing_since"]) == (True, None)
    await setup.cancel_order(5)
    assert (await setup.sender.tick()).delivered == 1
    assert [r.event["data"]["order_id"] for r in setup.receiver.received] == [5]


async def test_a_rotated_secret_signs_beside_the_old_one_during_the_overlap(setup: Setup) -> None:
    rotated = await setup.client.post(
        setup.url("/rotate-secret"), json={"previous_valid_for": "P1D"}, headers=setup.shop.auth
    )
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new.startswith("whsec_") and new != setup.secret
    assert new not in (await setup.client.get(setup.url(), headers=setup.shop.auth)).text
    await setup.cancel_order(1)
    await setup.sender.tick()
    [during] = setup.receiver.received
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert during.verify(setup.secret) == during.verify(new) == during.event
    await setup.cancel_order(2)
    await setup.sender.tick(now=now() + timedelta(days=1, minutes=1))
    after = setup.receiver.received[1]
    assert after.signed_by(new) and not after.signed_by(setup.secret)


async def test_the_address_is_checked_again_at_each_delivery(
    setup: Setup, engine: AsyncEngine
) -> None:
    # Registered while private addresses were allowed; the operator then forbids them.
    patched = await setup.client.patch(
        setup.url(), json={"url": setup.receiver.localhost_url}, headers=setup.shop.auth
    )
    assert patched.status_code == 200
    await setup.cancel_order(1)
    strict = HookSender(engine, setup.settings.model_copy(update={"webhook_allow_private": False}))
    assert (await strict.tick()).retried == 1
    assert setup.receiver.received == []
    [delivery] = await setup.deliveries()
    [attempt] = delivery["attempt_log"]
    assert attempt["status_code"] is None
    assert "loopback" in attempt["error"] and "localhost" in attempt["error"]
    # Allowed again: the same delivery goes through, to the name's checked address.
    assert (await setup.sender.tick(now=now() + timedelta(minutes=1))).delivered == 1
    [received] = setup.receiver.received
    assert received.headers["host"] == f"localhost:{setup.receiver.port}"


async def test_rekey_moves_the_endpoint_secrets(setup: Setup, engine: AsyncEngine) -> None:
    rotated = await setup.client.post(setup.url("/rotate-secret"), headers=setup.shop.auth)
    new = rotated.json()["secret"]
    await setup.cancel_order(1)
    done = await rekey(engine, setup.settings.secret_key, "another-secret-key")
    assert done.reencrypted >= 3  # the shop's secret, the endpoint's two
    moved = setup.settings.model_copy(update={"secret_key": "another-secret-key"})
    assert (await HookSender(engine, moved).tick()).delivered == 1
    [received] = setup.receiver.received
    assert received.verify(setup.secret) == received.verify(new) == received.event


async def test_an_outcome_is_recorded_only_while_the_claim_is_ours(
    setup: Setup, engine: AsyncEngine
) -> None:
    await setup.cancel_order(1)
    t0 = now()
    async with transaction(engine) as conn:
        [first] = await queue.claim(conn, "worker-a", t0, 120, 10)
        assert await queue.claim(conn, "worker-b", t0, 120, 10) == []  # leased
    later = t0 + timedelta(seconds=121)  # worker-a's lease ran out: worker-b takes it over
    async with transaction(engine) as conn:
        [second] = await queue.claim(conn, "worker-b", later, 120, 10)
    assert (second.delivery_id, second.attempts) == (first.delivery_id, 2)
    ok = Answer(200, 5, None)
    async with transaction(engine) as conn:
        assert await queue.record(conn, first, "worker-a", later, ok) is None
        assert await queue.record(conn, second, "worker-b", later, ok) == HookStatus.DELIVERED
    [delivery] = await setup.deliveries()
    assert [a["attempt"] for a in delivery["attempt_log"]] == [2]
