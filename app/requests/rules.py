"""When a request is due, and why it is cancelled or skipped: decided without I/O."""

import hashlib
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from app.requests.vocabulary import Reason
from app.shops.settings import ShopSettings
from app.timeutil import add_duration, next_in_window, parse_duration

# PrestaShop's default ids; any other cancelling state counts as a cancellation.
_REASON_BY_STATE: dict[int, Reason] = {7: Reason.ORDER_REFUNDED, 8: Reason.PAYMENT_ERROR}


def delay_end(settings: ShopSettings, start: datetime, delay: str) -> datetime:
    """`start + delay`, days counted in the shop's calendar: when the e-mail would be due
    without the send window."""
    return add_duration(start, parse_duration(delay), ZoneInfo(settings.timezone))


def window_from(
    settings: ShopSettings, start: datetime, delay: str, due: datetime
) -> datetime | None:
    """When the delay ended, if the send window (or the spread) moved the e-mail to `due`."""
    end = delay_end(settings, start, delay)
    return end if end != due else None


def due_time(
    settings: ShopSettings, start: datetime, delay: str, spread_key: str | None = None
) -> datetime:
    """`start + delay` (days in the shop's calendar), moved into the send window.

    When the window moved it to an opening, `spread_key` (one per e-mail) places it
    deterministically within `send_spread` after the opening, so a day's batch does not all
    leave in the same second.
    """
    tz = ZoneInfo(settings.timezone)
    due = delay_end(settings, start, delay)
    window = settings.send_window.to_window() if settings.send_window else None
    moved = next_in_window(due, window, tz)
    if moved == due or window is None or spread_key is None or not settings.send_spread:
        return moved
    open_seconds = (
        datetime.combine(moved.date(), window.end) - datetime.combine(moved.date(), window.start)
    ).total_seconds()
    span = min(parse_duration(settings.send_spread).approx().total_seconds(), open_seconds - 1)
    if span < 1:
        return moved
    digest = hashlib.sha256(spread_key.encode()).digest()
    return moved + timedelta(seconds=int.from_bytes(digest[:8], "big") % int(span))


def cancel_reason(state_id: int) -> Reason:
    return _REASON_BY_STATE.get(state_id, Reason.ORDER_CANCELLED)


def skip_reason(
    *,
    settings: ShopSettings,
    order_state_id: int,
    paid_at: datetime | None,
    last_sent_to_customer: datetime | None,
    trigger_at: datetime,
    is_first: bool,
    now: datetime,
    reviewed: bool = False,
    suppressed: bool = False,
    excluded: bool = False,
) -> Reason | None:
    """Why this e-mail must not leave now, or None. The first reason in contract order wins."""
    if order_state_id in settings.cancel_state_ids:
        return cancel_reason(order_state_id)
    if settings.require_paid and paid_at is None:
        return Reason.UNPAID
    if suppressed:
        return Reason.SUPPRESSED  # the address is on the shop's suppression list
    if excluded:
        return Reason.EXCLUDED  # the shop's `exclusions` match the order
    if not is_first and reviewed:
        return Reason.REVIEWED  # reminders only while no review was submitted
    if is_first and settings.customer_cooldown and last_sent_to_customer is not None:
        cooldown = parse_duration(settings.customer_cooldown).approx()
        if now - last_sent_to_customer < cooldown:
            return Reason.CUSTOMER_COOLDOWN
    if (
        is_first
        and settings.max_age
        and now - trigger_at > parse_duration(settings.max_age).approx()
    ):
        return Reason.MAX_AGE
    return None
