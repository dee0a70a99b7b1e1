"""Tickets API: support threads, their messages, ratings of replies, satisfaction, the rules."""

from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from starlette.types import Message

from app.config import Settings
from app.db import utcnow
from app.deps import AuthFirstRoute, ConnDep, CursorQuery, IdPath, ReadConnDep, SettingsDep
from app.errors import PROBLEM_JSON, PayloadTooLarge
from app.openapi import REF, SHOP_RESPONSES, Problem, Responses
from app.shops.deps import ReadShopDep, ShopDep
from app.tickets import batch, classify, messages, service, timing
from app.tickets.ratings import rating_url
from app.tickets.schemas import (
    BatchItemResult,
    BatchMessageResult,
    InvalidItem,
    MessageCreate,
    MessageRead,
    RatingCreate,
    SatisfactionCreate,
    StatusChangeRead,
    TicketBatchCreate,
    TicketBatchResult,
    TicketCreate,
    TicketDetail,
    TicketPage,
    TicketRead,
    TicketUpdate,
)
from app.tickets.vocabulary import Category, TicketStatus

router = APIRouter(
    prefix="/api/v1/shops/{shop_id}",
    tags=["tickets"],
    route_class=AuthFirstRoute,
    responses=SHOP_RESPONSES,
)

Row = dict[str, Any]


def _repeat(model: type[Any], what: str) -> Responses:
    return {200: {"model": model, "description": f"Already recorded: the existing {what}."}}


_CONFLICT: Responses = {
    409: {
        "description": "The `external_id` is a message of another ticket.",
        "content": {
            PROBLEM_JSON: {
                "schema": {"$ref": REF.format(model="Problem")},
                "example": {
                    "type": "https://relance.dev/problems/conflict",
                    "title": "Conflict",
                    "status": 409,
                    "detail": "external_id 'm-1' is already a message of ticket 7.",
                },
            }
        },
    }
}


def ticket_read(row: Row, now: datetime) -> TicketRead:
    ack = timing.acknowledged(
        row["first_needing_at"], row["first_reply_at"], row["ack_deadline_at"], now
    )
    return TicketRead.model_validate({**row, "acknowledged": ack})


def message_read(row: Row, settings: Settings) -> MessageRead:
    url = None
    if service.is_reply(row):
        url = rating_url(settings.public_url, settings.secret_key, row["id"])
    return MessageRead.model_validate({**row, "rating_url": url})


@router.post(
    "/tickets",
    status_code=201,
    summary="Record a ticket (the same external_id again: 200 with it, unchanged)",
    responses=_repeat(TicketRead, "ticket"),
)
async def create_ticket(
    shop: ShopDep, conn: ConnDep, body: TicketCreate, response: Response
) -> TicketRead:
    now = utcnow()
    row, created = await service.create(conn, shop.id, body, now)
    if not created:
        response.status_code = 200
    return ticket_read(row, now)


def _item_result(outcome: batch.Outcome, now: datetime) -> BatchItemResult:
    error = outcome.error
    if error is not None:
        problem = Problem(
            type=error.type,
            title=error.title,
            status=error.status,
            detail=error.detail,
            errors=error.errors or [],
        )
        return BatchItemResult(index=outcome.index, status=error.status, problem=problem)
    assert outcome.ticket is not None
    return BatchItemResult(
        index=outcome.index,
        status=outcome.status,
        ticket=ticket_read(outcome.ticket, now),
        ticket_status=outcome.ticket_status,
        messages=[
            BatchMessageResult(index=j, status=status, id=ref.id, external_id=ref.external_id)
            for j, status, ref in outcome.messages
        ],
    )


# A batch's body: 2,000 messages of 8 KiB each, with room for their tickets. Past it: 413.
MAX_BATCH_BODY = 24 * 1024 * 1024


class _BoundedRoute(AuthFirstRoute):
    """An `AuthFirstRoute` whose body is read with a bound first: past `MAX_BATCH_BODY` bytes
    (declared, or counted as they arrive), a 413 problem before anything else is parsed."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            too_large = PayloadTooLarge(f"The body is over {MAX_BATCH_BODY // 2**20} MiB.")
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > MAX_BATCH_BODY:
                raise too_large
            chunks: list[bytes] = []
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BATCH_BODY:
                    raise too_large
                chunks.append(chunk)
            body, receive = b"".join(chunks), request.receive
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if replayed:
                    return await receive()
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            return await handler(Request(request.scope, replay))

        return handle


async def record_batch(shop: ShopDep, conn: ConnDep, body: TicketBatchCreate) -> TicketBatchResult:
    now = utcnow()
    valid = [(i, item) for i, item in enumerate(body.items) if not isinstance(item, InvalidItem)]
    outcomes = {o.index: o for o in await batch.record(conn, shop.id, valid, now)}
    for i, item in enumerate(body.items):
        if isinstance(item, InvalidItem):
            outcomes[i] = batch.invalid(i, item.errors)
    results = [_item_result(outcomes[i], now) for i in range(len(body.items))]
    failed = sum(1 for r in results if r.problem is not None)
    return TicketBatchResult(results=results, succeeded=len(results) - failed, failed=failed)


router.add_api_route(
    "/tickets/batch",
    record_batch,
    methods=["POST"],
    status_code=207,
    route_class_override=_BoundedRoute,
    summary="Record up to 500 tickets and their messages at once, each item alone",
    description="As if each item were posted one by one, in order (POST /tickets, then POST "
    "…/messages for each message): the same idempotence on external ids, the same refusals, "
    "the same waiting times. Each item is recorded whole or not at all, and one item's "
    "refusal never stops the others; the answer (207) has one result per item, with the "
    "problem of each refused one naming its field. A 207 means every item it reports as "
    "200 or 201 is committed.",
    responses={
        413: {
            "description": "The body is over 24 MiB.",
            "content": {
                PROBLEM_JSON: {
                    "schema": {"$ref": REF.format(model="Problem")},
                    "example": {
                        "type": "https://relance.dev/problems/payload-too-large",
                        "title": "Payload too large",
                        "status": 413,
                        "detail": "The body is over 24 MiB.",
                    },
                }
            },
        }
    },
)


@router.get("/tickets", summary="Tickets, newest first")
async def list_tickets(
    shop: ReadShopDep,
    conn: ReadConnDep,
    status: Annotated[TicketStatus | None, Query()] = None,
    category: Annotated[Category | None, Query()] = None,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> TicketPage:
    rows, next_cursor = await service.list_tickets(
        conn, shop.id, status=status, category=category, cursor=cursor, limit=limit
    )
    now = utcnow()
    return TicketPage(items=[ticket_read(r, now) for r in rows], next_cursor=next_cursor)


@router.get(
    "/tickets/rules",
    summary="How needs_reply and the level are detected, rule by rule",
    response_model=dict[str, Any],
)
async def detection_rules(shop: ReadShopDep) -> dict[str, Any]:
    return classify.RULES


@router.get("/tickets/{ticket_id}", summary="A ticket, its messages and its waiting times")
async def read_ticket(
    shop: ReadShopDep, conn: ReadConnDep, settings: SettingsDep, ticket_id: IdPath
) -> TicketDetail:
    view = await service.get(conn, shop.id, ticket_id)
    base = ticket_read(view.ticket, utcnow()).model_dump()
    return TicketDetail(
        **base,
        messages=[message_read(m, settings) for m in view.messages],
        status_changes=[StatusChangeRead.model_validate(c) for c in view.status_changes],
    )


@router.patch("/tickets/{ticket_id}", summary="Change a ticket's status, category or level")
async def update_ticket(
    shop: ShopDep, conn: ConnDep, ticket_id: IdPath, body: TicketUpdate
) -> TicketRead:
    now = utcnow()
    changes = body.model_dump(exclude_unset=True)
    return ticket_read(await service.update_ticket(conn, shop.id, ticket_id, changes, now), now)


@router.post(
    "/tickets/{ticket_id}/messages",
    status_code=201,
    summary="Record a message (the same external_id again: 200 with it, unchanged)",
    responses={**_repeat(MessageRead, "message"), **_CONFLICT},
)
async def record_message(
    shop: ShopDep,
    conn: ConnDep,
    settings: SettingsDep,
    ticket_id: IdPath,
    body: MessageCreate,
    response: Response,
) -> MessageRead:
    row, created = await messages.record(conn, shop.id, ticket_id, body, utcnow())
    if not created:
        response.status_code = 200
    return message_read(row, settings)


@router.post("/messages/{message_id}/rating", summary="The customer's ratings of an agent reply")
async def rate_message(
    shop: ShopDep, conn: ConnDep, settings: SettingsDep, message_id: IdPath, body: RatingCreate
) -> MessageRead:
    row = await service.rate_reply(conn, shop.id, message_id, body.speed, body.quality, utcnow())
    return message_read(row, settings)


@router.post("/tickets/{ticket_id}/satisfaction", summary="The customer's CSAT and NPS")
async def record_satisfaction(
    shop: ShopDep, conn: ConnDep, ticket_id: IdPath, body: SatisfactionCreate
) -> TicketRead:
    now = utcnow()
    row = await service.record_satisfaction(conn, shop.id, ticket_id, body.csat, body.nps, now)
    return ticket_read(row, now)
