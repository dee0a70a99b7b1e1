"""Changing a shop's timing settings moves every e-mail not sent yet; what was sent stays.

Runs in the settings update's transaction, as a listener the shops domain calls (wired in
app/main.py).
"""

from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.requests.models import Delivery, ReviewRequest
from app.requests.rules import due_time, window_from
from app.requests.timeline import record as record_steps
from app.requests.vocabulary import Kind, Reason, Source, Status
from app.shops.settings import ShopSettings

_TIMING = ("delay", "fallback_delay", "send_window", "send_spread", "timezone", "reminders")
_BATCH = 1000


async def reschedule_after_settings(
    conn: AsyncConnection, shop_id: str, old: ShopSettings, new: ShopSettings, now: datetime
) -> int:
    """Move every e-mail of the shop not sent yet to the time the new settings give it.

    First e-mails count from their trigger (or shipped state, for a fallback); reminders from
    the e-mail before them; a reminder the new settings no longer have is cancelled (`manual`:
    the merchant's doing). What was sent stays. Returns how many e-mails moved or went.
    """
    if all(getattr(old, f) == getattr(new, f) for f in _TIMING):
        return 0
    rows = (
        await conn.execute(
            select(
                Delivery.id,
                Delivery.request_id,
                Delivery.kind,
                Delivery.seq,
                Delivery.due_at,
                ReviewRequest.order_id,
                ReviewRequest.source,
                ReviewRequest.trigger_at,
                ReviewRequest.sent_at,
            )
            .join(ReviewRequest, ReviewRequest.id == Delivery.request_id)
            .where(Delivery.shop_id == shop_id, Delivery.status == Status.SCHEDULED)
        )
    ).all()
    moves: list[dict[str, object]] = []
    dropped: list[int] = []
    steps: list[tuple[int, datetime, str, str]] = []
    for row in rows:
        key = f"{shop_id}:{row.order_id}:{row.seq}"
        name = "first e-mail" if row.kind == Kind.FIRST else f"reminder {row.seq}"
        if row.kind == Kind.FIRST:
            delay = new.delay if row.source == Source.TRIGGER else new.fallback_delay
            if delay is None:
                continue  # fallback turned off: the request keeps its time
            start = row.trigger_at
        elif row.seq <= len(new.reminders):
            previous = await _previous_sent_at(conn, row.id, row.seq)
            if previous is None:
                continue
            start, delay = previous, new.reminders[row.seq - 1]
        else:
            dropped.append(row.id)
            steps.append((row.request_id, now, "cancelled", f"{name}: no longer in the settings"))
            continue
        due = due_time(new, start, delay, key)
        if due != row.due_at:
            moves.append(
                {
                    "b_id": row.id,
                    "b_due": due,
                    "b_window_from": window_from(new, start, delay, due),
                    "b_now": now,
                }
            )
            steps.append(
                (
                    row.request_id,
                    now,
                    "rescheduled",
                    f"{name}: the shop's settings changed, due "
                    f"{row.due_at.isoformat()} → {due.isoformat()}",
                )
            )
    for start in range(0, len(moves), _BATCH):
        await conn.execute(_MOVE_DELIVERY, moves[start : start + _BATCH])
    await conn.execute(_MOVE_REQUESTS, {"b_shop": shop_id})
    if dropped:
        await conn.execute(
            update(Delivery)
            .where(Delivery.id.in_(dropped))
            .values(status=Status.CANCELLED, reason=Reason.MANUAL, updated_at=now)
        )
    await record_steps(conn, steps)
    return len(moves) + len(dropped)


_MOVE_DELIVERY = (
    update(Delivery)
    .where(Delivery.id == bindparam("b_id"))
    .values(
        due_at=bindparam("b_due"),
        window_from=bindparam("b_window_from"),
        updated_at=bindparam("b_now"),
    )
)

# A scheduled request's due time is its first e-mail's.
_MOVE_REQUESTS = (
    update(ReviewRequest)
    .where(ReviewRequest.shop_id == bindparam("b_shop"), ReviewRequest.status == Status.SCHEDULED)
    .values(
        due_at=select(Delivery.due_at)
        .where(Delivery.request_id == ReviewRequest.id, Delivery.seq == 0)
        .scalar_subquery()
    )
)


async def _previous_sent_at(conn: AsyncConnection, delivery_id: int, seq: int) -> datetime | None:
    value: datetime | None = await conn.scalar(
        select(Delivery.sent_at).where(
            Delivery.request_id
            == select(Delivery.request_id).where(Delivery.id == delivery_id).scalar_subquery(),
            Delivery.seq == seq - 1,
        )
    )
    return value
