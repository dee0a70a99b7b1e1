"""The hook deliveries' lease: claim due ones, record each attempt (only while still ours).

Like the e-mail dispatcher: `FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite has one writer),
the claim committed before any HTTP, an outcome written only if the claim is still the
worker's, so a lease another worker took over is never overwritten.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import UTCDateTime
from app.hooks import service
from app.hooks.models import HookAttempt, HookDelivery, HookEndpoint
from app.hooks.sender import Answer
from app.hooks.vocabulary import DisabledReason, HookStatus

RETRY_BASE = timedelta(seconds=30)  # doubles with each attempt
MAX_BACKOFF = timedelta(hours=1)
RETRY_FOR = timedelta(hours=24)  # after the event: then the delivery is `failed`
FAILING_FOR = timedelta(days=3)  # every attempt failed this long: the endpoint is disabled


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    endpoint_id: str
    url: str
    message_id: str
    body: str
    attempts: int
    created_at: datetime
    secret: str  # encrypted
    previous_secret: str | None  # encrypted
    previous_secret_expires_at: datetime | None


def next_due(attempts: int, created_at: datetime, now: datetime) -> datetime | None:
    """When to try again after `attempts` failed ones; None: the 24 hours are over."""
    deadline = created_at + RETRY_FOR
    if now >= deadline:
        return None
    backoff = min(RETRY_BASE * 2 ** max(attempts - 1, 0), MAX_BACKOFF)
    due: datetime = min(now + backoff, deadline)
    return due


_DUE = (
    select(HookDelivery.id)
    .where(
        or_(
            (HookDelivery.status == HookStatus.SCHEDULED)
            & (HookDelivery.due_at <= bindparam("b_now")),
            (HookDelivery.status == HookStatus.SENDING)
            & (HookDelivery.claim_expires_at <= bindparam("b_now")),
        )
    )
    .order_by(HookDelivery.due_at)
    .limit(bindparam("b_limit"))
    .with_for_update(skip_locked=True)
)
_TAKE = (
    update(HookDelivery)
    .where(HookDelivery.id.in_(bindparam("b_ids", expanding=True)))
    .values(
        status=HookStatus.SENDING,
        claimed_by=bindparam("b_worker"),
        claim_expires_at=bindparam("b_until"),
        attempts=HookDelivery.attempts + 1,
    )
)
_LOAD = (
    select(
        HookDelivery.id.label("delivery_id"), HookDelivery.endpoint_id, HookEndpoint.url,
        HookDelivery.message_id, HookDelivery.body, HookDelivery.attempts,
        HookDelivery.created_at, HookEndpoint.secret_encrypted.label("secret"),
        HookEndpoint.previous_secret_encrypted.label("previous_secret"),
        HookEndpoint.previous_secret_expires_at,
    )
    .join(HookEndpoint, HookEndpoint.id == HookDelivery.endpoint_id)
    .where(HookDelivery.id.in_(bindparam("b_ids", expanding=True)))
    .order_by(HookDelivery.due_at)
)  # fmt: skip


async def claim(
    conn: AsyncConnection, worker: str, now: datetime, lease: float, limit: int
) -> list[Claimed]:
    """Take up to `limit` due deliveries (and any whose lease expired) for `worker`."""
    ids = list((await conn.scalars(_DUE, {"b_now": now, "b_limit": limit})).all())
    if not ids:
        return []
    until = now + timedelta(seconds=lease)
    await conn.execute(_TAKE, {"b_ids": ids, "b_worker": worker, "b_until": until})
    rows = (await conn.execute(_LOAD, {"b_ids": ids})).mappings()
    return [Claimed(**row) for row in rows]


_OURS = (
    HookDelivery.id == bindparam("b_id"),
    HookDelivery.claimed_by == bindparam("b_worker"),
    HookDelivery.status == HookStatus.SENDING,
)


async def record(
    conn: AsyncConnection, claimed: Claimed, worker: str, now: datetime, answer: Answer
) -> HookStatus | None:
    """Delivered (2xx), retried with back-off, or failed after 24 hours; None when the claim
    is no longer ours (nothing written). The endpoint's failure streak follows."""
    error = None if answer.ok else (answer.error or f"HTTP {answer.status_code}")
    values: dict[str, object] = {
        "claimed_by": None,
        "claim_expires_at": None,
        "last_status_code": answer.status_code,
        "last_error": error if error is None else error[:300],
    }
    due = None if answer.ok else next_due(claimed.attempts, claimed.created_at, now)
    if answer.ok:
        status = HookStatus.DELIVERED
        values["delivered_at"] = now
    elif due is None:
        status = HookStatus.FAILED
    else:
        status = HookStatus.SCHEDULED
        values["due_at"] = due
    done = await conn.execute(
        update(HookDelivery).where(*_OURS).values(status=status, **values),
        {"b_id": claimed.delivery_id, "b_worker": worker},
    )
    if not done.rowcount:
        return None
    await conn.execute(
        insert(HookAttempt).values(
            delivery_id=claimed.delivery_id, attempt=claimed.attempts, at=now,
            status_code=answer.status_code, duration_ms=answer.duration_ms,
            error=None if error is None else error[:300],
        )
    )  # fmt: skip
    endpoint = HookEndpoint.id == claimed.endpoint_id
    if answer.ok:
        await conn.execute(
            update(HookEndpoint).where(endpoint, HookEndpoint.failing_since.is_not(None))
            .values(failing_since=None)
        )  # fmt: skip
        return status
    first_failure = func.coalesce(HookEndpoint.failing_since, literal(now, UTCDateTime()))
    await conn.execute(update(HookEndpoint).where(endpoint).values(failing_since=first_failure))
    since = await conn.scalar(select(HookEndpoint.failing_since).where(endpoint))
    if since is not None and now - since >= FAILING_FOR:
        await service.disable(conn, claimed.endpoint_id, DisabledReason.FAILING, now)
    return status
