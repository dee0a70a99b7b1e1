"""`/r/{token}`: the review page an e-mail links to, and its form (HTML, no JavaScript)."""

import re
from datetime import datetime
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from babel.dates import format_date
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db import transaction, utcnow
from app.errors import is_database_unavailable
from app.pages import error_page, language_of, post_allowed, read_form, render
from app.reviews import service
from app.reviews.service import ReviewTarget, Submission
from app.security import REVIEW, verify_token

router = APIRouter(include_in_schema=False)

MAX_COMMENT = 5000
# Mail-security scanners follow every link of a message as it arrives: a hit this soon after
# sending, or from one of these agents, is not a person.
SCANNER_DELAY = 30.0
_SCANNERS = re.compile(
    r"bot\b|crawler|spider|preview|scanner|safelinks|proofpoint|mimecast|barracuda|urldefense|"
    r"symantec|sophos|trendmicro|forcepoint|zscaler|fortiguard|headless|python-|curl/|wget/",
    re.IGNORECASE,
)


def _date(moment: datetime | None, at: ReviewTarget) -> str | None:
    """A date as the customer reads it: in the shop's zone, in the request's language."""
    if moment is None:
        return None
    local = moment.astimezone(ZoneInfo(at.settings.timezone))
    return format_date(local.date(), format="long", locale=at.language)


def _context(
    at: ReviewTarget, action: str, form: Submission | None, errors: list[str]
) -> dict[str, object]:
    existing = at.review
    chosen = form or (
        Submission(existing.rating, existing.comment, existing.nps, existing.product_ratings)
        if existing
        else None
    )
    ask_products = at.settings.review_product_ratings
    return {
        "shop_name": at.shop_name,
        "order_reference": at.order_reference,
        "order_date": _date(at.ordered_at, at),
        "editing": existing is not None,
        "errors": errors,
        "action": action,
        "rating": chosen.rating if chosen else None,
        "comment": (chosen.comment or "") if chosen else "",
        "nps": chosen.nps if chosen else None,
        "ask_nps": at.settings.review_nps,
        "policy_url": at.settings.review_policy_url,
        "products": [
            {
                "key": p.key,
                "name": p.name,
                "image_url": p.image_url if (p.image_url or "").startswith("https://") else None,
                "rating": (chosen.product_ratings.get(p.key) if chosen else None),
            }
            for p in at.products
        ]
        if ask_products
        else [],
    }


async def _target(engine: AsyncEngine, settings: Settings, token: str) -> ReviewTarget | None:
    public_id = verify_token(settings.secret_key, REVIEW, token)
    if public_id is None:
        return None
    async with transaction(engine, read_only=True) as conn:
        return await service.target(conn, public_id)


@router.api_route("/r/{token}", methods=["GET", "HEAD"])
async def review_page(token: str, request: Request) -> HTMLResponse:
    engine: AsyncEngine = request.app.state.engine
    settings: Settings = request.app.state.settings
    language = language_of(request.headers.get("accept-language"))
    try:
        at = await _target(engine, settings, token)
        if at is None:
            return error_page(language, 404, "not_found")
        now = utcnow()
        if now > at.link_expires_at():
            return error_page(at.language, 410, "expired")
        agent = request.headers.get("user-agent", "")
        if request.method == "GET" and agent and not _SCANNERS.search(agent):
            async with transaction(engine) as conn:
                await service.record_click(conn, at.request_id, now, SCANNER_DELAY)
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        return error_page(language, 503, "unavailable")
    rating = _int(request.query_params.get("rating"), 1, 5)
    context = _context(at, request.url.path, None, [])
    if rating is not None:
        context["rating"] = rating
    return render("review.html", at.language, context)


@router.post("/r/{token}")
async def submit_review(token: str, request: Request) -> HTMLResponse:
    engine: AsyncEngine = request.app.state.engine
    settings: Settings = request.app.state.settings
    language = language_of(request.headers.get("accept-language"))
    if not post_allowed(request, "review", token):
        return error_page(language, 429, "too_many")
    body = await read_form(request)
    if body is None:
        return error_page(language, 413, "too_large")
    try:
        at = await _target(engine, settings, token)
        if at is None:
            return error_page(language, 404, "not_found")
        now = utcnow()
        if now > at.link_expires_at():
            return error_page(at.language, 410, "expired")
        form, errors = _parse(body, at)
        if errors:
            return render(
                "review.html", at.language, _context(at, request.url.path, form, errors), 422
            )
        async with transaction(engine) as conn:
            saved = await service.save(conn, at, form, now)
        if saved is None:
            return error_page(at.language, 409, "edit_closed")
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        return error_page(language, 503, "unavailable")
    return render(
        "thanks.html",
        at.language,
        {"shop_name": at.shop_name, "edit_until": _date(at.edit_deadline(now), at)},
    )


def _int(value: str | None, low: int, high: int) -> int | None:
    if value is None or not value.strip().isdigit() or len(value) > 3:
        return None
    number = int(value)
    return number if low <= number <= high else None


def _parse(body: bytes, at: ReviewTarget) -> tuple[Submission, list[str]]:
    """The submission, and the keys of the messages for what is wrong (kept for re-display)."""
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)

    def one(name: str) -> str | None:
        values = fields.get(name)
        return values[-1] if values else None

    errors: list[str] = []
    rating = _int(one("rating"), 1, 5)
    if rating is None:
        errors.append("error_rating")
    comment = (one("comment") or "").replace("\x00", "").replace("\r\n", "\n").strip()
    if len(comment) > MAX_COMMENT:
        errors.append("error_comment")
    nps = None
    raw_nps = one("nps")
    if at.settings.review_nps and raw_nps not in (None, ""):
        nps = _int(raw_nps, 0, 10)
        if nps is None:
            errors.append("error_nps")
    products: dict[str, int] = {}
    keys = {p.key for p in at.products} if at.settings.review_product_ratings else set()
    for name in fields:
        if not name.startswith("product_"):
            continue
        key, value = name.removeprefix("product_"), one(name)
        product_rating = _int(value, 1, 5)
        if key not in keys or product_rating is None:
            if "error_product" not in errors:
                errors.append("error_product")
            continue
        products[key] = product_rating
    form = Submission(rating or 0, comment or None, nps, products)
    return form, errors
