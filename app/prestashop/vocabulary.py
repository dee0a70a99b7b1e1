"""What a Webservice call or an imported order ended in."""

from enum import StrEnum


class RunStatus(StrEnum):
    """How the last reconciliation of a shop ended."""

    OK = "ok"
    UNAUTHORIZED = "unauthorized"  # 401/403: bad key, or a permission the key lacks
    NOT_FOUND = "not_found"  # 404/405: wrong URL, or the Webservice is off
    UNAVAILABLE = "unavailable"  # 5xx, timeouts, connection errors after retries
    MALFORMED = "malformed"  # not JSON, or not the shapes the Webservice documents
    UNREADABLE_KEY = "unreadable_key"  # RELANCE_SECRET_KEY changed without `relance rekey`


class Imported(StrEnum):
    """What reconciliation or a backfill did with one order, besides the inbox's outcomes."""

    UP_TO_DATE = "up_to_date"  # Relance already knows this history row or a newer one
    ERASED = "erased"  # the address was erased: nothing about it is written again
    INVALID = "invalid"  # the shop's data does not make a valid event (e.g. no e-mail)
    NO_HISTORY = "no_history"  # an order without any order-history row
