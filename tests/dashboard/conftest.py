"""The dashboard's fixtures: a browser-like client (its own address, cookies kept, HTTPS so the
Secure cookie is sent back), sign-in through the form, and a shop seeded through the API."""

import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.requests.models import Delivery, ReviewRequest
from tests.dispatch.test_dispatch import LATER, at, dispatcher
from tests.factories import ShopInfo, create_shop, order_event, post_event
from tests.smtp_sink import smtp_sink

DASHBOARD_URL = "https://relance.test"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
PUBLIC = "https://reviews.example.test"


def client_of(app: FastAPI) -> httpx.AsyncClient:
    """A client with an address of its own, so sign-in rate limits never cross tests."""
    address = f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=DASHBOARD_URL)


@pytest.fixture
async def dash(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(app) as c:
        yield c


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:2000]
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, api_key: str) -> httpx.Response:
    form = await client.get("/dashboard/login")
    assert form.status_code == 200, form.text
    return await client.post(
        "/dashboard/login", data={"csrf": csrf_of(form.text), "api_key": api_key}
    )


async def signed_in(client: httpx.AsyncClient, api_key: str) -> None:
    answer = await sign_in(client, api_key)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/dashboard"


@dataclass
class Seed:
    shop: ShopInfo
    review_id: int
    reviewed_request: int
    cancelled_request: int
    ticket_id: int


async def seed(client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings) -> Seed:
    """A French shop with two e-mails sent this week (one reviewed 5 stars), an order
    cancelled before its e-mail, and an answered ticket — every row made through the API."""
    shop = await create_shop(client, "La Poterie")
    for order_id, email in ((1, "marie@example.fr"), (2, "paul@example.fr")):
        event = order_event(order_id, 1, 5, email=email)
        assert (await post_event(client, shop, event)).status_code == 202
    with smtp_sink() as (sink, port):
        assert (await dispatcher(engine, settings, port).tick(now=at(LATER))).sent == 2
    # Sent a minute ago (the tick ran days ahead): in this week's figures, and a click now
    # reads as a person's.
    ago = datetime.now(UTC) - timedelta(minutes=1)
    async with engine.begin() as conn:
        await conn.execute(update(Delivery).values(sent_at=ago))
        await conn.execute(update(ReviewRequest).values(sent_at=ago))
    html = next(m for m in sink.messages if m["To"] == "marie@example.fr").get_body(("html",))
    assert html is not None
    link = re.findall(rf'href="{re.escape(PUBLIC)}(/r/[^"?]+)', html.get_content())[0]
    page = await client.get(link, headers={"User-Agent": BROWSER})
    assert page.status_code == 200, page.text
    thanks = await client.post(link, data={"rating": "5", "comment": "Très beau mug."})
    assert thanks.status_code == 200, thanks.text

    assert (await post_event(client, shop, order_event(3, 1, 5))).status_code == 202
    assert (await post_event(client, shop, order_event(3, 2, 6))).status_code == 202

    api = f"/api/v1/shops/{shop.id}"
    requests = (await client.get(f"{api}/review-requests", headers=shop.auth)).json()["items"]
    by_order = {r["order_id"]: r for r in requests}
    reviews = (await client.get(f"{api}/reviews", headers=shop.auth)).json()["items"]
    now = datetime.now(UTC)
    ticket = await client.post(
        f"{api}/tickets",
        json={
            "external_id": "t-1",
            "customer_email": "marie@example.fr",
            "category": "after_sale",
            "subject": "Colis abîmé",
            "created_at": (now - timedelta(hours=3)).isoformat(),
        },
        headers=shop.auth,
    )
    assert ticket.status_code == 201, ticket.text
    ticket_id = ticket.json()["id"]
    for ext, author, body, hours in (
        ("m-1", "customer", "Bonjour, mon mug est arrivé cassé.", 3),
        ("m-2", "agent", "Nous vous en renvoyons un aujourd'hui.", 1),
    ):
        message = await client.post(
            f"{api}/tickets/{ticket_id}/messages",
            json={
                "external_id": ext,
                "author": author,
                "body": body,
                "sent_at": (now - timedelta(hours=hours)).isoformat(),
            },
            headers=shop.auth,
        )
        assert message.status_code == 201, message.text
    return Seed(shop, reviews[0]["id"], by_order[1]["id"], by_order[3]["id"], ticket_id)


@pytest.fixture
async def seeded(client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings) -> Seed:
    return await seed(client, engine, settings)
