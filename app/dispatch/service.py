"""Claiming due deliveries with a lease, and recording what became of each.

Every function runs in the caller's transaction. The claim is committed before any SMTP
conversation starts; each outcome is committed right after its message, and only if the
claim is still ours (`claimed_by`), so a lease taken over by another worker is never
overwritten.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, bindparam, cast, func, insert, literal, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.dialect import prepared
from app.orders.models import Order
from app.requests.models import Delivery, ReviewRequest
from app.requests.service import due_time
from app.shops.models import Shop
from app.shops.schemas import ShopSettings
from app.shops.service import parsed_settings


@dataclass(frozen=True)
class OrderSnapshot:
    """What the re-check and the e-mail need of the order, read with the claim."""

    state_id: int
    paid_at: datetime | None
    reference: str | None
    firstname: str | None
    lastname: str | None
    products: list[dict[str, Any]]
    ordered_at: datetime | None


@dataclass
class Claim:
    """A delivery this worker holds, with what is needed to re-check and render it.

    The shop's settings and the order are read as they are and only interpreted per delivery
    (`settings`, `order`), so that a shop whose stored settings no longer validate, or an
    order row that went missing, fails that delivery alone instead of the whole claim.
    """

    delivery_id: int
    request_id: int
    shop_id: str
    kind: str
    seq: int
    attempts: int
    message_id: str
    lease_until: datetime
    order_id: int
    email: str
    email_normalized: str
    language: str
    trigger_at: datetime
    shop_name: str
    shop_updated_at: datetime
    raw_settings: dict[str, Any]
    order_row: OrderSnapshot | None
    last_sent_to_customer: datetime | None = None

    @property
    def settings(self) -> ShopSettings:
        return parsed_settings(self.shop_id, self.shop_updated_at, self.raw_settings)

    @property
    def order(self) -> OrderSnapshot:
        if self.order_row is None:
            raise LookupError(f"order {self.order_id} of request {self.request_id} is missing")
        return self.order_row


async def claim(
    conn: AsyncConnection,
    *,
    worker: str,
    now: datetime,
    lease: float,
    limit: int,
    message_domain: str,
) -> list[Claim]:
    """Take up to `limit` due deliveries (and any whose lease expired) for `worker`."""
    ids = list(
        (await conn.execute(prepared(conn, _expired), {"b_now": now, "b_limit": limit})).scalars()
    )
    if len(ids) < limit:
        params = {"b_now": now, "b_limit": limit - len(ids)}
        ids += list((await conn.execute(prepared(conn, _due), params)).scalars())
    if not ids:
        return []
    claimed = await conn.execute(
        prepared(conn, _take),
        {
            "b_ids": ids,
            "b_worker": worker,
            "b_until": now + timedelta(seconds=lease),
            "b_now": now,
            "b_domain": f"@{message_domain}>",
        },
    )
    request_ids = [r.request_id for r in claimed if r.kind == "first"]
    if request_ids:
        await conn.execute(prepared(conn, _requests_sending), {"b_ids": request_ids, "b_now": now})
    return await _load(conn, ids)


def _expired(_: str) -> Any:
    return (
        select(Delivery.id)
        .where(Delivery.status == "sending", Delivery.claim_expires_at <= bindparam("b_now"))
        .order_by(Delivery.claim_expires_at)
        .limit(bindparam("b_limit"))
        .with_for_update(skip_locked=True)
    )


def _due(_: str) -> Any:
    paused = select(Shop.id).where(Shop.sending_paused_at.is_not(None))
    return (
        select(Delivery.id)
        .where(
            Delivery.status == "scheduled",
            Delivery.due_at <= bindparam("b_now"),
            Delivery.shop_id.not_in(paused),
        )
        .order_by(Delivery.due_at)
        .limit(bindparam("b_limit"))
        .with_for_update(skip_locked=True)
    )


def _take(_: str) -> Any:
    # The Message-ID is fixed at the first claim and kept across attempts, so a message
    # re-sent after a crash can be recognised by the receiving side.
    message_id = (
        literal("<relance.")
        + cast(Delivery.id, String)
        + literal(".")
        + Delivery.shop_id
        + bindparam("b_domain")
    )
    return (
        update(Delivery)
        .where(Delivery.id.in_(bindparam("b_ids", expanding=True)))
        .values(
            status="sending",
            claimed_by=bindparam("b_worker"),
            claim_expires_at=bindparam("b_until"),
            attempts=Delivery.attempts + 1,
            message_id=func.coalesce(Delivery.message_id, message_id),
            updated_at=bindparam("b_now"),
        )
        .returning(Delivery.request_id, Delivery.kind)
    )


def _requests_sending(_: str) -> Any:
    return (
        update(ReviewRequest)
        .where(
            ReviewRequest.id.in_(bindparam("b_ids", expanding=True)),
            ReviewRequest.status == "scheduled",
        )
        .values(status="sending", updated_at=bindparam("b_now"))
    )


def _claimed_rows(_: str) -> Any:
    return (
        select(
            Delivery.id.label("delivery_id"),
            Delivery.request_id,
            Delivery.shop_id,
            Delivery.kind,
            Delivery.seq,
            Delivery.attempts,
            Delivery.message_id,
            Delivery.claim_expires_at,
            ReviewRequest.order_id,
            ReviewRequest.email,
            ReviewRequest.email_normalized,
            ReviewRequest.language,
            ReviewRequest.trigger_at,
            Shop.name.label("shop_name"),
            Shop.settings,
            Shop.updated_at.label("shop_updated_at"),
            Order.state_id,
            Order.paid_at,
            Order.reference,
            Order.firstname,
            Order.lastname,
            Order.products,
            Order.ordered_at,
        )
        .join(ReviewRequest, ReviewRequest.id == Delivery.request_id)
        .join(Shop, Shop.id == Delivery.shop_id)
        .outerjoin(
            Order,
            (Order.shop_id == ReviewRequest.shop_id) & (Order.order_id == ReviewRequest.order_id),
        )
        .where(Delivery.id.in_(bindparam("b_ids", expanding=True)))
        .order_by(Delivery.due_at)
    )


async def _load(conn: AsyncConnection, ids: list[int]) -> list[Claim]:
    rows = (await conn.execute(prepared(conn, _claimed_rows), {"b_ids": ids})).mappings()
    claims = [
        Claim(
            delivery_id=r["delivery_id"],
            request_id=r["request_id"],
            shop_id=r["shop_id"],
            kind=r["kind"],
            seq=r["seq"],
            attempts=r["attempts"],
            message_id=r["message_id"],
            lease_until=r["claim_expires_at"],
            order_id=r["order_id"],
            email=r["email"],
            email_normalized=r["email_normalized"],
            language=r["language"],
            trigger_at=r["trigger_at"],
            shop_name=r["shop_name"],
            shop_updated_at=r["shop_updated_at"],
            raw_settings=r["settings"],
            order_row=None
            if r["state_id"] is None
            else OrderSnapshot(
                state_id=r["state_id"],
                paid_at=r["paid_at"],
                reference=r["reference"],
                firstname=r["firstname"],
                lastname=r["lastname"],
                products=r["products"] or [],
                ordered_at=r["ordered_at"],
            ),
        )
        for r in rows
    ]
    await _attach_last_sent(conn, claims)
    return claims


async def _attach_last_sent(conn: AsyncConnection, claims: list[Claim]) -> None:
    """When each customer last got a first e-mail from the shop, for the cooldown rule."""
    # Read for every first e-mail: whether the shop has a cooldown is decided per delivery.
    firsts = [c for c in claims if c.kind == "first"]
    if not firsts:
        return
    keys = {(c.shop_id, c.email_normalized) for c in firsts}
    rows = await conn.execute(
        select(
            ReviewRequest.shop_id,
            ReviewRequest.email_normalized,
            func.max(ReviewRequest.sent_at).label("last"),
        )
        .where(
            tuple_(ReviewRequest.shop_id, ReviewRequest.email_normalized).in_(list(keys)),
            ReviewRequest.sent_at.is_not(None),
        )
        .group_by(ReviewRequest.shop_id, ReviewRequest.email_normalized)
    )
    last = {(r.shop_id, r.email_normalized): r.last for r in rows}
    for c in firsts:
        c.last_sent_to_customer = last.get((c.shop_id, c.email_normalized))


def _finish_delivery(_: str) -> Any:
    # The outcome is written only if the claim is still ours (a lease can be taken over).
    return update(Delivery).where(
        Delivery.id == bindparam("b_id"),
        Delivery.claimed_by == bindparam("b_worker"),
        Delivery.status == "sending",
    )


def _update_request(_: str) -> Any:
    return update(ReviewRequest).where(ReviewRequest.id == bindparam("b_id"))


async def _finish(
    conn: AsyncConnection, claim: Claim, worker: str, now: datetime, **values: Any
) -> bool:
    params = {"b_id": claim.delivery_id, "b_worker": worker, **values}
    params.update(claimed_by=None, claim_expires_at=None, updated_at=now)
    result = await conn.execute(prepared(conn, _finish_delivery), params)
    return bool(result.rowcount)


async def _set_request(conn: AsyncConnection, claim: Claim, now: datetime, **values: Any) -> None:
    if claim.kind == "first":
        params = {"b_id": claim.request_id, "updated_at": now, **values}
        await conn.execute(prepared(conn, _update_request), params)


def next_reminder_due(claim: Claim, sent_at: datetime) -> datetime | None:
    """When the reminder after this e-mail is due, if the shop configured one.

    Computed before the message is handed to SMTP, so that recording a sent e-mail can
    never fail on the shop's settings (and send it again after the lease).
    """
    settings = claim.settings
    if claim.seq >= len(settings.reminders):
        return None
    return due_time(settings, sent_at, settings.reminders[claim.seq])


async def mark_sent(
    conn: AsyncConnection,
    claim: Claim,
    worker: str,
    now: datetime,
    reminder_due: datetime | None = None,
) -> bool:
    """Record the e-mail as sent and schedule the next reminder, when one is due."""
    if not await _finish(conn, claim, worker, now, status="sent", sent_at=now, last_error=None):
        return False
    await _set_request(conn, claim, now, status="sent", sent_at=now, reason=None)
    if reminder_due is not None:
        await conn.execute(
            insert(Delivery).values(
                request_id=claim.request_id,
                shop_id=claim.shop_id,
                kind="reminder",
                seq=claim.seq + 1,
                status="scheduled",
                due_at=reminder_due,
                attempts=0,
                created_at=now,
                updated_at=now,
            )
        )
    return True


async def mark_final(
    conn: AsyncConnection,
    claim: Claim,
    worker: str,
    now: datetime,
    status: str,
    reason: str,
    error: str | None = None,
) -> bool:
    """`skipped` or `failed`, with its reason; the request follows its first e-mail."""
    if not await _finish(conn, claim, worker, now, status=status, reason=reason, last_error=error):
        return False
    await _set_request(conn, claim, now, status=status, reason=reason)
    return True


async def retry_later(
    conn: AsyncConnection, claim: Claim, worker: str, now: datetime, due: datetime, error: str
) -> bool:
    if not await _finish(
        conn, claim, worker, now, status="scheduled", due_at=due, last_error=error
    ):
        return False
    await _set_request(conn, claim, now, status="scheduled", due_at=due)
    return True


async def release(conn: AsyncConnection, claims: list[Claim], worker: str, now: datetime) -> None:
    """Give back claims that were never handed to SMTP; the attempt does not count."""
    if not claims:
        return
    ids = [c.delivery_id for c in claims]
    await conn.execute(
        update(Delivery)
        .where(Delivery.id.in_(ids), Delivery.claimed_by == worker, Delivery.status == "sending")
        .values(
            status="scheduled",
            claimed_by=None,
            claim_expires_at=None,
            attempts=Delivery.attempts - 1,
            updated_at=now,
        )
    )
    await conn.execute(
        update(ReviewRequest)
        .where(
            ReviewRequest.id.in_([c.request_id for c in claims if c.kind == "first"]),
            ReviewRequest.status == "sending",
        )
        .values(status="scheduled", updated_at=now)
    )
