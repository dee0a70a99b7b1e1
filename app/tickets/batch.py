"""Recording tickets and messages in batches (POST …/tickets/batch): a fixed set of statements
per request, whatever its size.

A batch is recorded as if its items had been posted one by one, in order: the same
idempotence on external ids, the same refusals, the same waiting times. Each item succeeds or
fails as a whole and alone. The steps:

1. read: the calendar, the tickets the items name (by id or external id), locked on
   PostgreSQL (SQLite's writers are serialised already), then with their messages, and which
   of the batch's message external ids the shop holds;
2. decide item by item, without I/O (`batch_plan.py`): what is new, what is a repeat, what is
   refused (an unknown ticket, an external id of another ticket, a ticket full); a refused
   item changes nothing that the next items see;
3. derive each touched ticket once, from all its messages (not once per message), with the
   new messages' ids drawn from the database beforehand so that they are derived as stored;
4. write: new tickets, new messages, status changes, moved answers and the tickets, each in
   one statement for the whole batch.

All of it in one savepoint: when a write finds that another request recorded an external id
after step 1 (a race), the savepoint is rolled back and the batch taken again from step 1,
where that id is then seen.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, String, any_, bindparam, or_, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from app.dialect import PerDialect
from app.errors import Conflict
from app.tickets import hours, messages, recording
from app.tickets.batch_plan import (
    TICKET_INSERTED,
    Outcome,
    Plan,
    derive,
    invalid,
    reopen_candidate,
)
from app.tickets.calendar import BusinessCalendar
from app.tickets.models import Ticket, TicketMessage, TicketStatusChange
from app.tickets.schemas import TicketBatchItem
from app.tickets.service import INSERT_CHANGE
from app.tickets.timing import StatusFacts
from app.tickets.vocabulary import StatusCause, TicketStatus

__all__ = ["Outcome", "TicketBatchItem", "invalid", "record"]

# A batch taken again after a race gives up after this many attempts (a 409 for the request).
MAX_ATTEMPTS = 3

_TICKETS = Ticket.__table__.c
_MESSAGES = TicketMessage.__table__.c
_MESSAGE_INSERTED = ("id", *messages.INSERTED)


def _named(postgres: bool, by_external_id: bool) -> Any:
    """The tickets of `b_shop` whose id is in `b_ids` (or external id in `b_exts`)."""
    if postgres:
        ids = Ticket.id == any_(bindparam("b_ids", type_=postgresql.ARRAY(BigInteger())))
        exts = Ticket.external_id == any_(bindparam("b_exts", type_=postgresql.ARRAY(String())))
    else:
        ids = Ticket.id.in_(bindparam("b_ids", expanding=True))
        exts = Ticket.external_id.in_(bindparam("b_exts", expanding=True))
    named = or_(ids, exts) if by_external_id else ids
    return (Ticket.shop_id == bindparam("b_shop")) & named


# PostgreSQL: the tickets the batch names, locked in id order (the same order for every
# writer: no deadlock). Then read by `_READ`, in a statement of its own: under READ COMMITTED
# a locking read joined with the messages would see the ticket as its last writer committed
# it, but not that writer's messages.
_LOCK = select(Ticket.id).where(_named(True, True)).order_by(Ticket.id).with_for_update()


def _build_read(postgres: bool) -> Any:
    """The tickets named (PostgreSQL: the ids locked), each with its messages (one row each,
    or one row of NULLs)."""
    return (
        select(*_TICKETS, *(_MESSAGES[n].label(f"m_{n}") for n in messages.MESSAGE_READ))
        .select_from(Ticket)
        .outerjoin(TicketMessage, TicketMessage.ticket_id == Ticket.id)
        .where(_named(postgres, by_external_id=not postgres))
        .order_by(Ticket.id)
    )


def _build_taken(postgres: bool) -> Any:
    """The shop's messages among the batch's external ids: which ticket holds each."""
    ext = TicketMessage.external_id
    return select(ext, TicketMessage.ticket_id).where(
        TicketMessage.shop_id == bindparam("b_shop"),
        ext == any_(bindparam("b_exts", type_=postgresql.ARRAY(String())))
        if postgres
        else ext.in_(bindparam("b_exts", expanding=True)),
    )


_READ = {"postgresql": _build_read(True), "sqlite": _build_read(False)}
_TAKEN = {"postgresql": _build_taken(True), "sqlite": _build_taken(False)}
_HISTORIES = select(
    TicketStatusChange.ticket_id,
    TicketStatusChange.id,
    TicketStatusChange.status,
    TicketStatusChange.at,
).where(TicketStatusChange.ticket_id.in_(bindparam("b_ids", expanding=True)))

# The ids of the new messages, drawn before they are derived (one statement for all of them).
_NEXT_IDS = {
    "postgresql": text(
        "SELECT nextval(pg_get_serial_sequence('ticket_messages', 'id')) "
        "FROM generate_series(1, :b_count)"
    ),
    # Writers are serialised (BEGIN IMMEDIATE) and SQLite gives a row max(id) + 1 anyway.
    "sqlite": text("SELECT coalesce(max(id), 0) FROM ticket_messages"),
}

_INSERT_TICKETS = PerDialect(
    lambda insert_: (
        insert_(Ticket)
        .values({name: bindparam(f"b_{name}") for name in TICKET_INSERTED})
        .on_conflict_do_nothing()
        .returning(Ticket.id, Ticket.external_id)
    )
)
_INSERT_MESSAGES = PerDialect(
    lambda insert_: (
        insert_(TicketMessage)
        .values({name: bindparam(f"b_m_{name}") for name in _MESSAGE_INSERTED})
        .on_conflict_do_nothing()
        .returning(TicketMessage.id)
    )
)


class _Raced(Exception):
    """A write found an external id recorded since the batch was read: take it again."""


async def _histories(conn: AsyncConnection, ids: list[int]) -> dict[int, list[StatusFacts]]:
    found: dict[int, list[StatusFacts]] = {i: [] for i in ids}
    if ids:
        for r in await conn.execute(_HISTORIES, {"b_ids": ids}):
            found[r.ticket_id].append(StatusFacts(r.id, r.status, r.at))
    return found


async def _next_ids(conn: AsyncConnection, count: int) -> list[int]:
    if conn.dialect.name == "postgresql":
        result = await conn.execute(_NEXT_IDS["postgresql"], {"b_count": count})
        return sorted(result.scalars())
    top = (await conn.execute(_NEXT_IDS["sqlite"])).scalar_one()
    return list(range(top + 1, top + 1 + count))


async def _attempt(
    conn: AsyncConnection,
    shop_id: str,
    items: list[tuple[int, TicketBatchItem]],
    calendar: BusinessCalendar,
    now: datetime,
) -> list[Outcome]:
    dialect = conn.dialect.name
    ids = sorted({i.ticket_id for _, i in items if i.ticket_id is not None})
    exts = sorted({i.ticket.external_id for _, i in items if i.ticket is not None})
    message_exts = sorted({m.external_id for _, i in items for m in i.messages})
    batch = Plan(shop_id, calendar, now)
    params: dict[str, Any] = {"b_shop": shop_id, "b_ids": ids, "b_exts": exts}
    if dialect == "postgresql":
        params["b_ids"] = list((await conn.execute(_LOCK, params)).scalars())
    rows: Sequence[Any] = []
    if params["b_ids"] or dialect != "postgresql":
        rows = (await conn.execute(_READ[dialect], params)).all()
    taken: list[Any] = []
    if message_exts:
        wanted = {"b_shop": shop_id, "b_exts": message_exts}
        taken = list((await conn.execute(_TAKEN[dialect], wanted)).all())
    batch.read(rows, taken)

    outcomes = [batch.decide(index, item) for index, item in items]
    threads = batch.threads()
    added = [ref for t in threads for ref, _ in t.added]
    if added:
        for ref, new_id in zip(added, await _next_ids(conn, len(added)), strict=True):
            ref.id = new_id
    candidates = [t for t in threads if reopen_candidate(t)]
    histories = await _histories(conn, [t.ticket["id"] for t in candidates])
    for thread in threads:
        derive(thread, calendar, histories.get(thread.ticket["id"]), now)

    # New tickets and messages are inserted in external-id order: two batches that insert some
    # of the same ones wait for each other in the same order, never in a cycle.
    created = sorted((t for t in threads if t.new), key=lambda t: str(t.ticket["external_id"]))
    if created:
        params_list = [{f"b_{n}": t.ticket[n] for n in TICKET_INSERTED} for t in created]
        inserted = (await conn.execute(_INSERT_TICKETS.on(conn), params_list)).all()
        by_ext = {r.external_id: r.id for r in inserted}
        if len(by_ext) != len(created):
            raise _Raced
        for t in created:
            t.ticket["id"] = by_ext[t.ticket["external_id"]]
    if added:
        message_params = [
            {
                "b_m_ticket_id": t.ticket["id"],
                **{f"b_m_{n}": row[n] for n in _MESSAGE_INSERTED if n != "ticket_id"},
            }
            for t in threads
            for row in t.rows
        ]
        message_params.sort(key=lambda p: str(p["b_m_external_id"]))
        inserted_ids = (await conn.execute(_INSERT_MESSAGES.on(conn), message_params)).all()
        if len(inserted_ids) != len(message_params):
            raise _Raced
    changes = [
        {
            "b_shop": shop_id,
            "b_ticket": t.ticket["id"],
            "b_status": status,
            "b_at": at,
            "b_cause": cause,
        }
        for t in threads
        for status, at, cause in (
            [(TicketStatus.OPEN, t.ticket["created_at"], StatusCause.CREATED)] if t.new else []
        )
        + t.changes
    ]
    if changes:
        await conn.execute(INSERT_CHANGE, changes)
    updates = [u for t in threads for u in t.updates]
    if updates:
        await conn.execute(recording.UPDATE_MESSAGE, updates)
    tickets = [recording.ticket_params(t.ticket) for t in threads if not t.new]
    if tickets:
        await conn.execute(recording.UPDATE_TICKET, tickets)
    return outcomes


async def record(
    conn: AsyncConnection,
    shop_id: str,
    items: list[tuple[int, TicketBatchItem]],
    now: datetime,
) -> list[Outcome]:
    """Record a batch's valid items (with their index in the request), in the caller's
    transaction: each item's outcome, in the same order. See the module's docstring."""
    calendar = await hours.calendar_for(conn, shop_id)
    for _ in range(MAX_ATTEMPTS):
        try:
            async with conn.begin_nested():
                return await _attempt(conn, shop_id, items, calendar, now)
        except _Raced:
            continue
    raise Conflict("Other requests kept recording the same external ids; retry the batch.")
