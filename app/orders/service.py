"""Orders: apply a status change with a conditional upsert that only ever moves forward."""

import json
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


# PostgreSQL: the history insert and the order upsert of any number of changes in ONE statement
# of fixed text (one array per column), so it is prepared once per connection whatever the batch
# size and costs no per-row work in SQLAlchemy. The same rows as the two statements above: an
# order moves only for a history row new to it, and only forward.
_PG_APPLY = """
WITH u AS (
    SELECT * FROM unnest(
        $1::text[], $2::bigint[], $3::bigint[], $4::integer[], $5::text[], $6::boolean[],
        $7::boolean[], $8::timestamptz[], $9::bigint[], $10::text[], $11::bigint[], $12::text[],
        $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::json[],
        $19::boolean[], $20::text[], $21::text[], $22::timestamptz[], $23::json[],
        $24::timestamptz[]
    ) AS u(shop_id, order_id, history_id, state_id, state_name, paid, shipped, occurred_at,
           event_id, reference, customer_id, email, email_normalized, firstname, lastname,
           language, country, group_ids, newsletter, currency, total_paid, ordered_at, products,
           paid_at)
), h AS (
    INSERT INTO order_history (shop_id, order_id, history_id, state_id, state_name, paid,
                               shipped, occurred_at, event_id)
    SELECT shop_id, order_id, history_id, state_id, state_name, paid, shipped, occurred_at,
           event_id
    FROM u
    ON CONFLICT DO NOTHING
    RETURNING shop_id, order_id
), o AS (
    INSERT INTO orders AS o (shop_id, order_id, paid_at, created_at, reference, customer_id,
                             email, email_normalized, firstname, lastname, language, country,
                             group_ids, newsletter, currency, total_paid, ordered_at, products,
                             state_id, state_name, history_id, state_at, updated_at)
    SELECT u.shop_id, u.order_id, u.paid_at, $25::timestamptz, u.reference, u.customer_id, u.email,
           u.email_normalized, u.firstname, u.lastname, u.language, u.country, u.group_ids,
           u.newsletter, u.currency, u.total_paid, u.ordered_at, u.products, u.state_id,
           u.state_name, u.history_id, u.occurred_at, $25::timestamptz
    FROM u JOIN h ON h.shop_id = u.shop_id AND h.order_id = u.order_id
    ON CONFLICT (shop_id, order_id) DO UPDATE SET
        reference = excluded.reference, customer_id = excluded.customer_id,
        email = excluded.email, email_normalized = excluded.email_normalized,
        firstname = excluded.firstname, lastname = excluded.lastname,
        language = excluded.language, country = excluded.country,
        group_ids = excluded.group_ids, newsletter = excluded.newsletter,
        currency = excluded.currency, total_paid = excluded.total_paid,
        ordered_at = excluded.ordered_at, products = excluded.products,
        state_id = excluded.state_id, state_name = excluded.state_name,
        history_id = excluded.history_id, state_at = excluded.state_at,
        updated_at = excluded.updated_at, paid_at = coalesce(o.paid_at, excluded.paid_at)
    WHERE o.history_id < excluded.history_id
    RETURNING o.shop_id, o.order_id, o.paid_at
)
SELECT h.shop_id, h.order_id, o.order_id IS NOT NULL AS moved, o.paid_at
FROM h LEFT JOIN o ON o.shop_id = h.shop_id AND o.order_id = h.order_id
"""


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
    if not changes:
        return []
    if conn.dialect.name == "postgresql":
        new, moved = await _apply_postgresql(conn, changes, now)
    else:
        new, moved = await _apply_sqlalchemy(conn, changes, now)
    # An older event never changes the state, but "was paid" stays a fact of the history.
    fresh = [c for c in changes if _key(c) in new]
    paid_earlier = [
        {"b_shop": c.shop_id, "b_order": c.change.order_id, "b_paid_at": c.change.occurred_at}
        for c in fresh
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


_Applied = tuple[set[tuple[str, int]], dict[tuple[str, int], datetime | None]]


async def _apply_sqlalchemy(
    conn: AsyncConnection, changes: Sequence[Applying], now: datetime
) -> _Applied:
    """The history rows new to their order, and the orders moved (their `paid_at`)."""
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
    return new, moved


async def _apply_postgresql(
    conn: AsyncConnection, changes: Sequence[Applying], now: datetime
) -> _Applied:
    """`_apply_sqlalchemy` in one round trip (`_PG_APPLY`)."""
    items = [(c, c.change, c.change.state, c.change.customer) for c in changes]
    columns = (
        [a.shop_id for a, _, _, _ in items],
        [c.order_id for _, c, _, _ in items],
        [c.history_id for _, c, _, _ in items],
        [s.id for _, _, s, _ in items],
        [s.name for _, _, s, _ in items],
        [s.paid for _, _, s, _ in items],
        [s.shipped for _, _, s, _ in items],
        [c.occurred_at for _, c, _, _ in items],
        [a.event_id for a, _, _, _ in items],
        [c.reference for _, c, _, _ in items],
        [u.id for _, _, _, u in items],
        [u.email for _, _, _, u in items],
        [normalize_email(u.email) for _, _, _, u in items],
        [u.firstname for _, _, _, u in items],
        [u.lastname for _, _, _, u in items],
        [u.language for _, _, _, u in items],
        [u.country.upper() if u.country else None for _, _, _, u in items],
        # JSON columns hold JSON `null` for None, as SQLAlchemy's JSON type writes it.
        [json.dumps(u.group_ids) for _, _, _, u in items],
        [u.newsletter for _, _, _, u in items],
        [c.currency for _, c, _, _ in items],
        [c.total_paid for _, c, _, _ in items],
        [c.ordered_at for _, c, _, _ in items],
        [json.dumps(c.products) for _, c, _, _ in items],
        [c.occurred_at if s.paid else None for _, c, s, _ in items],
        now,
    )
    new: set[tuple[str, int]] = set()
    moved: dict[tuple[str, int], datetime | None] = {}
    for row in await conn.exec_driver_sql(_PG_APPLY, columns):
        new.add((row.shop_id, row.order_id))
        if row.moved:
            moved[row.shop_id, row.order_id] = row.paid_at
    return new, moved


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
