"""A batch of webhooks in one transaction: authenticate, record, apply; each gets its own answer.

Two ways through a batch, with the same result as taking its webhooks one after another in
arrival order. `receive_together` records every event with one statement and applies them with
one statement per step, round after round: a round holds at most one event per order, so the
events of an order apply in arrival order, each seeing the one before. `receive_one_by_one`
takes each webhook in a savepoint of its own, so that one the database refuses fails alone;
the group committer falls back to it when a batch fails together.
"""

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import bindparam, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from app.errors import AppError, InvalidInput, NotFound, is_database_unavailable
from app.shops import service as shops
from app.shops.service import ShopAuth
from app.webhooks import service
from app.webhooks.handlers import HANDLERS, Applied, Filing, Handler, Received
from app.webhooks.models import WebhookEvent
from app.webhooks.schemas import WebhookAccepted
from app.webhooks.signature import verify
from app.webhooks.vocabulary import Outcome

# The headers the signature check reads (Standard Webhooks and svix spellings).
SIGNATURE_HEADERS = frozenset(
    f"{prefix}-{name}"
    for prefix in ("webhook", "svix")
    for name in ("id", "timestamp", "signature")
)


@dataclass(frozen=True)
class Arrival:
    """A webhook as the route read it: parsed before the batch, judged inside it."""

    shop_id: str
    headers: Mapping[str, str]
    body: bytes
    kind: str | None  # None when the body did not parse: `error` says why
    event: BaseModel | None
    error: Exception | None  # raised once the shop and signature are known to be good


# The HTTP status and body of an answer, or the error to answer with.
Answer = tuple[int, WebhookAccepted] | Exception


@dataclass(frozen=True)
class _Valid:
    """A webhook whose shop, signature and body are good, to be recorded."""

    index: int
    shop: ShopAuth
    webhook_id: str
    arrival: Arrival


_EXISTING_EVENTS = select(WebhookEvent.id, WebhookEvent.shop_id, WebhookEvent.webhook_id).where(
    tuple_(WebhookEvent.shop_id, WebhookEvent.webhook_id).in_(bindparam("b_keys", expanding=True))
)


async def _judge(
    conn: AsyncConnection, arrivals: Sequence[Arrival], secret_key: str, now: datetime
) -> tuple[list[Answer | None], list[_Valid]]:
    """Answers for the webhooks refused (and pings), in the single path's order of checks;
    the others, to record."""
    found = await shops.webhook_auths(conn, {a.shop_id for a in arrivals}, secret_key, now)
    clock = time.time()
    answers: list[Answer | None] = [None] * len(arrivals)
    valid: list[_Valid] = []
    for index, arrival in enumerate(arrivals):
        try:
            shop = found.get(arrival.shop_id)
            if shop is None:
                raise NotFound(f"No shop {arrival.shop_id!r}.")
            webhook_id = verify(arrival.headers, arrival.body, shop.keys, clock)
            if len(webhook_id) > 255:
                raise InvalidInput(
                    "webhook-id is longer than 255 characters.",
                    [{"loc": ["header", "webhook-id"], "msg": "at most 255 characters"}],
                )
        except AppError as exc:
            answers[index] = exc
            continue
        if arrival.error is not None:
            answers[index] = arrival.error
        elif arrival.kind == "ping":
            answers[index] = 200, WebhookAccepted(status="pong")
        else:
            valid.append(_Valid(index, shop, webhook_id, arrival))
    return answers, valid


async def receive_one_by_one(
    conn: AsyncConnection, arrivals: Sequence[Arrival], secret_key: str, now: datetime
) -> list[Answer]:
    """Each webhook as the single path takes it, in a savepoint: one that fails fails alone.

    An error that means the database is gone is raised: the whole batch fails with it.
    """
    answers, valid = await _judge(conn, arrivals, secret_key, now)
    for item in valid:
        arrival = item.arrival
        assert arrival.kind is not None
        try:
            async with conn.begin_nested():
                answers[item.index] = await service.receive(
                    conn, item.shop, item.webhook_id, arrival.body, arrival.kind, arrival.event, now
                )
        except Exception as exc:
            if is_database_unavailable(exc):
                raise
            answers[item.index] = exc
    return [_given(a) for a in answers]


async def receive_together(
    conn: AsyncConnection, arrivals: Sequence[Arrival], secret_key: str, now: datetime
) -> list[Answer]:
    """The whole batch with set-based statements; any database error fails all of it."""
    answers, valid = await _judge(conn, arrivals, secret_key, now)
    # A repeated webhook-id within the batch is a duplicate of its first occurrence.
    first: dict[tuple[str, str], _Valid] = {}
    repeats: list[tuple[_Valid, _Valid]] = []
    for item in valid:
        key = (item.shop.id, item.webhook_id)
        if key in first:
            repeats.append((item, first[key]))
        else:
            first[key] = item
    recording = list(first.values())
    ids = await _record(conn, recording, now)
    received: list[tuple[_Valid, Handler | None, int]] = []
    for item in recording:
        event_id = ids[item.shop.id, item.webhook_id]
        if event_id < 0:
            answers[item.index] = 200, WebhookAccepted(status="duplicate", event_id=-event_id)
            continue
        handler = HANDLERS.get(item.arrival.kind or "") if item.arrival.event else None
        answers[item.index] = (
            (202, WebhookAccepted(status="accepted", event_id=event_id))
            if handler
            else (202, WebhookAccepted(status="ignored", event_id=event_id))
        )
        if handler is not None:
            received.append((item, handler, event_id))
    for item, original in repeats:
        event_id = abs(ids[original.shop.id, original.webhook_id])
        answers[item.index] = 200, WebhookAccepted(status="duplicate", event_id=event_id)
    outcomes = await _apply(conn, received, now)
    changed = [
        (event_id, applied.outcome, applied.request_id)
        for event_id, applied in outcomes
        if applied.outcome is not Outcome.RECORDED
    ]
    await service.set_outcomes(conn, changed)
    return [_given(a) for a in answers]


async def _record(
    conn: AsyncConnection, recording: Sequence[_Valid], now: datetime
) -> dict[tuple[str, str], int]:
    """Insert every event at once; the id of each, negated for a webhook-id already known."""
    if not recording:
        return {}
    rows = []
    for item in recording:
        arrival = item.arrival
        handler = HANDLERS.get(arrival.kind or "") if arrival.event is not None else None
        filing = handler.file(arrival.event, item.shop.settings.timezone) if handler else Filing()
        kind = arrival.kind or ""
        handled = handler is not None
        rows.append(
            service.event_values(
                item.shop.id, item.webhook_id, kind, filing, handled, arrival.body, now
            )
        )
    inserted = await service.insert_events(conn, rows, now)
    ids = {(r.shop_id, r.webhook_id): r.id for r in inserted}
    known = [(i.shop.id, i.webhook_id) for i in recording if (i.shop.id, i.webhook_id) not in ids]
    if known:
        for row in await conn.execute(_EXISTING_EVENTS, {"b_keys": known}):
            ids[row.shop_id, row.webhook_id] = -row.id
    return ids


async def _apply(
    conn: AsyncConnection, received: Sequence[tuple[_Valid, Handler | None, int]], now: datetime
) -> list[tuple[int, Applied]]:
    """Apply the recorded events in arrival order: runs of set-based rounds, and the events
    whose handler has no set-based form on their own between them."""
    outcomes: list[tuple[int, Applied]] = []
    run: list[tuple[_Valid, Handler, int]] = []
    for item, handler, event_id in received:
        assert handler is not None
        if handler.apply_many is not None:
            run.append((item, handler, event_id))
            continue
        outcomes += await _apply_rounds(conn, run, now)
        run = []
        applied = await handler.apply(conn, item.shop, item.arrival.event, event_id, now)
        outcomes.append((event_id, applied))
    outcomes += await _apply_rounds(conn, run, now)
    return outcomes


async def _apply_rounds(
    conn: AsyncConnection, run: Sequence[tuple[_Valid, Handler, int]], now: datetime
) -> list[tuple[int, Applied]]:
    # Round n holds the n-th event of each order (and of each type): one statement per step
    # applies a round, and an order's next event sees its previous one.
    rounds: list[dict[Handler, list[Received]]] = []
    seen: dict[tuple[str, str, int], int] = {}
    for item, handler, event_id in run:
        event = item.arrival.event
        order = handler.order_key(event)
        number = 0
        if order is not None:
            key = (item.shop.id, item.arrival.kind or "", order)
            number = seen[key] = seen.get(key, -1) + 1
        while len(rounds) <= number:
            rounds.append({})
        rounds[number].setdefault(handler, []).append(Received(item.shop, event, event_id))
    outcomes: list[tuple[int, Applied]] = []
    for by_handler in rounds:
        for handler, items in by_handler.items():
            assert handler.apply_many is not None
            applied = await handler.apply_many(conn, items, now)
            outcomes += [(r.event_id, a) for r, a in zip(items, applied, strict=True)]
    return outcomes


def _given(answer: Answer | None) -> Answer:
    assert answer is not None, "every webhook of a batch is answered"
    return answer
