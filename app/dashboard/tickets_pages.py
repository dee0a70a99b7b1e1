"""Tickets: the list with category, level and status filters; a ticket's messages and timings."""

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from app.dashboard.auth import PageRoute, ReadMerchantDep
from app.dashboard.views import choice, cursor_param, int_param, pager, shop_page
from app.db import utcnow
from app.deps import ReadConnDep
from app.errors import NotFound
from app.pagination import page
from app.tickets import service, timing
from app.tickets.models import Ticket
from app.tickets.schemas import MessageRead, StatusChangeRead, TicketRead
from app.tickets.vocabulary import Category, TicketStatus

router = APIRouter(include_in_schema=False, route_class=PageRoute)

PAGE_SIZE = 50
PATH = "/dashboard/tickets"
CATEGORIES = [c.value for c in Category]
STATUSES = [s.value for s in TicketStatus]
LEVELS = ["1", "2", "none"]


def ticket_read(row: dict[str, Any], now: datetime) -> TicketRead:
    """A ticket as the API shows it, `acknowledged` judged at `now`."""
    ack = timing.acknowledged(
        row["first_needing_at"], row["first_reply_at"], row["ack_deadline_at"], now
    )
    return TicketRead.model_validate({**row, "acknowledged": ack})


@router.get(PATH)
async def list_tickets(
    merchant: ReadMerchantDep,
    conn: ReadConnDep,
    category: str | None = None,
    level: str | None = None,
    status: str | None = None,
    cursor: str | None = None,
) -> HTMLResponse:
    filters = {
        "category": choice(category, frozenset(CATEGORIES)),
        "level": choice(level, frozenset(LEVELS)),
        "status": choice(status, frozenset(STATUSES)),
    }
    # The API's list (tickets.service.list_tickets) plus the level, which it does not filter on.
    stmt = select(Ticket).where(Ticket.shop_id == merchant.shop.id)
    if filters["status"] is not None:
        stmt = stmt.where(Ticket.status == filters["status"])
    if filters["category"] is not None:
        stmt = stmt.where(Ticket.category == filters["category"])
    if filters["level"] == "none":
        stmt = stmt.where(Ticket.level.is_(None))
    elif filters["level"] is not None:
        stmt = stmt.where(Ticket.level == int(filters["level"]))
    rows, next_cursor = await page(conn, stmt, Ticket.id, cursor_param(cursor), PAGE_SIZE)
    now = utcnow()
    context = {
        "items": [ticket_read(r, now) for r in rows],
        "filters": filters,
        "categories": CATEGORIES,
        "levels": LEVELS,
        "statuses": STATUSES,
        **pager(PATH, filters, cursor is None, next_cursor),
    }
    return shop_page(merchant, "tickets.html", "tickets", context)


@router.get(PATH + "/{ticket_id}")
async def read_ticket(merchant: ReadMerchantDep, conn: ReadConnDep, ticket_id: str) -> HTMLResponse:
    number = int_param(ticket_id)
    if number is None:
        raise NotFound("no such ticket")
    view = await service.get(conn, merchant.shop.id, number)
    context = {
        "ticket": ticket_read(view.ticket, utcnow()),
        "messages": [MessageRead.model_validate({**m, "rating_url": None}) for m in view.messages],
        "changes": [StatusChangeRead.model_validate(c) for c in view.status_changes],
    }
    return shop_page(merchant, "ticket.html", "tickets", context)
