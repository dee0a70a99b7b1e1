"""What the public reviews API and the product-reviews feed read: published reviews only,
with no personal data beyond the first name and the initial of the last name."""

import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.errors import NotFound
from app.orders.models import Order
from app.pagination import decode_cursor, encode_cursor
from app.reviews.models import Review, ReviewProduct
from app.shops import service as shops
from app.shops.settings import ShopSettings

PUBLISHED = "published"


@dataclass(frozen=True)
class PublicShop:
    id: str
    name: str
    settings: ShopSettings


async def shop(conn: AsyncConnection, shop_id: str) -> PublicShop:
    """The shop, or NotFound (ids are opaque: an unknown one tells nothing)."""
    if not shops.is_shop_id(shop_id):
        raise NotFound(f"No shop {shop_id!r}.")
    account = await shops.get(conn, shop_id)
    return PublicShop(account.id, account.name, account.settings)


def feed_token_ok(settings: ShopSettings, token: str | None) -> bool:
    """True when the feed is public, or `token` is the shop's feed token (constant time)."""
    expected = settings.review_feed_token
    if expected is None:
        return True
    return token is not None and hmac.compare_digest(token.encode(), expected.encode())


def display_name(firstname: str | None, lastname: str | None) -> str | None:
    """'Marie D.': the first name and the initial of the last name, never more."""
    first = " ".join((firstname or "").split())
    if not first:
        return None
    last = (lastname or "").strip()
    return f"{first} {last[0].upper()}." if last else first


_PUBLIC_COLUMNS = (
    Review.id,
    Review.rating,
    Review.comment,
    Review.language,
    Review.created_at,
    Review.purchased_at,
    Review.reply,
    Review.replied_at,
    Order.firstname,
    Order.lastname,
)


async def list_published(
    conn: AsyncConnection, shop_id: str, product_id: int | None, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of published reviews, newest first, each with its product ratings; with
    `product_id`, only the reviews that rated that product."""
    stmt = (
        select(*_PUBLIC_COLUMNS)
        .outerjoin(Order, and_(Order.shop_id == Review.shop_id, Order.order_id == Review.order_id))
        .where(Review.shop_id == shop_id, Review.status == PUBLISHED)
    )
    if product_id is not None:
        stmt = stmt.where(
            exists().where(
                ReviewProduct.review_id == Review.id, ReviewProduct.product_id == product_id
            )
        )
    if cursor is not None:
        stmt = stmt.where(Review.id < decode_cursor(cursor))
    result = await conn.execute(stmt.order_by(Review.id.desc()).limit(limit + 1))
    rows = [dict(r) for r in result.mappings()]
    next_cursor = encode_cursor(rows[limit - 1]["id"]) if len(rows) > limit else None
    rows = rows[:limit]
    products: dict[int, list[dict[str, Any]]] = {r["id"]: [] for r in rows}
    if products:
        found = await conn.execute(
            select(
                ReviewProduct.review_id,
                ReviewProduct.product_id,
                ReviewProduct.product_attribute_id,
                ReviewProduct.name,
                ReviewProduct.rating,
            )
            .where(ReviewProduct.review_id.in_(list(products)))
            .order_by(ReviewProduct.product_id, ReviewProduct.product_attribute_id)
        )
        for p in found.mappings():
            products[p["review_id"]].append(dict(p))
    items = []
    for r in rows:
        firstname, lastname = r.pop("firstname"), r.pop("lastname")
        items.append(
            {**r, "author": display_name(firstname, lastname), "products": products[r["id"]]}
        )
    return items, next_cursor


async def summary(conn: AsyncConnection, shop_id: str, product_id: int | None) -> dict[str, Any]:
    """Count, mean and distribution of the published order ratings, or with `product_id` of
    that product's published per-product ratings."""
    if product_id is None:
        rating = Review.rating
        stmt = select(rating, func.count()).where(
            Review.shop_id == shop_id, Review.status == PUBLISHED
        )
    else:
        rating = ReviewProduct.rating
        stmt = (
            select(rating, func.count())
            .join(Review, Review.id == ReviewProduct.review_id)
            .where(
                ReviewProduct.shop_id == shop_id,
                ReviewProduct.product_id == product_id,
                Review.status == PUBLISHED,
            )
        )
    counts = {str(v): 0 for v in range(1, 6)}
    for value, n in await conn.execute(stmt.group_by(rating)):
        counts[str(value)] = int(n)
    total = sum(counts.values())
    mean = round(sum(int(k) * n for k, n in counts.items()) / total, 2) if total else None
    return {"count": total, "mean": mean, "distribution": counts}


@dataclass(frozen=True)
class FeedReview:
    """One product of one published review, with what the order told about the product."""

    review_id: int
    product_id: int
    product_attribute_id: int
    rating: int
    comment: str | None
    created_at: datetime
    author: str | None
    name: str | None
    product: dict[str, Any]


async def feed_page(
    conn: AsyncConnection, shop_id: str, after_review_id: int, limit: int
) -> list[FeedReview]:
    """The product ratings of up to `limit` published reviews with an id above
    `after_review_id`, in review id order (keyset pages: memory bounded by `limit`)."""
    ids = select(Review.id).where(
        Review.shop_id == shop_id,
        Review.status == PUBLISHED,
        Review.id > after_review_id,
        exists().where(ReviewProduct.review_id == Review.id),
    )
    id_page = ids.order_by(Review.id).limit(limit).subquery()
    result = await conn.execute(
        select(
            Review.id,
            Review.comment,
            Review.created_at,
            Order.firstname,
            Order.lastname,
            Order.products,
            ReviewProduct.product_id,
            ReviewProduct.product_attribute_id,
            ReviewProduct.name,
            ReviewProduct.rating,
        )
        .join(id_page, id_page.c.id == Review.id)
        .join(ReviewProduct, ReviewProduct.review_id == Review.id)
        .outerjoin(Order, and_(Order.shop_id == Review.shop_id, Order.order_id == Review.order_id))
        .order_by(Review.id, ReviewProduct.product_id, ReviewProduct.product_attribute_id)
    )
    out = []
    lines: dict[tuple[int, int], dict[str, Any]] = {}
    current = None
    for rid, comment, created, first, last, ordered, pid, aid, name, rating in result:
        if rid != current:  # the order's products, looked up once per review
            current = rid
            lines = {
                (int(p.get("id", 0)), int(p.get("id_product_attribute") or 0)): p
                for p in ordered or []
                if isinstance(p, dict)
            }
        out.append(
            FeedReview(
                review_id=rid,
                product_id=pid,
                product_attribute_id=aid,
                rating=rating,
                comment=comment,
                created_at=created,
                author=display_name(first, last),
                name=name,
                product=lines.get((pid, aid), {}),
            )
        )
    return out
