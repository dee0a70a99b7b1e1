"""`/u/{token}`: the unsubscribe page an e-mail links to, and RFC 8058 one-click unsubscribe.

A GET only shows a page with one button: link scanners follow every GET of a message, so a GET
never unsubscribes. A POST — the mail client's one-click (`List-Unsubscribe=One-Click`) or the
page's button — takes effect at once, with no login and no cookie, and may be repeated.
"""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db import transaction, utcnow
from app.errors import is_database_unavailable
from app.pages import error_page, language_of, post_allowed, read_form, render
from app.security import UNSUBSCRIBE, address_key, verify_token
from app.suppressions import service
from app.suppressions.service import Recipient
from app.suppressions.vocabulary import SuppressionReason

router = APIRouter(include_in_schema=False)


async def _recipient(engine: AsyncEngine, settings: Settings, token: str) -> Recipient | None:
    public_id = verify_token(settings.secret_key, UNSUBSCRIBE, token)
    if public_id is None:
        return None
    async with transaction(engine, read_only=True) as conn:
        return await service.recipient(conn, public_id)


def _done(who: Recipient) -> HTMLResponse:
    return render("unsubscribed.html", who.language, {"shop_name": who.shop_name})


@router.api_route("/u/{token}", methods=["GET", "HEAD"])
async def unsubscribe_page(token: str, request: Request) -> HTMLResponse:
    engine: AsyncEngine = request.app.state.engine
    settings: Settings = request.app.state.settings
    language = language_of(request.headers.get("accept-language"))
    try:
        who = await _recipient(engine, settings, token)
        if who is None:
            return error_page(language, 404, "not_found")
        async with transaction(engine, read_only=True) as conn:
            key = address_key(settings.secret_key)
            already = await service.is_suppressed(
                conn, who.shop_id, service.hash_email(key, who.email)
            )
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        return error_page(language, 503, "unavailable")
    if already:
        return _done(who)
    return render(
        "unsubscribe.html", who.language, {"shop_name": who.shop_name, "action": request.url.path}
    )


@router.post("/u/{token}")
async def unsubscribe(token: str, request: Request) -> HTMLResponse:
    engine: AsyncEngine = request.app.state.engine
    settings: Settings = request.app.state.settings
    language = language_of(request.headers.get("accept-language"))
    if not post_allowed(request, "unsubscribe", token):
        return error_page(language, 429, "too_many")
    # The body is read (bounded) but not required to say `List-Unsubscribe=One-Click`: any POST
    # to a valid link is the person's (or their mail client's) request to stop.
    if await read_form(request) is None:
        return error_page(language, 413, "too_large")
    try:
        who = await _recipient(engine, settings, token)
        if who is None:
            return error_page(language, 404, "not_found")
        async with transaction(engine) as conn:
            await service.add(
                conn,
                who.shop_id,
                address_key(settings.secret_key),
                who.email,
                SuppressionReason.UNSUBSCRIBED,
                utcnow(),
            )
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        return error_page(language, 503, "unavailable")
    return _done(who)
