"""The words of outgoing webhooks: event types, delivery statuses, why an endpoint is disabled."""

from collections.abc import Iterable
from enum import StrEnum


class EventType(StrEnum):
    """What Relance tells an endpoint. Append only: each type's position is its bit in
    `HookEndpoint.event_mask`, so a new type never changes what an endpoint subscribed to."""

    REVIEW_SUBMITTED = "review.submitted"
    REVIEW_PUBLISHED = "review.published"
    REQUEST_SENT = "review_request.sent"
    REQUEST_SKIPPED = "review_request.skipped"
    REQUEST_CANCELLED = "review_request.cancelled"


_ORDER = list(EventType)


def bit(event_type: EventType) -> int:
    return 1 << _ORDER.index(event_type)


def mask(types: Iterable[EventType]) -> int:
    return sum({bit(t) for t in types})


def types_of(event_mask: int) -> list[EventType]:
    return [t for t in _ORDER if event_mask & bit(t)]


class HookStatus(StrEnum):
    """Of one event's delivery to one endpoint."""

    SCHEDULED = "scheduled"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"


class DisabledReason(StrEnum):
    FAILING = "failing"  # every attempt failed for FAILING_DAYS days
    MANUAL = "manual"  # the merchant's PATCH {"enabled": false}
