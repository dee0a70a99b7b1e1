"""Orders: apply a status event with a conditional upsert that only ever moves forward."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.dialect import insert_for, prepared
from app.orders.models import Order, OrderHistory
from app.webhooks.schemas import OrderStatusData


def _aware(moment: datetime | None, like: datetime) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=like.tzinfo)


def normalize_email(email: str) -> str:
    return email.strip().lower()


_STATE_COLUMNS = (
    "reference", "customer_id", "email", "email_normalized", "firstname", "lastname",
    "language", "country", "group_ids", "currency", "total_paid", "ordered_at", "products",
    "state_id", "state_name", "history_id", "state_at", "updated_at",
)  # fmt: skip


def _history_insert(dialect: str) -> Any:
    return insert_for(dialect, OrderHistory).on_conflict_do_nothing().returning(OrderHistory.id)


def _order_upsert(dialect: str) -> Any:
    # Only ever moves forward: the row is updated when the event's history id is higher.
    stmt = insert_for(dialect, Order)
    return stmt.on_conflict_do_update(
        index_elements=[Order.shop_id, Order.order_id],
        set_={
            **{k: stmt.excluded[k] for k in _STATE_COLUMNS},
            "paid_at": func.coalesce(Order.paid_at, stmt.excluded.paid_at),
        },
        where=Order.history_id < stmt.excluded.history_id,
    ).returning(Order.paid_at)


def _paid_earlier(_: str) -> Any:
    # An older event never changes the state, but "was paid" stays a fact of the history.
    return update(Order).where(
        Order.shop_id == bindparam("b_shop"),
        Order.order_id == bindparam("b_order"),
        (Order.paid_at.is_(None)) | (Order.paid_at > bindparam("b_paid")),
    )


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
    history = {
        "shop_id": shop_id,
        "order_id": data.order.id,
        "history_id": data.history.id,
        "state_id": state.id,
        "state_name": state.name,
        "paid": state.paid,
        "shipped": state.shipped,
        "occurred_at": occurred_at,
        "event_id": event_id,
    }
    if (await conn.execute(prepared(conn, _history_insert), history)).first() is None:
        return OrderChange(new_history=False, moved_forward=False, paid_at=None)

    paid_at = occurred_at if state.paid else None
    customer = data.customer
    values = {
        "shop_id": shop_id,
        "order_id": data.order.id,
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
        "paid_at": paid_at,
        "created_at": now,
        "updated_at": now,
    }
    row = (await conn.execute(prepared(conn, _order_upsert), values)).first()
    if row is not None:
        return OrderChange(new_history=True, moved_forward=True, paid_at=row.paid_at)

    if paid_at is not None:
        await conn.execute(
            prepared(conn, _paid_earlier),
            {"b_shop": shop_id, "b_order": data.order.id, "b_paid": paid_at, "paid_at": paid_at},
        )
    return OrderChange(new_history=True, moved_forward=False, paid_at=None)
