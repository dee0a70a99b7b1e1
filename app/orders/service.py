"""Orders: apply a status event with a conditional upsert that only ever moves forward."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.dialect import upsert
from app.orders.models import Order, OrderHistory
from app.webhooks.schemas import OrderStatusData


def _aware(moment: datetime | None, like: datetime) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=like.tzinfo)


def normalize_email(email: str) -> str:
    return email.strip().lower()


@dataclass(frozen=True)
class OrderChange:
    """What one event did to an order."""

    new_history: bool  # False: this (order, history id) was already known
    moved_forward: bool  # False: an event with a higher history id was applied before
    paid_at: datetime | None  # when the order was first seen paid, if ever


async def apply_event(
    conn: AsyncConnection,
    shop_id: str,
    data: OrderStatusData,
    occurred_at: datetime,
    event_id: int,
    now: datetime,
) -> OrderChange:
    """Record the state change and move the order to it unless a newer one is known.

    The move is one `INSERT … ON CONFLICT DO UPDATE … WHERE history_id < new`, so two replicas
    applying two events of one order at once always end on the newer one.
    """
    state = data.new_state
    history = (
        upsert(conn, OrderHistory)
        .values(
            shop_id=shop_id,
            order_id=data.order.id,
            history_id=data.history.id,
            state_id=state.id,
            state_name=state.name,
            paid=state.paid,
            shipped=state.shipped,
            occurred_at=occurred_at,
            event_id=event_id,
        )
        .on_conflict_do_nothing()
        .returning(OrderHistory.id)
    )
    if (await conn.execute(history)).first() is None:
        return OrderChange(new_history=False, moved_forward=False, paid_at=None)

    paid_at = occurred_at if state.paid else None
    customer = data.customer
    values = {
        "reference": data.order.reference,
        "customer_id": customer.id,
        "email": customer.email,
        "email_normalized": normalize_email(customer.email),
        "firstname": customer.firstname,
        "lastname": customer.lastname,
        "language": customer.language,
        "country": customer.country.upper() if customer.country else None,
        "group_ids": customer.group_ids,
        "currency": data.order.currency,
        "total_paid": data.order.total_paid,
        "ordered_at": _aware(data.order.date_add, occurred_at),
        "products": [p.model_dump(mode="json") for p in data.products],
        "state_id": state.id,
        "state_name": state.name,
        "history_id": data.history.id,
        "state_at": occurred_at,
        "updated_at": now,
    }
    stmt = upsert(conn, Order).values(
        shop_id=shop_id, order_id=data.order.id, paid_at=paid_at, created_at=now, **values
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[Order.shop_id, Order.order_id],
        set_={
            **{k: stmt.excluded[k] for k in values},
            "paid_at": func.coalesce(Order.paid_at, stmt.excluded.paid_at),
        },
        where=Order.history_id < stmt.excluded.history_id,
    ).returning(Order.paid_at)
    row = (await conn.execute(stmt)).first()
    if row is not None:
        return OrderChange(new_history=True, moved_forward=True, paid_at=row.paid_at)

    # An older event: it never changes the state, but "was paid" stays a fact of the history.
    if paid_at is not None:
        await conn.execute(
            update(Order)
            .where(Order.shop_id == shop_id, Order.order_id == data.order.id)
            .where((Order.paid_at.is_(None)) | (Order.paid_at > paid_at))
            .values(paid_at=paid_at)
        )
    return OrderChange(new_history=True, moved_forward=False, paid_at=None)
