"""Queue an alert in the caller's transaction; claim and record them for the sending job."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.alerts.models import Alert
from app.alerts.texts import LOW_REVIEW, SENDING_PAUSED
from app.languages import FALLBACK_LANGUAGE

MAX_ATTEMPTS = 5


async def enqueue(
    conn: AsyncConnection, *, shop_id: str, kind: str, to: str, subject: str, body: str,
    now: datetime,
) -> None:  # fmt: skip
    await conn.execute(
        insert(Alert).values(
            shop_id=shop_id, kind=kind, to_email=to, subject=subject[:300], body=body,
            status="scheduled", due_at=now, attempts=0, created_at=now,
        )
    )  # fmt: skip


def _texts(table: dict[str, tuple[str, str]], language: str) -> tuple[str, str]:
    return table.get(language, table[FALLBACK_LANGUAGE])


async def low_review(
    conn: AsyncConnection, *, shop_id: str, shop_name: str, to: str, language: str,
    rating: int, order: str, comment: str | None, review_id: int, now: datetime,
) -> None:  # fmt: skip
    subject, body = _texts(LOW_REVIEW, language)
    values = {
        "shop": shop_name, "rating": rating, "order": order, "comment": comment or "—",
        "shop_id": shop_id, "review_id": review_id,
    }  # fmt: skip
    await enqueue(
        conn, shop_id=shop_id, kind="low_review", to=to, subject=subject.format(**values),
        body=body.format(**values), now=now,
    )  # fmt: skip


async def sending_paused(
    conn: AsyncConnection, *, shop_id: str, shop_name: str, to: str, language: str,
    reason: str, now: datetime,
) -> None:  # fmt: skip
    subject, body = _texts(SENDING_PAUSED, language)
    values = {"shop": shop_name, "reason": reason, "shop_id": shop_id}
    await enqueue(
        conn, shop_id=shop_id, kind="sending_paused", to=to,
        subject=subject.format(**values), body=body.format(**values), now=now,
    )  # fmt: skip


@dataclass(frozen=True)
class ClaimedAlert:
    id: int
    to_email: str
    subject: str
    body: str
    attempts: int


async def claim(
    conn: AsyncConnection, worker: str, now: datetime, lease: float, limit: int
) -> list[ClaimedAlert]:
    """Take due alerts (and any whose lease expired) for `worker`."""
    due = (
        select(Alert.id)
        .where(
            or_(
                (Alert.status == "scheduled") & (Alert.due_at <= now),
                (Alert.status == "sending") & (Alert.claim_expires_at <= now),
            )
        )
        .order_by(Alert.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await conn.scalars(due)).all())
    if not ids:
        return []
    await conn.execute(
        update(Alert)
        .where(Alert.id.in_(ids))
        .values(
            status="sending",
            claimed_by=worker,
            claim_expires_at=now + timedelta(seconds=lease),
            attempts=Alert.attempts + 1,
        )
    )
    rows = await conn.execute(
        select(Alert.id, Alert.to_email, Alert.subject, Alert.body, Alert.attempts)
        .where(Alert.id.in_(ids))
        .order_by(Alert.id)
    )
    return [ClaimedAlert(*row) for row in rows]


async def record(
    conn: AsyncConnection, alert_id: int, worker: str, now: datetime, error: str | None,
    attempts: int,
) -> None:  # fmt: skip
    """Sent, or retried with back-off, or failed after MAX_ATTEMPTS; only if still ours."""
    if error is None:
        values: dict[str, object] = {"status": "sent", "sent_at": now, "last_error": None}
    elif attempts >= MAX_ATTEMPTS:
        values = {"status": "failed", "last_error": error[:500]}
    else:
        values = {
            "status": "scheduled",
            "due_at": now + timedelta(minutes=2**attempts),
            "last_error": error[:500],
        }
    await conn.execute(
        update(Alert)
        .where(Alert.id == alert_id, Alert.claimed_by == worker, Alert.status == "sending")
        .values(claimed_by=None, claim_expires_at=None, **values)
    )
