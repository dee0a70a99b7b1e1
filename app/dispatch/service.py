"""Claiming due deliveries with a lease (what became of each: `outcomes.py`).

Every function runs in the caller's transaction. The claim is committed before any SMTP
conversation starts; each outcome is committed right after its message.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import (
    BigInteger,
    Row,
    String,
    bindparam,
    cast,
    column,
    exists,
    func,
    literal,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from app.emailtemplates import service as templates
from app.emailtemplates.rendering import MerchantTemplate, pick, render
from app.mail.templates import Rendered
from app.orders.models import Order
from app.requests.models import Delivery, ReviewRequest
from app.requests.vocabulary import Kind, Status
from app.reviews.models import Review
from app.shops.models import Shop, ShopDkimKey, ShopMailServer
from app.shops.settings import ShopSettings, parsed_settings
from app.suppressions import service as suppressions


@dataclass(frozen=True)
class OrderSnapshot:
    """What the re-check and the e-mail need of the order, read with the claim."""

    state_id: int
    paid_at: datetime | None
    reference: str | None
    firstname: str | None
    lastname: str | None
    products: list[dict[str, Any]]
    ordered_at: datetime | None
    group_ids: list[int] | None = None
    total_paid: str | None = None
    newsletter: bool | None = None


@dataclass
class Claim:
    """A delivery this worker holds, with what is needed to re-check and render it.

    The shop's settings and the order are read as they are and only interpreted per delivery
    (`settings`, `order`), so that a shop whose stored settings no longer validate, or an
    order row that went missing, fails that delivery alone instead of the whole claim.
    """

    delivery_id: int
    request_id: int
    public_id: str
    reviewed: bool
    dkim: tuple[str, str, str] | None  # domain, selector, encrypted private key
    mail_server: str | None  # the shop's own SMTP URL, encrypted
    mail_server_connections: int | None  # its limit of conversations at once, if any
    shop_id: str
    kind: str
    seq: int
    attempts: int
    message_id: str
    lease_until: datetime
    order_id: int
    email: str
    email_normalized: str
    language: str
    trigger_at: datetime
    shop_name: str
    shop_updated_at: datetime
    raw_settings: dict[str, Any]
    order_row: OrderSnapshot | None
    last_sent_to_customer: datetime | None = None
    suppressed: bool = False  # the address is on the shop's suppression list
    # The shop's saved templates in the request's language, by kind (none: our own apply).
    templates: dict[str, MerchantTemplate] = field(default_factory=dict)

    @property
    def settings(self) -> ShopSettings:
        return parsed_settings(self.shop_id, self.shop_updated_at, self.raw_settings)

    def renderer(self) -> Callable[[dict[str, Any]], Rendered] | None:
        """The shop's saved template this e-mail uses, as a renderer; None: our own."""
        template = pick(self.templates, self.kind == Kind.REMINDER, self.seq)
        return None if template is None else partial(render, template)

    @property
    def order(self) -> OrderSnapshot:
        if self.order_row is None:
            raise LookupError(f"order {self.order_id} of request {self.request_id} is missing")
        return self.order_row


# A row of `_EXPIRED`, `_DUE_OF_SHOP` or `_DUE_BY_SHOP_PG`: id, kind, shop_id, email_normalized.
Candidate = Row[*tuple[Any, ...]]


@dataclass
class Batch:
    """What one claim took, and what it left for later."""

    claims: list[Claim]
    # Due first e-mails left unclaimed because their customer has another one in flight:
    # taken once it is recorded, so that the cool-down sees it.
    deferred: int = 0
    # The last shop this claim served: the next claim starts after it (round robin).
    last_shop: str = ""


async def claim(
    conn: AsyncConnection,
    *,
    worker: str,
    now: datetime,
    lease: float,
    limit: int,
    message_domain: str,
    after_shop: str = "",
) -> Batch:
    """Take up to `limit` due deliveries (and any whose lease expired) for `worker`.

    Fair across shops: the due e-mails are taken round robin, an equal share from each shop
    with some due (starting after `after_shop`), so one shop's backlog never holds another
    shop's e-mail back by more than one claim.
    """
    expired = await conn.execute(_EXPIRED, {"b_now": now, "b_limit": limit})
    candidates: list[Candidate] = list(expired.all())
    last_shop = after_shop
    if len(candidates) < limit:
        due, last_shop = await _due_round_robin(conn, now, limit - len(candidates), after_shop)
        candidates += due
    if not candidates:
        return Batch([], last_shop=last_shop)
    ids, deferred = await _one_per_customer(conn, candidates)
    if not ids:
        return Batch([], deferred, last_shop)
    claimed = await conn.execute(
        _TAKE,
        {
            "b_ids": ids,
            "b_worker": worker,
            "b_until": now + timedelta(seconds=lease),
            "b_now": now,
            "b_domain": f"@{message_domain}>",
        },
    )
    request_ids = [r.request_id for r in claimed if r.kind == Kind.FIRST]
    if request_ids:
        await conn.execute(_REQUESTS_SENDING, {"b_ids": request_ids, "b_now": now})
    return Batch(await _load(conn, ids), deferred, last_shop)


async def _due_round_robin(
    conn: AsyncConnection, now: datetime, limit: int, after_shop: str
) -> tuple[list[Candidate], str]:
    """Due deliveries, an equal share from each shop with some due; and the last shop served."""
    shops = list((await conn.execute(_SHOPS_WITH_DUE, {"b_now": now})).scalars())
    if not shops:
        return [], after_shop
    # The shops after the last one served come first; at most `limit` of them per claim.
    start = next((i for i, shop in enumerate(shops) if shop > after_shop), 0)
    chosen = (shops[start:] + shops[:start])[:limit]
    share = -(-limit // len(chosen))
    if conn.dialect.name == "postgresql":
        params = {"b_shops": chosen, "b_now": now, "b_share": share, "b_limit": limit}
        rows = list((await conn.execute(_DUE_BY_SHOP_PG, params)).all())
    else:
        rows = []
        for shop in chosen:
            params = {"b_shop": shop, "b_now": now, "b_share": min(share, limit - len(rows))}
            rows += (await conn.execute(_DUE_OF_SHOP, params)).all()
            if len(rows) >= limit:
                break
    return rows[:limit], chosen[-1]


async def _one_per_customer(
    conn: AsyncConnection, candidates: Sequence[Candidate]
) -> tuple[list[int], int]:
    """The candidates to take: at most one first e-mail per customer in flight, everywhere.

    Two orders of one customer due together would otherwise both be sent before either is
    recorded, and the cool-down could not see the first. On PostgreSQL, claimers running at
    once are serialised per customer by an advisory lock held until this claim commits (a
    claimer that cannot take it leaves that e-mail for later); SQLite claims one at a time.
    The check of what is in flight runs after the lock is held, so it sees any claim that
    committed before.
    """
    firsts = {(r.shop_id, r.email_normalized) for r in candidates if r.kind == Kind.FIRST}
    if not firsts:
        return [r.id for r in candidates], 0
    busy: set[tuple[str, str]] = set()
    if conn.dialect.name == "postgresql":
        keys = sorted(f"{shop}:{email}" for shop, email in firsts)
        locked = await conn.execute(_TRY_LOCK_CUSTOMERS, {"b_keys": keys})
        busy = {(key.split(":", 1)[0], key.split(":", 1)[1]) for key, got in locked if not got}
    ids = [r.id for r in candidates]
    in_flight = await conn.execute(_FIRSTS_IN_FLIGHT, {"b_ids": ids})
    busy |= {(r.shop_id, r.email_normalized) for r in in_flight}
    taken: list[int] = []
    deferred = 0
    for r in candidates:
        if r.kind == Kind.FIRST:
            customer = (r.shop_id, r.email_normalized)
            if customer in busy:
                deferred += 1
                continue
            busy.add(customer)  # the next one of this customer in the batch waits
        taken.append(r.id)
    return taken, deferred


# What a candidate carries: enough to keep one first e-mail per customer in flight.
_CANDIDATE = (Delivery.id, Delivery.kind, Delivery.shop_id, ReviewRequest.email_normalized)

_EXPIRED = (
    select(*_CANDIDATE)
    .join(ReviewRequest, ReviewRequest.id == Delivery.request_id)
    .where(Delivery.status == Status.SENDING, Delivery.claim_expires_at <= bindparam("b_now"))
    .order_by(Delivery.claim_expires_at)
    .limit(bindparam("b_limit"))
    .with_for_update(skip_locked=True, of=Delivery)
)

_SCHEDULED_DUE = (Delivery.status == Status.SCHEDULED, Delivery.due_at <= bindparam("b_now"))

# One index probe per shop (`ix_deliveries_shop_due`); the shops table is small.
_SHOPS_WITH_DUE = (
    select(Shop.id)
    .where(
        Shop.sending_paused_at.is_(None),
        exists().where(Delivery.shop_id == Shop.id, *_SCHEDULED_DUE),
    )
    .order_by(Shop.id)
)

_DUE_OF_SHOP = (
    select(*_CANDIDATE)
    .join(ReviewRequest, ReviewRequest.id == Delivery.request_id)
    .where(Delivery.shop_id == bindparam("b_shop"), *_SCHEDULED_DUE)
    .order_by(Delivery.due_at)
    .limit(bindparam("b_share"))
)

# The same for all chosen shops in one statement: a lateral join over the shop ids, in order.
_DUE_BY_SHOP_PG = text(
    """
    SELECT d.id, d.kind, d.shop_id, d.email_normalized
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
)

# Keys are "shop:address"; the lock is released when the claim commits.
_TRY_LOCK_CUSTOMERS = text(
    "SELECT k, pg_try_advisory_xact_lock(hashtextextended(k, 0)) "
    "FROM unnest(CAST(:b_keys AS TEXT[])) AS t(k)"
)

# First e-mails being sent now, by anyone (`ix_deliveries_lease` holds only those rows).
_FIRSTS_IN_FLIGHT = (
    select(ReviewRequest.shop_id, ReviewRequest.email_normalized)
    .join(Delivery, Delivery.request_id == ReviewRequest.id)
    .where(
        Delivery.status == Status.SENDING,
        Delivery.claim_expires_at.is_not(None),
        Delivery.kind == Kind.FIRST,
        Delivery.id.not_in(bindparam("b_ids", expanding=True)),
    )
)

# The Message-ID is fixed at the first claim and kept across attempts, so a message re-sent
# after a crash can be recognised by the receiving side.
_MESSAGE_ID = (
    literal("<relance.")
    + cast(Delivery.id, String)
    + literal(".")
    + Delivery.shop_id
    + bindparam("b_domain")
)

_TAKE = (
    update(Delivery)
    .where(Delivery.id.in_(bindparam("b_ids", expanding=True)))
    .values(
        status=Status.SENDING,
        claimed_by=bindparam("b_worker"),
        claim_expires_at=bindparam("b_until"),
        attempts=Delivery.attempts + 1,
        message_id=func.coalesce(Delivery.message_id, _MESSAGE_ID),
        updated_at=bindparam("b_now"),
    )
    .returning(Delivery.request_id, Delivery.kind)
)

_REQUESTS_SENDING = (
    update(ReviewRequest)
    .where(
        ReviewRequest.id.in_(bindparam("b_ids", expanding=True)),
        ReviewRequest.status == Status.SCHEDULED,
    )
    .values(status=Status.SENDING, updated_at=bindparam("b_now"))
)

_CLAIMED_ROWS = (
    select(
        Delivery.id.label("delivery_id"),
        Delivery.request_id,
        Delivery.shop_id,
        Delivery.kind,
        Delivery.seq,
        Delivery.attempts,
        Delivery.message_id,
        Delivery.claim_expires_at,
        ReviewRequest.order_id,
        ReviewRequest.email,
        ReviewRequest.email_normalized,
        ReviewRequest.language,
        ReviewRequest.trigger_at,
        ReviewRequest.public_id,
        Review.id.label("review_id"),
        Shop.name.label("shop_name"),
        Shop.settings,
        Shop.updated_at.label("shop_updated_at"),
        ShopDkimKey.domain.label("dkim_domain"),
        ShopDkimKey.selector.label("dkim_selector"),
        ShopDkimKey.private_key_encrypted.label("dkim_key"),
        ShopMailServer.url_encrypted.label("mail_server"),
        ShopMailServer.max_connections.label("mail_server_connections"),
        Order.state_id,
        Order.paid_at,
        Order.reference,
        Order.firstname,
        Order.lastname,
        Order.products,
        Order.ordered_at,
        Order.group_ids,
        Order.total_paid,
        Order.newsletter,
    )
    .join(ReviewRequest, ReviewRequest.id == Delivery.request_id)
    .join(Shop, Shop.id == Delivery.shop_id)
    .outerjoin(
        Order,
        (Order.shop_id == ReviewRequest.shop_id) & (Order.order_id == ReviewRequest.order_id),
    )
    .outerjoin(Review, Review.request_id == ReviewRequest.id)
    .outerjoin(ShopDkimKey, ShopDkimKey.shop_id == Delivery.shop_id)
    .outerjoin(ShopMailServer, ShopMailServer.shop_id == Delivery.shop_id)
    .where(Delivery.id.in_(bindparam("b_ids", expanding=True)))
    .order_by(Delivery.due_at)
)


async def _load(conn: AsyncConnection, ids: list[int]) -> list[Claim]:
    rows = (await conn.execute(_CLAIMED_ROWS, {"b_ids": ids})).mappings()
    claims = [
        Claim(
            delivery_id=r["delivery_id"],
            request_id=r["request_id"],
            public_id=r["public_id"],
            reviewed=r["review_id"] is not None,
            mail_server=r["mail_server"],
            mail_server_connections=r["mail_server_connections"],
            dkim=(r["dkim_domain"], r["dkim_selector"], r["dkim_key"])
            if r["dkim_key"] is not None
            else None,
            shop_id=r["shop_id"],
            kind=r["kind"],
            seq=r["seq"],
            attempts=r["attempts"],
            message_id=r["message_id"],
            lease_until=r["claim_expires_at"],
            order_id=r["order_id"],
            email=r["email"],
            email_normalized=r["email_normalized"],
            language=r["language"],
            trigger_at=r["trigger_at"],
            shop_name=r["shop_name"],
            shop_updated_at=r["shop_updated_at"],
            raw_settings=r["settings"],
            order_row=None
            if r["state_id"] is None
            else OrderSnapshot(
                state_id=r["state_id"],
                paid_at=r["paid_at"],
                reference=r["reference"],
                firstname=r["firstname"],
                lastname=r["lastname"],
                products=r["products"] or [],
                ordered_at=r["ordered_at"],
                group_ids=r["group_ids"],
                total_paid=r["total_paid"],
                newsletter=r["newsletter"],
            ),
        )
        for r in rows
    ]
    await _attach_last_sent(conn, claims)
    saved = await templates.saved_for(conn, {(c.shop_id, c.language) for c in claims})
    for c in claims:
        c.templates = saved.get((c.shop_id, c.language), {})
    return claims


async def _attach_last_sent(conn: AsyncConnection, claims: list[Claim]) -> None:
    """When each customer last got a first e-mail from the shop, for the cooldown rule."""
    # Read for every first e-mail: whether the shop has a cooldown is decided per delivery.
    firsts = [c for c in claims if c.kind == Kind.FIRST]
    if not firsts:
        return
    keys = {(c.shop_id, c.email_normalized) for c in firsts}
    rows = await conn.execute(
        select(
            ReviewRequest.shop_id,
            ReviewRequest.email_normalized,
            func.max(ReviewRequest.sent_at).label("last"),
        )
        .where(
            tuple_(ReviewRequest.shop_id, ReviewRequest.email_normalized).in_(list(keys)),
            ReviewRequest.sent_at.is_not(None),
            ReviewRequest.dry_run.is_(False),  # a dry run wrote to no one
        )
        .group_by(ReviewRequest.shop_id, ReviewRequest.email_normalized)
    )
    last = {(r.shop_id, r.email_normalized): r.last for r in rows}
    for c in firsts:
        c.last_sent_to_customer = last.get((c.shop_id, c.email_normalized))


async def attach_suppressed(conn: AsyncConnection, claims: list[Claim], key: bytes) -> None:
    """Mark the claims whose address is on their shop's suppression list (one query).

    `key` is `security.address_key` of the secret key: the list is keyed by address hashes.
    """
    hashes = {c.delivery_id: suppressions.hash_email(key, c.email_normalized) for c in claims}
    found = await suppressions.suppressed_among(
        conn, ((c.shop_id, hashes[c.delivery_id]) for c in claims)
    )
    for c in claims:
        c.suppressed = (c.shop_id, hashes[c.delivery_id]) in found
