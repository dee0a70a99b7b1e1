"""Export and erase everything one shop holds about one e-mail address.

Erasure keeps the facts the figures are made of (an order was delivered, a request was sent, a
review rated 4) and removes who: names and addresses are replaced by a keyed hash, comments and
raw webhook bodies are emptied, and the address stays suppressed by its hash so it is never
written to again.
"""

import json
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, false, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.dialect import PerDialect
from app.hooks.models import HookDelivery, HookEndpoint
from app.orders.models import Order
from app.orders.service import normalize_email
from app.requests.models import Delivery, RequestStep, ReviewRequest
from app.reviews.models import Review, ReviewProduct
from app.security import address_hash, address_key
from app.suppressions.models import Suppression
from app.tickets.models import Ticket, TicketMessage
from app.webhooks.models import WebhookEvent

PURGED = ""


def _rows(result: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in result.mappings()]


def _payload(text: str) -> Any:
    if not text:
        return None  # purged after the retention period
    try:
        return json.loads(text)
    except ValueError:
        return text


async def export(
    conn: AsyncConnection, shop_id: str, email: str, secret_key: str
) -> dict[str, Any]:
    """Every row of the shop that concerns the address, as plain data (orders, the events
    that told of them, review requests and their e-mails, reviews, suppression entries, support
    tickets and their messages)."""
    normalized = normalize_email(email)
    orders = _rows(
        await conn.execute(
            select(Order).where(Order.shop_id == shop_id, Order.email_normalized == normalized)
        )
    )
    order_ids = [o["order_id"] for o in orders]
    events = _rows(
        await conn.execute(
            select(WebhookEvent)
            .where(WebhookEvent.shop_id == shop_id, WebhookEvent.order_id.in_(order_ids))
            .order_by(WebhookEvent.id)
        )
    )
    for event in events:
        event["payload"] = _payload(event["payload"])
    requests = _rows(
        await conn.execute(
            select(ReviewRequest)
            .where(ReviewRequest.shop_id == shop_id, ReviewRequest.email_normalized == normalized)
            .order_by(ReviewRequest.id)
        )
    )
    request_ids = [r["id"] for r in requests]
    deliveries = _rows(
        await conn.execute(
            select(Delivery).where(Delivery.request_id.in_(request_ids)).order_by(Delivery.id)
        )
    )
    reviews = _rows(
        await conn.execute(
            select(Review).where(Review.request_id.in_(request_ids)).order_by(Review.id)
        )
    )
    products = _rows(
        await conn.execute(
            select(ReviewProduct).where(ReviewProduct.review_id.in_([r["id"] for r in reviews]))
        )
    )
    for review in reviews:
        review["products"] = [p for p in products if p["review_id"] == review["id"]]
    hashed = address_hash(address_key(secret_key), normalized)
    suppressions = _rows(
        await conn.execute(
            select(Suppression.reason, Suppression.created_at, Suppression.email).where(
                Suppression.shop_id == shop_id,
                Suppression.email_hash == hashed,
                Suppression.email.is_not(None),  # an erased address is no one's data any more
            )
        )
    )
    outgoing = _rows(
        await conn.execute(
            select(
                HookDelivery.event_type,
                HookDelivery.created_at,
                HookDelivery.status,
                HookDelivery.delivered_at,
                HookDelivery.body,
            )
            .where(_hook_deliveries_of(shop_id, request_ids))
            .order_by(HookDelivery.id)
        )
    )
    for delivery in outgoing:
        delivery["body"] = _payload(delivery["body"])
    tickets = _rows(
        await conn.execute(
            select(Ticket)
            .where(Ticket.shop_id == shop_id, Ticket.email_normalized == normalized)
            .order_by(Ticket.id)
        )
    )
    messages = _rows(
        await conn.execute(
            select(TicketMessage)
            .where(TicketMessage.ticket_id.in_([t["id"] for t in tickets]))
            .order_by(TicketMessage.sent_at, TicketMessage.id)
        )
    )
    return {
        "email": normalized,
        "orders": orders,
        "events": events,
        "outgoing_webhooks": outgoing,
        "review_requests": [
            {**r, "deliveries": [d for d in deliveries if d["request_id"] == r["id"]]}
            for r in requests
        ],
        "reviews": reviews,
        "suppressions": suppressions,
        "tickets": [
            {**t, "messages": [m for m in messages if m["ticket_id"] == t["id"]]} for t in tickets
        ],
    }


def _hook_deliveries_of(shop_id: str, request_ids: list[int]) -> ColumnElement[bool]:
    """The shop's outgoing webhook deliveries about these requests: `review_request.*` bodies
    begin `"data":{"id":N,`, `review.*` bodies carry `"request_id":N,` (hooks.service.body
    writes compact JSON in a fixed key order)."""
    if not request_ids:
        return false()
    patterns = [
        pattern
        for request_id in request_ids
        for pattern in (f'%"data":{{"id":{request_id},%', f'%"request_id":{request_id},%')
    ]
    return HookDelivery.endpoint_id.in_(
        select(HookEndpoint.id).where(HookEndpoint.shop_id == shop_id)
    ) & or_(*(HookDelivery.body.like(p) for p in patterns))


def _suppress(insert_: Any) -> Any:
    stmt = insert_(Suppression)
    return stmt.on_conflict_do_update(
        index_elements=[Suppression.shop_id, Suppression.email_hash],
        set_={"email": None},
    )


_SUPPRESS = PerDialect(_suppress)


async def erase(
    conn: AsyncConnection, shop_id: str, email: str, secret_key: str, now: datetime
) -> dict[str, int]:
    """Make the address unidentifiable in the shop's data; how many rows of each kind changed."""
    normalized = normalize_email(email)
    hashed = address_hash(address_key(secret_key), normalized)
    placeholder = f"erased:{hashed[:40]}"  # still groups one customer's rows, names no one
    order_ids = list(
        (
            await conn.scalars(
                select(Order.order_id).where(
                    Order.shop_id == shop_id, Order.email_normalized == normalized
                )
            )
        ).all()
    )
    request_ids = list(
        (
            await conn.scalars(
                select(ReviewRequest.id).where(
                    ReviewRequest.shop_id == shop_id, ReviewRequest.email_normalized == normalized
                )
            )
        ).all()
    )
    counts = {"orders": len(order_ids), "review_requests": len(request_ids)}
    await conn.execute(
        update(Order)
        .where(Order.shop_id == shop_id, Order.order_id.in_(order_ids))
        .values(
            email=placeholder,
            email_normalized=placeholder,
            customer_id=None,
            firstname=None,
            lastname=None,
            country=None,
            group_ids=None,
            updated_at=now,
        )
    )
    events = await conn.execute(
        update(WebhookEvent)
        .where(WebhookEvent.shop_id == shop_id, WebhookEvent.order_id.in_(order_ids))
        .values(payload=PURGED)
    )
    counts["events"] = events.rowcount
    await conn.execute(
        update(ReviewRequest)
        .where(ReviewRequest.id.in_(request_ids))
        .values(email=placeholder, email_normalized=placeholder, updated_at=now)
    )
    await conn.execute(
        update(Delivery).where(Delivery.request_id.in_(request_ids)).values(last_error=None)
    )
    # Outgoing webhooks that told of these requests or their reviews (the customer's address,
    # a comment) go, delivered or not: the merchant's receiver has its own copy.
    hooks = await conn.execute(
        delete(HookDelivery).where(_hook_deliveries_of(shop_id, request_ids))
    )
    counts["outgoing_webhooks"] = hooks.rowcount
    # A re-queue's step quotes the SMTP error, which may name the address.
    await conn.execute(
        update(RequestStep)
        .where(RequestStep.request_id.in_(request_ids), RequestStep.step == "re-queued")
        .values(detail="by hand, with fresh attempts")
    )
    reviews = await conn.execute(
        update(Review)
        .where(Review.request_id.in_(request_ids))
        .values(comment=None, updated_at=now)
    )
    counts["reviews"] = reviews.rowcount
    # Support threads keep their timings (the shop's KPIs) but lose who wrote and what.
    ticket_ids = list(
        (
            await conn.scalars(
                select(Ticket.id).where(
                    Ticket.shop_id == shop_id, Ticket.email_normalized == normalized
                )
            )
        ).all()
    )
    counts["tickets"] = len(ticket_ids)
    await conn.execute(
        update(Ticket)
        .where(Ticket.id.in_(ticket_ids))
        .values(
            customer_email=placeholder, email_normalized=placeholder, subject=None, updated_at=now
        )
    )
    messages = await conn.execute(
        update(TicketMessage).where(TicketMessage.ticket_id.in_(ticket_ids)).values(body=None)
    )
    counts["ticket_messages"] = messages.rowcount
    await conn.execute(
        _SUPPRESS.on(conn),
        {
            "shop_id": shop_id,
            "email_hash": hashed,
            "email": None,
            "reason": "manual",
            "created_at": now,
        },
    )
    return counts
