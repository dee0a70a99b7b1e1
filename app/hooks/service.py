"""Outgoing webhooks: queue events in the caller's transaction; the merchant's endpoints.

Every function runs in the caller's transaction. Other domains call `emit` in the same
transaction as the change an event tells of, so an event is queued exactly when the change
commits, never lost and never twice.
"""

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    Text,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import UTCDateTime
from app.errors import Conflict, InvalidInput, NotFound
from app.hooks.addresses import url_problem
from app.hooks.models import HookAttempt, HookDelivery, HookEndpoint
from app.hooks.sender import Refused, checked_address
from app.hooks.vocabulary import DisabledReason, EventType, HookStatus, bit, mask, types_of
from app.pagination import page
from app.security import decrypt, encrypt, new_id, new_webhook_secret
from app.timeutil import parse_duration

MAX_ENDPOINTS = 20  # per shop


@dataclass(frozen=True)
class Event:
    """One event of one shop; `data` becomes the body's `data` (datetimes as ISO 8601)."""

    shop_id: str
    data: dict[str, Any]


# One row per endpoint of the shop that is enabled and subscribed to the type: nothing is
# read in Python, and a shop without endpoints costs one index probe per event.
_QUEUE = insert(HookDelivery).from_select(
    ["endpoint_id", "message_id", "event_type", "body", "status", "due_at",
     "attempts", "created_at"],
    select(
        HookEndpoint.id,
        bindparam("b_message", type_=String()),
        bindparam("b_type", type_=String()),
        bindparam("b_body", type_=Text()),
        literal(str(HookStatus.SCHEDULED), String()),
        bindparam("b_due", type_=UTCDateTime()),
        literal(0, Integer()),
        bindparam("b_created", type_=UTCDateTime()),
    ).where(
        HookEndpoint.shop_id == bindparam("b_shop"),
        HookEndpoint.disabled_at.is_(None),
        HookEndpoint.event_mask.op("&")(bindparam("b_bit", type_=Integer())) != 0,
    ),
)  # fmt: skip


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def body(event_type: EventType, data: dict[str, Any], now: datetime) -> str:
    return json.dumps(
        {"type": event_type.value, "timestamp": now.isoformat(), "data": data},
        default=_json_default,
        ensure_ascii=False,
        separators=(",", ":"),
    )


def new_message_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


async def emit(
    conn: AsyncConnection, event_type: EventType, events: Sequence[Event], now: datetime
) -> None:
    """Queue each event for every endpoint of its shop that wants this type (one statement)."""
    if not events:
        return
    rows = [
        {
            "b_shop": e.shop_id,
            "b_bit": bit(event_type),
            "b_message": new_message_id(),
            "b_type": event_type.value,
            "b_body": body(event_type, e.data, now),
            "b_due": now,
            "b_created": now,
        }
        for e in events
    ]
    await conn.execute(_QUEUE, rows)


# --- Endpoints -----------------------------------------------------------------------------


def _field_error(field: str, message: str) -> InvalidInput:
    return InvalidInput(
        f"The {field} is refused: {message}.", [{"loc": ["body", field], "msg": message}]
    )


async def check_url(url: str, allow_private: bool) -> None:
    """Refuse a URL that is malformed or resolves to a loopback, private or link-local address
    (unless `allow_private`): 422 naming `url`."""
    problem = url_problem(url)
    if problem is not None:
        raise _field_error("url", problem)
    try:
        await checked_address(url, allow_private)
    except Refused as exc:
        raise _field_error("url", str(exc)) from None


def _read(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "url": row.url,
        "events": types_of(row.event_mask),
        "enabled": row.disabled_at is None,
        "disabled_at": row.disabled_at,
        "disabled_reason": row.disabled_reason,
        "failing_since": row.failing_since,
        "previous_secret_expires_at": row.previous_secret_expires_at,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


async def _row(conn: AsyncConnection, shop_id: str, endpoint_id: str) -> Any:
    row = (
        await conn.execute(
            select(HookEndpoint).where(
                HookEndpoint.shop_id == shop_id, HookEndpoint.id == endpoint_id
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"No webhook endpoint {endpoint_id!r}.")
    return row


async def create(
    conn: AsyncConnection,
    shop_id: str,
    url: str,
    events: Sequence[EventType],
    *,
    secret_key: str,
    allow_private: bool,
    now: datetime,
) -> tuple[dict[str, Any], str]:
    """Register an endpoint; returns it and its secret (which is never shown again)."""
    count = await conn.scalar(
        select(func.count()).select_from(HookEndpoint).where(HookEndpoint.shop_id == shop_id)
    )
    if (count or 0) >= MAX_ENDPOINTS:
        raise Conflict(f"A shop has at most {MAX_ENDPOINTS} webhook endpoints.")
    await check_url(url, allow_private)
    secret = new_webhook_secret()
    endpoint_id = new_id("we_")
    await conn.execute(
        insert(HookEndpoint).values(
            id=endpoint_id, shop_id=shop_id, url=url, event_mask=mask(events),
            secret_encrypted=encrypt(secret_key, secret), created_at=now, updated_at=now,
        )
    )  # fmt: skip
    return await get(conn, shop_id, endpoint_id), secret


async def list_endpoints(conn: AsyncConnection, shop_id: str) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(HookEndpoint)
        .where(HookEndpoint.shop_id == shop_id)
        .order_by(HookEndpoint.created_at)
    )
    return [_read(r) for r in rows]


async def get(conn: AsyncConnection, shop_id: str, endpoint_id: str) -> dict[str, Any]:
    return _read(await _row(conn, shop_id, endpoint_id))


async def update_endpoint(
    conn: AsyncConnection,
    shop_id: str,
    endpoint_id: str,
    changes: dict[str, Any],
    *,
    allow_private: bool,
    now: datetime,
) -> dict[str, Any]:
    """Change the URL, the events, or whether it is enabled (re-enabling forgets failures)."""
    await _row(conn, shop_id, endpoint_id)
    values: dict[str, Any] = {"updated_at": now}
    if changes.get("url") is not None:
        await check_url(changes["url"], allow_private)
        values["url"] = changes["url"]
    if changes.get("events") is not None:
        values["event_mask"] = mask(changes["events"])
    enabled = changes.get("enabled")
    if enabled is True:
        values |= {"disabled_at": None, "disabled_reason": None, "failing_since": None}
    await conn.execute(update(HookEndpoint).where(HookEndpoint.id == endpoint_id).values(**values))
    if enabled is False:
        await disable(conn, endpoint_id, DisabledReason.MANUAL, now)
    return await get(conn, shop_id, endpoint_id)


async def disable(
    conn: AsyncConnection, endpoint_id: str, reason: DisabledReason, now: datetime
) -> bool:
    """Disable an enabled endpoint; what was still to be delivered to it fails."""
    done = await conn.execute(
        update(HookEndpoint)
        .where(HookEndpoint.id == endpoint_id, HookEndpoint.disabled_at.is_(None))
        .values(disabled_at=now, disabled_reason=reason, updated_at=now)
    )
    if not done.rowcount:
        return False
    await conn.execute(
        update(HookDelivery)
        .where(HookDelivery.endpoint_id == endpoint_id, HookDelivery.status == HookStatus.SCHEDULED)
        .values(status=HookStatus.FAILED, last_error=f"endpoint disabled ({reason})")
    )
    return True


async def delete_endpoint(conn: AsyncConnection, shop_id: str, endpoint_id: str) -> None:
    await _row(conn, shop_id, endpoint_id)
    await conn.execute(delete(HookEndpoint).where(HookEndpoint.id == endpoint_id))


async def rotate_secret(
    conn: AsyncConnection,
    shop_id: str,
    endpoint_id: str,
    previous_valid_for: str,
    *,
    secret_key: str,
    now: datetime,
) -> tuple[str, datetime]:
    """A new secret; the current one keeps signing beside it until the returned time."""
    row = await _row(conn, shop_id, endpoint_id)
    secret = new_webhook_secret()
    expires = now + parse_duration(previous_valid_for).approx()
    await conn.execute(
        update(HookEndpoint)
        .where(HookEndpoint.id == endpoint_id)
        .values(
            secret_encrypted=encrypt(secret_key, secret),
            previous_secret_encrypted=row.secret_encrypted,
            previous_secret_expires_at=expires,
            updated_at=now,
        )
    )
    return secret, expires


def signing_secrets(
    secret_key: str, current: str, previous: str | None, previous_expires_at: datetime | None,
    now: datetime,
) -> list[str]:  # fmt: skip
    """The secrets a message is signed with at `now`: the current one, and the previous one
    during its overlap."""
    found = [decrypt(secret_key, current)]
    if previous is not None and previous_expires_at is not None and previous_expires_at > now:
        found.append(decrypt(secret_key, previous))
    return found


# --- The delivery log ---------------------------------------------------------------------


async def list_deliveries(
    conn: AsyncConnection,
    shop_id: str,
    endpoint_id: str,
    *,
    status: HookStatus | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    """The endpoint's deliveries, newest first, each with its attempts."""
    await _row(conn, shop_id, endpoint_id)
    stmt = select(HookDelivery).where(HookDelivery.endpoint_id == endpoint_id)
    if status is not None:
        stmt = stmt.where(HookDelivery.status == status)
    rows, next_cursor = await page(conn, stmt, HookDelivery.id, cursor, limit)
    by_delivery: dict[int, list[dict[str, Any]]] = {r["id"]: [] for r in rows}
    if by_delivery:
        attempts = await conn.execute(
            select(
                HookAttempt.delivery_id, HookAttempt.attempt, HookAttempt.at,
                HookAttempt.status_code, HookAttempt.duration_ms, HookAttempt.error,
            )
            .where(HookAttempt.delivery_id.in_(list(by_delivery)))
            .order_by(HookAttempt.delivery_id, HookAttempt.attempt)
        )  # fmt: skip
        for a in attempts.mappings():
            by_delivery[a["delivery_id"]].append(dict(a))
    for r in rows:
        r["attempt_log"] = by_delivery[r["id"]]
        if r["status"] != HookStatus.SCHEDULED:
            r["due_at"] = None
    return rows, next_cursor
