"""One handler per event type: how to file the event, and what applying it does.

A new event type is one more entry in `HANDLERS`; the inbox itself does not change.
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from app.orders import service as orders
from app.orders.changes import Customer, StateFlags, StatusChange
from app.requests import service as requests
from app.shops import service as shops
from app.shops.service import ShopAuth
from app.suppressions import service as suppressions
from app.webhooks.schemas import OrderStatesReplaced, OrderStatusChanged, ReturnRequested
from app.webhooks.vocabulary import Outcome


@dataclass(frozen=True)
class Filing:
    """What the event row records besides the payload: which order, which history row, when."""

    order_id: int | None = None
    history_id: int | None = None
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class Applied:
    outcome: Outcome
    request_id: int | None = None


@dataclass(frozen=True)
class Received:
    """An event recorded as `event_id`, to apply in a batch."""

    shop: ShopAuth
    event: Any
    event_id: int


# Applies events of a batch that all have distinct `order_key`s, with one statement per step.
ApplyMany = Callable[[AsyncConnection, Sequence[Received], datetime], Awaitable[list[Applied]]]


@dataclass(frozen=True)
class Handler:
    model: type[BaseModel]
    file: Callable[[Any, str], Filing]
    apply: Callable[[AsyncConnection, ShopAuth, Any, int, datetime], Awaitable[Applied]]
    # Set-based application for group commit: None means the event is applied on its own,
    # after every event before it in the batch and before every event after it.
    apply_many: ApplyMany | None = None
    # Events of a shop with the same key are applied one after another, in arrival order.
    order_key: Callable[[Any], int | None] = lambda _: None


def aware(moment: datetime, tz: str) -> datetime:
    # PrestaShop stores shop-local wall-clock times; a module that sends them without an
    # offset means the shop's zone.
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(tz))


def status_change(event: OrderStatusChanged, tz: str) -> StatusChange:
    """The wire event, as the orders and requests domains take it."""
    data = event.data
    occurred_at = aware(data.history.date_add, tz)
    ordered_at = data.order.date_add
    return StatusChange(
        order_id=data.order.id,
        history_id=data.history.id,
        occurred_at=occurred_at,
        state=StateFlags(
            id=data.new_state.id,
            name=data.new_state.name,
            paid=data.new_state.paid,
            shipped=data.new_state.shipped,
        ),
        customer=Customer(
            id=data.customer.id,
            email=data.customer.email,
            firstname=data.customer.firstname,
            lastname=data.customer.lastname,
            language=data.customer.language,
            country=data.customer.country,
            group_ids=data.customer.group_ids,
            newsletter=data.customer.newsletter,
        ),
        reference=data.order.reference,
        currency=data.order.currency,
        total_paid=data.order.total_paid,
        ordered_at=None if ordered_at is None else aware(ordered_at, tz),
        products=[p.model_dump(mode="json") for p in data.products],
    )


def _file_status(event: OrderStatusChanged, tz: str) -> Filing:
    data = event.data
    return Filing(data.order.id, data.history.id, aware(data.history.date_add, tz))


async def _apply_status(
    conn: AsyncConnection, shop: ShopAuth, event: OrderStatusChanged, event_id: int, now: datetime
) -> Applied:
    [applied] = await _apply_statuses(conn, [Received(shop, event, event_id)], now)
    return applied


async def _apply_statuses(
    conn: AsyncConnection, received: Sequence[Received], now: datetime
) -> list[Applied]:
    """Status changes of distinct orders: each order moves, then the rules run for those that
    moved forward."""
    changes = [status_change(r.event, r.shop.settings.timezone) for r in received]
    applying = [
        orders.Applying(r.shop.id, c, r.event_id) for r, c in zip(received, changes, strict=True)
    ]
    applied = await orders.apply_events(conn, applying, now)
    results = [
        Applied(Outcome.RECORDED)
        if a.moved_forward
        else Applied(Outcome.IGNORED_OLDER if a.new_history else Outcome.DUPLICATE_HISTORY)
        for a in applied
    ]
    moved = [i for i, a in enumerate(applied) if a.moved_forward]
    if not moved:
        return results
    shops = {r.shop.id: r.shop for r in received}
    entered = [
        requests.Entered(received[i].shop.id, received[i].shop.settings, changes[i]) for i in moved
    ]

    async def suppressed(among: Sequence[requests.Entered]) -> list[bool]:
        hashes = [
            (
                e.shop_id,
                suppressions.hash_email(shops[e.shop_id].address_key, e.change.customer.email),
            )
            for e in among
        ]
        found = await suppressions.suppressed_among(conn, hashes)
        return [h in found for h in hashes]

    decided = await requests.on_states(conn, entered, now, suppressed=suppressed)
    for i, (decision, request_id) in zip(moved, decided, strict=True):
        results[i] = Applied(Outcome(decision.value), request_id)
    return results


def _order_of(event: OrderStatusChanged) -> int:
    return event.data.order.id


def _file_states(_: OrderStatesReplaced, __: str) -> Filing:
    return Filing()


async def _apply_states(
    conn: AsyncConnection, shop: ShopAuth, event: OrderStatesReplaced, _: int, now: datetime
) -> Applied:
    states = [
        {
            "state_id": s.id,
            "names": s.names,
            "paid": s.paid,
            "shipped": s.shipped,
            "delivery": s.delivery,
            "logable": s.logable,
        }
        for s in event.data.states
    ]
    await shops.replace_order_states(conn, shop.id, states, now)
    return Applied(Outcome.CATALOGUE_REPLACED)


def _file_return(event: ReturnRequested, tz: str) -> Filing:
    return Filing(event.data.order.id, None, aware(event.data.return_.date_add, tz))


async def _apply_return(
    _: AsyncConnection, __: ShopAuth, ___: ReturnRequested, ____: int, _____: datetime
) -> Applied:
    # Recorded for the return-rate KPI, which reads the event rows.
    return Applied(Outcome.RECORDED)


async def _apply_returns(
    _: AsyncConnection, received: Sequence[Received], __: datetime
) -> list[Applied]:
    return [Applied(Outcome.RECORDED) for _ in received]


HANDLERS: dict[str, Handler] = {
    "order.status_changed": Handler(
        OrderStatusChanged, _file_status, _apply_status, _apply_statuses, _order_of
    ),
    # The catalogue decides which states trigger by name: applied alone, in arrival order.
    "shop.order_states": Handler(OrderStatesReplaced, _file_states, _apply_states),
    "order.return_requested": Handler(ReturnRequested, _file_return, _apply_return, _apply_returns),
}
