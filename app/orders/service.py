"""Orders: apply a status change with a conditional upsert that only ever moves forward."""

from collections.abc import Sequence
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
        .returning(OrderHistory.shop_id, OrderHistory.order_id)
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


def _upsert_order(insert_: Any) -> ReturningInsert[tuple[str, int, datetime | None]]:
    # Only ever moves forward: the row is updated when the event's history id is higher.
    # Every column has a bind of its own (`b_created`, not `b_now` twice): executed for many
    # rows, SQLAlchemy's multi-row VALUES would render a repeated bind twice but send it once.
    stmt = insert_(Order).values(
        shop_id=bindparam("b_shop"),
        order_id=bindparam("b_order"),
        paid_at=bindparam("b_paid_at"),
        created_at=bindparam("b_created"),
        **{column: bindparam(name) for column, name in _STATE_BINDS.items()},
    )
    upsert: ReturningInsert[tuple[str, int, datetime | None]] = stmt.on_conflict_do_update(
        index_elements=[Order.shop_id, Order.order_id],
        set_={
            **{column: stmt.excluded[column] for column in _STATE_BINDS},
            "paid_at": func.coalesce(Order.paid_at, stmt.excluded.paid_at),
        },
        where=Order.history_id < stmt.excluded.history_id,
    ).returning(Order.shop_id, Order.order_id, Order.paid_at)
    return upsert


_UPSERT_ORDER = PerDialect(_upsert_order)

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


@dataclass(frozen=True)
class Applying:
    """One status change to apply to the order it names, recorded as event `event_id`."""

    shop_id: str
    change: StatusChange
    event_id: int


async def apply_event(
    conn: AsyncConnection, shop_id: str, change: StatusChange, event_id: int, now: datetime
) -> OrderChange:
    """Record the state change and move the order to it unless a newer one is known.

    The move is one `INSERT … ON CONFLICT DO UPDATE … WHERE history_id < new`, so two replicas
    applying two events of one order at once always end on the newer one.
    """
    [applied] = await apply_events(conn, [Applying(shop_id, change, event_id)], now)
    return applied


async def apply_events(
    conn: AsyncConnection, changes: Sequence[Applying], now: datetime
) -> list[OrderChange]:
    """`apply_event` for changes of distinct orders, with one statement per step for all.

    Distinct orders only: one multi-row upsert cannot move an order twice, and the second
    change of an order must see the first (the caller applies it in a later call).
    """
    histories = [_history_values(c) for c in changes]
    inserted = await conn.execute(_INSERT_HISTORY.on(conn), histories)
    new = {(r.shop_id, r.order_id) for r in inserted}
    fresh = [(c, h) for c, h in zip(changes, histories, strict=True) if _key(c) in new]
    moved: dict[tuple[str, int], datetime | None] = {}
    if fresh:
        rows = await conn.execute(
            _UPSERT_ORDER.on(conn), [_state_values(c, h, now) for c, h in fresh]
        )
        moved = {(r.shop_id, r.order_id): r.paid_at for r in rows}
    # An older event never changes the state, but "was paid" stays a fact of the history.
    paid_earlier = [
        {"b_shop": c.shop_id, "b_order": c.change.order_id, "b_paid_at": c.change.occurred_at}
        for c, _ in fresh
        if _key(c) not in moved and c.change.state.paid
    ]
    if paid_earlier:
        await conn.execute(_PAID_EARLIER, paid_earlier)
    return [
        OrderChange(new_history=True, moved_forward=True, paid_at=moved[_key(c)])
        if _key(c) in moved
        else OrderChange(new_history=_key(c) in new, moved_forward=False, paid_at=None)
        for c in changes
    ]


def _key(applying: Applying) -> tuple[str, int]:
    return applying.shop_id, applying.change.order_id


def _history_values(applying: Applying) -> dict[str, Any]:
    change, state = applying.change, applying.change.state
    return {
        "b_shop": applying.shop_id,
        "b_order": change.order_id,
        "b_history": change.history_id,
        "b_state": state.id,
        "b_state_name": state.name,
        "b_paid": state.paid,
        "b_shipped": state.shipped,
        "b_occurred_at": change.occurred_at,
        "b_event": applying.event_id,
    }


def _state_values(applying: Applying, history: dict[str, Any], now: datetime) -> dict[str, Any]:
    change, customer = applying.change, applying.change.customer
    return {
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
        "b_paid_at": change.occurred_at if change.state.paid else None,
        "b_now": now,
        "b_created": now,
    }
