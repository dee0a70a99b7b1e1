"""Orders: apply a status change with a conditional upsert that only ever moves forward."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import ReturningInsert

from app.dialect import PerDialect
from app.orders.changes import StatusChange
from app.orders.models import Order, OrderHistory


def normalize_email(email: str) -> str:
    return email.strip().lower()


_INSERT_HISTORY = PerDialect(
    lambda insert_: (
        insert_(OrderHistory)
        .values(
            shop_id=bindparam("b_shop"),
            order_id=bindparam("b_order"),
            history_id=bindparam("b_history"),
            state_id=bindparam("b_state"),
            state_name=bindparam("b_state_name"),
            paid=bindparam("b_paid"),
            shipped=bindparam("b_shipped"),
            occurred_at=bindparam("b_occurred_at"),
            event_id=bindparam("b_event"),
        )
        .on_conflict_do_nothing()
        .returning(OrderHistory.id)
    )
)

# Every column the order's latest state sets, and its bind name.
_STATE_BINDS = {
    "reference": "b_reference",
    "customer_id": "b_customer",
    "email": "b_email",
    "email_normalized": "b_email_normalized",
    "firstname": "b_firstname",
    "lastname": "b_lastname",
    "language": "b_language",
    "country": "b_country",
    "group_ids": "b_group_ids",
    "newsletter": "b_newsletter",
    "currency": "b_currency",
    "total_paid": "b_total_paid",
    "ordered_at": "b_ordered_at",
    "products": "b_products",
    "state_id": "b_state",
    "state_name": "b_state_name",
    "history_id": "b_history",
    "state_at": "b_occurred_at",
    "updated_at": "b_now",
}


def _upsert_order(insert_: Any) -> ReturningInsert[tuple[datetime | None]]:
    # Only ever moves forward: the row is updated when the event's history id is higher.
    stmt = insert_(Order).values(
        shop_id=bindparam("b_shop"),
        order_id=bindparam("b_order"),
        paid_at=bindparam("b_paid_at"),
        created_at=bindparam("b_now"),
        **{column: bindparam(name) for column, name in _STATE_BINDS.items()},
    )
    upsert: ReturningInsert[tuple[datetime | None]] = stmt.on_conflict_do_update(
        index_elements=[Order.shop_id, Order.order_id],
        set_={
            **{column: stmt.excluded[column] for column in _STATE_BINDS},
            "paid_at": func.coalesce(Order.paid_at, stmt.excluded.paid_at),
        },
        where=Order.history_id < stmt.excluded.history_id,
    ).returning(Order.paid_at)
    return upsert


_UPSERT_ORDER = PerDialect(_upsert_order)

# An older event never changes the state, but "was paid" stays a fact of the history.
_PAID_EARLIER = (
    update(Order)
    .where(
        Order.shop_id == bindparam("b_shop"),
        Order.order_id == bindparam("b_order"),
        (Order.paid_at.is_(None)) | (Order.paid_at > bindparam("b_paid_at")),
    )
    .values(paid_at=bindparam("b_paid_at"))
)


@dataclass(frozen=True)
class OrderChange:
    """What one event did to an order."""

    new_history: bool  # False: this (order, history id) was already known
    moved_forward: bool  # False: an event with a higher history id was applied before
    paid_at: datetime | None  # when the order was first seen paid, if ever


async def apply_event(
    conn: AsyncConnection, shop_id: str, change: StatusChange, event_id: int, now: datetime
) -> OrderChange:
    """Record the state change and move the order to it unless a newer one is known.

    The move is one `INSERT … ON CONFLICT DO UPDATE … WHERE history_id < new`, so two replicas
    applying two events of one order at once always end on the newer one.
    """
    state = change.state
    keys = {"b_shop": shop_id, "b_order": change.order_id}
    history = {
        **keys,
        "b_history": change.history_id,
        "b_state": state.id,
        "b_state_name": state.name,
        "b_paid": state.paid,
        "b_shipped": state.shipped,
        "b_occurred_at": change.occurred_at,
        "b_event": event_id,
    }
    if (await conn.execute(_INSERT_HISTORY.on(conn), history)).first() is None:
        return OrderChange(new_history=False, moved_forward=False, paid_at=None)

    paid_at = change.occurred_at if state.paid else None
    customer = change.customer
    values = {
        **history,
        "b_reference": change.reference,
        "b_customer": customer.id,
        "b_email": customer.email,
        "b_email_normalized": normalize_email(customer.email),
        "b_firstname": customer.firstname,
        "b_lastname": customer.lastname,
        "b_language": customer.language,
        "b_country": customer.country.upper() if customer.country else None,
        "b_group_ids": customer.group_ids,
        "b_newsletter": customer.newsletter,
        "b_currency": change.currency,
        "b_total_paid": change.total_paid,
        "b_ordered_at": change.ordered_at,
        "b_products": change.products,
        "b_paid_at": paid_at,
        "b_now": now,
    }
    row = (await conn.execute(_UPSERT_ORDER.on(conn), values)).first()
    if row is not None:
        return OrderChange(new_history=True, moved_forward=True, paid_at=row.paid_at)

    if paid_at is not None:
        await conn.execute(_PAID_EARLIER, {**keys, "b_paid_at": paid_at})
    return OrderChange(new_history=True, moved_forward=False, paid_at=None)
