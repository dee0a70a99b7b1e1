"""GDPR: export everything held about one address, then erase it; the figures survive."""

from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.requests.models import ReviewRequest
from app.reviews.models import Review
from app.security import address_hash, address_key
from app.suppressions.models import Suppression
from app.tickets.models import Ticket, TicketMessage
from app.webhooks.models import WebhookEvent
from tests.factories import create_shop, order_event, post_event
from tests.problems import assert_validation_problem
from tests.reviews.test_review_page import send_one

MARIE = "Marie.Dupont@Example.fr "  # the factory's customer, as PrestaShop sends her


async def export(
    client: httpx.AsyncClient, shop: Any, email: str = "marie.dupont@example.fr"
) -> Any:
    response = await client.get(
        f"/api/v1/shops/{shop.id}/personal-data", params={"email": email}, headers=shop.auth
    )
    assert response.status_code == 200, response.text
    return response.json()


async def counts(engine: AsyncEngine) -> tuple[int, int, list[int]]:
    async with engine.connect() as conn:
        requests = await conn.scalar(select(func.count()).select_from(ReviewRequest)) or 0
        reviews = await conn.scalar(select(func.count()).select_from(Review)) or 0
        ratings = list((await conn.scalars(select(Review.rating).order_by(Review.id))).all())
    return requests, reviews, ratings


async def test_export_then_erase(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    sent = await send_one(client, engine, settings)
    shop = sent.shop
    assert (
        await client.post(sent.link, data={"rating": "4", "comment": "Colis abîmé, mug intact."})
    ).status_code == 200
    other = order_event(2000, 1, 5, email="jean@example.fr", firstname="Jean")
    assert (await post_event(client, shop, other)).status_code == 202

    tickets = f"/api/v1/shops/{shop.id}/tickets"
    ticket = await client.post(
        tickets,
        json={"external_id": "t1", "customer_email": MARIE, "category": "after_sale"},
        headers=shop.auth,
    )
    assert ticket.status_code == 201, ticket.text
    message = {"external_id": "m1", "author": "customer", "sent_at": "2026-11-30T10:00:00Z",
               "body": "Où est mon colis ? Marie Dupont, 12 rue des Lilas"}  # fmt: skip
    posted = await client.post(
        f"{tickets}/{ticket.json()['id']}/messages", json=message, headers=shop.auth
    )
    assert posted.status_code == 201, posted.text

    data = await export(client, shop, "  MARIE.dupont@example.FR")
    [thread] = data["tickets"]
    assert thread["email_normalized"] == "marie.dupont@example.fr"
    assert [m["body"] for m in thread["messages"]] == [message["body"]]
    assert data["email"] == "marie.dupont@example.fr"
    assert [o["order_id"] for o in data["orders"]] == [1042]
    assert data["orders"][0]["firstname"] == "Marie"
    assert [e["payload"]["data"]["customer"]["firstname"] for e in data["events"]] == ["Marie"]
    [request] = data["review_requests"]
    assert [d["status"] for d in request["deliveries"]] == ["sent"]
    [review] = data["reviews"]
    assert (review["rating"], review["comment"]) == (4, "Colis abîmé, mug intact.")
    assert review["products"] == []
    assert data["suppressions"] == []
    before = await counts(engine)

    erased = await client.delete(
        f"/api/v1/shops/{shop.id}/personal-data", params={"email": MARIE.strip()}, headers=shop.auth
    )
    assert erased.status_code == 200, erased.text
    assert erased.json()["erased"] == {
        "orders": 1, "review_requests": 1, "events": 1, "reviews": 1, "outgoing_webhooks": 0,
        "tickets": 1, "ticket_messages": 1,
    }  # fmt: skip

    after = await export(client, shop)
    assert {k: v for k, v in after.items() if k != "email"} == {
        "orders": [], "events": [], "review_requests": [], "reviews": [], "suppressions": [],
        "outgoing_webhooks": [], "tickets": [],
    }  # fmt: skip
    assert await counts(engine) == before  # the figures are intact: a 4-star review, one request
    async with engine.connect() as conn:
        payloads = dict(
            (await conn.execute(select(WebhookEvent.order_id, WebhookEvent.payload))).all()
        )
        suppression = (await conn.execute(select(Suppression))).mappings().one()
        comment = await conn.scalar(select(Review.comment))
    assert payloads[1042] == ""
    assert "Jean" in payloads[2000]  # another customer's data is untouched
    assert comment is None
    async with engine.connect() as conn:
        kept = (await conn.execute(select(Ticket.customer_email, Ticket.first_needing_at))).one()
        bodies = (await conn.scalars(select(TicketMessage.body))).all()
    assert kept.customer_email.startswith("erased:") and kept.first_needing_at is not None
    assert bodies == [None]  # the words go, the timings (the shop's KPIs) stay
    hashed = address_hash(address_key(settings.secret_key), "marie.dupont@example.fr")
    assert (suppression["email_hash"], suppression["email"]) == (hashed, None)
    jean = await export(client, shop, "jean@example.fr")
    assert [o["firstname"] for o in jean["orders"]] == ["Jean"]


async def test_another_shop_sees_nothing_and_bad_addresses_are_422(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    sent = await send_one(client, engine, settings)
    other = await create_shop(client, name="Autre")
    assert (await export(client, other))["orders"] == []
    refused = await client.get(
        f"/api/v1/shops/{sent.shop.id}/personal-data",
        params={"email": "not an address"},
        headers=sent.shop.auth,
    )
    assert_validation_problem(refused, ["query", "email"], source="query")
    stranger = await client.delete(
        f"/api/v1/shops/{sent.shop.id}/personal-data",
        params={"email": "marie.dupont@example.fr"},
        headers=other.auth,
    )
    assert stranger.status_code == 404
    assert len((await export(client, sent.shop))["orders"]) == 1
