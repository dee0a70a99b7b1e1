"""Where `suppressed` stands among the skip reasons (the pure rule, no database)."""

from datetime import datetime, timedelta

import pytest

from app.requests.rules import skip_reason
from tests.requests.test_rules import NOW, shop

DAY = timedelta(days=1)


@pytest.mark.parametrize(
    ("state", "paid_at", "is_first", "reviewed", "reason"),
    [
        pytest.param(5, NOW - DAY, True, False, "suppressed", id="alone"),
        pytest.param(6, NOW - DAY, True, False, "order_cancelled", id="after-cancel"),
        pytest.param(5, None, True, False, "unpaid", id="after-unpaid"),
        pytest.param(5, NOW - DAY, False, True, "suppressed", id="before-reviewed"),
    ],
)
def test_suppressed_comes_after_cancel_and_unpaid_before_the_rest(
    state: int, paid_at: datetime | None, is_first: bool, reviewed: bool, reason: str
) -> None:
    found = skip_reason(
        settings=shop(),
        order_state_id=state,
        paid_at=paid_at,
        last_sent_to_customer=NOW - DAY,  # within the cooldown
        trigger_at=NOW - 60 * DAY,  # past max_age
        is_first=is_first,
        now=NOW,
        reviewed=reviewed,
        suppressed=True,
    )
    assert found == reason
