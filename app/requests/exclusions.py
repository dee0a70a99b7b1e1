"""Which orders a shop never asks to review (`exclusions` setting), decided without I/O."""

import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from app.shops.settings import Exclusions


@lru_cache(maxsize=4096)
def _pattern(glob: str) -> re.Pattern[str]:
    # `*` is the only wildcard; everything else is literal.
    return re.compile(".*".join(re.escape(part) for part in glob.split("*")))


def excluded_by(
    exclusions: Exclusions,
    *,
    email_normalized: str,
    product_ids: list[int],
    group_ids: list[int] | None,
    total_paid: str | None,
    newsletter: bool | None,
) -> str | None:
    """The rule an order matches, said so a merchant can read it, or None.

    Facts the event did not carry (groups, total, newsletter) match no rule: an order is
    never skipped for what Relance was not told.
    """
    for glob in exclusions.blocked_emails:
        if _pattern(glob).fullmatch(email_normalized):
            return f"blocked_emails: {glob}"
    excluded_products = set(exclusions.excluded_product_ids)
    if excluded_products and product_ids and set(product_ids) <= excluded_products:
        return "excluded_product_ids: every product of the order"
    if group_ids and exclusions.excluded_group_ids:
        hit = sorted(set(group_ids) & set(exclusions.excluded_group_ids))
        if hit:
            return f"excluded_group_ids: {hit[0]}"
    if exclusions.min_order_total is not None and total_paid is not None:
        try:
            if Decimal(total_paid) < Decimal(exclusions.min_order_total):
                return f"min_order_total: {total_paid} < {exclusions.min_order_total}"
        except InvalidOperation:
            pass
    if exclusions.newsletter_only and newsletter is False:
        return "newsletter_only"
    return None
