"""Baseline (b) of the ingest benchmark: Relance's webhook hot path, hand-written.

A raw ASGI app with an asyncpg pool that does, per `order.status_changed` event, the same work
and the SAME SQL statements (text copied from what SQLAlchemy emits for Relance) in one
transaction, against the same schema (a database migrated by `relance migrate`):

  1. shop + active secrets lookup (LEFT JOIN), Fernet-decrypt of the secret (same key derivation)
  2. Standard Webhooks signature check (HMAC-SHA256 with every active key, constant-time)
  3. INSERT INTO webhook_events … ON CONFLICT DO NOTHING RETURNING id
  4. INSERT INTO order_history … ON CONFLICT DO NOTHING RETURNING id
  5. the conditional upsert INSERT INTO orders … ON CONFLICT DO UPDATE … WHERE history_id < new
  6. trigger state: INSERT INTO review_requests … ON CONFLICT DO NOTHING + INSERT INTO deliveries
     cancel state: SELECT the order's request ids, UPDATE review_requests / deliveries by id
  7. UPDATE webhook_events SET outcome, request_id

What it leaves out is exactly the framework layers: FastAPI routing/dependencies, pydantic
validation of the body and of the shop settings, SQLAlchemy statement building and compilation.

    BENCH_DSN=postgresql://… RELANCE_SECRET_KEY=… \
      .venv/bin/python -m uvicorn bench.baseline_asyncpg:app --port P --log-level warning
"""

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from cryptography.fernet import Fernet

DSN = os.environ.get("BENCH_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
SECRET_KEY = os.environ.get("RELANCE_SECRET_KEY", "relance-development-secret-key-change-me")
POOL_SIZE = int(os.environ.get("RELANCE_DB_POOL_SIZE", "10"))
FERNET = Fernet(
    base64.urlsafe_b64encode(hashlib.sha256(b"relance-encryption\0" + SECRET_KEY.encode()).digest())
)
LANGUAGES = frozenset({"de", "en", "es", "fr", "it"})
PREFIX = "/webhooks/prestashop/"
_DAYS = re.compile(r"^P(\d+)D$")
_ZONES: dict[str, ZoneInfo] = {}

SHOP_SQL = (
    "SELECT shops.id, shops.settings, shops.updated_at, shop_webhook_secrets.secret_encrypted \n"
    "FROM shops LEFT OUTER JOIN shop_webhook_secrets ON shop_webhook_secrets.shop_id = "
    "shops.id AND (shop_webhook_secrets.expires_at IS NULL OR shop_webhook_secrets.expires_at "
    "> $1::TIMESTAMP WITH TIME ZONE) \nWHERE shops.id = $2::VARCHAR"
)
EVENT_SQL = (
    "INSERT INTO webhook_events (shop_id, webhook_id, type, order_id, history_id, occurred_at, "
    "received_at, outcome, payload) VALUES ($1::VARCHAR, $2::VARCHAR, $3::VARCHAR, $4::BIGINT, "
    "$5::BIGINT, $6::TIMESTAMP WITH TIME ZONE, $7::TIMESTAMP WITH TIME ZONE, $8::VARCHAR, "
    "$9::VARCHAR) ON CONFLICT DO NOTHING RETURNING webhook_events.id"
)
HISTORY_SQL = (
    "INSERT INTO order_history (shop_id, order_id, history_id, state_id, state_name, paid, "
    "shipped, occurred_at, event_id) VALUES ($1::VARCHAR, $2::BIGINT, $3::BIGINT, $4::INTEGER, "
    "$5::VARCHAR, $6::BOOLEAN, $7::BOOLEAN, $8::TIMESTAMP WITH TIME ZONE, $9::BIGINT) "
    "ON CONFLICT DO NOTHING RETURNING order_history.id"
)
_ORDER_COLS = [
    "reference",
    "customer_id",
    "email",
    "email_normalized",
    "firstname",
    "lastname",
    "language",
    "country",
    "group_ids",
    "currency",
    "total_paid",
    "ordered_at",
    "products",
    "state_id",
    "state_name",
    "history_id",
    "state_at",
]
ORDER_SQL = (
    "INSERT INTO orders (shop_id, order_id, reference, customer_id, email, email_normalized, "
    "firstname, lastname, language, country, group_ids, currency, total_paid, ordered_at, "
    "products, state_id, state_name, history_id, state_at, paid_at, created_at, updated_at) "
    "VALUES ($1::VARCHAR, $2::BIGINT, $3::VARCHAR, $4::BIGINT, $5::VARCHAR, $6::VARCHAR, "
    "$7::VARCHAR, $8::VARCHAR, $9::VARCHAR, $10::VARCHAR, $11::JSON, $12::VARCHAR, $13::VARCHAR, "
    "$14::TIMESTAMP WITH TIME ZONE, $15::JSON, $16::INTEGER, $17::VARCHAR, $18::BIGINT, "
    "$19::TIMESTAMP WITH TIME ZONE, $20::TIMESTAMP WITH TIME ZONE, $21::TIMESTAMP WITH TIME "
    "ZONE, $22::TIMESTAMP WITH TIME ZONE) ON CONFLICT (shop_id, order_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _ORDER_COLS)
    + ", paid_at = coalesce(orders.paid_at, excluded.paid_at), updated_at = excluded.updated_at "
    "WHERE orders.history_id < excluded.history_id RETURNING orders.paid_at"
)
OLDER_PAID_SQL = (
    "UPDATE orders SET paid_at=$1::TIMESTAMP WITH TIME ZONE WHERE orders.shop_id = $2::VARCHAR "
    "AND orders.order_id = $3::BIGINT AND (orders.paid_at IS NULL OR orders.paid_at > "
    "$4::TIMESTAMP WITH TIME ZONE)"
)
REQUEST_SQL = (
    "INSERT INTO review_requests (shop_id, order_id, email, email_normalized, language, status, "
    "source, trigger_history_id, trigger_at, due_at, created_at, updated_at, public_id) VALUES "
    "($1::VARCHAR, $2::BIGINT, $3::VARCHAR, $4::VARCHAR, $5::VARCHAR, $6::VARCHAR, $7::VARCHAR, "
    "$8::BIGINT, $9::TIMESTAMP WITH TIME ZONE, $10::TIMESTAMP WITH TIME ZONE, $11::TIMESTAMP WITH "
    "TIME ZONE, $12::TIMESTAMP WITH TIME ZONE, $13::VARCHAR) ON CONFLICT DO NOTHING "
    "RETURNING review_requests.id"
)
DELIVERY_SQL = (
    "INSERT INTO deliveries (request_id, shop_id, kind, seq, status, due_at, attempts, "
    "created_at, updated_at) VALUES ($1::BIGINT, $2::VARCHAR, $3::VARCHAR, $4::INTEGER, "
    "$5::VARCHAR, $6::TIMESTAMP WITH TIME ZONE, $7::INTEGER, $8::TIMESTAMP WITH TIME ZONE, "
    "$9::TIMESTAMP WITH TIME ZONE) RETURNING deliveries.id"
)
PROMOTE_SQL = (
    "UPDATE review_requests SET source=$1::VARCHAR, trigger_history_id=$2::BIGINT, "
    "trigger_at=$3::TIMESTAMP WITH TIME ZONE, due_at=$4::TIMESTAMP WITH TIME ZONE, "
    "updated_at=$5::TIMESTAMP WITH TIME ZONE WHERE review_requests.shop_id = $6::VARCHAR AND "
    "review_requests.order_id = $7::BIGINT AND review_requests.status = $8::VARCHAR AND "
    "review_requests.source = $9::VARCHAR RETURNING review_requests.id"
)
# Cancel as app/requests/service.py does since 20:24: the order's request ids, then both updates
# by id (SQLAlchemy expands the ids into `IN ($5, $6, …)`; `= ANY($5)` is the same work).
ORDER_REQUESTS_SQL = (
    "SELECT review_requests.id \nFROM review_requests \nWHERE review_requests.shop_id = "
    "$1::VARCHAR AND review_requests.order_id = $2::BIGINT"
)
CANCEL_REQUEST_SQL = (
    "UPDATE review_requests SET status=$1::VARCHAR, reason=$2::VARCHAR, updated_at=$3::TIMESTAMP "
    "WITH TIME ZONE WHERE review_requests.id = ANY($5::BIGINT[]) AND review_requests.status = "
    "$4::VARCHAR RETURNING review_requests.id"
)
CANCEL_DELIVERIES_SQL = (
    "UPDATE deliveries SET status=$1::VARCHAR, reason=$2::VARCHAR, updated_at=$3::TIMESTAMP WITH "
    "TIME ZONE WHERE deliveries.request_id = ANY($5::BIGINT[]) AND deliveries.status = "
    "$4::VARCHAR"
)
OUTCOME_SQL = (
    "UPDATE webhook_events SET outcome=$1::VARCHAR, request_id=$2::BIGINT WHERE "
    "webhook_events.id = $3::BIGINT"
)
CANCEL_REASONS = {7: "order_refunded", 8: "payment_error"}

_pool: asyncpg.Pool | None = None


def _zone(name: str) -> ZoneInfo:
    zone = _ZONES.get(name)
    if zone is None:
        zone = _ZONES[name] = ZoneInfo(name)
    return zone


def _due(start: datetime, delay: str, tz: str) -> datetime:
    match = _DAYS.match(delay)
    if not match:  # the bench only uses the default "P2D"
        raise ValueError(f"baseline handles only 'P<n>D' delays, not {delay!r}")
    local = start.astimezone(_zone(tz))
    wall = local.replace(tzinfo=None) + timedelta(days=int(match.group(1)))
    return wall.replace(tzinfo=_zone(tz)).astimezone(UTC)


def _verify(headers: dict[bytes, bytes], body: bytes, keys: list[bytes]) -> str | None:
    msg_id = headers.get(b"webhook-id", b"").decode()
    raw_ts = headers.get(b"webhook-timestamp", b"").decode()
    signatures = headers.get(b"webhook-signature", b"").decode().split()
    if not msg_id or not raw_ts.isdigit() or abs(time.time() - int(raw_ts)) > 300:
        return None
    given = [s.encode() for s in signatures if s.startswith("v1,")]
    valid = False
    for key in keys:
        mac = hmac.new(key, f"{msg_id}.{raw_ts}.".encode() + body, hashlib.sha256).digest()
        expected = b"v1," + base64.b64encode(mac)
        for candidate in given:
            valid |= hmac.compare_digest(expected, candidate)
    return msg_id if valid else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


async def _handle(shop_id: str, headers: dict[bytes, bytes], body: bytes) -> tuple[int, Any]:
    assert _pool is not None
    now = datetime.now(UTC)
    async with _pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(SHOP_SQL, now, shop_id)
        if not rows:
            return 404, {"title": "Not found"}
        keys = [
            base64.b64decode(
                FERNET.decrypt(r["secret_encrypted"].encode()).decode().removeprefix("whsec_")
            )
            for r in rows
            if r["secret_encrypted"] is not None
        ]
        settings = json.loads(rows[0]["settings"])
        webhook_id = _verify(headers, body, keys)
        if webhook_id is None:
            return 401, {"title": "Invalid signature"}
        try:
            event = json.loads(body)
            data = event["data"]
            order, customer, history = data["order"], data["customer"], data["history"]
            state = data["new_state"]
            order_id, history_id, state_id = int(order["id"]), int(history["id"]), int(state["id"])
            email = customer["email"].strip()
        except (ValueError, KeyError, TypeError, AttributeError):
            return 422, {"title": "Invalid input"}
        if event.get("type") != "order.status_changed":
            return 422, {"title": "baseline handles order.status_changed only"}
        occurred = datetime.fromisoformat(history["date_add"])
        if occurred.tzinfo is None:
            occurred = occurred.replace(tzinfo=_zone(settings["timezone"]))

        event_id = await conn.fetchval(
            EVENT_SQL,
            shop_id,
            webhook_id,
            "order.status_changed",
            order_id,
            history_id,
            occurred,
            now,
            "recorded",
            body.decode(),
        )
        if event_id is None:
            existing = await conn.fetchval(
                "SELECT webhook_events.id FROM webhook_events WHERE webhook_events.shop_id = "
                "$1::VARCHAR AND webhook_events.webhook_id = $2::VARCHAR",
                shop_id,
                webhook_id,
            )
            return 200, {"status": "duplicate", "event_id": existing}

        paid = bool(state.get("paid", False))
        history_row = await conn.fetchval(
            HISTORY_SQL,
            shop_id,
            order_id,
            history_id,
            state_id,
            state.get("name"),
            paid,
            bool(state.get("shipped", False)),
            occurred,
            event_id,
        )
        outcome, request_id = "recorded", None
        if history_row is None:
            outcome = "duplicate_history"
        else:
            paid_at = occurred if paid else None
            language = (customer.get("language") or "").strip().lower()[:2] or None
            ordered_at = _dt(order.get("date_add"))
            products = [
                {
                    "id": p["id"],
                    "id_product_attribute": p.get("id_product_attribute", 0),
                    "name": p.get("name"),
                    "reference": p.get("reference"),
                    "quantity": p.get("quantity", 1),
                    "url": p.get("url"),
                    "image_url": p.get("image_url"),
                }
                for p in data.get("products") or []
            ]
            moved = await conn.fetchrow(
                ORDER_SQL,
                shop_id,
                order_id,
                order.get("reference"),
                customer.get("id"),
                email,
                email.lower(),
                customer.get("firstname"),
                customer.get("lastname"),
                language,
                (customer.get("country") or "").upper() or None,
                json.dumps(customer.get("group_ids")),
                order.get("currency"),
                str(order["total_paid"]) if order.get("total_paid") is not None else None,
                ordered_at,
                json.dumps(products),
                state_id,
                state.get("name"),
                history_id,
                occurred,
                paid_at,
                now,
                now,
            )
            if moved is None:
                outcome = "ignored_older"
                if paid_at is not None:
                    await conn.execute(OLDER_PAID_SQL, paid_at, shop_id, order_id, paid_at)
            elif state_id in settings["cancel_state_ids"]:
                reason = CANCEL_REASONS.get(state_id, "order_cancelled")
                all_ids = [r[0] for r in await conn.fetch(ORDER_REQUESTS_SQL, shop_id, order_id)]
                if all_ids:
                    ids = [
                        r[0]
                        for r in await conn.fetch(
                            CANCEL_REQUEST_SQL, "cancelled", reason, now, "scheduled", all_ids
                        )
                    ]
                    await conn.execute(
                        CANCEL_DELIVERIES_SQL, "cancelled", reason, now, "scheduled", all_ids
                    )
                    if ids:
                        outcome, request_id = "cancelled", ids[0]
            elif state_id in settings["trigger_state_ids"]:
                due = _due(occurred, settings["delay"], settings["timezone"])
                lang = language if language in LANGUAGES else settings["default_language"]
                request_id = await conn.fetchval(
                    REQUEST_SQL,
                    shop_id,
                    order_id,
                    email,
                    email.lower(),
                    lang if lang in LANGUAGES else "en",
                    "scheduled",
                    "trigger",
                    history_id,
                    occurred,
                    due,
                    now,
                    now,
                    secrets.token_urlsafe(12),
                )
                if request_id is not None:
                    await conn.fetchval(
                        DELIVERY_SQL, request_id, shop_id, "first", 0, "scheduled", due, 0, now, now
                    )
                    outcome = "scheduled"
                else:
                    request_id = await conn.fetchval(
                        PROMOTE_SQL,
                        "trigger",
                        history_id,
                        occurred,
                        due,
                        now,
                        shop_id,
                        order_id,
                        "scheduled",
                        "fallback",
                    )
                    outcome = "rescheduled" if request_id is not None else "already_requested"
        if outcome != "recorded":
            await conn.execute(OUTCOME_SQL, outcome, request_id, event_id)
    return 202, {"status": "accepted", "event_id": event_id}


async def _send(send: Any, status: int, payload: Any) -> None:
    body = json.dumps(payload, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _pool
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _pool = await asyncpg.create_pool(DSN, min_size=POOL_SIZE, max_size=2 * POOL_SIZE)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if _pool is not None:
                    await _pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    path: str = scope["path"]
    if scope["method"] == "GET" and path == "/healthz":
        await _send(send, 200, {"status": "ok"})
        return
    if scope["method"] != "POST" or not path.startswith(PREFIX):
        await _send(send, 404, {"title": "Not found"})
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    headers = dict(scope["headers"])
    status, payload = await _handle(path[len(PREFIX) :], headers, b"".join(chunks))
    await _send(send, status, payload)
