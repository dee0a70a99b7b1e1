"""`/t/{token}`: the page where a customer rates one agent reply (no login, no JavaScript).

A merchant puts the reply's `rating_url` under the reply it sends. The token is the reply's id
signed with the secret key (`security.sign_token`, its own purpose), so a link opens one reply
and nothing else. A GET shows the form and records nothing; a POST records the speed and
quality (1-5) of the reply, and the ticket's CSAT and NPS when given.
"""

from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db import transaction, utcnow
from app.errors import is_database_unavailable
from app.languages import FALLBACK_LANGUAGE
from app.pages import error_page, language_of, post_allowed, read_form, render
from app.security import sign_token, verify_token
from app.tickets import service
from app.tickets.service import RatingTarget
from app.validation import INT64_MAX

router = APIRouter(include_in_schema=False)

# The purpose the tokens are signed for: a review or unsubscribe token never opens this page.
TICKET_RATING = "ticket_rating"


def rating_url(public_url: str, secret_key: str, message_id: int) -> str:
    return f"{public_url.rstrip('/')}/t/{sign_token(secret_key, TICKET_RATING, str(message_id))}"


def _message_id(settings: Settings, token: str) -> int | None:
    value = verify_token(settings.secret_key, TICKET_RATING, token)
    if value is None or not value.isdigit() or len(value) > 19:
        return None
    number = int(value)
    return number if 0 < number <= INT64_MAX else None


async def _target(request: Request, token: str) -> RatingTarget | None:
    settings: Settings = request.app.state.settings
    engine: AsyncEngine = request.app.state.engine
    message_id = _message_id(settings, token)
    if message_id is None:
        return None
    async with transaction(engine, read_only=True) as conn:
        return await service.rating_target(conn, message_id)


def _form(
    at: RatingTarget, action: str, chosen: dict[str, int | None], errors: list[str], status: int
) -> HTMLResponse:
    context = {"shop_name": at.shop_name, "action": action, "errors": errors, **chosen}
    return render("ticket_rating.html", at.language or FALLBACK_LANGUAGE, context, status)


@router.api_route("/t/{token}", methods=["GET", "HEAD"])
async def rating_page(token: str, request: Request) -> HTMLResponse:
    language = language_of(request.headers.get("accept-language"))
    try:
        at = await _target(request, token)
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        return error_page(language, 503, "unavailable")
    if at is None:
        return error_page(language, 404, "not_found")
    chosen = {"speed": at.speed_rating, "quality": at.quality_rating, "csat": at.csat}
    return _form(at, request.url.path, {**chosen, "nps": at.nps}, [], 200)


@router.post("/t/{token}")
async def submit_rating(token: str, request: Request) -> HTMLResponse:
    language = language_of(request.headers.get("accept-language"))
    if not post_allowed(request, "ticket_rating", token):
        return error_page(language, 429, "too_many")
    body = await read_form(request)
    if body is None:
        return error_page(language, 413, "too_large")
    try:
        at = await _target(request, token)
        if at is None:
            return error_page(language, 404, "not_found")
        chosen, errors = _parse(body)
        if errors:
            return _form(at, request.url.path, chosen, errors, 422)
        engine: AsyncEngine = request.app.state.engine
        async with transaction(engine) as conn:
            await service.rate_from_page(
                conn, at, chosen["speed"] or 0, chosen["quality"] or 0,
                chosen["csat"], chosen["nps"], utcnow(),
            )  # fmt: skip
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        return error_page(language, 503, "unavailable")
    return render(
        "ticket_rated.html", at.language or FALLBACK_LANGUAGE, {"shop_name": at.shop_name}
    )


def _int(value: str | None, low: int, high: int) -> int | None:
    if value is None or len(value) > 3 or not value.strip().isdigit():
        return None
    number = int(value)
    return number if low <= number <= high else None


def _parse(body: bytes) -> tuple[dict[str, int | None], list[str]]:
    """What was chosen (kept to show the form again) and the keys of what is wrong."""
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)

    def one(name: str) -> str | None:
        values = fields.get(name)
        return values[-1] if values else None

    chosen: dict[str, int | None] = {}
    errors: list[str] = []
    for name, low, high, required in (
        ("speed", 1, 5, True),
        ("quality", 1, 5, True),
        ("csat", 1, 5, False),
        ("nps", 0, 10, False),
    ):
        raw = one(name)
        chosen[name] = _int(raw, low, high)
        if chosen[name] is None and (required or raw not in (None, "")):
            errors.append(f"error_rating_{name}")
    return chosen, errors
