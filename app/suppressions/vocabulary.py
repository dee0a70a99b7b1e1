"""Why an address is on a shop's suppression list."""

from enum import StrEnum


class SuppressionReason(StrEnum):
    UNSUBSCRIBED = "unsubscribed"  # the customer's one-click unsubscribe
    HARD_BOUNCE = "hard_bounce"  # the recipient's server refused it for good (5xx at RCPT)
    COMPLAINT = "complaint"  # reported as spam (a feedback loop, set through the API)
    MANUAL = "manual"  # set by the merchant
