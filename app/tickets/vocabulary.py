"""The words of tickets: categories, message authors, statuses and why a status changed."""

from enum import StrEnum


class Category(StrEnum):
    """What a ticket is about; each KPI counts one category exactly (a `return` ticket is not
    an `after_sale` one)."""

    PRE_SALE = "pre_sale"
    AFTER_SALE = "after_sale"
    COMPLAINT = "complaint"
    RETURN = "return"
    OTHER = "other"


class Author(StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"
    BOT = "bot"
    SYSTEM = "system"


class TicketStatus(StrEnum):
    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"


class StatusCause(StrEnum):
    """Why a status history row was written."""

    CREATED = "created"
    API = "api"
    CUSTOMER_MESSAGE = "customer_message"  # a reopen by the customer's message


class Acknowledged(StrEnum):
    """Whether the first reply came within 24 business hours of the first message needing one."""

    YES = "yes"
    NO = "no"
    PENDING = "pending"  # no reply yet, and the deadline has not passed


# Statuses in which a ticket counts as resolved: leaving them for open or pending is a reopen.
# `closed` is one of them because a helpdesk such as PrestaShop's has no `resolved` status:
# its threads go straight from open to closed.
DONE = frozenset({TicketStatus.RESOLVED, TicketStatus.CLOSED})
