"""What the orders domain is told: one status change, as the inbox understood it.

The webhook's wire format stays in `webhooks`; orders and review requests take this type.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class StateFlags:
    """An order state and the flags the shop gives it."""

    id: int
    name: str | None
    paid: bool
    shipped: bool


@dataclass(frozen=True)
class Customer:
    id: int | None
    email: str
    firstname: str | None
    lastname: str | None
    language: str | None
    country: str | None
    group_ids: list[int] | None
    newsletter: bool | None = None


@dataclass(frozen=True)
class StatusChange:
    """An order entered `state` at `occurred_at` (timezone-aware), per history row `history_id`."""

    order_id: int
    history_id: int
    occurred_at: datetime
    state: StateFlags
    customer: Customer
    reference: str | None
    currency: str | None
    total_paid: str | None
    ordered_at: datetime | None
    products: list[dict[str, Any]]
