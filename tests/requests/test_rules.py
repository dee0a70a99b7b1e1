"""The pure scheduling rules, a table each: due time, cancel and skip reasons. No database."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.requests.rules import cancel_reason, due_time, skip_reason
from app.shops.settings import ShopSettings

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
WEEKDAYS_9_TO_18 = {"weekdays": [1, 2, 3, 4, 5], "start": "09:00", "end": "18:00"}


def paris(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    """The instant of a wall-clock time in Paris, in UTC as the service handles instants."""
    return datetime(year, month, day, hour, minute, tzinfo=PARIS).astimezone(UTC)


def shop(**values: Any) -> ShopSettings:
    """A shop's settings as the API validates them: the defaults plus `values`."""
    return ShopSettings.model_validate({"timezone": "Europe/Paris", **values})


# --- due_time ---------------------------------------------------------------------------------

DUE: list[Any] = [
    pytest.param(shop(timezone="UTC"), NOW, "PT30S", NOW + timedelta(seconds=30), id="seconds"),
    pytest.param(shop(), NOW, "PT0S", NOW, id="no-delay"),
    # Days are calendar days in the shop's zone: the same wall-clock time, whatever the offset.
    pytest.param(
        shop(),
        paris(2026, 10, 24, 10, 0),
        "P2D",
        paris(2026, 10, 26, 10, 0),
        id="days-over-dst-end",
    ),
    pytest.param(
        shop(), paris(2026, 3, 28, 10, 0), "P1D", paris(2026, 3, 29, 10, 0), id="day-over-dst-start"
    ),
    pytest.param(
        shop(),
        paris(2026, 3, 28, 10, 0),
        "P1DT12H",
        paris(2026, 3, 29, 22, 0),
        id="days-then-exact-hours",
    ),
    # Seconds are exact: 86,400 of them over the change of time are 23 wall-clock hours.
    pytest.param(
        shop(),
        paris(2026, 3, 28, 10, 0),
        "PT86400S",
        paris(2026, 3, 29, 11, 0),
        id="seconds-over-dst-start",
    ),
    pytest.param(
        shop(send_window=WEEKDAYS_9_TO_18),
        paris(2026, 11, 17, 10, 0),
        "PT1H",
        paris(2026, 11, 17, 11, 0),
        id="inside-the-window-unchanged",
    ),
    pytest.param(
        shop(send_window=WEEKDAYS_9_TO_18),
        paris(2026, 11, 16, 6, 30),
        "PT30M",
        paris(2026, 11, 16, 9, 0),
        id="before-opening-waits-for-it",
    ),
    pytest.param(
        shop(send_window=WEEKDAYS_9_TO_18),
        paris(2026, 11, 20, 17, 0),
        "PT1H",
        paris(2026, 11, 23, 9, 0),
        id="closing-time-excluded-friday-to-monday",
    ),
    pytest.param(
        shop(send_window=WEEKDAYS_9_TO_18),
        paris(2026, 11, 21, 12, 0),
        "PT0S",
        paris(2026, 11, 23, 9, 0),
        id="weekend-to-monday",
    ),
    pytest.param(
        shop(send_window={**WEEKDAYS_9_TO_18, "holidays": "FR"}),
        paris(2026, 12, 23, 20, 0),
        "P2D",
        paris(2026, 12, 28, 9, 0),
        id="christmas-then-weekend",
    ),
    pytest.param(
        shop(timezone="America/Montreal", send_window=WEEKDAYS_9_TO_18),
        datetime(2026, 11, 16, 12, 0, tzinfo=UTC),
        "PT0S",
        datetime(2026, 11, 16, 14, 0, tzinfo=UTC),
        id="window-in-the-shops-zone",
    ),
]


@pytest.mark.parametrize(("settings", "start", "delay", "expected"), DUE)
def test_due_time(settings: ShopSettings, start: datetime, delay: str, expected: datetime) -> None:
    due = due_time(settings, start, delay)
    assert due == expected
    assert due.utcoffset() == timedelta(0)


# --- cancel_reason ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state_id", "reason"),
    [(6, "order_cancelled"), (7, "order_refunded"), (8, "payment_error"), (42, "order_cancelled")],
)
def test_cancel_reason(state_id: int, reason: str) -> None:
    assert cancel_reason(state_id) == reason


# --- skip_reason ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """What `skip_reason` is asked about; the defaults leave nothing to object to."""

    settings: ShopSettings = field(default_factory=shop)
    order_state_id: int = 5
    paid_at: datetime | None = NOW - timedelta(days=3)
    last_sent_to_customer: datetime | None = None
    trigger_at: datetime = NOW - timedelta(days=2)
    is_first: bool = True


DAY = timedelta(days=1)
SKIPS: list[Any] = [
    pytest.param(Case(), None, id="nothing-against-it"),
    pytest.param(Case(order_state_id=6), "order_cancelled", id="cancelled"),
    pytest.param(Case(order_state_id=7), "order_refunded", id="refunded"),
    pytest.param(Case(order_state_id=8), "payment_error", id="payment-error"),
    pytest.param(
        Case(settings=shop(cancel_state_ids=[42]), order_state_id=42),
        "order_cancelled",
        id="a-shops-own-cancel-state",
    ),
    pytest.param(
        Case(settings=shop(cancel_state_ids=[6]), order_state_id=7),
        None,
        id="refund-not-a-cancel-state-here",
    ),
    pytest.param(Case(paid_at=None), "unpaid", id="unpaid"),
    pytest.param(Case(settings=shop(require_paid=False), paid_at=None), None, id="unpaid-allowed"),
    pytest.param(Case(last_sent_to_customer=NOW - 29 * DAY), "customer_cooldown", id="cooldown"),
    pytest.param(Case(last_sent_to_customer=NOW - 30 * DAY), None, id="cooldown-just-elapsed"),
    pytest.param(
        Case(last_sent_to_customer=NOW - DAY, is_first=False),
        None,
        id="cooldown-spares-reminders",
    ),
    pytest.param(
        Case(settings=shop(customer_cooldown=None), last_sent_to_customer=NOW - DAY),
        None,
        id="cooldown-off",
    ),
    pytest.param(Case(trigger_at=NOW - 30 * DAY - timedelta(seconds=1)), "max_age", id="too-old"),
    pytest.param(Case(trigger_at=NOW - 30 * DAY), None, id="max-age-reached-not-passed"),
    pytest.param(
        Case(trigger_at=NOW - 60 * DAY, is_first=False), None, id="max-age-spares-reminders"
    ),
    pytest.param(
        Case(settings=shop(max_age=None), trigger_at=NOW - 365 * DAY),
        None,
        id="max-age-off",
    ),
    # Several apply: the first in the contract's order wins.
    pytest.param(
        Case(
            order_state_id=7,
            paid_at=None,
            last_sent_to_customer=NOW - DAY,
            trigger_at=NOW - 60 * DAY,
        ),
        "order_refunded",
        id="cancel-before-all",
    ),
    pytest.param(
        Case(paid_at=None, last_sent_to_customer=NOW - DAY, trigger_at=NOW - 60 * DAY),
        "unpaid",
        id="unpaid-before-cooldown-and-age",
    ),
    pytest.param(
        Case(last_sent_to_customer=NOW - DAY, trigger_at=NOW - 60 * DAY),
        "customer_cooldown",
        id="cooldown-before-age",
    ),
]


@pytest.mark.parametrize(("case", "reason"), SKIPS)
def test_skip_reason(case: Case, reason: str | None) -> None:
    found = skip_reason(
        settings=case.settings,
        order_state_id=case.order_state_id,
        paid_at=case.paid_at,
        last_sent_to_customer=case.last_sent_to_customer,
        trigger_at=case.trigger_at,
        is_first=case.is_first,
        now=NOW,
    )
    assert found == reason


# --- the send spread ---------------------------------------------------------------------------

SPREAD_WINDOW = {"weekdays": [1, 2, 3, 4, 5, 6, 7], "start": "09:00", "end": "10:00"}


def _spread(**settings: object) -> ShopSettings:
    return ShopSettings.model_validate(
        {"timezone": "Europe/Paris", "send_window": SPREAD_WINDOW, **settings}
    )


def test_emails_due_at_an_opening_are_spread_deterministically() -> None:
    evening = datetime(2026, 12, 1, 20, 0, tzinfo=PARIS)
    opening = datetime(2026, 12, 3, 9, 0, tzinfo=PARIS)
    settings = _spread()
    dues = [due_time(settings, evening, "P1D", f"shp_x:{n}:0") for n in range(200)]
    assert all(opening <= d < opening + timedelta(minutes=30) for d in dues)
    assert len(set(dues)) > 150  # spread, not bunched
    assert dues == [due_time(settings, evening, "P1D", f"shp_x:{n}:0") for n in range(200)]
    assert due_time(settings, evening, "P1D") == opening  # no key: the opening itself
    assert due_time(_spread(send_spread=None), evening, "P1D", "shp_x:1:0") == opening


def test_an_email_due_inside_the_window_is_not_moved() -> None:
    inside = datetime(2026, 12, 1, 9, 20, tzinfo=PARIS)
    assert due_time(_spread(), inside, "P1D", "shp_x:1:0") == inside + timedelta(days=1)


def test_the_spread_stays_inside_the_window() -> None:
    evening = datetime(2026, 12, 1, 20, 0, tzinfo=PARIS)
    opening = datetime(2026, 12, 3, 9, 0, tzinfo=PARIS)
    settings = _spread(send_spread="PT5H")  # longer than the one-hour window
    dues = [due_time(settings, evening, "P1D", f"k{n}") for n in range(300)]
    assert all(opening <= d < opening + timedelta(hours=1) for d in dues)
