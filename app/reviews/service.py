"""Reviews: what the review page shows, storing a submission, moderation and listing."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app import sentiment
from app.alerts import service as alerts
from app.dialect import PerDialect
from app.errors import NotFound
from app.hooks import service as hooks
from app.hooks.vocabulary import EventType
from app.orders.models import Order
from app.pagination import page
from app.requests.models import Delivery, ReviewRequest
from app.requests.timeline import Step
from app.requests.vocabulary import Status
from app.reviews.models import Review, ReviewProduct
from app.shops.models import Shop
from app.shops.settings import ShopSettings, parsed_settings
from app.timeutil import parse_duration

PUBLISHED = "published"  # the review status shown publicly


@dataclass(frozen=True)
class ProductLine:
    """One product of the order, as the page lists it; `key` names its form field."""

    product_id: int
    attribute_id: int
    name: str | None
    image_url: str | None

    @property
    def key(self) -> str:
        return f"{self.product_id}-{self.attribute_id}"


@dataclass(frozen=True)
class ExistingReview:
    id: int
    rating: int
    comment: str | None
    nps: int | None
    created_at: datetime
    product_ratings: dict[str, int]


@dataclass(frozen=True)
class ReviewTarget:
    """A request whose link was followed: what its page needs, and what a submission checks."""

    request_id: int
    shop_id: str
    shop_name: str
    order_id: int
    language: str
    sent_at: datetime
    settings: ShopSettings
    order_reference: str | None
    ordered_at: datetime | None
    products: list[ProductLine]
    review: ExistingReview | None

    def link_expires_at(self) -> datetime:
        return self.sent_at + parse_duration(self.settings.review_link_ttl).approx()

    def edit_deadline(self, now: datetime) -> datetime:
        """Until when the review (already there, or created `now`) can be changed."""
        created = self.review.created_at if self.review else now
        return created + parse_duration(self.settings.review_edit_grace).approx()


@dataclass
class Submission:
    """A validated form: the overall rating, and what else the customer gave."""

    rating: int
    comment: str | None
    nps: int | None
    product_ratings: dict[str, int] = field(default_factory=dict)


_TARGET = (
    select(
        ReviewRequest.id,
        ReviewRequest.shop_id,
        ReviewRequest.order_id,
        ReviewRequest.language,
        ReviewRequest.sent_at,
        Shop.name.label("shop_name"),
        Shop.settings,
        Shop.updated_at.label("shop_updated_at"),
        Order.reference,
        Order.ordered_at,
        Order.products,
        Review.id.label("review_id"),
        Review.rating,
        Review.comment,
        Review.nps,
        Review.created_at.label("review_created_at"),
    )
    .join(Shop, Shop.id == ReviewRequest.shop_id)
    .outerjoin(
        Order,
        (Order.shop_id == ReviewRequest.shop_id) & (Order.order_id == ReviewRequest.order_id),
    )
    .outerjoin(Review, Review.request_id == ReviewRequest.id)
    .where(ReviewRequest.public_id == bindparam("b_public_id"))
)


async def target(conn: AsyncConnection, public_id: str) -> ReviewTarget | None:
    """The request a link names, or None when there is none or no e-mail of it ever left."""
    row = (await conn.execute(_TARGET, {"b_public_id": public_id})).mappings().first()
    if row is None or row["sent_at"] is None:
        return None
    review = None
    if row["review_id"] is not None:
        ratings = await conn.execute(
            select(
                ReviewProduct.product_id, ReviewProduct.product_attribute_id, ReviewProduct.rating
            ).where(ReviewProduct.review_id == row["review_id"])
        )
        review = ExistingReview(
            id=row["review_id"],
            rating=row["rating"],
            comment=row["comment"],
            nps=row["nps"],
            created_at=row["review_created_at"],
            product_ratings={f"{p}-{a}": r for p, a, r in ratings},
        )
    products = [
        ProductLine(
            product_id=int(p["id"]),
            attribute_id=int(p.get("id_product_attribute") or 0),
            name=p.get("name"),
            image_url=p.get("image_url"),
        )
        for p in row["products"] or []
    ]
    return ReviewTarget(
        request_id=row["id"],
        shop_id=row["shop_id"],
        shop_name=row["shop_name"],
        order_id=row["order_id"],
        language=row["language"],
        sent_at=row["sent_at"],
        settings=parsed_settings(row["shop_id"], row["shop_updated_at"], row["settings"]),
        order_reference=row["reference"],
        ordered_at=row["ordered_at"],
        products=list({p.key: p for p in products}.values()),
        review=review,
    )


_INSERT_REVIEW = PerDialect(
    lambda insert_: (
        insert_(Review)
        .values(
            shop_id=bindparam("b_shop"),
            request_id=bindparam("b_request"),
            order_id=bindparam("b_order"),
            rating=bindparam("b_rating"),
            comment=bindparam("b_comment"),
            nps=bindparam("b_nps"),
            sentiment=bindparam("b_sentiment"),
            status=bindparam("b_status"),
            language=bindparam("b_language"),
            purchased_at=bindparam("b_purchased_at"),
            created_at=bindparam("b_now"),
            updated_at=bindparam("b_now"),
        )
        .on_conflict_do_nothing()
        .returning(Review.id)
    )
)


async def save(
    conn: AsyncConnection, at: ReviewTarget, form: Submission, now: datetime
) -> int | None:
    """Store the review, or update it within the edit grace period. None: the grace is over.

    Two submissions at once for one request end as one review: the insert is a no-op for the
    second (unique request id), which then updates.
    """
    review_id = None
    created = False
    mood = sentiment.classify(form.comment, at.language)
    if at.review is None:
        review_id = await conn.scalar(
            _INSERT_REVIEW.on(conn),
            {
                "b_shop": at.shop_id,
                "b_request": at.request_id,
                "b_order": at.order_id,
                "b_rating": form.rating,
                "b_comment": form.comment,
                "b_nps": form.nps,
                "b_sentiment": mood,
                "b_status": at.settings.review_default_status,
                "b_language": at.language,
                "b_purchased_at": at.ordered_at,
                "b_now": now,
            },
        )
    if review_id is not None:
        created = True
        await _alert_if_low(conn, at, form, int(review_id), now)
    if review_id is None:
        existing = await conn.execute(
            select(Review.id, Review.created_at).where(Review.request_id == at.request_id)
        )
        review_id, created_at = existing.one()
        grace = parse_duration(at.settings.review_edit_grace).approx()
        if now > created_at + grace:
            return None
        await conn.execute(
            update(Review)
            .where(Review.id == review_id)
            .values(
                rating=form.rating,
                comment=form.comment,
                nps=form.nps,
                sentiment=mood,
                updated_at=now,
            )
        )
        await conn.execute(delete(ReviewProduct).where(ReviewProduct.review_id == review_id))
    names = {p.key: p for p in at.products}
    if form.product_ratings:
        await conn.execute(
            insert(ReviewProduct),
            [
                {
                    "review_id": review_id,
                    "product_id": names[key].product_id,
                    "product_attribute_id": names[key].attribute_id,
                    "shop_id": at.shop_id,
                    "name": names[key].name,
                    "rating": rating,
                }
                for key, rating in form.product_ratings.items()
            ],
        )
    if created:
        await _emit_created(conn, at, form, int(review_id), now)
    return int(review_id)


def _review_event(review: dict[str, Any]) -> hooks.Event:
    """What a `review.*` event tells: the review as the reviews API shows it."""
    keys = ("id", "request_id", "order_id", "rating", "comment", "nps", "language", "status",
            "reply", "created_at", "updated_at")  # fmt: skip
    data = {k: review.get(k) for k in keys}
    data["products"] = [
        {"product_id": p["product_id"], "product_attribute_id": p["product_attribute_id"],
         "name": p.get("name"), "rating": p["rating"]}
        for p in review.get("products", [])
    ]  # fmt: skip
    return hooks.Event(review["shop_id"], data)


async def _emit_created(
    conn: AsyncConnection, at: ReviewTarget, form: Submission, review_id: int, now: datetime
) -> None:
    """`review.submitted`, and `review.published` too when the shop publishes at once."""
    status = at.settings.review_default_status
    names = {p.key: p for p in at.products}
    review = {
        "id": review_id, "shop_id": at.shop_id, "request_id": at.request_id,
        "order_id": at.order_id, "rating": form.rating, "comment": form.comment,
        "nps": form.nps, "language": at.language, "status": status, "reply": None,
        "created_at": now, "updated_at": now,
        "products": [
            {"product_id": names[key].product_id, "product_attribute_id": names[key].attribute_id,
             "name": names[key].name, "rating": rating}
            for key, rating in form.product_ratings.items()
        ],
    }  # fmt: skip
    event = [_review_event(review)]
    await hooks.emit(conn, EventType.REVIEW_SUBMITTED, event, now)
    if status == PUBLISHED:
        await hooks.emit(conn, EventType.REVIEW_PUBLISHED, event, now)


async def _alert_if_low(
    conn: AsyncConnection, at: ReviewTarget, form: Submission, review_id: int, now: datetime
) -> None:
    """A new review at or below the shop's threshold: tell the merchant (once, when created)."""
    settings = at.settings
    threshold = settings.alert_rating_threshold
    if settings.notification_email is None or threshold is None or form.rating > threshold:
        return
    await alerts.low_review(
        conn,
        shop_id=at.shop_id,
        shop_name=at.shop_name,
        to=settings.notification_email,
        language=settings.default_language,
        rating=form.rating,
        order=at.order_reference or str(at.order_id),
        comment=form.comment,
        review_id=review_id,
        now=now,
    )


async def record_click(
    conn: AsyncConnection, request_id: int, now: datetime, scanner_delay: float
) -> None:
    """Mark the newest sent e-mail of the request as clicked, once.

    A click within `scanner_delay` seconds of sending is a mail-security scanner, not a person.
    """
    latest = await conn.execute(
        select(Delivery.id, Delivery.sent_at, Delivery.clicked_at)
        .where(Delivery.request_id == request_id, Delivery.status == Status.SENT)
        .order_by(Delivery.seq.desc())
        .limit(1)
    )
    row = latest.first()
    if row is None or row.clicked_at is not None or row.sent_at is None:
        return
    if (now - row.sent_at).total_seconds() < scanner_delay:
        return
    await conn.execute(
        update(Delivery)
        .where(Delivery.id == row.id, Delivery.clicked_at.is_(None))
        .values(clicked_at=now)
    )


async def list_reviews(
    conn: AsyncConnection,
    shop_id: str,
    *,
    rating: int | None,
    status: str | None,
    created_from: datetime | None,
    created_to: datetime | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of reviews, newest first, each with its product ratings."""
    stmt = select(Review).where(Review.shop_id == shop_id)
    if rating is not None:
        stmt = stmt.where(Review.rating == rating)
    if status is not None:
        stmt = stmt.where(Review.status == status)
    if created_from is not None:
        stmt = stmt.where(Review.created_at >= created_from)
    if created_to is not None:
        stmt = stmt.where(Review.created_at < created_to)
    rows, next_cursor = await page(conn, stmt, Review.id, cursor, limit)
    await _attach_products(conn, rows)
    return rows, next_cursor


async def _attach_products(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    by_review: dict[int, list[dict[str, Any]]] = {r["id"]: [] for r in rows}
    if by_review:
        products = await conn.execute(
            select(ReviewProduct)
            .where(ReviewProduct.review_id.in_(list(by_review)))
            .order_by(ReviewProduct.product_id, ReviewProduct.product_attribute_id)
        )
        for p in products.mappings():
            by_review[p["review_id"]].append(dict(p))
    for r in rows:
        r["products"] = by_review[r["id"]]


async def moderate(
    conn: AsyncConnection,
    shop_id: str,
    review_id: int,
    changes: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """Change a review's status or the merchant's public reply; returns the review."""
    before = await conn.scalar(
        select(Review.status)
        .where(Review.shop_id == shop_id, Review.id == review_id)
        .with_for_update()
    )
    values: dict[str, Any] = {"updated_at": now}
    if "status" in changes:
        values["status"] = changes["status"]
    if "reply" in changes:
        values["reply"] = changes["reply"] or None
        values["replied_at"] = now if changes["reply"] else None
    done = await conn.execute(
        update(Review).where(Review.shop_id == shop_id, Review.id == review_id).values(**values)
    )
    if not done.rowcount:
        raise NotFound(f"No review {review_id}.")
    row = (await conn.execute(select(Review).where(Review.id == review_id))).mappings().one()
    rows = [dict(row)]
    await _attach_products(conn, rows)
    if before != PUBLISHED and rows[0]["status"] == PUBLISHED:
        await hooks.emit(conn, EventType.REVIEW_PUBLISHED, [_review_event(rows[0])], now)
    return rows[0]


async def timeline_steps(conn: AsyncConnection, request_id: int) -> list[Step]:
    """The review of a request, and its last change, as timeline steps."""
    row = (
        await conn.execute(
            select(Review.rating, Review.created_at, Review.updated_at).where(
                Review.request_id == request_id
            )
        )
    ).first()
    if row is None:
        return []
    steps = [Step(row.created_at, "reviewed", f"{row.rating} stars")]
    if row.updated_at != row.created_at:
        steps.append(Step(row.updated_at, "review changed", f"{row.rating} stars"))
    return steps
