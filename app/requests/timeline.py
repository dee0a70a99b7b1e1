"""A request's timeline: each step with its time and what caused it.

Derived from the rows that record each step (the request, its e-mails, and — through sources
other domains register, wired in app/main.py — the webhook events and the review), so it costs
no extra write on the hot path.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.requests.models import Delivery, ReviewRequest
from app.requests.vocabulary import Kind, Status


@dataclass(frozen=True)
class Step:
    at: datetime
    step: str
    detail: str


# Other domains' steps of a request: (connection, request id) -> steps. Wired in app/main.py.
TimelineSource = Callable[[AsyncConnection, int], Awaitable[list[Step]]]
SOURCES: list[TimelineSource] = []


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
        if d.sent_at is not None:
            dry = " (dry run)" if d.dry_run else ""
            steps.append(Step(d.sent_at, "sent", f"{name}{dry}, Message-ID {d.message_id}"))
        if d.clicked_at is not None:
            steps.append(Step(d.clicked_at, "clicked", name))
        if d.status in (Status.SKIPPED, Status.CANCELLED, Status.FAILED):
            why = (d.reason or "") + (f": {d.last_error}" if d.last_error else "")
            steps.append(Step(d.updated_at, str(d.status), f"{name}, {why}"))
    for source in SOURCES:
        steps.extend(await source(conn, request_id))
    return sorted(steps, key=lambda s: s.at)
