"""Claiming due deliveries with a lease (which ones: `picking.py`; what became of each:
`outcomes.py`).

Every function runs in the caller's transaction. The claim is committed before any SMTP
conversation starts; each outcome is committed right after its message.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Select, String, bindparam, cast, exists, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from app.dispatch import picking, taking_pg
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


@dataclass
class Batch:
    """What one claim took, and what it left for later."""

    claims: list[Claim]
    # Candidates left unclaimed: first e-mails whose customer has another in flight (taken
    # once it is recorded, so that the cooldown sees it), or taken by another claimer.
    deferred: int = 0
    # The last shop this claim served: the next claim starts after it (round robin).
    last_shop: str = ""
    # The shops with e-mails due that the claim went by, for the next claims to reuse.
    due_shops: list[str] = field(default_factory=list)


async def claim(
    conn: AsyncConnection,
    *,
    worker: str,
    now: datetime,
    lease: float,
    limit: int,
    message_domain: str,
    after_shop: str = "",
    take_over: bool = True,
    due_shops: list[str] | None = None,
) -> Batch:
    """Take up to `limit` due deliveries for `worker`, round robin across shops (`picking`).

    With `take_over`, claims whose lease expired come first (a worker died holding them).
    `due_shops` reuses the list of shops with e-mails due from a recent claim; None reads it.
    """
    candidates = await picking.expired(conn, now, limit) if take_over else []
    if due_shops is None:
        due_shops = await picking.shops_with_due(conn, now)
    served = picking.in_turn(due_shops, after_shop, limit - len(candidates))
    if len(candidates) < limit:
        candidates += await picking.due_round_robin(conn, now, limit - len(candidates), served)
    last_shop = served[-1] if served else after_shop
    if not candidates:
        return Batch([], 0, last_shop, due_shops)
    ids = await picking.one_first_per_customer(conn, candidates)
    until = now + timedelta(seconds=lease)
    if conn.dialect.name == "postgresql":
        # One round trip: take, mark the requests, read everything the e-mails need.
        rows = await taking_pg.take_and_load(conn, ids, worker, until, now, message_domain)
        claims = [_claim_of_tuple(r) for r in rows]
        return Batch(claims, len(candidates) - len(claims), last_shop, due_shops)
    params = {
        "b_ids": ids,
        "b_worker": worker,
        "b_until": until,
        "b_now": now,
        "b_domain": f"@{message_domain}>",
    }
    taken = (await conn.execute(_TAKE_SQLITE, params)).all()
    firsts = [r.request_id for r in taken if r.kind == Kind.FIRST]
    if firsts:
        await conn.execute(_REQUESTS_SENDING, {"b_ids": firsts, "b_now": now})
    load = {"b_ids": [r.id for r in taken]}
    loaded = (await conn.execute(_LOAD, load)).mappings().all() if taken else []
    claims = [_claim(r) for r in loaded]
    saved = await templates.saved_for(conn, {(c.shop_id, c.language) for c in claims})
    for c in claims:
        c.templates = saved.get((c.shop_id, c.language), {})
    return Batch(claims, len(candidates) - len(claims), last_shop, due_shops)


# The Message-ID is fixed at the first claim and kept across attempts, so a message re-sent
# after a crash can be recognised by the receiving side.
_MESSAGE_ID = (
    literal("<relance.")
    + cast(Delivery.id, String)
    + literal(".")
    + Delivery.shop_id
    + bindparam("b_domain")
)

# A first e-mail whose customer (same shop, same address) has another one being sent now.
_own = aliased(ReviewRequest, name="own_request")
_other = aliased(ReviewRequest, name="other_request")
_other_first = aliased(Delivery, name="other_delivery")
_CUSTOMER_IN_FLIGHT = exists().where(
    _own.id == Delivery.request_id,
    _other.shop_id == _own.shop_id,
    _other.email_normalized == _own.email_normalized,
    _other_first.request_id == _other.id,
    _other_first.kind == Kind.FIRST,
    _other_first.status == Status.SENDING,
    _other_first.id.not_in(bindparam("b_ids", expanding=True)),
)

_TAKE = (
    update(Delivery)
    .where(
        Delivery.id.in_(bindparam("b_ids", expanding=True)),
        # Still claimable as the update sees the row (never a row another claim took since).
        or_(
            (Delivery.status == Status.SCHEDULED) & (Delivery.due_at <= bindparam("b_now")),
            (Delivery.status == Status.SENDING) & (Delivery.claim_expires_at <= bindparam("b_now")),
        ),
        or_(Delivery.kind != Kind.FIRST, ~_CUSTOMER_IN_FLIGHT),
    )
    .values(
        status=Status.SENDING,
        claimed_by=bindparam("b_worker"),
        claim_expires_at=bindparam("b_until"),
        claimed_at=bindparam("b_now"),
        attempts=Delivery.attempts + 1,
        message_id=func.coalesce(Delivery.message_id, _MESSAGE_ID),
        updated_at=bindparam("b_now"),
    )
)

_TAKE_SQLITE = _TAKE.returning(Delivery.id, Delivery.request_id, Delivery.kind)

_REQUESTS_SENDING_WHERE = (ReviewRequest.status == Status.SCHEDULED,)
_REQUESTS_SENDING = (
    update(ReviewRequest)
    .where(ReviewRequest.id.in_(bindparam("b_ids", expanding=True)), *_REQUESTS_SENDING_WHERE)
    .values(status=Status.SENDING, updated_at=bindparam("b_now"))
)

# When the customer last got a first e-mail from the shop, for the cooldown (a dry run
# wrote to no one).
_prior = aliased(ReviewRequest, name="prior")
_LAST_SENT = (
    select(func.max(_prior.sent_at))
    .where(
        _prior.shop_id == ReviewRequest.shop_id,
        _prior.email_normalized == ReviewRequest.email_normalized,
        _prior.sent_at.is_not(None),
        _prior.dry_run.is_(False),
    )
    .correlate(ReviewRequest)
    .scalar_subquery()
)


def _loaded(d: Any) -> Select[Any]:
    """Everything the re-check and the e-mail need, for the claimed deliveries `d`."""
    return (
        select(
            d.c.id.label("delivery_id"), d.c.request_id, d.c.shop_id, d.c.kind, d.c.seq,
            d.c.attempts, d.c.message_id, d.c.claim_expires_at,
            ReviewRequest.order_id, ReviewRequest.email, ReviewRequest.email_normalized,
            ReviewRequest.language, ReviewRequest.trigger_at, ReviewRequest.public_id,
            _LAST_SENT.label("last_sent"),
            Review.id.label("review_id"),
            Shop.name.label("shop_name"), Shop.settings, Shop.updated_at.label("shop_updated_at"),
            ShopDkimKey.domain.label("dkim_domain"),
            ShopDkimKey.selector.label("dkim_selector"),
            ShopDkimKey.private_key_encrypted.label("dkim_key"),
            ShopMailServer.url_encrypted.label("mail_server"),
            ShopMailServer.max_connections.label("mail_server_connections"),
            Order.state_id, Order.paid_at, Order.reference, Order.firstname, Order.lastname,
            Order.products, Order.ordered_at, Order.group_ids, Order.total_paid,
            Order.newsletter,
        )
        .select_from(d)
        .join(ReviewRequest, ReviewRequest.id == d.c.request_id)
        .join(Shop, Shop.id == d.c.shop_id)
        .outerjoin(
            Order,
            (Order.shop_id == ReviewRequest.shop_id) & (Order.order_id == ReviewRequest.order_id),
        )
        .outerjoin(Review, Review.request_id == ReviewRequest.id)
        .outerjoin(ShopDkimKey, ShopDkimKey.shop_id == d.c.shop_id)
        .outerjoin(ShopMailServer, ShopMailServer.shop_id == d.c.shop_id)
        .order_by(d.c.due_at)
    )  # fmt: skip


_LOAD = _loaded(Delivery.__table__).where(Delivery.id.in_(bindparam("b_ids", expanding=True)))


def _claim(r: Any) -> Claim:
    return Claim(
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
        last_sent_to_customer=r["last_sent"],
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


def _claim_of_tuple(r: Any) -> Claim:
    """A claim from a row of `taking_pg.TAKE_AND_LOAD`, by position."""
    (delivery_id, request_id, shop_id, kind, seq, attempts, message_id, lease_until,
     order_id, email, email_normalized, language, trigger_at, public_id, last_sent, reviewed,
     shop_name, raw_settings, shop_updated_at, dkim_domain, dkim_selector, dkim_key,
     mail_server, mail_server_connections, state_id, paid_at, reference, firstname, lastname,
     products, ordered_at, group_ids, total_paid, newsletter, saved) = r  # fmt: skip
    return Claim(
        delivery_id=delivery_id,
        request_id=request_id,
        public_id=public_id,
        reviewed=reviewed,
        dkim=(dkim_domain, dkim_selector, dkim_key) if dkim_key is not None else None,
        mail_server=mail_server,
        mail_server_connections=mail_server_connections,
        shop_id=shop_id,
        kind=kind,
        seq=seq,
        attempts=attempts,
        message_id=message_id,
        lease_until=lease_until,
        order_id=order_id,
        email=email,
        email_normalized=email_normalized,
        language=language,
        trigger_at=trigger_at,
        shop_name=shop_name,
        shop_updated_at=shop_updated_at,
        raw_settings=raw_settings,
        last_sent_to_customer=last_sent,
        order_row=None
        if state_id is None
        else OrderSnapshot(
            state_id=state_id,
            paid_at=paid_at,
            reference=reference,
            firstname=firstname,
            lastname=lastname,
            products=products or [],
            ordered_at=ordered_at,
            group_ids=group_ids,
            total_paid=total_paid,
            newsletter=newsletter,
        ),
        templates=taking_pg.templates_of(saved),
    )


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
