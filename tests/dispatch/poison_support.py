"""Poison deliveries planted at the head of the queue, among innocent ones, and what became of each.

The rows are written straight into the database, as the inbox writes them, so each test decides
the order of the queue (`due_at`) and can break what the API would never let through: a shop's
stored settings JSON, an order row that has gone.
"""

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.orders.models import Order
from app.requests.models import Delivery, ReviewRequest
from app.shops.models import Shop
from app.webhooks.schemas import OrderStatusChanged
from tests.factories import create_shop, order_event
from tests.smtp_sink import SinkHandler, free_port

NON_ASCII = "mårie@exämple.fr"

# Each kind of poison, and how it is planted.
NON_ASCII_KIND = "non_ascii"  # a recipient that needs SMTPUTF8
MAX_AGE_KIND = "bad_max_age"  # stored settings: the skip rule overflowed
REMINDERS_KIND = "bad_reminders"  # stored settings: scheduling the reminder overflowed
NO_ORDER_KIND = "no_order"  # the request's order row is missing
KINDS = (NON_ASCII_KIND, MAX_AGE_KIND, REMINDERS_KIND, NO_ORDER_KIND)
BROKEN_SETTINGS: dict[str, dict[str, Any]] = {
    MAX_AGE_KIND: {"max_age": "P9999999999D"},
    REMINDERS_KIND: {"reminders": ["P99999999D"]},
}

# "ValidationError: …", "OverflowError", "LookupError(…)": the class of what went wrong.
EXCEPTION_CLASS = re.compile(r"\b[A-Z][A-Za-z0-9]*(Error|Exception)\b")


@contextmanager
def sink(*, smtputf8: bool) -> Iterator[tuple[SinkHandler, int]]:
    """A real aiosmtpd server that offers SMTPUTF8 in its EHLO answer, or does not."""
    handler = SinkHandler()
    port = free_port()
    # aiosmtpd's Controller offers SMTPUTF8 unless told otherwise.
    controller = Controller(handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=smtputf8)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def received(handler: SinkHandler) -> Counter[str]:
    """How many times each Message-ID reached the sink."""
    with handler.lock:
        return Counter(str(m["Message-ID"]) for m in handler.messages)


@dataclass
class Planted:
    """Delivery ids of the innocent e-mails and of each poison (id → kind)."""

    innocents: list[int] = field(default_factory=list)
    poisons: dict[int, str] = field(default_factory=dict)
    shop_ids: list[str] = field(default_factory=list)


async def insert_due(
    engine: AsyncEngine,
    shop_id: str,
    emails: Sequence[str],
    due: Sequence[datetime],
    first_order_id: int,
) -> list[int]:
    """A paid, delivered order, its scheduled request and first delivery per e-mail address."""
    products = [
        p.model_dump(mode="json")
        for p in OrderStatusChanged.model_validate(order_event(1, 1, 5)).data.products
    ]
    rows = list(zip(range(first_order_id, first_order_id + len(emails)), emails, due, strict=True))
    async with engine.begin() as conn:
        await conn.execute(
            insert(Order),
            [
                {
                    "shop_id": shop_id,
                    "order_id": order_id,
                    "reference": f"REF{order_id}",
                    "customer_id": order_id,
                    "email": email,
                    "email_normalized": email.lower(),
                    "firstname": "Marie",
                    "lastname": "Dupont",
                    "language": "fr",
                    "currency": "EUR",
                    "total_paid": "59.90",
                    "ordered_at": at - timedelta(days=5),
                    "products": products,
                    "state_id": 5,
                    "state_name": "Delivered",
                    "history_id": 1,
                    "state_at": at,
                    "paid_at": at,
                    "created_at": at,
                    "updated_at": at,
                }
                for order_id, email, at in rows
            ],
        )
        request_ids = (
            await conn.scalars(
                insert(ReviewRequest).returning(ReviewRequest.id, sort_by_parameter_order=True),
                [
                    {
                        "shop_id": shop_id,
                        "order_id": order_id,
                        "email": email,
                        "email_normalized": email.lower(),
                        "language": "fr",
                        "status": "scheduled",
                        "source": "trigger",
                        "trigger_history_id": 1,
                        "trigger_at": at,
                        "due_at": at,
                        "created_at": at,
                        "updated_at": at,
                    }
                    for order_id, email, at in rows
                ],
            )
        ).all()
        delivery_ids = (
            await conn.scalars(
                insert(Delivery).returning(Delivery.id, sort_by_parameter_order=True),
                [
                    {
                        "request_id": request_id,
                        "shop_id": shop_id,
                        "kind": "first",
                        "seq": 0,
                        "status": "scheduled",
                        "due_at": at,
                        "attempts": 0,
                        "created_at": at,
                        "updated_at": at,
                    }
                    for request_id, (_, _, at) in zip(request_ids, rows, strict=True)
                ],
            )
        ).all()
    return list(delivery_ids)


async def break_settings(engine: AsyncEngine, shop_id: str, **values: Any) -> None:
    """Overwrite a shop's stored settings JSON, as an older version (or a person) might have.

    `updated_at` moves too, as with any write to the row, so no process keeps serving the
    settings it parsed before.
    """
    async with engine.begin() as conn:
        current = await conn.scalar(select(Shop.settings).where(Shop.id == shop_id))
        assert isinstance(current, dict)
        await conn.execute(
            update(Shop)
            .where(Shop.id == shop_id)
            .values(settings={**current, **values}, updated_at=datetime.now(UTC))
        )


async def delete_order_of(engine: AsyncEngine, delivery_ids: Sequence[int]) -> None:
    """Remove the order rows behind these deliveries; requests and deliveries stay."""
    async with engine.begin() as conn:
        keys = (
            await conn.execute(
                select(ReviewRequest.shop_id, ReviewRequest.order_id)
                .join(Delivery, Delivery.request_id == ReviewRequest.id)
                .where(Delivery.id.in_(delivery_ids))
            )
        ).all()
        for shop_id, order_id in keys:
            await conn.execute(
                delete(Order).where(Order.shop_id == shop_id, Order.order_id == order_id)
            )


async def plant(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    *,
    innocents: int,
    per_kind: int,
    kinds: Sequence[str] = KINDS,
    base: datetime,
) -> Planted:
    """Poisons due an hour before `base` (the head of the queue), innocents a minute before.

    Innocents and the non-ASCII and order-less poisons belong to one healthy shop; each kind
    of broken settings has a shop of its own.
    """
    planted = Planted()
    good = await create_shop(client, "Boutique saine")
    planted.shop_ids.append(good.id)
    next_order = 1
    for k, kind in enumerate(kinds):
        due = [
            base - timedelta(hours=1) + timedelta(seconds=k * per_kind + i) for i in range(per_kind)
        ]
        if kind in BROKEN_SETTINGS:
            shop = await create_shop(client, f"Boutique {kind}")
            planted.shop_ids.append(shop.id)
            emails = [f"victim{i}@{kind.replace('_', '-')}.example" for i in range(per_kind)]
            ids = await insert_due(engine, shop.id, emails, due, 1)
            await break_settings(engine, shop.id, **BROKEN_SETTINGS[kind])
        elif kind == NON_ASCII_KIND:
            emails = [NON_ASCII if i == 0 else f"mårie{i}@exämple.fr" for i in range(per_kind)]
            ids = await insert_due(engine, good.id, emails, due, next_order)
        elif kind == NO_ORDER_KIND:
            emails = [f"lost{i}@example.fr" for i in range(per_kind)]
            ids = await insert_due(engine, good.id, emails, due, next_order)
            await delete_order_of(engine, ids)
        else:
            raise ValueError(kind)
        next_order += per_kind
        planted.poisons.update(dict.fromkeys(ids, kind))
    due = [base - timedelta(minutes=1) + timedelta(milliseconds=i) for i in range(innocents)]
    emails = [f"c{i}@example.fr" for i in range(innocents)]
    planted.innocents = await insert_due(engine, good.id, emails, due, next_order)
    return planted


@dataclass(frozen=True)
class Outcome:
    """What became of one delivery, and of the request it belongs to."""

    status: str
    reason: str | None
    attempts: int
    last_error: str | None
    message_id: str | None
    recipient: str
    request_status: str
    request_reason: str | None


async def outcomes(engine: AsyncEngine) -> dict[int, Outcome]:
    """Every delivery in the database, by id."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(
                Delivery.id,
                Delivery.status,
                Delivery.reason,
                Delivery.attempts,
                Delivery.last_error,
                Delivery.message_id,
                ReviewRequest.email,
                ReviewRequest.status.label("request_status"),
                ReviewRequest.reason.label("request_reason"),
            ).join(ReviewRequest, ReviewRequest.id == Delivery.request_id)
        )
        return {
            r.id: Outcome(
                r.status,
                r.reason,
                r.attempts,
                r.last_error,
                r.message_id,
                r.email,
                r.request_status,
                r.request_reason,
            )
            for r in rows
        }


def expected_end(kind: str, *, smtputf8: bool) -> tuple[str, str | None]:
    """The documented end state (status, reason) of a poison of this kind."""
    if kind == NON_ASCII_KIND:
        return ("sent", None) if smtputf8 else ("failed", "smtputf8_unsupported")
    return ("failed", "internal_error")


def check_run(
    planted: Planted,
    rows: dict[int, Outcome],
    at_sink: Counter[str],
    *,
    smtputf8: bool,
    max_attempts: int,
) -> None:
    """The assertions every poison run shares: each innocent once, each poison alone at its end."""
    # Not rewritten by pytest (a helper module): each assertion says what it saw.
    pending = {d: o for d, o in rows.items() if o.status in ("sending", "scheduled")}
    assert pending == {}, f"left pending: {pending}"
    unbounded = {d: o.attempts for d, o in rows.items() if not 1 <= o.attempts <= max_attempts}
    assert unbounded == {}, f"attempts outside 1..{max_attempts}: {unbounded}"
    for delivery in planted.innocents:
        outcome = rows[delivery]
        got = (outcome.status, outcome.attempts, outcome.request_status)
        assert got == ("sent", 1, "sent"), f"innocent {delivery}: {outcome}"
        copies = at_sink[outcome.message_id or ""]
        assert copies == 1, f"innocent {delivery} at the sink {copies} times: {outcome}"
    innocent_ids = {rows[d].message_id for d in planted.innocents}
    for delivery, kind in planted.poisons.items():
        outcome = rows[delivery]
        status, reason = expected_end(kind, smtputf8=smtputf8)
        assert (outcome.status, outcome.reason) == (status, reason), (kind, outcome)
        assert (outcome.request_status, outcome.request_reason) == (status, reason), (kind, outcome)
        assert outcome.message_id is not None, (kind, outcome)
        copies = at_sink[outcome.message_id]
        assert copies == (1 if status == "sent" else 0), (kind, copies, outcome)
        if status == "failed":
            assert outcome.last_error, (kind, outcome)
        if kind in BROKEN_SETTINGS:
            assert EXCEPTION_CLASS.search(outcome.last_error or ""), (kind, outcome)
    # Nothing else reached the sink: no innocent twice, no poison that should not have left.
    sent_poisons = {
        rows[d].message_id for d, k in planted.poisons.items() if rows[d].status == "sent"
    }
    unexpected = set(at_sink) - innocent_ids - sent_poisons
    assert unexpected == set(), f"unexpected at the sink: {unexpected}"
