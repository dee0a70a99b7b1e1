"""Recording a message: the hot path of tickets (target: 500 messages a second).

A message is derived from everything its ticket holds: the ticket row, its other messages and
the shop's calendar. They are read in ONE statement (`_READ`; the calendar itself is cached per
process and checked against its row's `updated_at`), and written in one statement on
PostgreSQL (`_WRITE`: the message's INSERT, the UPDATE of the messages whose answer moved and
the ticket's UPDATE, in a CTE) or three on SQLite.

Two messages of one ticket must be derived one after the other. On PostgreSQL the read takes
no lock and the write is conditional on the ticket's row version (`xmin`) being the one read:
any write to a ticket (a message, a status change, a recompute) makes a new version, and an
UPDATE that waited for a concurrent one re-checks its condition on the row that transaction
committed. When the version moved, nothing was written, and the message is derived again with
the ticket locked (FOR UPDATE) — as is every message that may reopen the ticket, which also
writes the status history. This relies on READ COMMITTED, PostgreSQL's default, which the
engine keeps (under REPEATABLE READ the conditional UPDATE would fail with a serialization
error instead of finding no row). On SQLite, writers are serialised by BEGIN IMMEDIATE already.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    Integer,
    Text,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.types import TypeEngine

from app import sentiment
from app.dialect import PerDialect
from app.errors import Conflict, NotFound
from app.shops.models import Shop
from app.tickets import classify, hours, recording, timing
from app.tickets.models import BusinessHours, Ticket, TicketMessage
from app.tickets.recording import Row
from app.tickets.schemas import MessageCreate
from app.tickets.service import add_change
from app.tickets.timing import MessageFacts
from app.tickets.vocabulary import DONE, Author, StatusCause, TicketStatus

# Each message re-derives its ticket's timings from all of its messages: a bound keeps that
# cheap (a real support thread holds tens; thousands are a loop between two robots).
MAX_MESSAGES = 2_000

# The new message's id until the INSERT gives it one: larger than any, as the real one will be.
_PROVISIONAL = 2**63 - 1
# The same, in the arrays of `_WRITE` (answered_by is then the id the INSERT returns).
_NEW = -1

_TICKETS = Ticket.__table__.c
_MESSAGES = TicketMessage.__table__.c
# What the derivation reads of the other messages: their facts and their computed columns.
MESSAGE_READ = (
    "id", "external_id", "author", "public", "automatic", "needs_reply", "sent_at",
    *recording.MESSAGE_COLUMNS,
)  # fmt: skip
INSERTED = (
    "shop_id", "ticket_id", "external_id", "author", "public", "automatic", "body", "language",
    "sent_at", "period_date", "needs_reply", "needs_reply_detected", "needs_reply_rule",
    "deadline_at", "answered_by", "answered_at", "reply_business_s", "reply_calendar_s",
    "sentiment", "created_at",
)  # fmt: skip


def _build_read(version: bool) -> Any:
    """The ticket, its shop's zone and hours' `updated_at`, and its messages (one row each, or
    one row of NULLs): every row repeats the ticket."""
    columns: list[Any] = [
        *_TICKETS,
        Shop.timezone.label("shop_timezone"),
        BusinessHours.updated_at.label("hours_updated_at"),
        *(_MESSAGES[name].label(f"m_{name}") for name in MESSAGE_READ),
    ]
    if version:
        columns.append(cast(literal_column("tickets.xmin"), Text).label("version"))
    return (
        select(*columns)
        .select_from(Ticket)
        .join(Shop, Shop.id == Ticket.shop_id)
        .outerjoin(BusinessHours, BusinessHours.shop_id == Ticket.shop_id)
        .outerjoin(TicketMessage, TicketMessage.ticket_id == Ticket.id)
        .where(Ticket.shop_id == bindparam("b_shop"), Ticket.id == bindparam("b_id"))
    )


_READ = {"postgresql": _build_read(version=True), "sqlite": _build_read(version=False)}

_LOCK = (
    select(Ticket.id)
    .where(Ticket.shop_id == bindparam("b_shop"), Ticket.id == bindparam("b_id"))
    .with_for_update()
)

_FULL_MESSAGE = select(TicketMessage).where(TicketMessage.id == bindparam("b_id"))

# SQLite: the INSERT, then recording.UPDATE_MESSAGE and recording.UPDATE_TICKET.
_INSERT_MESSAGE = PerDialect(
    lambda insert_: (
        insert_(TicketMessage)
        .values({name: bindparam(f"b_m_{name}") for name in INSERTED})
        .on_conflict_do_nothing()
        .returning(TicketMessage.id)
    )
)


def _build_write() -> Any:
    """PostgreSQL, one statement: the ticket's UPDATE if its version is still `b_version`; then
    (only if it was) the message's INSERT and the UPDATE of the messages in the `b_u_*` arrays
    (answered_by `_NEW`: the inserted message). Returns the ticket's id (NULL: the version
    moved, nothing was written) and the new message's (NULL: its external_id is taken)."""
    ticket = (
        update(Ticket)
        .where(
            Ticket.id == bindparam("b_id"),
            cast(literal_column("tickets.xmin"), Text) == bindparam("b_version"),
        )
        .values({name: bindparam(f"b_{name}") for name in recording.TICKET_PARAMS})
        .returning(Ticket.id)
        .cte("t")
    )
    row = select(
        *(bindparam(f"b_m_{name}", type_=_MESSAGES[name].type) for name in INSERTED)
    ).where(exists(select(ticket.c.id)))
    inserted = (
        postgresql.insert(TicketMessage)
        .from_select(list(INSERTED), row)
        .on_conflict_do_nothing()
        .returning(TicketMessage.id)
        .cte("ins")
    )
    # The columns of UPDATE_MESSAGE, one array each: unnest(…) AS v(id, period_date, …).
    types: dict[str, TypeEngine[Any]] = {
        "id": BigInteger(),
        "period_date": Date(),
        "deadline_at": DateTime(timezone=True),
        "answered_by": BigInteger(),
        "answered_at": DateTime(timezone=True),
        "reply_business_s": Integer(),
        "reply_calendar_s": Integer(),
    }
    arrays: list[BindParameter[Any]] = [
        bindparam(f"b_u_{name}", type_=postgresql.ARRAY(t)) for name, t in types.items()
    ]
    v = func.unnest(*arrays).table_valued(*types).render_derived(name="v")
    new_id = select(inserted.c.id).scalar_subquery()
    others = (
        update(TicketMessage)
        .where(TicketMessage.id == v.c.id, exists(select(inserted.c.id)))
        .values(
            period_date=v.c.period_date,
            deadline_at=v.c.deadline_at,
            answered_by=case((v.c.answered_by == _NEW, new_id), else_=v.c.answered_by),
            answered_at=v.c.answered_at,
            reply_business_s=v.c.reply_business_s,
            reply_calendar_s=v.c.reply_calendar_s,
        )
        .returning(TicketMessage.id)
        .cte("u")
    )
    return select(
        select(ticket.c.id).scalar_subquery().label("ticket"), new_id.label("message")
    ).add_cte(others)


_WRITE = _build_write()


# Positions in a row of `_READ`: the ticket's columns, the shop's zone, the hours'
# updated_at, the message's columns, then (PostgreSQL) the version.
_TICKET_NAMES = tuple(c.name for c in _TICKETS)
_AT_ZONE = len(_TICKET_NAMES)
_AT_MESSAGE = _AT_ZONE + 2
_AT_VERSION = _AT_MESSAGE + len(MESSAGE_READ)


@dataclass
class _Read:
    ticket: Row
    messages: list[Row]
    shop_timezone: str
    hours_updated_at: datetime | None
    version: str | None


async def _read(conn: AsyncConnection, shop_id: str, ticket_id: int) -> _Read:
    postgres = conn.dialect.name == "postgresql"
    result = await conn.execute(_READ[conn.dialect.name], {"b_shop": shop_id, "b_id": ticket_id})
    rows = result.all()
    if not rows:
        raise NotFound(f"No ticket {ticket_id} in this shop.")
    first = rows[0]
    ticket = dict(zip(_TICKET_NAMES, first[:_AT_ZONE], strict=True))
    messages = []
    if first[_AT_MESSAGE] is not None:
        for r in rows:
            values = r[_AT_MESSAGE:_AT_VERSION]
            messages.append(dict(zip(MESSAGE_READ, values, strict=True)))
    version = first[_AT_VERSION] if postgres else None
    return _Read(ticket, messages, first[_AT_ZONE], first[_AT_ZONE + 1], version)


def detect_needs_reply(data: MessageCreate, language: str | None) -> tuple[bool, bool, str | None]:
    """needs_reply, whether it was detected, and the rule that decided."""
    if data.needs_reply is not None:
        return data.needs_reply, False, None
    if data.author != Author.CUSTOMER:
        return False, False, None
    verdict = classify.needs_reply(data.body, language)
    return verdict.needs_reply, True, verdict.rule


async def record(
    conn: AsyncConnection, shop_id: str, ticket_id: int, data: MessageCreate, now: datetime
) -> tuple[Row, bool]:
    """The new message and True; or the one already recorded with this `external_id` in this
    ticket and False. An `external_id` of another ticket is a conflict.

    Every waiting time of the ticket is derived again from all its messages, so a message
    recorded out of order (a backfill) moves the answers where they belong; a customer's
    message needing a reply, sent while the ticket was resolved or closed, reopens it.
    """
    if conn.dialect.name == "postgresql":
        done = await _record(conn, shop_id, ticket_id, data, now, locked=False)
        if done is not None:
            return done
        await conn.execute(_LOCK, {"b_shop": shop_id, "b_id": ticket_id})
    done = await _record(conn, shop_id, ticket_id, data, now, locked=True)
    assert done is not None  # the ticket is locked (PostgreSQL) or the writers serialised
    return done


async def _record(
    conn: AsyncConnection,
    shop_id: str,
    ticket_id: int,
    data: MessageCreate,
    now: datetime,
    *,
    locked: bool,
) -> tuple[Row, bool] | None:
    """One attempt; None when it must be made again with the ticket locked (nothing written)."""
    read = await _read(conn, shop_id, ticket_id)
    ticket, rows = read.ticket, read.messages
    for row in rows:
        if row["external_id"] == data.external_id:
            full = (await conn.execute(_FULL_MESSAGE, {"b_id": row["id"]})).mappings().one()
            return dict(full), False
    if len(rows) >= MAX_MESSAGES:
        raise Conflict(
            f"Ticket {ticket_id} already holds {MAX_MESSAGES} messages, the most one ticket "
            "may hold; record the rest of the conversation in a new ticket."
        )
    language = data.language or ticket["language"]
    needs_reply, detected, rule = detect_needs_reply(data, language)
    new = MessageFacts(
        _PROVISIONAL, data.author, data.public, data.automatic, needs_reply, data.sent_at
    )

    status = recording.stored_status(ticket)
    resolved_at = ticket["resolved_at"]
    if new.needing and resolved_at is not None and new.sent_at >= resolved_at:
        if not locked:
            return None  # it may reopen the ticket: its status history is read and written
        past = await recording.history(conn, ticket_id)
        if timing.status_at(past, new.sent_at) in DONE:
            reopen = TicketStatus.OPEN, new.sent_at, StatusCause.CUSTOMER_MESSAGE
            past.append(await add_change(conn, shop_id, ticket_id, *reopen))
            status = timing.status_timing(past)

    calendar = await hours.cached_calendar(conn, shop_id, read.shop_timezone, read.hours_updated_at)
    first_customer_at = ticket["first_customer_at"]
    if (
        (ticket["level"] is None or ticket["level_detected"])
        and new.is_customer_contact
        and (first_customer_at is None or new.sent_at < first_customer_at)
    ):
        ticket["level"], _rule = classify.level(data.body, ticket["subject"], language)
        ticket["level_detected"] = True

    timings = recording.derive(ticket, [*map(recording.facts, rows), new], calendar, status)
    own = timings.messages[_PROVISIONAL]
    mood = None
    if data.author == Author.CUSTOMER and data.body:
        mood = sentiment.classify(data.body, language)
    values: Row = {
        "shop_id": shop_id,
        "ticket_id": ticket_id,
        "external_id": data.external_id,
        "author": data.author.value,
        "public": data.public,
        "automatic": data.automatic,
        "body": data.body,
        "language": data.language,
        "sent_at": data.sent_at,
        "period_date": own.period_date,
        "needs_reply": needs_reply,
        "needs_reply_detected": detected,
        "needs_reply_rule": rule,
        "deadline_at": own.deadline_at,
        "answered_by": own.answered_by,
        "answered_at": own.answered_at,
        "reply_business_s": own.reply_business_s,
        "reply_calendar_s": own.reply_calendar_s,
        "sentiment": mood,
        "created_at": now,
    }
    updates = recording.message_updates(rows, timings)
    recording.apply(ticket, timings, status)
    ticket["updated_at"] = now
    inserted = {f"b_m_{name}": value for name, value in values.items()}
    if conn.dialect.name == "postgresql":
        message_id = await _write_pg(conn, ticket, read.version, inserted, updates)
        if message_id is None:
            return None
    else:
        message_id = await _write_sqlite(conn, ticket, inserted, updates)
    if message_id < 0:
        # Not in this ticket (checked above): the shop used the id for another ticket's message.
        other = await conn.execute(
            select(TicketMessage.ticket_id).where(
                TicketMessage.shop_id == shop_id, TicketMessage.external_id == data.external_id
            )
        )
        raise Conflict(
            f"external_id {data.external_id!r} is already a message of ticket "
            f"{other.scalar()}; a message belongs to one ticket."
        )
    return {
        **values,
        "id": message_id,
        "speed_rating": None,
        "quality_rating": None,
        "rated_at": None,
    }, True


async def _write_pg(
    conn: AsyncConnection,
    ticket: Row,
    version: str | None,
    inserted: Row,
    updates: list[Row],
) -> int | None:
    """The new message's id; -1 when its external_id is taken; None when the ticket's version
    moved since it was read (then nothing was written)."""
    params = {**recording.ticket_params(ticket), "b_version": version, **inserted}
    for name in recording.MESSAGE_WRITE:
        params[f"b_u_{name}"] = [
            _NEW if name == "answered_by" and u[f"b_{name}"] == _PROVISIONAL else u[f"b_{name}"]
            for u in updates
        ]
    row = (await conn.execute(_WRITE, params)).one()
    if row.ticket is None:
        return None
    return -1 if row.message is None else int(row.message)


async def _write_sqlite(
    conn: AsyncConnection, ticket: Row, inserted: Row, updates: list[Row]
) -> int:
    message_id = (await conn.execute(_INSERT_MESSAGE.on(conn), inserted)).scalar()
    if message_id is None:
        return -1
    for params in updates:
        if params["b_answered_by"] == _PROVISIONAL:
            params["b_answered_by"] = message_id
    if updates:
        await conn.execute(recording.UPDATE_MESSAGE, updates)
    await conn.execute(recording.UPDATE_TICKET, recording.ticket_params(ticket))
    return int(message_id)
