"""Google Merchant Center's Product Reviews Feed (schema 2.3) of a shop's published product
ratings, written as it is read: one short read transaction per keyset page, so a shop of any
size streams in bounded memory.

Only the per-product ratings of the review page go in: an order rating alone reviews the shop,
not a product. Google requires a review's `content`, so a rating without a comment stays out.
"""

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import transaction
from app.reviews import public_service
from app.reviews.public_service import FeedReview, PublicShop

PAGE = 500
AGGREGATOR = "Relance"
SCHEMA = "http://www.google.com/shopping/reviews/schema/product/2.3/product_reviews.xsd"
# Characters XML 1.0 does not allow, even escaped.
_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# What `_text` must change: those, and the characters escaped.
_SPECIAL = re.compile('[&<>"\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]')
_GTIN = re.compile(r"\d{8}|\d{12,14}")


def _text(value: object) -> str:
    text = str(value)
    if _SPECIAL.search(text) is None:  # most texts: nothing to escape or drop
        return text
    return escape(_INVALID.sub("", text), {'"': "&quot;"})


def _timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def _one(value: object) -> str | None:
    """A product field as text, or None when absent or blank."""
    if value is None or isinstance(value, dict | list):
        return None
    text = " ".join(str(value).split())
    return text or None


def header(shop: PublicShop) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<feed xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:noNamespaceSchemaLocation="{SCHEMA}">\n'
        "<version>2.3</version>\n"
        f"<aggregator><name>{AGGREGATOR}</name></aggregator>\n"
        f"<publisher><name>{_text(shop.name)}</name></publisher>\n"
        "<reviews>\n"
    )


FOOTER = "</reviews>\n</feed>\n"


def _product_url(p: dict[str, Any]) -> str | None:
    url = _one(p.get("url"))
    return url if url and url.startswith(("http://", "https://")) else None


def review_xml(
    r: FeedReview, shop_id: str, public_url: str, products: dict[Any, str] | None = None
) -> str:
    """One `<review>`: one product's rating within one customer's review. `products` caches
    the `<product>` elements already written (a shop's reviews name the same few products)."""
    p = r.product
    author = r.author
    reviewer = (
        f"<name>{_text(author)}</name>" if author else '<name is_anonymous="true">Anonymous</name>'
    )
    product_url = _product_url(p)
    if product_url:
        review_url = f"{product_url.split('#')[0]}#review-{r.review_id}"
    else:
        review_url = (
            f"{public_url.rstrip('/')}/public/v1/shops/{quote(shop_id)}/reviews"
            f"?product_id={r.product_id}"
        )
    key = (r.name, *(p.get(k) for k in ("url", "gtin", "mpn", "reference", "brand", "name")))
    product = None if products is None else products.get(key)
    if product is None:
        product = _product_xml(p, r.name)
        if products is not None:
            if len(products) >= 1000:
                products.clear()
            products[key] = product
    return (
        "<review>"
        f"<review_id>{r.review_id}-{r.product_id}-{r.product_attribute_id}</review_id>"
        f"<reviewer>{reviewer}</reviewer>"
        f"<review_timestamp>{_timestamp(r.created_at)}</review_timestamp>"
        f"<content>{_text(r.comment or '')}</content>"
        f'<review_url type="group">{_text(review_url)}</review_url>'
        f'<ratings><overall min="1" max="5">{r.rating}</overall></ratings>'
        f"<products>{product}</products>"
        "</review>\n"
    )


def _product_xml(p: dict[str, Any], name: str | None) -> str:
    """A `<product>`: its identifiers (those the order event carried), name and page."""
    product_url = _product_url(p)
    ids = []
    gtin = _one(p.get("gtin"))
    if gtin and _GTIN.fullmatch(gtin):
        ids.append(f"<gtins><gtin>{gtin}</gtin></gtins>")
    mpn = _one(p.get("mpn"))
    if mpn:
        ids.append(f"<mpns><mpn>{_text(mpn)}</mpn></mpns>")
    sku = _one(p.get("reference"))
    if sku:
        ids.append(f"<skus><sku>{_text(sku)}</sku></skus>")
    brand = _one(p.get("brand"))
    if brand:
        ids.append(f"<brands><brand>{_text(brand)}</brand></brands>")
    name = name or _one(p.get("name"))
    product = "<product>"
    if ids:
        product += f"<product_ids>{''.join(ids)}</product_ids>"
    if name:
        product += f"<product_name>{_text(name)}</product_name>"
    if product_url:
        product += f"<product_url>{_text(product_url)}</product_url>"
    return product + "</product>"


async def generate(
    engine: AsyncEngine, shop: PublicShop, public_url: str, page: int = PAGE
) -> AsyncIterator[str]:
    """The feed, one chunk per keyset page of reviews; no connection held between pages."""
    yield header(shop)
    after = 0
    products: dict[Any, str] = {}
    while True:
        async with transaction(engine, read_only=True) as conn:
            rows = await public_service.feed_page(conn, shop.id, after, page)
        if not rows:
            break
        after = rows[-1].review_id
        yield "".join(
            review_xml(r, shop.id, public_url, products)
            for r in rows
            if r.comment and r.comment.strip()
        )
    yield FOOTER
