"""Writing what `timing.py` derives: the ticket and message rows that changed, and nothing else.

The hot path (`messages.py`) reads a ticket with its messages in one statement and writes
with its own statement on PostgreSQL, with the module-level statements below on SQLite;
`recompute` re-derives a whole shop's tickets in batches.
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.tickets import hours, timing
from app.tickets.models import Ticket, TicketMessage, TicketStatusChange
from app.tickets.timing import Calendar, MessageFacts, StatusFacts, StatusTiming, Timings

Row = dict[str, Any]
RECOMPUTE_BATCH = 500

MESSAGE_COLUMNS = (
    "period_date", "deadline_at", "answered_by", "answered_at", "reply_business_s",
    "reply_calendar_s",
)  # fmt: skip
TICKET_COLUMNS = (
    "period_date", "first_customer_at", "first_needing_at", "ack_deadline_at", "first_reply_at",
    "first_reply_business_s", "first_reply_calendar_s", "replies", "exchanges", "resolution_s",
)  # fmt: skip
# The parameters of UPDATE_TICKET (b_id and b_<name>) and of UPDATE_MESSAGE (b_<name>).
TICKET_PARAMS = (
    "category", "level", "level_detected", "status", "updated_at", "resolved_at", "reopens",
    *TICKET_COLUMNS,
)  # fmt: skip
MESSAGE_WRITE = ("id", *MESSAGE_COLUMNS)

UPDATE_MESSAGE = (
    update(TicketMessage)
    .where(TicketMessage.id == bindparam("b_id"))
    .values(
        period_date=bindparam("b_period_date"),
        deadline_at=bindparam("b_deadline_at"),
        answered_by=bindparam("b_answered_by"),
        answered_at=bindparam("b_answered_at"),
        reply_business_s=bindparam("b_reply_business_s"),
        reply_calendar_s=bindparam("b_reply_calendar_s"),
    )
)

# Every column of a ticket that changes after its creation, in one statement for every path.
UPDATE_TICKET = (
    update(Ticket)
    .where(Ticket.id == bindparam("b_id"))
    .values(
        category=bindparam("b_category"),
        level=bindparam("b_level"),
        level_detected=bindparam("b_level_detected"),
        status=bindparam("b_status"),
        updated_at=bindparam("b_updated_at"),
        period_date=bindparam("b_period_date"),
        first_customer_at=bindparam("b_first_customer_at"),
        first_needing_at=bindparam("b_first_needing_at"),
        ack_deadline_at=bindparam("b_ack_deadline_at"),
        first_reply_at=bindparam("b_first_reply_at"),
        first_reply_business_s=bindparam("b_first_reply_business_s"),
        first_reply_calendar_s=bindparam("b_first_reply_calendar_s"),
        replies=bindparam("b_replies"),
        exchanges=bindparam("b_exchanges"),
        resolved_at=bindparam("b_resolved_at"),
        resolution_s=bindparam("b_resolution_s"),
        reopens=bindparam("b_reopens"),
    )
)

HISTORY_OF_TICKET = select(
    TicketStatusChange.id, TicketStatusChange.status, TicketStatusChange.at
).where(TicketStatusChange.ticket_id == bindparam("b_ticket"))


def facts(row: Mapping[str, Any]) -> MessageFacts:
    return MessageFacts(
        id=row["id"],
        author=row["author"],
        public=row["public"],
        automatic=row["automatic"],
        needs_reply=row["needs_reply"],
        sent_at=row["sent_at"],
    )


async def history(conn: AsyncConnection, ticket_id: int) -> list[StatusFacts]:
    result = await conn.execute(HISTORY_OF_TICKET, {"b_ticket": ticket_id})
    return [StatusFacts(r.id, r.status, r.at) for r in result]


def message_updates(rows: Iterable[Mapping[str, Any]], timings: Timings) -> list[Row]:
    """Parameters of `UPDATE_MESSAGE` for the stored messages whose computed columns differ."""
    changed = []
    for row in rows:
        computed = timings.messages[row["id"]]
        values = {c: getattr(computed, c) for c in MESSAGE_COLUMNS}
        if any(row[c] != v for c, v in values.items()):
            changed.append({"b_id": row["id"], **{f"b_{c}": v for c, v in values.items()}})
    return changed


def apply(ticket: Row, timings: Timings, status: StatusTiming) -> bool:
    """Put the derived columns into `ticket` (a row dict); True when one of them changed."""
    values: Row = {c: getattr(timings.ticket, c) for c in TICKET_COLUMNS}
    values.update(status=status.status, resolved_at=status.resolved_at, reopens=status.reopens)
    changed = any(ticket[c] != v for c, v in values.items())
    ticket.update(values)
    return changed


def ticket_params(ticket: Mapping[str, Any]) -> Row:
    """Parameters of `UPDATE_TICKET` from a ticket row dict."""
    return {"b_id": ticket["id"], **{f"b_{c}": ticket[c] for c in TICKET_PARAMS}}


def stored_status(ticket: Mapping[str, Any]) -> StatusTiming:
    return StatusTiming(ticket["status"], ticket["resolved_at"], ticket["reopens"])


def derive(
    ticket: Mapping[str, Any],
    messages: Sequence[MessageFacts],
    calendar: Calendar,
    status: StatusTiming,
) -> Timings:
    return timing.compute(
        messages, calendar, created_at=ticket["created_at"], resolved_at=status.resolved_at
    )


async def recompute(conn: AsyncConnection, shop_id: str) -> int:
    """Re-derive every ticket of a shop with its current business hours (after they changed).

    In batches of `RECOMPUTE_BATCH` tickets: three reads and at most two writes per batch.
    Returns how many tickets had a changed row (the ticket's or one of its messages').
    """
    calendar = await hours.calendar_for(conn, shop_id)
    changed_tickets = 0
    after = 0
    while True:
        tickets = [
            dict(r)
            for r in (
                await conn.execute(
                    select(Ticket)
                    .where(Ticket.shop_id == shop_id, Ticket.id > after)
                    .order_by(Ticket.id)
                    .limit(RECOMPUTE_BATCH)
                )
            ).mappings()
        ]
        if not tickets:
            return changed_tickets
        after = tickets[-1]["id"]
        ids = [t["id"] for t in tickets]
        messages: dict[int, list[Row]] = {i: [] for i in ids}
        result = await conn.execute(select(TicketMessage).where(TicketMessage.ticket_id.in_(ids)))
        for m in result.mappings():
            messages[m["ticket_id"]].append(dict(m))
        changes: dict[int, list[StatusFacts]] = {i: [] for i in ids}
        result = await conn.execute(
            select(
                TicketStatusChange.ticket_id,
                TicketStatusChange.id,
                TicketStatusChange.status,
                TicketStatusChange.at,
            ).where(TicketStatusChange.ticket_id.in_(ids))
        )
        for c in result:
            changes[c.ticket_id].append(StatusFacts(c.id, c.status, c.at))
        message_params: list[Row] = []
        ticket_rows: list[Row] = []
        for ticket in tickets:
            own = messages[ticket["id"]]
            history_ = changes[ticket["id"]]
            status = timing.status_timing(history_) if history_ else stored_status(ticket)
            timings = derive(ticket, [facts(m) for m in own], calendar, status)
            updates = message_updates(own, timings)
            if apply(ticket, timings, status) or updates:
                changed_tickets += 1
                ticket_rows.append(ticket_params(ticket))
                message_params.extend(updates)
        if message_params:
            await conn.execute(UPDATE_MESSAGE, message_params)
        if ticket_rows:
            await conn.execute(UPDATE_TICKET, ticket_rows)
