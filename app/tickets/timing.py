"""What a ticket's messages and status history make of it: the waiting times the KPIs add up.

Pure: the service reads a ticket's rows, these functions derive every computed column of the
ticket and its messages, and the service writes the rows that changed. The definitions (those
of `docs/kpis.md`):

- a message *needing a reply*: author customer, public, not automatic, `needs_reply` true;
- a *reply*: author agent, public, not automatic (a bot's answer or an internal note is none);
- a reply answers every message needing a reply that waits before it (sent at or before it:
  on a tie the customer's message comes first), however many there are;
- each waiting time is counted in calendar seconds and in business seconds of the calendar;
- a ticket is resolved the first time it enters `resolved` or `closed`; leaving those for
  `open` or `pending` is a reopen.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from itertools import pairwise
from typing import Protocol

from app.tickets.vocabulary import DONE, Acknowledged, Author, TicketStatus

ACK_BUSINESS_S = 24 * 3600  # the marketplaces' deadline: 24 business hours
# The computed columns are 32-bit integers: a wait longer than 68 years is stored as that.
INT32_MAX = 2**31 - 1


class Calendar(Protocol):
    """What timing needs of `tickets.calendar.BusinessCalendar`."""

    def local_date(self, at: datetime) -> date: ...

    def business_seconds(self, start: datetime, end: datetime) -> int: ...

    def add_business_seconds(self, start: datetime, seconds: int) -> datetime | None: ...


@dataclass(frozen=True)
class MessageFacts:
    """What timing reads of a message."""

    id: int
    author: str
    public: bool
    automatic: bool
    needs_reply: bool
    sent_at: datetime

    @property
    def needing(self) -> bool:
        """A message needing a reply."""
        return (
            self.author == Author.CUSTOMER
            and self.public
            and not self.automatic
            and (self.needs_reply)
        )

    @property
    def is_reply(self) -> bool:
        return self.author == Author.AGENT and self.public and not self.automatic

    @property
    def is_exchange(self) -> bool:
        """A public, non-automatic message of the customer or an agent."""
        return self.public and not self.automatic and self.author in (Author.CUSTOMER, Author.AGENT)

    @property
    def is_customer_contact(self) -> bool:
        return self.author == Author.CUSTOMER and self.public and not self.automatic


@dataclass(frozen=True)
class StatusFacts:
    id: int
    status: str
    at: datetime


@dataclass(frozen=True)
class MessageTiming:
    """The computed columns of one message."""

    period_date: date
    deadline_at: datetime | None  # messages needing a reply only
    answered_by: int | None
    answered_at: datetime | None
    reply_business_s: int | None
    reply_calendar_s: int | None


@dataclass(frozen=True)
class TicketTiming:
    """The computed columns of a ticket that its messages decide."""

    period_date: date
    first_customer_at: datetime | None
    first_needing_at: datetime | None
    ack_deadline_at: datetime | None
    first_reply_at: datetime | None
    first_reply_business_s: int | None
    first_reply_calendar_s: int | None
    replies: int
    exchanges: int
    resolution_s: int | None


@dataclass(frozen=True)
class StatusTiming:
    """What the status history decides: the status now, first resolution, reopens."""

    status: str
    resolved_at: datetime | None
    reopens: int


@dataclass(frozen=True)
class Timings:
    ticket: TicketTiming
    messages: dict[int, MessageTiming]  # by message id


def _seconds(start: datetime, end: datetime) -> int:
    return min(max(int((end - start).total_seconds()), 0), INT32_MAX)


def _order(m: MessageFacts) -> tuple[datetime, int, int]:
    # On the same instant the customer's message comes first, so a reply sent that very
    # second answers it.
    return (m.sent_at, 0 if m.author == Author.CUSTOMER else 1, m.id)


def compute(
    messages: Iterable[MessageFacts],
    calendar: Calendar,
    *,
    created_at: datetime,
    resolved_at: datetime | None,
) -> Timings:
    """Every computed column of a ticket and its messages, from all its messages."""
    ordered = sorted(messages, key=_order)
    timings: dict[int, MessageTiming] = {}
    waiting: list[MessageFacts] = []
    for m in ordered:
        if m.is_reply:
            for w in waiting:
                business = min(calendar.business_seconds(w.sent_at, m.sent_at), INT32_MAX)
                timings[w.id] = MessageTiming(
                    period_date=timings[w.id].period_date,
                    deadline_at=timings[w.id].deadline_at,
                    answered_by=m.id,
                    answered_at=m.sent_at,
                    reply_business_s=business,
                    reply_calendar_s=_seconds(w.sent_at, m.sent_at),
                )
            waiting = []
        deadline = None
        if m.needing:
            deadline = calendar.add_business_seconds(m.sent_at, ACK_BUSINESS_S)
            waiting.append(m)
        timings[m.id] = MessageTiming(
            calendar.local_date(m.sent_at), deadline, None, None, None, None
        )

    customer = next((m for m in ordered if m.is_customer_contact), None)
    first = next((m for m in ordered if m.needing), None)
    first_timing = timings[first.id] if first else None
    first_customer_at = customer.sent_at if customer else None
    ticket = TicketTiming(
        period_date=calendar.local_date(first.sent_at if first else created_at),
        first_customer_at=first_customer_at,
        first_needing_at=first.sent_at if first else None,
        ack_deadline_at=first_timing.deadline_at if first_timing else None,
        first_reply_at=first_timing.answered_at if first_timing else None,
        first_reply_business_s=first_timing.reply_business_s if first_timing else None,
        first_reply_calendar_s=first_timing.reply_calendar_s if first_timing else None,
        replies=sum(1 for m in ordered if m.is_reply),
        exchanges=sum(1 for m in ordered if m.is_exchange),
        resolution_s=resolution_seconds(first_customer_at, created_at, resolved_at),
    )
    return Timings(ticket, timings)


def resolution_seconds(
    first_customer_at: datetime | None, created_at: datetime, resolved_at: datetime | None
) -> int | None:
    """Calendar seconds from the first customer message (else the creation) to resolution."""
    if resolved_at is None:
        return None
    return _seconds(first_customer_at or created_at, resolved_at)


def _history(changes: Iterable[StatusFacts]) -> list[StatusFacts]:
    # Changes may be recorded out of order (`at` in the past): their own times decide.
    return sorted(changes, key=lambda c: (c.at, c.id))


def status_timing(changes: Sequence[StatusFacts]) -> StatusTiming:
    """The current status (the latest change's), the first resolution and the reopens."""
    history = _history(changes)
    resolved_at = next((c.at for c in history if c.status in DONE), None)
    reopens = 0
    for before, after in pairwise(history):
        if before.status in DONE and after.status not in DONE:
            reopens += 1
    status = history[-1].status if history else TicketStatus.OPEN
    return StatusTiming(status=status, resolved_at=resolved_at, reopens=reopens)


def status_at(changes: Sequence[StatusFacts], moment: datetime) -> str | None:
    """The status a ticket had at `moment` (the latest change at or before it)."""
    current = None
    for c in _history(changes):
        if c.at > moment:
            break
        current = c.status
    return current


def acknowledged(
    first_needing_at: datetime | None,
    first_reply_at: datetime | None,
    ack_deadline_at: datetime | None,
    now: datetime,
) -> Acknowledged | None:
    """Whether the first reply came within 24 business hours; None when nothing needs one.

    A calendar without any opening time gives no deadline: 24 business hours never elapse.
    """
    if first_needing_at is None:
        return None
    if first_reply_at is not None:
        on_time = ack_deadline_at is None or first_reply_at <= ack_deadline_at
        return Acknowledged.YES if on_time else Acknowledged.NO
    if ack_deadline_at is not None and now > ack_deadline_at:
        return Acknowledged.NO
    return Acknowledged.PENDING
