"""What the inbox did with each event (shown by `GET …/events`)."""

from enum import StrEnum


class Outcome(StrEnum):
    RECORDED = "recorded"
    SCHEDULED = "scheduled"
    SCHEDULED_FALLBACK = "scheduled_fallback"
    RESCHEDULED = "rescheduled"
    ALREADY_REQUESTED = "already_requested"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    IGNORED_OLDER = "ignored_older"
    DUPLICATE_HISTORY = "duplicate_history"
    CATALOGUE_REPLACED = "catalogue_replaced"
    IGNORED_TYPE = "ignored_type"
