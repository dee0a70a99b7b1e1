"""The claim's take on PostgreSQL: one fixed SQL text, one round trip (`service.claim`).

It takes the chosen deliveries (still claimable, a customer's first e-mail only while none of
theirs is in flight), marks their requests `sending`, and reads everything the re-check and the
e-mail need, the shop's saved templates included. Run with `exec_driver_sql` over arrays, so it
is prepared once per connection whatever the batch size, and its rows are read as plain tuples:
SQLAlchemy does no per-row work (see "Hot-path statements" in docs/architecture.md).
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.emailtemplates.rendering import MerchantTemplate

# $1 the delivery ids, $2 the worker, $3 the lease's end, $4 now, $5 "@domain>" of the
# Message-ID. The load reads the snapshot from before the statement, so the delivery's new
# values come from RETURNING. Same rows and values as `service._TAKE` + `service._LOAD`.
TAKE_AND_LOAD = """
WITH taken AS (
    UPDATE deliveries
    SET status = 'sending', claimed_by = $2, claim_expires_at = $3, claimed_at = $4,
        attempts = deliveries.attempts + 1,
        message_id = coalesce(
            deliveries.message_id,
            '<relance.' || CAST(deliveries.id AS VARCHAR) || '.' || deliveries.shop_id || $5),
        updated_at = $4
    WHERE deliveries.id = ANY($1::BIGINT[])
      AND (deliveries.status = 'scheduled' AND deliveries.due_at <= $4
           OR deliveries.status = 'sending' AND deliveries.claim_expires_at <= $4)
      AND (deliveries.kind <> 'first' OR NOT EXISTS (
          SELECT 1
          FROM review_requests AS own_request
          JOIN review_requests AS other_request
            ON other_request.shop_id = own_request.shop_id
           AND other_request.email_normalized = own_request.email_normalized
          JOIN deliveries AS other_delivery ON other_delivery.request_id = other_request.id
          WHERE own_request.id = deliveries.request_id
            AND other_delivery.kind = 'first' AND other_delivery.status = 'sending'
            AND other_delivery.id <> ALL($1::BIGINT[])))
    RETURNING deliveries.id, deliveries.request_id, deliveries.shop_id, deliveries.kind,
              deliveries.seq, deliveries.attempts, deliveries.message_id,
              deliveries.claim_expires_at, deliveries.due_at
), requests_marked AS (
    UPDATE review_requests SET status = 'sending', updated_at = $4
    WHERE review_requests.id IN (SELECT taken.request_id FROM taken WHERE taken.kind = 'first')
      AND review_requests.status = 'scheduled'
)
SELECT taken.id, taken.request_id, taken.shop_id, taken.kind, taken.seq, taken.attempts,
       taken.message_id, taken.claim_expires_at,
       r.order_id, r.email, r.email_normalized, r.language, r.trigger_at, r.public_id,
       (SELECT max(prior.sent_at) FROM review_requests AS prior
        WHERE prior.shop_id = r.shop_id AND prior.email_normalized = r.email_normalized
          AND prior.sent_at IS NOT NULL AND prior.dry_run IS false) AS last_sent,
       EXISTS (SELECT 1 FROM reviews WHERE reviews.request_id = r.id) AS reviewed,
       shops.name, shops.settings, shops.updated_at,
       shop_dkim_keys.domain, shop_dkim_keys.selector, shop_dkim_keys.private_key_encrypted,
       shop_mail_servers.url_encrypted, shop_mail_servers.max_connections,
       orders.state_id, orders.paid_at, orders.reference, orders.firstname, orders.lastname,
       orders.products, orders.ordered_at, orders.group_ids, orders.total_paid,
       orders.newsletter,
       (SELECT json_agg(json_build_array(t.kind, t.subject, t.html, t.text))
        FROM email_templates AS t
        WHERE t.shop_id = taken.shop_id AND t.language = r.language) AS templates
FROM taken
JOIN review_requests AS r ON r.id = taken.request_id
JOIN shops ON shops.id = taken.shop_id
LEFT JOIN orders ON orders.shop_id = r.shop_id AND orders.order_id = r.order_id
LEFT JOIN shop_dkim_keys ON shop_dkim_keys.shop_id = taken.shop_id
LEFT JOIN shop_mail_servers ON shop_mail_servers.shop_id = taken.shop_id
ORDER BY taken.due_at
"""


async def take_and_load(
    conn: AsyncConnection,
    ids: Sequence[int],
    worker: str,
    until: datetime,
    now: datetime,
    domain: str,
) -> list[Any]:
    """The taken deliveries' rows, as tuples in the order of `TAKE_AND_LOAD`'s columns."""
    result = await conn.exec_driver_sql(
        TAKE_AND_LOAD, (list(ids), worker, until, now, f"@{domain}>")
    )
    return list(result.all())


def templates_of(saved: list[list[str]] | None) -> dict[str, MerchantTemplate]:
    """The `templates` column: [kind, subject, html, text] of each saved template, by kind."""
    return {kind: MerchantTemplate(s, h, t) for kind, s, h, t in saved or ()}
