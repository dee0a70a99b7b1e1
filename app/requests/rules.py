"""The reasons a request is cancelled or skipped, decided without I/O."""

from datetime import datetime
from typing import Literal

from app.shops.schemas import ShopSettings
from app.timeutil import parse_duration

Reason = Literal[
    "order_cancelled",
    "order_refunded",
    "payment_error",
    "unpaid",
    "customer_cooldown",
    "max_age",
    "recipient_rejected",
    "smtp_unavailable",
    "render_failed",
]

# PrestaShop's default ids; any other cancelling state counts as a cancellation.
_REASON_BY_STATE: dict[int, Reason] = {7: "order_refunded", 8: "payment_error"}


def cancel_reason(state_id: int) -> Reason:
    return _REASON_BY_STATE.get(state_id, "order_cancelled")


def skip_reason(
    *,
    settings: ShopSettings,
    order_state_id: int,
    paid_at: datetime | None,
    last_sent_to_customer: datetime | None,
    trigger_at: datetime,
    is_first: bool,
    now: datetime,
) -> Reason | None:
    """Why this e-mail must not leave now, or None. The first reason in contract order wins."""
    if order_state_id in settings.cancel_state_ids:
        return cancel_reason(order_state_id)
    if settings.require_paid and paid_at is None:
        return "unpaid"
    if is_first and settings.customer_cooldown and last_sent_to_customer is not None:
        cooldown = parse_duration(settings.customer_cooldown).approx()
        if now - last_sent_to_customer < cooldown:
            return "customer_cooldown"
    if (
        is_first
        and settings.max_age
        and now - trigger_at > parse_duration(settings.max_age).approx()
    ):
        return "max_age"
    return None
