"""Recording what became of each claimed delivery: sent, skipped, failed, retried, released.

Every function runs in the caller's transaction and writes only if the claim is still the
worker's (`claimed_by`), so a lease taken over by another worker is never overwritten.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Update

from app.dispatch.service import Claim
from app.hooks import service as hooks
from app.hooks.vocabulary import EventType
from app.requests.events import request_event
from app.requests.models import Delivery, ReviewRequest
from app.requests.rules import due_time, window_from
from app.requests.vocabulary import Kind, Reason, Status
from app.suppressions import service as suppressions
from app.suppressions.vocabulary import SuppressionReason

# An outcome is written only if the claim is still ours (a lease can be taken over); each
# statement releases the claim (claimed_by, claim_expires_at) as it records.
_OURS = (
    Delivery.id == bindparam("b_id"),
    Delivery.claimed_by == bindparam("b_worker"),
    Delivery.status == Status.SENDING,
)
_UNCLAIMED: dict[str, Any] = {
    "claimed_by": None,
    "claim_expires_at": None,
    "updated_at": bindparam("b_now"),
}

_DELIVERIES_SENT = (
    update(Delivery)
    .where(
        Delivery.id.in_(bindparam("b_ids", expanding=True)),
        Delivery.claimed_by == bindparam("b_worker"),
        Delivery.status == Status.SENDING,
    )
    .values(
        status=Status.SENT,
        sent_at=bindparam("b_now"),
        last_error=None,
        dry_run=bindparam("b_dry_run"),
        **_UNCLAIMED,
    )
    .returning(Delivery.id)
)
_DELIVERY_FINAL = (
    update(Delivery)
    .where(*_OURS)
    .values(
        status=bindparam("b_status"),
        reason=bindparam("b_reason"),
        last_error=bindparam("b_error"),
        **_UNCLAIMED,
    )
)
_DELIVERY_RETRY = (
    update(Delivery)
    .where(*_OURS)
    .values(
        status=Status.SCHEDULED,
        due_at=bindparam("b_due"),
        last_error=bindparam("b_error"),
        **_UNCLAIMED,
    )
)

# A request follows its first e-mail.
_REQUEST = update(ReviewRequest).where(ReviewRequest.id == bindparam("b_id"))
_REQUESTS_SENT = (
    update(ReviewRequest)
    .where(ReviewRequest.id.in_(bindparam("b_ids", expanding=True)))
    .values(
        status=Status.SENT,
        sent_at=bindparam("b_now"),
        reason=None,
        dry_run=bindparam("b_dry_run"),
        updated_at=bindparam("b_now"),
    )
)
_REQUEST_FINAL = _REQUEST.values(
    status=bindparam("b_status"), reason=bindparam("b_reason"), updated_at=bindparam("b_now")
)
_REQUEST_RETRY = _REQUEST.values(
    status=Status.SCHEDULED, due_at=bindparam("b_due"), updated_at=bindparam("b_now")
)

_INSERT_REMINDER = insert(Delivery).values(
    request_id=bindparam("b_request"),
    shop_id=bindparam("b_shop"),
    kind=Kind.REMINDER,
    seq=bindparam("b_seq"),
    status=Status.SCHEDULED,
    due_at=bindparam("b_due"),
    window_from=bindparam("b_window_from"),
    attempts=0,
    created_at=bindparam("b_now"),
    updated_at=bindparam("b_now"),
)


def _event(claim: Claim, status: Status, reason: Reason | None, **extra: Any) -> hooks.Event:
    return request_event(
        request_id=claim.request_id, public_id=claim.public_id, shop_id=claim.shop_id,
        order_id=claim.order_id, email=claim.email, language=claim.language, status=status,
        reason=reason, **extra,
    )  # fmt: skip


async def _record(
    conn: AsyncConnection,
    claim: Claim,
    worker: str,
    now: datetime,
    delivery: Update,
    request: Update,
    **values: object,
) -> bool:
    """Write one outcome to the delivery, and to its request when it is the first e-mail."""
    params = {"b_id": claim.delivery_id, "b_worker": worker, "b_now": now, **values}
    if not (await conn.execute(delivery, params)).rowcount:
        return False
    if claim.kind == Kind.FIRST:
        await conn.execute(request, {**params, "b_id": claim.request_id})
    return True


@dataclass(frozen=True)
class NextReminder:
    due: datetime
    window_from: datetime | None  # when its delay ends, if the send window moved it


def next_reminder(claim: Claim, sent_at: datetime) -> NextReminder | None:
    """The reminder after this e-mail, if the shop configured one.

    Computed before the message is handed to SMTP, so that recording a sent e-mail can
    never fail on the shop's settings (and send it again after the lease).
    """
    settings = claim.settings
    if claim.seq >= len(settings.reminders):
        return None
    key = f"{claim.shop_id}:{claim.order_id}:{claim.seq + 1}"
    delay = settings.reminders[claim.seq]
    due = due_time(settings, sent_at, delay, key)
    return NextReminder(due, window_from(settings, sent_at, delay, due))


@dataclass(frozen=True)
class Sent:
    """A message the relay accepted: its claim, when, and the reminder it schedules."""

    claim: Claim
    at: datetime
    reminder: NextReminder | None
    dry_run: bool


async def mark_sent(conn: AsyncConnection, sent: Sequence[Sent], worker: str) -> set[int]:
    """Record many sent e-mails at once (those whose claim is still ours); schedule their next
    reminders. Returns the delivery ids recorded.

    Set-based, so that the senders of a worker share one transaction (`recording.py`). All
    get the group's latest time as `sent_at`: they left within milliseconds of each other.
    """
    recorded: set[int] = set()
    events: list[hooks.Event] = []
    for dry_run in (False, True):
        group = [s for s in sent if s.dry_run is dry_run]
        if not group:
            continue
        at = max(s.at for s in group)
        params = {
            "b_ids": [s.claim.delivery_id for s in group],
            "b_worker": worker,
            "b_now": at,
            "b_dry_run": dry_run,
        }
        ours = set((await conn.execute(_DELIVERIES_SENT, params)).scalars())
        recorded |= ours
        firsts = [s.claim.request_id for s in group if s.claim.delivery_id in ours and
                  s.claim.kind == Kind.FIRST]  # fmt: skip
        if firsts:
            await conn.execute(_REQUESTS_SENT, {**params, "b_ids": firsts})
        # `review_request.sent` tells of the request, so of its first e-mail only (reminders
        # do not change the request).
        events += [
            _event(s.claim, Status.SENT, None, sent_at=at, dry_run=dry_run)
            for s in group
            if s.claim.delivery_id in ours and s.claim.kind == Kind.FIRST
        ]
    if events:
        await hooks.emit(conn, EventType.REQUEST_SENT, events, max(s.at for s in sent))
    reminders = [
        {
            "b_request": s.claim.request_id,
            "b_shop": s.claim.shop_id,
            "b_seq": s.claim.seq + 1,
            "b_due": s.reminder.due,
            "b_window_from": s.reminder.window_from,
            "b_now": s.at,
        }
        for s in sent
        if s.reminder is not None and s.claim.delivery_id in recorded
    ]
    if reminders:
        await conn.execute(_INSERT_REMINDER, reminders)
    return recorded


async def mark_final(
    conn: AsyncConnection,
    claim: Claim,
    worker: str,
    now: datetime,
    status: Status,
    reason: Reason,
    error: str | None = None,
) -> bool:
    """`skipped` or `failed`, with its reason; the request follows its first e-mail."""
    recorded = await _record(
        conn,
        claim,
        worker,
        now,
        _DELIVERY_FINAL,
        _REQUEST_FINAL,
        b_status=status,
        b_reason=reason,
        b_error=error,
    )
    if recorded and status is Status.SKIPPED and claim.kind == Kind.FIRST:
        # A skipped reminder leaves the request as it was: only the request's skip is told.
        await hooks.emit(conn, EventType.REQUEST_SKIPPED, [_event(claim, status, reason)], now)
    return recorded


async def mark_bounced(
    conn: AsyncConnection, claim: Claim, worker: str, now: datetime, error: str, key: bytes
) -> bool:
    """`failed` (`recipient_rejected`), and the address joins the shop's suppression list
    (`hard_bounce`), both or neither: the recipient's server refused it for good."""
    failed = await mark_final(
        conn, claim, worker, now, Status.FAILED, Reason.RECIPIENT_REJECTED, error
    )
    if failed:
        await suppressions.add(
            conn, claim.shop_id, key, claim.email, SuppressionReason.HARD_BOUNCE, now
        )
    return failed


async def retry_later(
    conn: AsyncConnection, claim: Claim, worker: str, now: datetime, due: datetime, error: str
) -> bool:
    return await _record(
        conn, claim, worker, now, _DELIVERY_RETRY, _REQUEST_RETRY, b_due=due, b_error=error
    )


async def release(conn: AsyncConnection, claims: list[Claim], worker: str, now: datetime) -> None:
    """Give back claims that were never handed to SMTP; the attempt does not count."""
    if not claims:
        return
    ids = [c.delivery_id for c in claims]
    await conn.execute(
        update(Delivery)
        .where(
            Delivery.id.in_(ids), Delivery.claimed_by == worker, Delivery.status == Status.SENDING
        )
        .values(
            status=Status.SCHEDULED,
            claimed_by=None,
            claim_expires_at=None,
            attempts=Delivery.attempts - 1,
            updated_at=now,
        )
    )
    await conn.execute(
        update(ReviewRequest)
        .where(
            ReviewRequest.id.in_([c.request_id for c in claims if c.kind == Kind.FIRST]),
            ReviewRequest.status == Status.SENDING,
        )
        .values(status=Status.SCHEDULED, updated_at=now)
    )
