"""The inbox: persist each event once and apply it, in the caller's transaction."""

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Row, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.dialect import PerDialect
from app.errors import InvalidInput, validation_errors
from app.pagination import page
from app.requests.timeline import Step
from app.shops.service import ShopAuth
from app.webhooks.handlers import HANDLERS, Applied, Filing
from app.webhooks.models import WebhookEvent
from app.webhooks.schemas import WebhookAccepted
from app.webhooks.vocabulary import Outcome

_ESCAPED_UNSTORABLE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def parse(body: bytes) -> tuple[str, BaseModel | None]:
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
    handler = HANDLERS.get(kind)
    if handler is None:
        return kind, None
    try:
        return kind, handler.model.model_validate(raw)
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


INSERT_EVENT = PerDialect(
    lambda insert_: (
        insert_(WebhookEvent)
        .values(
            shop_id=bindparam("b_shop"),
            webhook_id=bindparam("b_webhook_id"),
            type=bindparam("b_type"),
            order_id=bindparam("b_order"),
            history_id=bindparam("b_history"),
            occurred_at=bindparam("b_occurred_at"),
            received_at=bindparam("b_now"),
            outcome=bindparam("b_outcome"),
            payload=bindparam("b_payload"),
        )
        .on_conflict_do_nothing()
        .returning(WebhookEvent.id, WebhookEvent.shop_id, WebhookEvent.webhook_id)
    )
)

SET_OUTCOME = (
    update(WebhookEvent)
    .where(WebhookEvent.id == bindparam("b_id"))
    .values(outcome=bindparam("b_outcome"), request_id=bindparam("b_request"))
)

# PostgreSQL: `INSERT_EVENT` and `SET_OUTCOME` for any number of events, each one fixed text
# (one array per column), so each is prepared once per connection whatever the batch size.
_PG_INSERT_EVENTS = """
INSERT INTO webhook_events (shop_id, webhook_id, type, order_id, history_id, occurred_at,
                            outcome, payload, received_at)
SELECT u.*, $9::timestamptz
FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::timestamptz[],
            $7::text[], $8::text[])
     AS u(shop_id, webhook_id, type, order_id, history_id, occurred_at, outcome, payload)
ON CONFLICT DO NOTHING
RETURNING id, shop_id, webhook_id
"""

_PG_SET_OUTCOMES = """
UPDATE webhook_events AS e SET outcome = u.outcome, request_id = u.request_id
FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS u(id, outcome, request_id)
WHERE e.id = u.id
"""

_EVENT_COLUMNS = (
    "b_shop", "b_webhook_id", "b_type", "b_order", "b_history", "b_occurred_at", "b_outcome",
    "b_payload",
)  # fmt: skip


async def insert_events(
    conn: AsyncConnection, rows: Sequence[dict[str, Any]], now: datetime
) -> Sequence[Row[*tuple[Any, ...]]]:
    """Insert events (the parameters of `event_values`, all with this `now`) in one statement;
    the (id, shop_id, webhook_id) of those inserted: a webhook-id already known is left out."""
    if conn.dialect.name == "postgresql":
        columns = (*([row[name] for row in rows] for name in _EVENT_COLUMNS), now)
        return (await conn.exec_driver_sql(_PG_INSERT_EVENTS, columns)).all()
    return (await conn.execute(INSERT_EVENT.on(conn), list(rows))).all()


async def set_outcomes(
    conn: AsyncConnection, outcomes: Sequence[tuple[int, str, int | None]]
) -> None:
    """Record what each event did: (event id, outcome, request id)."""
    if not outcomes:
        return
    if conn.dialect.name == "postgresql":
        columns = tuple(list(column) for column in zip(*outcomes, strict=True))
        await conn.exec_driver_sql(_PG_SET_OUTCOMES, columns)
        return
    await conn.execute(
        SET_OUTCOME,
        [
            {"b_id": id_, "b_outcome": outcome, "b_request": request}
            for id_, outcome, request in outcomes
        ],
    )


def event_values(
    shop_id: str,
    webhook_id: str,
    kind: str,
    filing: Filing,
    handled: bool,
    body: bytes,
    now: datetime,
) -> dict[str, Any]:
    """The parameters of `INSERT_EVENT` for one event."""
    return {
        "b_shop": shop_id,
        "b_webhook_id": webhook_id,
        "b_type": kind[:64],
        "b_order": filing.order_id,
        "b_history": filing.history_id,
        "b_occurred_at": filing.occurred_at,
        "b_now": now,
        "b_outcome": Outcome.RECORDED if handled else Outcome.IGNORED_TYPE,
        "b_payload": body.decode(),
    }


async def receive(
    conn: AsyncConnection,
    shop: ShopAuth,
    webhook_id: str,
    body: bytes,
    kind: str,
    event: BaseModel | None,
    now: datetime,
) -> tuple[int, WebhookAccepted]:
    """Record the event (once per webhook-id) and apply it. Returns the HTTP status and body."""
    handler = HANDLERS.get(kind) if event is not None else None
    filing = handler.file(event, shop.settings.timezone) if handler else Filing()
    values = event_values(shop.id, webhook_id, kind, filing, handler is not None, body, now)
    event_id = await conn.scalar(INSERT_EVENT.on(conn), values)
    if event_id is None:
        existing = await conn.scalar(
            select(WebhookEvent.id).where(
                WebhookEvent.shop_id == shop.id, WebhookEvent.webhook_id == webhook_id
            )
        )
        return 200, WebhookAccepted(status="duplicate", event_id=existing)
    if handler is None:
        return 202, WebhookAccepted(status="ignored", event_id=event_id)

    applied: Applied = await handler.apply(conn, shop, event, event_id, now)
    if applied.outcome is not Outcome.RECORDED:
        await conn.execute(
            SET_OUTCOME,
            {"b_id": event_id, "b_outcome": applied.outcome, "b_request": applied.request_id},
        )
    return 202, WebhookAccepted(status="accepted", event_id=event_id)


async def list_events(
    conn: AsyncConnection, shop_id: str, order_id: int | None, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    stmt = select(WebhookEvent).where(WebhookEvent.shop_id == shop_id)
    if order_id is not None:
        stmt = stmt.where(WebhookEvent.order_id == order_id)
    return await page(conn, stmt, WebhookEvent.id, cursor, limit)


async def timeline_steps(conn: AsyncConnection, request_id: int) -> list[Step]:
    """The events that scheduled, moved or cancelled a request, as timeline steps."""
    events = await conn.execute(
        select(WebhookEvent.received_at, WebhookEvent.outcome, WebhookEvent.webhook_id,
               WebhookEvent.history_id)
        .where(WebhookEvent.request_id == request_id)
        .order_by(WebhookEvent.id)
    )  # fmt: skip
    return [
        Step(at, f"event {outcome}", f"webhook {webhook_id}, order history {history_id}")
        for at, outcome, webhook_id, history_id in events
    ]
