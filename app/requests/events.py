"""What an outgoing `review_request.*` event says of a request (`hooks` posts it)."""

from datetime import datetime
from typing import Any

from app.hooks.service import Event


def request_event(
    *, request_id: int, public_id: str, shop_id: str, order_id: int, email: str, language: str,
    status: str, reason: str | None, due_at: datetime | None = None,
    sent_at: datetime | None = None, **extra: Any,
) -> Event:  # fmt: skip
    """The request as the merchant's API shows it: no more than the merchant already holds."""
    return Event(
        shop_id,
        {
            "id": request_id, "public_id": public_id, "shop_id": shop_id, "order_id": order_id,
            "email": email, "language": language, "status": status, "reason": reason,
            "due_at": due_at, "sent_at": sent_at, **extra,
        },
    )  # fmt: skip
