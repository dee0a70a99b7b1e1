"""A merchant's manual actions on one request: cancel, send now, reschedule, re-queue.

Each acts on what is still to come (or, for a re-queue, on what failed) and says so with a 409
when there is nothing of the kind: an e-mail being handed to SMTP cannot be stopped.
"""

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.errors import Conflict, NotFound
from app.hooks import service as hooks
from app.hooks.vocabulary import EventType
from app.requests.events import request_event
from app.requests.models import Delivery, ReviewRequest
from app.requests.timeline import record as record_steps
from app.requests.vocabulary import Kind, Reason, Status


async def _request_status(conn: AsyncConnection, shop_id: str, request_id: int) -> str:
    return (await _request(conn, shop_id, request_id))[0]


async def _request(conn: AsyncConnection, shop_id: str, request_id: int) -> tuple[str, int]:
    """The request's status and order id, the row locked for this transaction."""
    row = (
        await conn.execute(
            select(ReviewRequest.status, ReviewRequest.order_id)
            .where(ReviewRequest.shop_id == shop_id, ReviewRequest.id == request_id)
            .with_for_update()
        )
    ).first()
    if row is None:
        raise NotFound(f"No review request {request_id}.")
    return row.status, row.order_id


async def cancel(conn: AsyncConnection, shop_id: str, request_id: int, now: datetime) -> None:
    """Cancel every e-mail still to come (reason `manual`); a scheduled request is cancelled."""
    await _request_status(conn, shop_id, request_id)
    cancelled = await conn.execute(
        update(Delivery)
        .where(Delivery.request_id == request_id, Delivery.status == Status.SCHEDULED)
        .values(status=Status.CANCELLED, reason=Reason.MANUAL, updated_at=now)
    )
    if not cancelled.rowcount:
        raise Conflict("Nothing is left to send for this request (or it is being sent now).")
    request = (
        await conn.execute(
            update(ReviewRequest)
            .where(ReviewRequest.id == request_id, ReviewRequest.status == Status.SCHEDULED)
            .values(status=Status.CANCELLED, reason=Reason.MANUAL, updated_at=now)
            .returning(
                ReviewRequest.public_id, ReviewRequest.order_id, ReviewRequest.email,
                ReviewRequest.language, ReviewRequest.due_at,
            )
        )
    ).first()  # fmt: skip
    if request is not None:  # the request itself, not only its reminders, was cancelled
        event = request_event(
            request_id=request_id, public_id=request.public_id, shop_id=shop_id,
            order_id=request.order_id, email=request.email, language=request.language,
            status=Status.CANCELLED, reason=Reason.MANUAL, due_at=request.due_at,
        )  # fmt: skip
        await hooks.emit(conn, EventType.REQUEST_CANCELLED, [event], now)


async def move(
    conn: AsyncConnection, shop_id: str, request_id: int, due: datetime, now: datetime
) -> None:
    """The next e-mail of the request is due at `due` (send-now: `due = now`). The rules are
    still checked when it is due: a cancelled or unpaid order is skipped all the same."""
    await _request_status(conn, shop_id, request_id)
    moved = await conn.execute(
        update(Delivery)
        .where(Delivery.request_id == request_id, Delivery.status == Status.SCHEDULED)
        .values(due_at=due, updated_at=now)
        .returning(Delivery.kind)
    )
    kinds = list(moved.scalars())
    if not kinds:
        raise Conflict("No e-mail of this request is scheduled.")
    what = "sent now by hand" if due <= now else f"rescheduled by hand to {due.isoformat()}"
    await record_steps(conn, [(request_id, now, "moved", what)])
    if Kind.FIRST in kinds:
        await conn.execute(
            update(ReviewRequest)
            .where(ReviewRequest.id == request_id)
            .values(due_at=due, updated_at=now)
        )


async def requeue(conn: AsyncConnection, shop_id: str, request_id: int, now: datetime) -> None:
    """Give a failed e-mail a fresh set of attempts, due now."""
    status, order_id = await _request(conn, shop_id, request_id)
    if status == Status.FAILED:
        newer = await conn.scalar(
            select(ReviewRequest.id).where(
                ReviewRequest.shop_id == shop_id,
                ReviewRequest.order_id == order_id,
                ReviewRequest.status.in_([Status.SCHEDULED, Status.SENDING, Status.SENT]),
            )
        )
        if newer is not None:
            raise Conflict(f"Request {newer} of the same order is live: re-queue nothing.")
    # What failed, for the timeline: the delivery's own row forgets it on the re-queue.
    why = (
        await conn.execute(
            select(Delivery.reason, Delivery.last_error).where(
                Delivery.request_id == request_id, Delivery.status == Status.FAILED
            )
        )
    ).first()
    failed = await conn.execute(
        update(Delivery)
        .where(Delivery.request_id == request_id, Delivery.status == Status.FAILED)
        .values(
            status=Status.SCHEDULED,
            reason=None,
            last_error=None,
            attempts=0,
            due_at=now,
            updated_at=now,
        )
        .returning(Delivery.kind)
    )
    if not list(failed.scalars()):
        raise Conflict("No e-mail of this request has failed.")
    assert why is not None
    had = (why.reason or "") + (f": {why.last_error}" if why.last_error else "")
    detail = f"by hand, with fresh attempts (it had failed, {had})"
    await record_steps(conn, [(request_id, now, "re-queued", detail)])
    if status == Status.FAILED:
        # Live again: the one-live-request-per-order index refuses it if a newer request exists.
        await conn.execute(
            update(ReviewRequest)
            .where(ReviewRequest.id == request_id)
            .values(status=Status.SCHEDULED, reason=None, due_at=now, updated_at=now)
        )
