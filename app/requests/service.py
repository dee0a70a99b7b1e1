"""Review requests: schedule on a trigger state, cancel on a cancel state, list and read."""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.dialect import PerDialect
from app.errors import NotFound
from app.hooks import service as hooks
from app.hooks.vocabulary import EventType
from app.languages import pick_language
from app.orders.changes import StatusChange
from app.orders.service import normalize_email
from app.pagination import page
from app.requests.events import request_event
from app.requests.exclusions import excluded_by
from app.requests.models import Delivery, ReviewRequest
from app.requests.rules import cancel_reason, due_time, window_from
from app.requests.timeline import timeline
from app.requests.vocabulary import Decision, Kind, Reason, Source, Status
from app.security import new_public_id
from app.shops.models import OrderState
from app.shops.settings import ShopSettings

# The partial unique index allows one live request per order: a repeat is a no-op. Each
# column has a bind of its own (`b_created`): SQLAlchemy's multi-row VALUES mishandles a
# bind used twice in one row.
_INSERT_REQUEST = PerDialect(
    lambda insert_: (
        insert_(ReviewRequest)
        .values(
            shop_id=bindparam("b_shop"),
            order_id=bindparam("b_order"),
            email=bindparam("b_email"),
            email_normalized=bindparam("b_email_normalized"),
            language=bindparam("b_language"),
            status=Status.SCHEDULED,
            source=bindparam("b_source"),
            trigger_history_id=bindparam("b_history"),
            trigger_at=bindparam("b_trigger_at"),
            due_at=bindparam("b_due"),
            created_at=bindparam("b_created"),
            updated_at=bindparam("b_now"),
        )
        .on_conflict_do_nothing()
        .returning(
            ReviewRequest.id, ReviewRequest.shop_id, ReviewRequest.order_id, ReviewRequest.public_id
        )
    )
)

_INSERT_FIRST_DELIVERY = insert(Delivery).values(
    request_id=bindparam("b_request"),
    shop_id=bindparam("b_shop"),
    kind=Kind.FIRST,
    seq=0,
    status=bindparam("b_status"),
    reason=bindparam("b_reason"),
    last_error=bindparam("b_error"),
    due_at=bindparam("b_due"),
    window_from=bindparam("b_window_from"),
    attempts=0,
    created_at=bindparam("b_created"),
    updated_at=bindparam("b_now"),
)

# PostgreSQL: the two inserts above for any number of rows, each one fixed text (one array per
# column), so each is prepared once per connection whatever the batch size.
_PG_INSERT_REQUESTS = """
INSERT INTO review_requests (shop_id, order_id, email, email_normalized, language, source,
                             trigger_history_id, trigger_at, due_at, public_id, status, dry_run,
                             created_at, updated_at)
SELECT u.*, $11::text, false, $12::timestamptz, $12::timestamptz
FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::bigint[], $8::timestamptz[], $9::timestamptz[], $10::text[])
     AS u(shop_id, order_id, email, email_normalized, language, source, trigger_history_id,
          trigger_at, due_at, public_id)
ON CONFLICT DO NOTHING
RETURNING id, shop_id, order_id, public_id
"""

_PG_INSERT_FIRST_DELIVERIES = """
INSERT INTO deliveries (request_id, shop_id, status, reason, last_error, due_at, window_from,
                        kind, seq, attempts, dry_run, created_at, updated_at)
SELECT u.*, $8::text, 0, 0, false, $9::timestamptz, $9::timestamptz
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
            $7::timestamptz[])
     AS u(request_id, shop_id, status, reason, last_error, due_at, window_from)
"""

_SKIP_REQUEST = (
    update(ReviewRequest)
    .where(ReviewRequest.id == bindparam("b_id"))
    .values(status=Status.SKIPPED, reason=bindparam("b_reason"), updated_at=bindparam("b_now"))
)

_REQUESTS_OF_ORDERS = select(ReviewRequest.id, ReviewRequest.shop_id, ReviewRequest.order_id).where(
    tuple_(ReviewRequest.shop_id, ReviewRequest.order_id).in_(bindparam("b_orders", expanding=True))
)

_CANCEL_REQUESTS = (
    update(ReviewRequest)
    .where(
        ReviewRequest.id.in_(bindparam("b_ids", expanding=True)),
        ReviewRequest.status == Status.SCHEDULED,
    )
    .values(status=Status.CANCELLED, reason=bindparam("b_reason"), updated_at=bindparam("b_now"))
    # What the `review_request.cancelled` event tells.
    .returning(
        ReviewRequest.id, ReviewRequest.public_id, ReviewRequest.shop_id, ReviewRequest.order_id,
        ReviewRequest.email, ReviewRequest.language, ReviewRequest.due_at,
    )
)  # fmt: skip

# Explicit ids, not a sub-select: before PostgreSQL first analyzes a new shop's rows, a
# sub-select here was planned as a scan of every scheduled delivery (bench/cancel_plan.py).
_CANCEL_DELIVERIES = (
    update(Delivery)
    .where(
        Delivery.request_id.in_(bindparam("b_ids", expanding=True)),
        Delivery.status == Status.SCHEDULED,
    )
    .values(status=Status.CANCELLED, reason=bindparam("b_reason"), updated_at=bindparam("b_now"))
)

# PostgreSQL: the three statements above in two of fixed text (arrays instead of IN lists),
# each prepared once per connection whatever the number of orders: the requests are found and
# cancelled by one UPDATE (through the (shop_id, order_id) index), their deliveries still by
# explicit request ids.
_PG_CANCEL_ORDERS = """
UPDATE review_requests AS r
SET status = $4::text, reason = u.reason, updated_at = $5::timestamptz
FROM unnest($1::text[], $2::bigint[], $3::text[]) AS u(shop_id, order_id, reason)
WHERE r.shop_id = u.shop_id AND r.order_id = u.order_id AND r.status = $6::text
RETURNING r.id, r.public_id, r.shop_id, r.order_id, r.email, r.language, r.due_at, u.reason
"""
_PG_CANCEL_DELIVERIES = """
UPDATE deliveries SET status = $2::text, reason = $3::text, updated_at = $4::timestamptz
WHERE request_id = ANY($1::bigint[]) AND status = $5::text
"""


# Asked only about new requests about to be scheduled: whether each one's address is
# suppressed, one answer per order, in one look-up.
SuppressedAmong = Callable[[Sequence["Entered"]], Awaitable[list[bool]]]
SuppressedCheck = Callable[[], Awaitable[bool]]


@dataclass(frozen=True)
class Entered:
    """An order that has just moved to `change.state`, with its shop's settings."""

    shop_id: str
    settings: ShopSettings
    change: StatusChange


async def on_state(
    conn: AsyncConnection,
    shop_id: str,
    settings: ShopSettings,
    change: StatusChange,
    now: datetime,
    *,
    suppressed: SuppressedCheck | None = None,
) -> tuple[Decision, int | None]:
    """Apply the rules to an order that has just moved to `change.state`.

    A request created for an address that `suppressed()` says is on the shop's suppression
    list is recorded `skipped` (`suppressed`) at once, with nothing to send.
    """

    async def among(_: Sequence[Entered]) -> list[bool]:
        return [suppressed is not None and await suppressed()]

    entered = [Entered(shop_id, settings, change)]
    [decided] = await on_states(conn, entered, now, suppressed=among if suppressed else None)
    return decided


async def on_states(
    conn: AsyncConnection,
    entered: Sequence[Entered],
    now: datetime,
    *,
    suppressed: SuppressedAmong | None = None,
) -> list[tuple[Decision, int | None]]:
    """`on_state` for orders that are all distinct, scheduling them with one statement per step.

    Distinct orders only: a second change of an order must see what the first did.
    """
    decided: list[tuple[Decision, int | None]] = [(Decision.NOTHING, None)] * len(entered)
    due: list[tuple[int, Source, str]] = []  # what to schedule: position, source, delay
    cancels: list[int] = []
    for index, item in enumerate(entered):
        state, settings = item.change.state, item.settings
        if state.id in settings.cancel_state_ids:
            cancels.append(index)
        elif state.id in settings.trigger_state_ids or await _triggers_by_name(
            conn, item.shop_id, settings, item.change
        ):
            due.append((index, Source.TRIGGER, settings.delay))
        elif settings.fallback_delay and state.shipped:
            due.append((index, Source.FALLBACK, settings.fallback_delay))
    if cancels:
        orders = [
            (
                entered[i].shop_id,
                entered[i].change.order_id,
                cancel_reason(entered[i].change.state.id),
            )
            for i in cancels
        ]
        for index, cancelled in zip(cancels, await cancel_many(conn, orders, now), strict=True):
            if cancelled:
                decided[index] = Decision.CANCELLED, cancelled[0]
    if due:
        await _schedule(conn, entered, due, now, suppressed, decided)
    return decided


def _key(shop_id: str, change: StatusChange) -> str:
    """What places an order's first e-mail within the send spread: stable for the order."""
    return f"{shop_id}:{change.order_id}:0"


async def _triggers_by_name(
    conn: AsyncConnection, shop_id: str, settings: ShopSettings, change: StatusChange
) -> bool:
    """Whether the state is one of `trigger_state_names`: its name in the event, or any of its
    names in the shop's catalogue (a merchant who re-created "Delivered" keeps a trigger)."""
    if not settings.trigger_state_names:
        return False
    wanted = {name.strip().casefold() for name in settings.trigger_state_names}
    if change.state.name and change.state.name.strip().casefold() in wanted:
        return True
    names = await conn.scalar(
        select(OrderState.names).where(
            OrderState.shop_id == shop_id, OrderState.state_id == change.state.id
        )
    )
    return any(str(n).strip().casefold() in wanted for n in (names or {}).values())


async def _schedule(
    conn: AsyncConnection,
    entered: Sequence[Entered],
    due: list[tuple[int, Source, str]],
    now: datetime,
    suppressed: SuppressedAmong | None,
    decided: list[tuple[Decision, int | None]],
) -> None:
    """Insert a request per order (fills `decided`); the live-request index says which are new."""
    rows: list[dict[str, Any]] = []
    moved_from: list[datetime | None] = []  # when each delay ended, if the window moved it
    for index, source, delay in due:
        shop_id, settings, change = (
            entered[index].shop_id,
            entered[index].settings,
            entered[index].change,
        )
        email = change.customer.email
        rows.append(
            {
                "b_shop": shop_id,
                "b_order": change.order_id,
                "b_email": email,
                "b_email_normalized": normalize_email(email),
                "b_language": pick_language(change.customer.language, settings.default_language),
                "b_source": source,
                "b_history": change.history_id,
                "b_trigger_at": change.occurred_at,
                "b_due": due_time(settings, change.occurred_at, delay, _key(shop_id, change)),
                "b_now": now,
                "b_created": now,
            }
        )
        moved_from.append(window_from(settings, change.occurred_at, delay, rows[-1]["b_due"]))
    if conn.dialect.name == "postgresql":
        columns = (
            *(
                [row[name] for row in rows]
                for name in (
                    "b_shop", "b_order", "b_email", "b_email_normalized", "b_language",
                    "b_source", "b_history", "b_trigger_at", "b_due",
                )
            ),
            [new_public_id() for _ in rows],
            Status.SCHEDULED,
            now,
        )  # fmt: skip
        inserted = (await conn.exec_driver_sql(_PG_INSERT_REQUESTS, columns)).all()
    else:
        inserted = (await conn.execute(_INSERT_REQUEST.on(conn), rows)).all()
    ids = {(r.shop_id, r.order_id): r.id for r in inserted}
    public_ids = {r.id: r.public_id for r in inserted}
    new = [
        (d, {**row, "b_window_from": moved}, ids[row["b_shop"], row["b_order"]])
        for d, row, moved in zip(due, rows, moved_from, strict=True)
        if (row["b_shop"], row["b_order"]) in ids
    ]
    # Inserted as scheduled first, so the one-live-request-per-order index still decides
    # whether each is a new request; only then is it skipped.
    flags = [False] * len(new)
    if suppressed is not None and new:
        flags = await suppressed([entered[index] for (index, _, _), _, _ in new])
    skips, deliveries, skipped_events = [], [], []
    for ((index, source, _), row, request_id), is_suppressed in zip(new, flags, strict=True):
        change, rule = entered[index].change, None
        if is_suppressed:
            reason: Reason | None = Reason.SUPPRESSED
        else:
            rule = excluded_by(
                entered[index].settings.exclusions,
                email_normalized=row["b_email_normalized"],
                product_ids=[int(p["id"]) for p in change.products],
                group_ids=change.customer.group_ids,
                total_paid=change.total_paid,
                newsletter=change.customer.newsletter,
            )
            reason = Reason.EXCLUDED if rule else None
        if reason is not None:
            skips.append({"b_id": request_id, "b_reason": reason, "b_now": now})
            skipped_events.append(
                request_event(
                    request_id=request_id, public_id=public_ids[request_id],
                    shop_id=row["b_shop"], order_id=row["b_order"], email=row["b_email"],
                    language=row["b_language"], status=Status.SKIPPED, reason=reason,
                )
            )  # fmt: skip
        deliveries.append(
            {
                "b_request": request_id,
                "b_shop": row["b_shop"],
                "b_status": Status.SCHEDULED if reason is None else Status.SKIPPED,
                "b_reason": reason,
                "b_error": rule,  # the exclusion rule that matched, for the merchant
                "b_due": row["b_due"],
                "b_window_from": row["b_window_from"],
                "b_now": now,
                "b_created": now,
            }
        )
        if reason is not None:
            decided[index] = Decision.SKIPPED, request_id
        elif source is Source.TRIGGER:
            decided[index] = Decision.SCHEDULED, request_id
        else:
            decided[index] = Decision.SCHEDULED_FALLBACK, request_id
    if skips:
        await conn.execute(_SKIP_REQUEST, skips)
        await hooks.emit(conn, EventType.REQUEST_SKIPPED, skipped_events, now)
    if deliveries and conn.dialect.name == "postgresql":
        names = ("b_request", "b_shop", "b_status", "b_reason", "b_error", "b_due", "b_window_from")
        columns = (*([d[name] for d in deliveries] for name in names), Kind.FIRST, now)
        await conn.exec_driver_sql(_PG_INSERT_FIRST_DELIVERIES, columns)
    elif deliveries:
        await conn.execute(_INSERT_FIRST_DELIVERY, deliveries)
    for (index, source, _), row in zip(due, rows, strict=True):
        if (row["b_shop"], row["b_order"]) in ids:
            continue
        decided[index] = Decision.ALREADY_REQUESTED, None
        if source is Source.TRIGGER:
            change = entered[index].change
            moved = await _promote_fallback(conn, row["b_shop"], change, row["b_due"], now)
            if moved is not None:
                decided[index] = Decision.RESCHEDULED, moved


async def _promote_fallback(
    conn: AsyncConnection, shop_id: str, change: StatusChange, due: datetime, now: datetime
) -> int | None:
    """The real trigger came after all: a pending fallback request moves to its timing."""
    request_id = await conn.scalar(
        update(ReviewRequest)
        .where(
            ReviewRequest.shop_id == shop_id,
            ReviewRequest.order_id == change.order_id,
            ReviewRequest.status == Status.SCHEDULED,
            ReviewRequest.source == Source.FALLBACK,
        )
        .values(
            source=Source.TRIGGER,
            trigger_history_id=change.history_id,
            trigger_at=change.occurred_at,
            due_at=due,
            updated_at=now,
        )
        .returning(ReviewRequest.id)
    )
    if request_id is not None:
        await conn.execute(
            update(Delivery)
            .where(Delivery.request_id == request_id, Delivery.status == Status.SCHEDULED)
            .values(due_at=due, updated_at=now)
        )
    return request_id


async def cancel(
    conn: AsyncConnection, shop_id: str, order_id: int, reason: Reason, now: datetime
) -> list[int]:
    """Cancel the order's pending request and any e-mail still to come (reminders too)."""
    [ids] = await cancel_many(conn, [(shop_id, order_id, reason)], now)
    return ids


async def cancel_many(
    conn: AsyncConnection, orders: Sequence[tuple[str, int, Reason]], now: datetime
) -> list[list[int]]:
    """`cancel` for several (shop, order, reason): three statements for all (per reason), two
    on PostgreSQL."""
    if conn.dialect.name == "postgresql":
        return await _cancel_many_postgresql(conn, orders, now)
    keys = [(shop_id, order_id) for shop_id, order_id, _ in orders]
    of_order: dict[tuple[str, int], list[int]] = {}
    for row in await conn.execute(_REQUESTS_OF_ORDERS, {"b_orders": keys}):
        of_order.setdefault((row.shop_id, row.order_id), []).append(row.id)
    by_reason: dict[Reason, list[int]] = {}
    for shop_id, order_id, reason in orders:
        by_reason.setdefault(reason, []).extend(of_order.get((shop_id, order_id), []))
    cancelled: set[int] = set()
    events = []
    for reason, ids in by_reason.items():
        if ids:
            params = {"b_ids": ids, "b_reason": reason, "b_now": now}
            for r in await conn.execute(_CANCEL_REQUESTS, params):
                cancelled.add(r.id)
                events.append(_cancelled_event(r, reason))
            await conn.execute(_CANCEL_DELIVERIES, params)
    await hooks.emit(conn, EventType.REQUEST_CANCELLED, events, now)
    return [[i for i in of_order.get(key, []) if i in cancelled] for key in keys]


async def _cancel_many_postgresql(
    conn: AsyncConnection, orders: Sequence[tuple[str, int, Reason]], now: datetime
) -> list[list[int]]:
    """`cancel_many` with statements of fixed text: one UPDATE finds and cancels the requests,
    one per reason cancels their deliveries."""
    columns = (
        [shop_id for shop_id, _, _ in orders],
        [order_id for _, order_id, _ in orders],
        [reason for _, _, reason in orders],
        Status.CANCELLED,
        now,
        Status.SCHEDULED,
    )
    of_order: dict[tuple[str, int], list[int]] = {}
    by_reason: dict[str, list[int]] = {}
    events = []
    for r in await conn.exec_driver_sql(_PG_CANCEL_ORDERS, columns):
        of_order.setdefault((r.shop_id, r.order_id), []).append(r.id)
        by_reason.setdefault(r.reason, []).append(r.id)
        events.append(_cancelled_event(r, Reason(r.reason)))
    for reason, ids in by_reason.items():
        params = (ids, Status.CANCELLED, reason, now, Status.SCHEDULED)
        await conn.exec_driver_sql(_PG_CANCEL_DELIVERIES, params)
    await hooks.emit(conn, EventType.REQUEST_CANCELLED, events, now)
    return [of_order.get((shop_id, order_id), []) for shop_id, order_id, _ in orders]


def _cancelled_event(r: Row[*tuple[Any, ...]], reason: Reason) -> hooks.Event:
    """What the `review_request.cancelled` event tells of a request just cancelled."""
    return request_event(
        request_id=r.id, public_id=r.public_id, shop_id=r.shop_id, order_id=r.order_id,
        email=r.email, language=r.language, status=Status.CANCELLED, reason=reason,
        due_at=r.due_at,
    )  # fmt: skip


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
    reason: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    stmt = select(ReviewRequest, _ATTEMPTS).where(ReviewRequest.shop_id == shop_id)
    if status is not None:
        stmt = stmt.where(ReviewRequest.status == status)
    if reason is not None:
        stmt = stmt.where(ReviewRequest.reason == reason)
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
    steps = await timeline(conn, request_id)
    return {
        **row,
        "deliveries": [dict(d) for d in deliveries.mappings()],
        "timeline": [{"at": s.at, "step": s.step, "detail": s.detail} for s in steps],
    }


# Settings that decide when an e-mail not sent yet is due.
