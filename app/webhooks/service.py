"""The inbox: persist each event once and apply it, in the caller's transaction."""

import json
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.dialect import insert_for, prepared
from app.errors import InvalidInput, validation_errors
from app.orders import service as orders
from app.pagination import page
from app.requests import service as requests
from app.shops import service as shops
from app.shops.service import ShopAuth
from app.webhooks.models import WebhookEvent
from app.webhooks.schemas import (
    EVENT_MODELS,
    OrderStatesReplaced,
    OrderStatusChanged,
    Outcome,
    ReturnRequested,
    WebhookAccepted,
)

_ESCAPED_UNSTORABLE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def parse(body: bytes) -> tuple[str, Any]:
    """The event type and its validated model (None for a type we do not know)."""
    try:
        # UTF-8 only (RFC 8259): `json.loads(bytes)` would also guess UTF-16 and -32, which the
        # payload column could then not store as text.
        text = body.decode("utf-8")
        raw = json.loads(text)
    except UnicodeDecodeError:
        raise InvalidInput(
            "The body is not UTF-8.", [{"loc": ["body"], "msg": "JSON must be UTF-8"}]
        ) from None
    except RecursionError:
        raise InvalidInput(
            "The body is nested too deeply.", [{"loc": ["body"], "msg": "nested too deeply"}]
        ) from None
    except ValueError as exc:
        raise InvalidInput(
            f"The body is not valid JSON: {exc}.", [{"loc": ["body"], "msg": "invalid JSON"}]
        ) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise InvalidInput(
            "The body must be a JSON object with a string 'type'.",
            [{"loc": ["body", "type"], "msg": "Field required"}],
        )
    # NUL and lone surrogates can only arrive escaped; walk the document only when one may be.
    if _ESCAPED_UNSTORABLE.search(text):
        try:
            _refuse_unstorable(raw)
        except RecursionError:
            raise InvalidInput(
                "The body is nested too deeply.", [{"loc": ["body"], "msg": "nested too deeply"}]
            ) from None
    kind: str = raw["type"]
    model = EVENT_MODELS.get(kind)
    if model is None:
        return kind, None
    try:
        return kind, model.model_validate(raw)
    except ValidationError as exc:
        errors = [{**e, "loc": ["body", *e["loc"]]} for e in validation_errors(exc.errors())]
        fields = ", ".join(".".join(str(p) for p in e["loc"][1:]) for e in errors)
        raise InvalidInput(f"Invalid event fields: {fields}.", errors) from None


def _refuse_unstorable(value: Any, loc: tuple[str | int, ...] = ("body",)) -> None:
    """Refuse NUL and lone surrogates, which text columns cannot store, naming the field."""
    if isinstance(value, str):
        if _UNSTORABLE.search(value):
            raise InvalidInput(
                f"Unstorable character in {'.'.join(map(str, loc[1:])) or 'the body'}.",
                [{"loc": list(loc), "msg": "must not contain NUL or lone surrogate characters"}],
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_unstorable(key, loc)
            _refuse_unstorable(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_unstorable(item, (*loc, index))


def _event_insert(dialect: str) -> Any:
    return insert_for(dialect, WebhookEvent).on_conflict_do_nothing().returning(WebhookEvent.id)


def _event_outcome(_: str) -> Any:
    return update(WebhookEvent).where(WebhookEvent.id == bindparam("b_id"))


def _aware(moment: datetime, tz: str) -> datetime:
    # PrestaShop stores shop-local wall-clock times; a module that sends them without an
    # offset means the shop's zone.
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(tz))


async def receive(
    conn: AsyncConnection,
    shop: ShopAuth,
    webhook_id: str,
    body: bytes,
    kind: str,
    event: Any,
    now: datetime,
) -> tuple[int, WebhookAccepted]:
    """Record the event (once per webhook-id) and apply it. Returns the HTTP status and body."""
    order_id = history_id = None
    occurred_at = None
    if isinstance(event, OrderStatusChanged):
        order_id, history_id = event.data.order.id, event.data.history.id
        occurred_at = _aware(event.data.history.date_add, shop.settings.timezone)
    elif isinstance(event, ReturnRequested):
        order_id = event.data.order.id
        occurred_at = _aware(event.data.return_.date_add, shop.settings.timezone)

    event_id = await conn.scalar(
        prepared(conn, _event_insert),
        {
            "shop_id": shop.id,
            "webhook_id": webhook_id,
            "type": kind[:64],
            "order_id": order_id,
            "history_id": history_id,
            "occurred_at": occurred_at,
            "received_at": now,
            "outcome": "recorded" if event is not None else "ignored_type",
            "payload": body.decode(),
        },
    )
    if event_id is None:
        existing = await conn.scalar(
            select(WebhookEvent.id).where(
                WebhookEvent.shop_id == shop.id, WebhookEvent.webhook_id == webhook_id
            )
        )
        return 200, WebhookAccepted(status="duplicate", event_id=existing)
    if event is None:
        return 202, WebhookAccepted(status="ignored", event_id=event_id)

    outcome: Outcome = "recorded"
    request_id: int | None = None
    if isinstance(event, OrderStatusChanged):
        assert occurred_at is not None
        change = await orders.apply_event(conn, shop.id, event.data, occurred_at, event_id, now)
        if not change.new_history:
            outcome = "duplicate_history"
        elif not change.moved_forward:
            outcome = "ignored_older"
        else:
            outcome, request_id = await requests.on_state(
                conn, shop.id, shop.settings, event.data, occurred_at, now
            )
    elif isinstance(event, OrderStatesReplaced):
        states = [s.model_dump() | {"state_id": s.id} for s in event.data.states]
        for s in states:
            del s["id"]
        await shops.replace_order_states(conn, shop.id, states, now)
        outcome = "catalogue_replaced"

    if outcome != "recorded":
        await conn.execute(
            prepared(conn, _event_outcome),
            {"b_id": event_id, "outcome": outcome, "request_id": request_id},
        )
    return 202, WebhookAccepted(status="accepted", event_id=event_id)


async def list_events(
    conn: AsyncConnection, shop_id: str, order_id: int | None, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    stmt = select(WebhookEvent).where(WebhookEvent.shop_id == shop_id)
    if order_id is not None:
        stmt = stmt.where(WebhookEvent.order_id == order_id)
    return await page(conn, stmt, WebhookEvent.id, cursor, limit)
