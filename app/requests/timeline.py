"""A request's timeline: each step with its time and what caused it.

Derived from the rows that record each step (the request, its e-mails, and — through sources
other domains register, wired in app/main.py — the webhook events and the review), so it costs
no extra write on the hot path. What no such row records (a move by a settings change or by
hand, a re-queue) is kept in `request_steps`, written off the hot path.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.requests.models import Delivery, RequestStep, ReviewRequest
from app.requests.vocabulary import Kind, Status


@dataclass(frozen=True)
class Step:
    at: datetime
    step: str
    detail: str


# Other domains' steps of a request: (connection, request id) -> steps. Wired in app/main.py.
TimelineSource = Callable[[AsyncConnection, int], Awaitable[list[Step]]]
SOURCES: list[TimelineSource] = []


_INSERT_STEP = insert(RequestStep).values(
    request_id=bindparam("b_request"),
    at=bindparam("b_at"),
    step=bindparam("b_step"),
    detail=bindparam("b_detail"),
)


async def record(conn: AsyncConnection, steps: list[tuple[int, datetime, str, str]]) -> None:
    """Keep steps no other row records: (request id, when, step, detail), in one statement."""
    if steps:
        await conn.execute(
            _INSERT_STEP,
            [
                {"b_request": r, "b_at": at, "b_step": step, "b_detail": detail[:500]}
                for r, at, step, detail in steps
            ],
        )


def _email(kind: str, seq: int) -> str:
    return "first e-mail" if kind == Kind.FIRST else f"reminder {seq}"


async def timeline(conn: AsyncConnection, request_id: int) -> list[Step]:
    """Every step of the request, oldest first."""
    request = (
        await conn.execute(select(ReviewRequest).where(ReviewRequest.id == request_id))
    ).one()
    steps = [
        Step(
            request.created_at,
            "created",
            f"{request.source} at {request.trigger_at.isoformat()}",
        )
    ]
    deliveries = await conn.execute(
        select(Delivery).where(Delivery.request_id == request_id).order_by(Delivery.seq)
    )
    for d in deliveries:
        name = _email(d.kind, d.seq)
        steps.append(Step(d.created_at, "scheduled", f"{name} due {d.due_at.isoformat()}"))
        if d.window_from is not None:
            steps.append(
                Step(
                    d.created_at,
                    "moved into the send window",
                    f"{name}: the delay ended {d.window_from.isoformat()}, "
                    f"due {d.due_at.isoformat()}",
                )
            )
        if d.claimed_at is not None:
            # (A re-queue starts the attempts again: the last claim then had no number left.)
            attempt = f", attempt {d.attempts}" if d.attempts else ""
            steps.append(Step(d.claimed_at, "claimed", f"{name}{attempt}"))
        if d.sent_at is not None:
            dry = " (dry run)" if d.dry_run else ""
            steps.append(Step(d.sent_at, "sent", f"{name}{dry}, Message-ID {d.message_id}"))
        if d.clicked_at is not None:
            steps.append(Step(d.clicked_at, "clicked", name))
        if d.status in (Status.SKIPPED, Status.CANCELLED, Status.FAILED):
            why = (d.reason or "") + (f": {d.last_error}" if d.last_error else "")
            steps.append(Step(d.updated_at, str(d.status), f"{name}, {why}"))
    recorded = await conn.execute(
        select(RequestStep.at, RequestStep.step, RequestStep.detail)
        .where(RequestStep.request_id == request_id)
        .order_by(RequestStep.id)
    )
    steps.extend(Step(at, step, detail) for at, step, detail in recorded)
    for source in SOURCES:
        steps.extend(await source(conn, request_id))
    return sorted(steps, key=lambda s: s.at)
