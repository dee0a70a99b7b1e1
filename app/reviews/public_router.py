"""The public, read-only reviews API (no key) and the Google product-reviews feed.

Published reviews only, no personal data beyond the first name and an initial; answers carry
an `ETag` (a repeat with `If-None-Match` gets 304) and `Cache-Control`, and each client address
is rate-limited.
"""

import hashlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from app.deps import CursorQuery, ReadConnDep
from app.errors import NotFound, problem
from app.openapi import PUBLIC_RESPONSES, Responses
from app.ratelimit import RateLimiter
from app.reviews import feed, public_service
from app.reviews.public_schemas import PublicReview, PublicReviewPage, RatingSummary
from app.validation import INT64_MAX

router = APIRouter(prefix="/public/v1/shops/{shop_id}", tags=["public reviews"])
feed_router = APIRouter(tags=["public reviews"])

PER_MINUTE = 120  # requests a client address may make a minute, reviews, summary and feed
PAGE_SIZE = 20
CACHE_CONTROL = "public, max-age=300"
ProductQuery = Annotated[
    int | None, Query(gt=0, le=INT64_MAX, description="Only the reviews that rated this product.")
]


def limiter(request: Request) -> RateLimiter:
    """The per-process limiter of the public routes, kept on the app."""
    state = request.app.state
    found: RateLimiter | None = getattr(state, "public_reviews_limiter", None)
    if found is None:
        found = state.public_reviews_limiter = RateLimiter(PER_MINUTE, 60)
    return found


def _limit(request: Request) -> Response | None:
    address = request.client.host if request.client else "unknown"
    if limiter(request).allow(address):
        return None
    return problem(
        429,
        "Too many requests",
        f"At most {PER_MINUTE} requests a minute per client; retry later.",
        "https://relance.dev/problems/rate-limited",
        headers={"Retry-After": "60"},
    )


def _cached(request: Request, body: Any) -> Response:
    """`body` as JSON with a strong ETag; 304 when the client already holds it."""
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": "Accept-Encoding"}
    held = request.headers.get("if-none-match", "")
    tags = {t.strip().removeprefix("W/") for t in held.split(",")}
    if etag in tags or "*" in tags:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type="application/json", headers=headers)


_CACHE_HEADERS: dict[str, Any] = {
    "ETag": {"description": "The version of this answer.", "schema": {"type": "string"}},
    "Cache-Control": {"description": "How long it may be cached.", "schema": {"type": "string"}},
}
_OK: Responses = {
    200: {"headers": _CACHE_HEADERS},
    304: {"description": "Not modified: `If-None-Match` names the current `ETag`."},
}


@router.get(
    "/reviews",
    summary="Published reviews, newest first",
    response_model=PublicReviewPage,
    responses={**PUBLIC_RESPONSES, **_OK},
)
async def public_reviews(
    request: Request,
    conn: ReadConnDep,
    shop_id: str,
    product_id: ProductQuery = None,
    cursor: CursorQuery = None,
) -> Response:
    refused = _limit(request)
    if refused is not None:
        return refused
    shop = await public_service.shop(conn, shop_id)
    items, next_cursor = await public_service.list_published(
        conn, shop.id, product_id, cursor, PAGE_SIZE
    )
    page = PublicReviewPage(
        items=[PublicReview.model_validate(i) for i in items], next_cursor=next_cursor
    )
    return _cached(request, page.model_dump(mode="json"))


@router.get(
    "/summary",
    summary="Count, mean and distribution of the published ratings",
    response_model=RatingSummary,
    responses={**PUBLIC_RESPONSES, **_OK},
)
async def public_summary(
    request: Request, conn: ReadConnDep, shop_id: str, product_id: ProductQuery = None
) -> Response:
    refused = _limit(request)
    if refused is not None:
        return refused
    shop = await public_service.shop(conn, shop_id)
    figures = RatingSummary.model_validate(await public_service.summary(conn, shop.id, product_id))
    return _cached(request, figures.model_dump(mode="json"))


@feed_router.get(
    "/feeds/{shop_id}/google-product-reviews.xml",
    summary="Google Merchant Center product-reviews feed (schema 2.3)",
    response_class=StreamingResponse,
    responses={
        **PUBLIC_RESPONSES,
        200: {"content": {"application/xml": {"schema": {"type": "string"}}}},
    },
)
async def google_feed(
    request: Request,
    conn: ReadConnDep,
    shop_id: str,
    token: Annotated[
        str | None,
        Query(max_length=200, description="The shop's `review_feed_token`, when it set one."),
    ] = None,
) -> Response:
    refused = _limit(request)
    if refused is not None:
        return refused
    shop = await public_service.shop(conn, shop_id)
    if not public_service.feed_token_ok(shop.settings, token):
        raise NotFound(f"No shop {shop_id!r}.")
    public_url = request.app.state.settings.public_url
    return StreamingResponse(
        feed.generate(request.app.state.engine, shop, public_url),
        media_type="application/xml; charset=utf-8",
        headers={"Cache-Control": "private, max-age=3600"},
    )
