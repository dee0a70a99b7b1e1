"""Which due deliveries a claim takes: fair across shops, one first e-mail per customer.

Every function runs in the claim's transaction (`service.claim`).
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Row,
    String,
    bindparam,
    column,
    exists,
    null,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from app.requests.models import Delivery, ReviewRequest
from app.requests.vocabulary import Kind, Status
from app.shops.models import Shop

# A row of the statements below: id, kind, shop_id, email_normalized, locked (whether this
# claim holds the customer's advisory lock: tried by PostgreSQL's due statement, else None).
Candidate = Row[*tuple[Any, ...]]


async def expired(conn: AsyncConnection, now: datetime, limit: int) -> list[Candidate]:
    """Claims whose lease ran out (their worker died): taken over before anything else."""
    return list((await conn.execute(_EXPIRED, {"b_now": now, "b_limit": limit})).all())


async def shops_with_due(conn: AsyncConnection, now: datetime) -> list[str]:
    """The shops, not paused, with e-mails due: one index probe per shop (the table is small,
    but at a thousand shops this is the costliest part of a claim, so callers reuse it)."""
    return list((await conn.execute(_SHOPS_WITH_DUE, {"b_now": now})).scalars())


def in_turn(shops: Sequence[str], after_shop: str, limit: int) -> list[str]:
    """The shops served by the next claim: those after `after_shop` first, at most `limit`."""
    start = next((i for i, shop in enumerate(shops) if shop > after_shop), 0)
    return [*shops[start:], *shops[:start]][:limit]


async def due_round_robin(
    conn: AsyncConnection, now: datetime, limit: int, shops: Sequence[str]
) -> list[Candidate]:
    """Due deliveries of `shops` (from `in_turn`), an equal share from each, in that order.

    So one shop's backlog never holds another shop's e-mail back by more than one claim.
    """
    if not shops:
        return []
    share = -(-limit // len(shops))
    if conn.dialect.name == "postgresql":
        params = {"b_shops": list(shops), "b_now": now, "b_share": share, "b_limit": limit}
        return list((await conn.execute(_DUE_BY_SHOP_PG, params)).all())
    rows: list[Candidate] = []
    for shop in shops:
        params = {"b_shop": shop, "b_now": now, "b_share": min(share, limit - len(rows))}
        rows += (await conn.execute(_DUE_OF_SHOP, params)).all()
        if len(rows) >= limit:
            break
    return rows


async def one_first_per_customer(
    conn: AsyncConnection, candidates: Sequence[Candidate]
) -> list[int]:
    """The candidates' ids, keeping at most one first e-mail per customer.

    Two orders of one customer due together would otherwise both be sent before either is
    recorded, and the cooldown could not see the first. Within the batch, the one due first
    is kept. Across workers, on PostgreSQL, an advisory lock per customer held until the claim
    commits serialises claimers running at once (a claimer that cannot take it leaves that
    e-mail for later); SQLite claims one at a time. The claim's update then skips a customer
    whose first e-mail is in flight (`service._TAKE`, `taking_pg` on PostgreSQL): it runs
    after the lock is held, so it sees any claim that committed before. The due candidates
    of PostgreSQL come with their lock already tried (`locked`, in the statement that found
    them); the others (expired leases) are locked here, in one more statement.
    """
    seen: set[tuple[str, str]] = set()
    kept: list[Candidate] = []
    refused: set[tuple[str, str]] = set()
    held: set[tuple[str, str]] = set()
    for r in candidates:
        if r.kind == Kind.FIRST:
            customer = (r.shop_id, r.email_normalized)
            if r.locked is not None:
                (held if r.locked else refused).add(customer)
            if customer in seen:
                continue
            seen.add(customer)
        kept.append(r)
    to_lock = sorted(seen - held - refused)
    if to_lock and conn.dialect.name == "postgresql":
        keys = [f"{shop}:{email}" for shop, email in to_lock]
        rows = await conn.execute(_TRY_LOCK_CUSTOMERS, {"b_keys": keys})
        got: dict[str, bool] = {key: locked for key, locked in rows}
        refused |= {c for c, key in zip(to_lock, keys, strict=True) if not got[key]}
    return [
        r.id for r in kept if r.kind != Kind.FIRST or (r.shop_id, r.email_normalized) not in refused
    ]


_CANDIDATE = (
    Delivery.id,
    Delivery.kind,
    Delivery.shop_id,
    ReviewRequest.email_normalized,
    null().label("locked"),
)

_EXPIRED = (
    select(*_CANDIDATE)
    .join(ReviewRequest, ReviewRequest.id == Delivery.request_id)
    .where(Delivery.status == Status.SENDING, Delivery.claim_expires_at <= bindparam("b_now"))
    .order_by(Delivery.claim_expires_at)
    .limit(bindparam("b_limit"))
    .with_for_update(skip_locked=True, of=Delivery)
)

# One index probe per shop (`ix_deliveries_shop_due`); the shops table is small.
_SHOPS_WITH_DUE = (
    select(Shop.id)
    .where(
        Shop.sending_paused_at.is_(None),
        exists().where(
            Delivery.shop_id == Shop.id,
            Delivery.status == Status.SCHEDULED,
            Delivery.due_at <= bindparam("b_now"),
        ),
    )
    .order_by(Shop.id)
)

_DUE_OF_SHOP = (
    select(*_CANDIDATE)
    .join(ReviewRequest, ReviewRequest.id == Delivery.request_id)
    .where(
        Delivery.shop_id == bindparam("b_shop"),
        Delivery.status == Status.SCHEDULED,
        Delivery.due_at <= bindparam("b_now"),
    )
    .order_by(Delivery.due_at)
    .limit(bindparam("b_share"))
)

# The same for all the shops in one statement: a lateral join over their ids, in order. Each
# first e-mail's customer is locked in the same round trip (`one_first_per_customer`); the
# lock is held until the claim commits, so the claim's update (a later statement, with a later
# snapshot) sees every claim of that customer that committed before.
_DUE_BY_SHOP_PG = text(
    """
    SELECT d.id, d.kind, d.shop_id, d.email_normalized,
           CASE WHEN d.kind = 'first'
                THEN pg_try_advisory_xact_lock(
                         hashtextextended(d.shop_id || ':' || d.email_normalized, 0))
           END AS locked
    FROM unnest(CAST(:b_shops AS TEXT[])) WITH ORDINALITY AS s(shop_id, position)
    CROSS JOIN LATERAL (
        SELECT deliveries.id, deliveries.kind, deliveries.shop_id,
               review_requests.email_normalized
        FROM deliveries JOIN review_requests ON review_requests.id = deliveries.request_id
        WHERE deliveries.shop_id = s.shop_id AND deliveries.status = 'scheduled'
          AND deliveries.due_at <= :b_now
        ORDER BY deliveries.due_at
        LIMIT :b_share
        FOR UPDATE OF deliveries SKIP LOCKED
    ) AS d
    ORDER BY s.position
    LIMIT :b_limit
    """
).columns(
    column("id", BigInteger),
    column("kind", String),
    column("shop_id", String),
    column("email_normalized", String),
    column("locked", Boolean),
)

# Keys are "shop:address"; each lock is released when the claim commits.
_TRY_LOCK_CUSTOMERS = text(
    "SELECT k, pg_try_advisory_xact_lock(hashtextextended(k, 0)) "
    "FROM unnest(CAST(:b_keys AS TEXT[])) AS t(k)"
)
