"""Deciding a batch of tickets and messages, item by item, and deriving each ticket once: the
part of `batch.py` without I/O (it is given what the database holds, and says what to write).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app import sentiment
from app.errors import AppError, Conflict, InvalidInput, NotFound
from app.orders.service import normalize_email
from app.tickets import classify, messages, recording, timing
from app.tickets.calendar import BusinessCalendar
from app.tickets.models import Ticket
from app.tickets.recording import Row
from app.tickets.schemas import MessageCreate, TicketBatchItem, TicketCreate
from app.tickets.timing import MessageFacts, StatusFacts
from app.tickets.vocabulary import DONE, Author, StatusCause, TicketStatus

_TICKETS = Ticket.__table__.c
TICKET_INSERTED = tuple(c.name for c in _TICKETS if c.name != "id")


@dataclass(eq=False)
class Ref:
    """A message of the answer: its id is drawn once the batch is decided."""

    external_id: str
    id: int = 0


@dataclass(eq=False)
class Thread:
    ticket: Row  # the row (for a new ticket: its values, `id` once inserted)
    stored: list[Row]  # its messages before this batch
    refs: dict[str, Ref]  # by external id: stored and added
    new: bool = False
    added: list[tuple[Ref, MessageCreate]] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)  # the added messages' rows, once derived
    updates: list[Row] = field(default_factory=list)  # stored messages whose answer moved
    changes: list[tuple[str, datetime, str]] = field(default_factory=list)  # reopens


@dataclass(eq=False)
class Outcome:
    """What became of one item: `error` (nothing of it recorded), or its ticket (as the whole
    batch left it) and each message as (index in the item, 201 or 200, its ref)."""

    index: int
    status: int = 200
    ticket: Row | None = None
    ticket_status: int | None = None
    messages: list[tuple[int, int, Ref]] = field(default_factory=list)
    error: AppError | None = None


def _refused(error: AppError, loc: list[Any], msg: str) -> AppError:
    error.errors = [{"loc": ["body", "items", *loc], "msg": msg}]
    return error


def _new_ticket(shop_id: str, data: TicketCreate, calendar: BusinessCalendar, now: datetime) -> Row:
    created_at = data.created_at or now
    row: Row = {"id": None, **dict.fromkeys(TICKET_INSERTED)}
    row.update(
        shop_id=shop_id,
        external_id=data.external_id,
        customer_email=data.customer_email,
        email_normalized=normalize_email(data.customer_email),
        order_id=data.order_id,
        language=data.language,
        channel=data.channel,
        category=data.category.value,
        level=data.level,
        level_detected=False,
        status=TicketStatus.OPEN.value,
        subject=data.subject,
        created_at=created_at,
        updated_at=now,
        period_date=calendar.local_date(created_at),
        replies=0,
        exchanges=0,
        reopens=0,
    )
    return row


class Plan:
    """The state of a batch being decided: the threads, and who holds each message id."""

    def __init__(self, shop_id: str, calendar: BusinessCalendar, now: datetime) -> None:
        self.shop_id, self.calendar, self.now = shop_id, calendar, now
        self.by_id: dict[int, Thread] = {}
        self.by_ext: dict[str, Thread] = {}
        self.taken: dict[str, int | Thread] = {}  # message external id -> its ticket

    def read(self, rows: Sequence[Any], taken: Sequence[Any]) -> None:
        for r in rows:
            m = r._mapping
            thread = self.by_id.get(m["id"])
            if thread is None:
                thread = Thread({c.name: m[c.name] for c in _TICKETS}, [], {})
                self.by_id[m["id"]] = self.by_ext[m["external_id"]] = thread
            if m["m_id"] is not None:
                stored = {n: m[f"m_{n}"] for n in messages.MESSAGE_READ}
                thread.stored.append(stored)
                thread.refs[stored["external_id"]] = Ref(stored["external_id"], stored["id"])
        for external_id, ticket_id in taken:
            self.taken[external_id] = self.by_id.get(ticket_id, ticket_id)

    def decide(self, index: int, item: TicketBatchItem) -> Outcome:
        """The outcome of one item, and the threads changed as it says if it is accepted."""
        outcome = Outcome(index)
        thread: Thread | None
        if item.ticket is None:
            thread = self.by_id.get(item.ticket_id or 0)
            if thread is None:
                outcome.error = _refused(
                    NotFound(f"No ticket {item.ticket_id} in this shop."),
                    [index, "ticket_id"],
                    "no such ticket in this shop",
                )
                return outcome
            outcome.ticket_status = None
        else:
            thread = self.by_ext.get(item.ticket.external_id)
            outcome.ticket_status = 200
            if thread is None:
                ticket = _new_ticket(self.shop_id, item.ticket, self.calendar, self.now)
                thread = Thread(ticket, [], {}, new=True)
                outcome.ticket_status = outcome.status = 201
        pending: dict[str, Ref] = {}
        accepted: list[tuple[Ref, MessageCreate]] = []
        for j, data in enumerate(item.messages):
            ext = data.external_id
            known = thread.refs.get(ext) or pending.get(ext)
            if known is not None:
                outcome.messages.append((j, 200, known))
                continue
            holder = self.taken.get(ext)
            if holder is not None:
                other = holder if isinstance(holder, int) else holder.ticket["id"]
                where = f"ticket {other}" if other else "another ticket of this batch"
                outcome.error = _refused(
                    Conflict(
                        f"external_id {ext!r} is already a message of {where}; a message "
                        "belongs to one ticket."
                    ),
                    [index, "messages", j, "external_id"],
                    "already a message of another ticket",
                )
                return outcome
            if len(thread.stored) + len(thread.added) + len(accepted) >= messages.MAX_MESSAGES:
                name = f"Ticket {thread.ticket['id']}" if thread.ticket["id"] else "The ticket"
                outcome.error = _refused(
                    Conflict(
                        f"{name} already holds {messages.MAX_MESSAGES} messages, the most one "
                        "ticket may hold; record the rest of the conversation in a new ticket."
                    ),
                    [index, "messages", j],
                    f"the ticket already holds {messages.MAX_MESSAGES} messages",
                )
                return outcome
            ref = Ref(ext)
            pending[ext] = ref
            accepted.append((ref, data))
            outcome.messages.append((j, 201, ref))
            outcome.status = 201
        # Accepted: what the next items see.
        if thread.new and item.ticket is not None:
            self.by_ext[item.ticket.external_id] = thread
        for ref, _data in accepted:
            thread.refs[ref.external_id] = ref
            self.taken[ref.external_id] = thread
        thread.added.extend(accepted)
        outcome.ticket = thread.ticket
        return outcome

    def threads(self) -> list[Thread]:
        """The threads to write: new ones and those with new messages, in a fixed order."""
        seen: dict[int, Thread] = {}
        for thread in self.by_ext.values():
            if thread.new or thread.added:
                seen[id(thread)] = thread
        return list(seen.values())


def _facts(ref: Ref, data: MessageCreate, needs_reply: bool) -> MessageFacts:
    return MessageFacts(ref.id, data.author, data.public, data.automatic, needs_reply, data.sent_at)


def reopen_candidate(thread: Thread) -> bool:
    """Whether a new message may reopen the ticket: then its status history is read."""
    resolved_at = thread.ticket["resolved_at"]
    if thread.new or resolved_at is None:
        return False
    for _, data in thread.added:
        language = data.language or thread.ticket["language"]
        needs_reply, _, _ = messages.detect_needs_reply(data, language)
        f = MessageFacts(0, data.author, data.public, data.automatic, needs_reply, data.sent_at)
        if f.needing and f.sent_at >= resolved_at:
            return True
    return False


def derive(
    thread: Thread,
    calendar: BusinessCalendar,
    history: list[StatusFacts] | None,
    now: datetime,
) -> None:
    """Everything the single path derives message after message, derived once: reopens in
    the messages' order, the level from the earliest customer contact, the timings."""
    ticket = thread.ticket
    status = recording.stored_status(ticket)
    detectable = ticket["level"] is None or ticket["level_detected"]
    first_customer_at = ticket["first_customer_at"]
    winner: tuple[str | None, str | None] | None = None
    # The reopens' ids until inserted: above any stored, increasing as the database's will.
    provisional = 2**62
    new_facts: list[MessageFacts] = []
    for ref, data in thread.added:
        language = data.language or ticket["language"]
        needs_reply, detected, rule = messages.detect_needs_reply(data, language)
        f = _facts(ref, data, needs_reply)
        new_facts.append(f)
        resolved_at = status.resolved_at
        if f.needing and resolved_at is not None and f.sent_at >= resolved_at:
            assert history is not None  # read for every candidate (`reopen_candidate`)
            if timing.status_at(history, f.sent_at) in DONE:
                history.append(StatusFacts(provisional, TicketStatus.OPEN, f.sent_at))
                provisional += 1
                thread.changes.append((TicketStatus.OPEN, f.sent_at, StatusCause.CUSTOMER_MESSAGE))
                status = timing.status_timing(history)
        if (
            detectable
            and f.is_customer_contact
            and (first_customer_at is None or f.sent_at < first_customer_at)
        ):
            winner, first_customer_at = (data.body, language), f.sent_at
        mood = None
        if data.author == Author.CUSTOMER and data.body:
            mood = sentiment.classify(data.body, language)
        thread.rows.append(
            {
                "id": ref.id,
                "shop_id": ticket["shop_id"],
                "external_id": data.external_id,
                "author": data.author.value,
                "public": data.public,
                "automatic": data.automatic,
                "body": data.body,
                "language": data.language,
                "sent_at": data.sent_at,
                "needs_reply": needs_reply,
                "needs_reply_detected": detected,
                "needs_reply_rule": rule,
                "sentiment": mood,
                "created_at": now,
            }
        )
    if winner is not None:
        ticket["level"], _rule = classify.level(winner[0], ticket["subject"], winner[1])
        ticket["level_detected"] = True
    facts = [*map(recording.facts, thread.stored), *new_facts]
    timings = recording.derive(ticket, facts, calendar, status)
    for row in thread.rows:
        own = timings.messages[row["id"]]
        row.update({c: getattr(own, c) for c in recording.MESSAGE_COLUMNS})
    thread.updates = recording.message_updates(thread.stored, timings)
    recording.apply(ticket, timings, status)
    ticket["updated_at"] = now


def invalid(index: int, errors: list[dict[str, Any]]) -> Outcome:
    """The outcome of an item that is not a valid item (pydantic's errors within it)."""
    located = [{**e, "loc": ["body", "items", index, *e["loc"]]} for e in errors]
    fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in located)
    return Outcome(index, error=InvalidInput(f"Invalid fields: {fields}", located))
