"""Recording a message: the hot path of tickets (target: 500 messages a second).

One message costs: the ticket (locked), the shop's calendar, the ticket's messages, the
INSERT, at most one UPDATE of the other messages it changed (the ones a reply answers), and
the ticket's UPDATE; plus the status history only when the ticket was ever resolved.
"""

from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app import sentiment
from app.dialect import PerDialect
from app.errors import Conflict
from app.tickets import classify, hours, recording, timing
from app.tickets.models import TicketMessage
from app.tickets.recording import Row
from app.tickets.schemas import MessageCreate
from app.tickets.service import add_change, locked_ticket
from app.tickets.timing import MessageFacts
from app.tickets.vocabulary import DONE, Author, StatusCause, TicketStatus

# The new message's id until the INSERT gives it one: larger than any, as the real one will be.
_PROVISIONAL = 2**63 - 1

_INSERT_MESSAGE = PerDialect(
    lambda insert_: (
        insert_(TicketMessage)
        .values(
            shop_id=bindparam("b_shop_id"),
            ticket_id=bindparam("b_ticket_id"),
            external_id=bindparam("b_external_id"),
            author=bindparam("b_author"),
            public=bindparam("b_public"),
            automatic=bindparam("b_automatic"),
            body=bindparam("b_body"),
            language=bindparam("b_language"),
            sent_at=bindparam("b_sent_at"),
            period_date=bindparam("b_period_date"),
            needs_reply=bindparam("b_needs_reply"),
            needs_reply_detected=bindparam("b_needs_reply_detected"),
            needs_reply_rule=bindparam("b_needs_reply_rule"),
            deadline_at=bindparam("b_deadline_at"),
            answered_by=bindparam("b_answered_by"),
            answered_at=bindparam("b_answered_at"),
            reply_business_s=bindparam("b_reply_business_s"),
            reply_calendar_s=bindparam("b_reply_calendar_s"),
            sentiment=bindparam("b_sentiment"),
            created_at=bindparam("b_created_at"),
        )
        .on_conflict_do_nothing()
        .returning(TicketMessage.id)
    )
)


def _detected(data: MessageCreate, language: str | None) -> tuple[bool, bool, str | None]:
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
    ticket = await locked_ticket(conn, shop_id, ticket_id)
    rows = [
        dict(r)
        for r in (
            await conn.execute(recording.MESSAGES_OF_TICKET, {"b_ticket": ticket_id})
        ).mappings()
    ]
    for row in rows:
        if row["external_id"] == data.external_id:
            return row, False
    calendar = await hours.calendar_for(conn, shop_id)
    language = data.language or ticket["language"]
    needs_reply, detected, rule = _detected(data, language)
    new = MessageFacts(
        _PROVISIONAL, data.author, data.public, data.automatic, needs_reply, data.sent_at
    )

    status = recording.stored_status(ticket)
    resolved_at = ticket["resolved_at"]
    if new.needing and resolved_at is not None and new.sent_at >= resolved_at:
        past = await recording.history(conn, ticket_id)
        if timing.status_at(past, new.sent_at) in DONE:
            reopen = TicketStatus.OPEN, new.sent_at, StatusCause.CUSTOMER_MESSAGE
            past.append(await add_change(conn, shop_id, ticket_id, *reopen))
            status = timing.status_timing(past)

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
    inserted = await conn.execute(
        _INSERT_MESSAGE.on(conn), {f"b_{name}": value for name, value in values.items()}
    )
    message_id = inserted.scalar()
    if message_id is None:
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

    updates = recording.message_updates(rows, timings)
    for params in updates:
        if params["b_answered_by"] == _PROVISIONAL:
            params["b_answered_by"] = message_id
    if updates:
        await conn.execute(recording.UPDATE_MESSAGE, updates)
    recording.apply(ticket, timings, status)
    ticket["updated_at"] = now
    await conn.execute(recording.UPDATE_TICKET, recording.ticket_params(ticket))
    return {
        **values,
        "id": message_id,
        "speed_rating": None,
        "quality_rating": None,
        "rated_at": None,
    }, True
