"""One handler per event type: how to file the event, and what applying it does.

A new event type is one more entry in `HANDLERS`; the inbox itself does not change.
"""

from collections.abc import Awaitable, Callable
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
class Handler:
    model: type[BaseModel]
    file: Callable[[Any, str], Filing]
    apply: Callable[[AsyncConnection, ShopAuth, Any, int, datetime], Awaitable[Applied]]


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
    change = status_change(event, shop.settings.timezone)
    applied = await orders.apply_event(conn, shop.id, change, event_id, now)
    if not applied.new_history:
        return Applied(Outcome.DUPLICATE_HISTORY)
    if not applied.moved_forward:
        return Applied(Outcome.IGNORED_OLDER)

    async def suppressed() -> bool:
        email_hash = suppressions.hash_email(shop.address_key, change.customer.email)
        return await suppressions.is_suppressed(conn, shop.id, email_hash)

    decision, request_id = await requests.on_state(
        conn, shop.id, shop.settings, change, now, suppressed=suppressed
    )
    return Applied(Outcome(decision.value), request_id)


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


HANDLERS: dict[str, Handler] = {
    "order.status_changed": Handler(OrderStatusChanged, _file_status, _apply_status),
    "shop.order_states": Handler(OrderStatesReplaced, _file_states, _apply_states),
    "order.return_requested": Handler(ReturnRequested, _file_return, _apply_return),
}
