"""The words of review requests: statuses, reasons, sources, kinds, scheduling decisions."""

from enum import StrEnum


class Status(StrEnum):
    """Of a request, and of each of its deliveries."""

    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    FAILED = "failed"


class Reason(StrEnum):
    """Why a request or delivery was cancelled, skipped or failed (contract order first)."""

    ORDER_CANCELLED = "order_cancelled"
    ORDER_REFUNDED = "order_refunded"
    PAYMENT_ERROR = "payment_error"
    UNPAID = "unpaid"
    SUPPRESSED = "suppressed"
    EXCLUDED = "excluded"
    REVIEWED = "reviewed"
    MANUAL = "manual"
    CUSTOMER_COOLDOWN = "customer_cooldown"
    MAX_AGE = "max_age"
    RECIPIENT_REJECTED = "recipient_rejected"
    SMTPUTF8_UNSUPPORTED = "smtputf8_unsupported"
    SMTP_UNAVAILABLE = "smtp_unavailable"
    RENDER_FAILED = "render_failed"
    INTERNAL_ERROR = "internal_error"


class Source(StrEnum):
    """What scheduled a request: the trigger state, or a shipped state after `fallback_delay`."""

    TRIGGER = "trigger"
    FALLBACK = "fallback"


class Kind(StrEnum):
    """Which e-mail of a request a delivery is."""

    FIRST = "first"
    REMINDER = "reminder"


class Decision(StrEnum):
    """What a status change did to the order's review request."""

    SCHEDULED = "scheduled"
    SCHEDULED_FALLBACK = "scheduled_fallback"
    RESCHEDULED = "rescheduled"
    ALREADY_REQUESTED = "already_requested"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"  # a new request, recorded skipped at once (suppressed address)
    NOTHING = "recorded"
