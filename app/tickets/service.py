"""Tickets: create (idempotent), list, read, change status, ratings and satisfaction.

Every function runs in the caller's transaction. Recording a message is in `messages.py`;
deriving and writing the waiting times in `recording.py` (`recompute` re-exported here).
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, literal, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from app.dialect import PerDialect
from app.errors import InvalidInput, NotFound
from app.orders.service import normalize_email
from app.pagination import page
from app.shops.models import Shop
from app.tickets import hours, recording, timing
from app.tickets.models import Ticket, TicketMessage, TicketStatusChange
from app.tickets.recording import Row, recompute
from app.tickets.schemas import TicketCreate
from app.tickets.timing import StatusFacts
from app.tickets.vocabulary import Author, Category, StatusCause, TicketStatus

__all__ = ["recompute"]


def _insert_ticket(insert_: Any) -> Any:
    return (
        insert_(Ticket)
        .values(
            shop_id=bindparam("b_shop"),
            external_id=bindparam("b_external_id"),
            customer_email=bindparam("b_customer_email"),
            email_normalized=bindparam("b_email_normalized"),
            order_id=bindparam("b_order_id"),
            language=bindparam("b_language"),
            channel=bindparam("b_channel"),
            category=bindparam("b_category"),
            level=bindparam("b_level"),
            level_detected=bindparam("b_level_detected"),
            status=bindparam("b_status"),
            subject=bindparam("b_subject"),
            created_at=bindparam("b_created_at"),
            updated_at=bindparam("b_updated_at"),
            period_date=bindparam("b_period_date"),
            replies=bindparam("b_replies"),
            exchanges=bindparam("b_exchanges"),
            reopens=bindparam("b_reopens"),
        )
        .on_conflict_do_nothing()
        .returning(*Ticket.__table__.c)
    )


_INSERT_TICKET = PerDialect(_insert_ticket)


def _build_create_pg() -> Any:
    """PostgreSQL, one statement: the ticket's INSERT and, only if it inserted a row, its first
    status change (open, at its creation); returns the new ticket (no row: a repeat)."""
    ticket = _insert_ticket(postgresql.insert).cte("t")
    change = (
        insert(TicketStatusChange)
        .from_select(
            ["shop_id", "ticket_id", "status", "at", "cause"],
            select(
                ticket.c.shop_id,
                ticket.c.id,
                literal(TicketStatus.OPEN.value),
                ticket.c.created_at,
                literal(StatusCause.CREATED.value),
            ),
        )
        .cte("c")
    )
    return select(*ticket.c).add_cte(change)


_CREATE_PG = _build_create_pg()

INSERT_CHANGE = insert(TicketStatusChange).values(
    shop_id=bindparam("b_shop"),
    ticket_id=bindparam("b_ticket"),
    status=bindparam("b_status"),
    at=bindparam("b_at"),
    cause=bindparam("b_cause"),
)

# Locked on PostgreSQL so that two messages of one ticket are derived one after the other
# (SQLite's writers are serialised by BEGIN IMMEDIATE already).
LOCK_TICKET = (
    select(Ticket)
    .where(Ticket.shop_id == bindparam("b_shop"), Ticket.id == bindparam("b_id"))
    .with_for_update()
)


async def locked_ticket(conn: AsyncConnection, shop_id: str, ticket_id: int) -> Row:
    row = (await conn.execute(LOCK_TICKET, {"b_shop": shop_id, "b_id": ticket_id})).mappings()
    found = row.first()
    if found is None:
        raise NotFound(f"No ticket {ticket_id} in this shop.")
    return dict(found)


async def add_change(
    conn: AsyncConnection, shop_id: str, ticket_id: int, status: str, at: datetime, cause: str
) -> StatusFacts:
    params = {"b_shop": shop_id, "b_ticket": ticket_id, "b_status": status, "b_at": at}
    result = await conn.execute(
        INSERT_CHANGE.returning(TicketStatusChange.id), {**params, "b_cause": cause}
    )
    return StatusFacts(result.scalar_one(), status, at)


async def _ticket(conn: AsyncConnection, shop_id: str, ticket_id: int) -> Row:
    result = await conn.execute(
        select(Ticket).where(Ticket.shop_id == shop_id, Ticket.id == ticket_id)
    )
    row = result.mappings().first()
    if row is None:
        raise NotFound(f"No ticket {ticket_id} in this shop.")
    return dict(row)


async def create(
    conn: AsyncConnection, shop_id: str, data: TicketCreate, now: datetime
) -> tuple[Row, bool]:
    """The new ticket and True; or, for an `external_id` already recorded, that ticket
    unchanged and False."""
    calendar = await hours.calendar_for(conn, shop_id)
    created_at = data.created_at or now
    params = {
        "b_shop": shop_id,
        "b_external_id": data.external_id,
        "b_customer_email": data.customer_email,
        "b_email_normalized": normalize_email(data.customer_email),
        "b_order_id": data.order_id,
        "b_language": data.language,
        "b_channel": data.channel,
        "b_category": data.category.value,
        "b_level": data.level,
        "b_level_detected": False,
        "b_status": TicketStatus.OPEN.value,
        "b_subject": data.subject,
        "b_created_at": created_at,
        "b_updated_at": now,
        "b_period_date": calendar.local_date(created_at),
        "b_replies": 0,
        "b_exchanges": 0,
        "b_reopens": 0,
    }
    postgres = conn.dialect.name == "postgresql"
    stmt = _CREATE_PG if postgres else _INSERT_TICKET.on(conn)
    row = (await conn.execute(stmt, params)).mappings().first()
    if row is None:
        result = await conn.execute(
            select(Ticket).where(Ticket.shop_id == shop_id, Ticket.external_id == data.external_id)
        )
        return dict(result.mappings().one()), False
    if not postgres:
        await add_change(
            conn, shop_id, row["id"], TicketStatus.OPEN, created_at, StatusCause.CREATED
        )
    return dict(row), True


async def list_tickets(
    conn: AsyncConnection,
    shop_id: str,
    *,
    status: TicketStatus | None,
    category: Category | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Row], str | None]:
    """A page of the shop's tickets, newest first."""
    stmt = select(Ticket).where(Ticket.shop_id == shop_id)
    if status is not None:
        stmt = stmt.where(Ticket.status == status.value)
    if category is not None:
        stmt = stmt.where(Ticket.category == category.value)
    return await page(conn, stmt, Ticket.id, cursor, limit)


@dataclass(frozen=True)
class TicketView:
    ticket: Row
    messages: list[Row]
    status_changes: list[Row]


async def get(conn: AsyncConnection, shop_id: str, ticket_id: int) -> TicketView:
    """A ticket with its messages (in the order sent) and its status history."""
    ticket = await _ticket(conn, shop_id, ticket_id)
    messages = await conn.execute(
        select(TicketMessage)
        .where(TicketMessage.ticket_id == ticket_id)
        .order_by(TicketMessage.sent_at, TicketMessage.id)
    )
    changes = await conn.execute(
        select(TicketStatusChange.status, TicketStatusChange.at, TicketStatusChange.cause)
        .where(TicketStatusChange.ticket_id == ticket_id)
        .order_by(TicketStatusChange.at, TicketStatusChange.id)
    )
    return TicketView(
        ticket,
        [dict(m) for m in messages.mappings()],
        [dict(c) for c in changes.mappings()],
    )


async def update_ticket(
    conn: AsyncConnection, shop_id: str, ticket_id: int, changes: dict[str, Any], now: datetime
) -> Row:
    """Change category, level or status. A status change is kept in the history at `at`
    (default now) unless the ticket already had that status then; the status, resolution
    and reopens are then re-read from the whole history (it may be recorded out of order)."""
    ticket = await locked_ticket(conn, shop_id, ticket_id)
    if "category" in changes:
        ticket["category"] = Category(changes["category"]).value
    if "level" in changes:
        ticket["level"], ticket["level_detected"] = changes["level"], False
    if "status" in changes:
        status = TicketStatus(changes["status"]).value
        at: datetime = changes.get("at") or now
        if at < ticket["created_at"]:
            # The history starts with the ticket's creation: an earlier change would read as
            # a status before it, and its return to `open` as a reopen.
            raise InvalidInput(
                "`at` is before the ticket was created.",
                [{"loc": ["body", "at"], "msg": "must not be before the ticket's created_at"}],
            )
        past = await recording.history(conn, ticket_id)
        if timing.status_at(past, at) != status:
            past.append(await add_change(conn, shop_id, ticket_id, status, at, StatusCause.API))
            derived = timing.status_timing(past)
            ticket.update(
                status=derived.status, resolved_at=derived.resolved_at, reopens=derived.reopens
            )
            ticket["resolution_s"] = timing.resolution_seconds(
                ticket["first_customer_at"], ticket["created_at"], derived.resolved_at
            )
    ticket["updated_at"] = now
    await conn.execute(recording.UPDATE_TICKET, recording.ticket_params(ticket))
    return ticket


async def record_satisfaction(
    conn: AsyncConnection,
    shop_id: str,
    ticket_id: int,
    csat: int | None,
    nps: int | None,
    now: datetime,
) -> Row:
    """Store the customer's CSAT and/or NPS for the ticket (a later answer replaces one)."""
    await _ticket(conn, shop_id, ticket_id)
    values: dict[str, Any] = {"satisfaction_at": now}
    if csat is not None:
        values["csat"] = csat
    if nps is not None:
        values["nps"] = nps
    await conn.execute(update(Ticket).where(Ticket.id == ticket_id).values(**values))
    return await _ticket(conn, shop_id, ticket_id)


def is_reply(message: Row) -> bool:
    return recording.facts(message).is_reply


async def rate_reply(
    conn: AsyncConnection, shop_id: str, message_id: int, speed: int, quality: int, now: datetime
) -> Row:
    """The customer's ratings (1-5) of an agent's reply; anything else is refused, saying why."""
    result = await conn.execute(
        select(TicketMessage).where(
            TicketMessage.shop_id == shop_id, TicketMessage.id == message_id
        )
    )
    found = result.mappings().first()
    if found is None:
        raise NotFound(f"No message {message_id} in this shop.")
    message = dict(found)
    if not is_reply(message):
        why = _not_a_reply(message)
        raise InvalidInput(
            f"Only an agent's reply can be rated: {why}.",
            [{"loc": ["path", "message_id"], "msg": f"not an agent's reply: {why}"}],
        )
    values = {"speed_rating": speed, "quality_rating": quality, "rated_at": now}
    await conn.execute(update(TicketMessage).where(TicketMessage.id == message_id).values(values))
    return {**message, **values}


def _not_a_reply(message: Row) -> str:
    if message["author"] != Author.AGENT:
        return f"its author is {message['author']}, not agent"
    if not message["public"]:
        return "it is an internal note"
    return "it was sent automatically"


# --- The rating page ------------------------------------------------------------------------


@dataclass(frozen=True)
class RatingTarget:
    """A reply whose rating link was followed, and what its page shows."""

    message_id: int
    ticket_id: int
    shop_name: str
    language: str | None  # the ticket's, else the shop's
    speed_rating: int | None
    quality_rating: int | None
    csat: int | None
    nps: int | None


async def rating_target(conn: AsyncConnection, message_id: int) -> RatingTarget | None:
    """The reply a signed link names, or None if it is gone or is not an agent's reply."""
    result = await conn.execute(
        select(TicketMessage, Ticket.language.label("ticket_language"), Ticket.csat, Ticket.nps)
        .add_columns(Shop.name.label("shop_name"), Shop.language.label("shop_language"))
        .join(Ticket, Ticket.id == TicketMessage.ticket_id)
        .join(Shop, Shop.id == TicketMessage.shop_id)
        .where(TicketMessage.id == message_id)
    )
    row = result.mappings().first()
    if row is None or not is_reply(dict(row)):
        return None
    return RatingTarget(
        message_id=message_id,
        ticket_id=row["ticket_id"],
        shop_name=row["shop_name"],
        language=row["ticket_language"] or row["shop_language"],
        speed_rating=row["speed_rating"],
        quality_rating=row["quality_rating"],
        csat=row["csat"],
        nps=row["nps"],
    )


async def rate_from_page(
    conn: AsyncConnection,
    target: RatingTarget,
    speed: int,
    quality: int,
    csat: int | None,
    nps: int | None,
    now: datetime,
) -> None:
    """What the customer chose on the rating page: the reply's ratings, and the ticket's
    CSAT and NPS when given."""
    await conn.execute(
        update(TicketMessage)
        .where(TicketMessage.id == target.message_id)
        .values(speed_rating=speed, quality_rating=quality, rated_at=now)
    )
    values: dict[str, Any] = {}
    if csat is not None:
        values["csat"] = csat
    if nps is not None:
        values["nps"] = nps
    if values:
        values["satisfaction_at"] = now
        await conn.execute(update(Ticket).where(Ticket.id == target.ticket_id).values(values))
