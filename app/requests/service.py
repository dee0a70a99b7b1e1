"""Review requests: schedule on a trigger state, cancel on a cancel state, list and read."""

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.dialect import insert_for, prepared
from app.errors import NotFound
from app.mail.templates import pick_language
from app.orders.service import normalize_email
from app.pagination import page
from app.requests.models import Delivery, ReviewRequest
from app.requests.rules import cancel_reason
from app.shops.schemas import ShopSettings
from app.timeutil import add_duration, next_in_window, parse_duration
from app.webhooks.schemas import OrderStatusData, Outcome


def due_time(settings: ShopSettings, start: datetime, delay: str) -> datetime:
    """`start + delay` (days in the shop's calendar), moved into the send window."""
    tz = ZoneInfo(settings.timezone)
    due = add_duration(start, parse_duration(delay), tz)
    window = settings.send_window.to_window() if settings.send_window else None
    return next_in_window(due, window, tz)


def _request_insert(dialect: str) -> Any:
    # The partial unique index allows one live request per order: a repeat is a no-op.
    return insert_for(dialect, ReviewRequest).on_conflict_do_nothing().returning(ReviewRequest.id)


def _delivery_insert(_: str) -> Any:
    return insert(Delivery)


def _requests_of_order(_: str) -> Any:
    return select(ReviewRequest.id).where(
        ReviewRequest.shop_id == bindparam("b_shop"), ReviewRequest.order_id == bindparam("b_order")
    )


def _cancel_requests(_: str) -> Any:
    return (
        update(ReviewRequest)
        .where(
            ReviewRequest.id.in_(bindparam("b_ids", expanding=True)),
            ReviewRequest.status == "scheduled",
        )
        .values(status="cancelled")
        .returning(ReviewRequest.id)
    )


def _cancel_deliveries(_: str) -> Any:
    # Explicit ids, not a sub-select: before PostgreSQL first analyzes a new shop's rows, a
    # sub-select here was planned as a scan of every scheduled delivery (bench/cancel_plan.py).
    return (
        update(Delivery)
        .where(
            Delivery.request_id.in_(bindparam("b_ids", expanding=True)),
            Delivery.status == "scheduled",
        )
        .values(status="cancelled")
    )


async def on_state(
    conn: AsyncConnection,
    shop_id: str,
    settings: ShopSettings,
    data: OrderStatusData,
    occurred_at: datetime,
    now: datetime,
) -> tuple[Outcome, int | None]:
    """Apply the rules to an order that has just moved to `data.new_state`."""
    state = data.new_state
    if state.id in settings.cancel_state_ids:
        cancelled = await cancel(conn, shop_id, data.order.id, cancel_reason(state.id), now)
        return ("cancelled", cancelled[0]) if cancelled else ("recorded", None)
    if state.id in settings.trigger_state_ids:
        due = due_time(settings, occurred_at, settings.delay)
        return await _schedule(conn, shop_id, settings, data, "trigger", occurred_at, due, now)
    if settings.fallback_delay and state.shipped:
        due = due_time(settings, occurred_at, settings.fallback_delay)
        return await _schedule(conn, shop_id, settings, data, "fallback", occurred_at, due, now)
    return "recorded", None


async def _schedule(
    conn: AsyncConnection,
    shop_id: str,
    settings: ShopSettings,
    data: OrderStatusData,
    source: str,
    trigger_at: datetime,
    due: datetime,
    now: datetime,
) -> tuple[Outcome, int | None]:
    email = data.customer.email
    request_id = await conn.scalar(
        prepared(conn, _request_insert),
        {
            "shop_id": shop_id,
            "order_id": data.order.id,
            "email": email,
            "email_normalized": normalize_email(email),
            "language": pick_language(data.customer.language, settings.default_language),
            "status": "scheduled",
            "source": source,
            "trigger_history_id": data.history.id,
            "trigger_at": trigger_at,
            "due_at": due,
            "created_at": now,
            "updated_at": now,
        },
    )
    if request_id is not None:
        await conn.execute(
            prepared(conn, _delivery_insert),
            {
                "request_id": request_id,
                "shop_id": shop_id,
                "kind": "first",
                "seq": 0,
                "status": "scheduled",
                "due_at": due,
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            },
        )
        return ("scheduled" if source == "trigger" else "scheduled_fallback"), request_id
    if source == "trigger":
        moved = await _promote_fallback(
            conn, shop_id, data.order.id, data.history.id, trigger_at, due, now
        )
        if moved is not None:
            return "rescheduled", moved
    return "already_requested", None


async def _promote_fallback(
    conn: AsyncConnection,
    shop_id: str,
    order_id: int,
    history_id: int,
    trigger_at: datetime,
    due: datetime,
    now: datetime,
) -> int | None:
    """The real trigger came after all: a pending fallback request moves to its timing."""
    request_id = await conn.scalar(
        update(ReviewRequest)
        .where(
            ReviewRequest.shop_id == shop_id,
            ReviewRequest.order_id == order_id,
            ReviewRequest.status == "scheduled",
            ReviewRequest.source == "fallback",
        )
        .values(
            source="trigger",
            trigger_history_id=history_id,
            trigger_at=trigger_at,
            due_at=due,
            updated_at=now,
        )
        .returning(ReviewRequest.id)
    )
    if request_id is not None:
        await conn.execute(
            update(Delivery)
            .where(Delivery.request_id == request_id, Delivery.status == "scheduled")
            .values(due_at=due, updated_at=now)
        )
    return request_id


async def cancel(
    conn: AsyncConnection, shop_id: str, order_id: int, reason: str, now: datetime
) -> list[int]:
    """Cancel the order's pending request and any e-mail still to come (reminders too)."""
    of_order = {"b_shop": shop_id, "b_order": order_id}
    all_ids = list((await conn.execute(prepared(conn, _requests_of_order), of_order)).scalars())
    if not all_ids:
        return []
    params = {"b_ids": all_ids, "reason": reason, "updated_at": now}
    ids = list((await conn.execute(prepared(conn, _cancel_requests), params)).scalars())
    await conn.execute(prepared(conn, _cancel_deliveries), params)
    return ids


_ATTEMPTS = (
    select(Delivery.attempts)
    .where(Delivery.request_id == ReviewRequest.id, Delivery.seq == 0)
    .scalar_subquery()
    .label("attempts")
)


async def list_requests(
    conn: AsyncConnection,
    shop_id: str,
    *,
    status: str | None,
    order_id: int | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    stmt = select(ReviewRequest, _ATTEMPTS).where(ReviewRequest.shop_id == shop_id)
    if status is not None:
        stmt = stmt.where(ReviewRequest.status == status)
    if order_id is not None:
        stmt = stmt.where(ReviewRequest.order_id == order_id)
    return await page(conn, stmt, ReviewRequest.id, cursor, limit)


async def get_request(conn: AsyncConnection, shop_id: str, request_id: int) -> dict[str, Any]:
    row = (
        (
            await conn.execute(
                select(ReviewRequest, _ATTEMPTS).where(
                    ReviewRequest.shop_id == shop_id, ReviewRequest.id == request_id
                )
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"No review request {request_id}.")
    deliveries = await conn.execute(
        select(Delivery).where(Delivery.request_id == request_id).order_by(Delivery.seq)
    )
    return {**row, "deliveries": [dict(d) for d in deliveries.mappings()]}
