"""The languages Relance writes to customers in, and which one a customer gets."""

LANGUAGES = frozenset({"de", "en", "es", "fr", "it"})
FALLBACK_LANGUAGE = "en"


def pick_language(customer: str | None, shop_default: str) -> str:
    """The customer's language if we have it, else the shop's, else English."""
    for candidate in (customer, shop_default):
        if candidate and candidate in LANGUAGES:
            return candidate
    return FALLBACK_LANGUAGE
