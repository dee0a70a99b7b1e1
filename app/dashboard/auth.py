"""Who is signed in to the dashboard, and the route class that answers pages' errors in HTML."""

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.config import Settings
from app.dashboard import session as sessions
from app.dashboard.rendering import error_page
from app.db import transaction, utcnow
from app.deps import ConnDep, EngineDep, ReadConnDep, SettingsDep
from app.errors import AppError, NotFound, is_database_unavailable
from app.languages import LANGUAGES
from app.pages import language_of, read_form
from app.security import hash_api_key
from app.shops import service as shops
from app.shops.models import ShopApiKey
from app.shops.service import ShopAccount

LOGIN_URL = "/dashboard/login"


class SignInRequired(Exception):
    """No valid session: the visitor is sent to the sign-in page."""


class PageRefused(Exception):
    """A page's refusal with an error page of its own (`key` names its texts)."""

    def __init__(self, status: int, key: str) -> None:
        super().__init__(key)
        self.status = status
        self.key = key


@dataclass(frozen=True)
class Merchant:
    """The signed-in shop, its session and the CSRF token its forms carry."""

    shop: ShopAccount
    session: sessions.Session
    csrf: str
    language: str


def shop_language(shop: ShopAccount) -> str:
    try:
        language = shop.settings.default_language
    except ValueError:  # stored settings that no longer validate: the shop's own language
        language = shop.language
    return language if language in LANGUAGES else "en"


async def key_owner(
    conn: AsyncConnection, api_key: str, now: datetime
) -> tuple[ShopAccount, int] | None:
    """The shop an API key opens and the key's row, or None: unknown, expired or of a shop
    gone all read the same to the caller."""
    if not api_key or len(api_key) > 200:
        return None
    row = (
        await conn.execute(
            select(ShopApiKey.id, ShopApiKey.shop_id).where(
                ShopApiKey.key_hash == hash_api_key(api_key),
                or_(ShopApiKey.expires_at.is_(None), ShopApiKey.expires_at > now),
            )
        )
    ).first()
    if row is None:
        return None
    try:
        shop = await shops.authenticate(conn, row.shop_id, api_key, now)
    except AppError:
        return None
    return shop, row.id


async def _merchant(request: Request, conn: AsyncConnection, settings: Settings) -> Merchant:
    now = utcnow()
    found = sessions.decode(settings.secret_key, request.cookies.get(sessions.COOKIE), now)
    if found is None:
        raise SignInRequired
    live = await conn.scalar(
        select(ShopApiKey.id).where(
            ShopApiKey.id == found.key_id,
            ShopApiKey.shop_id == found.shop_id,
            or_(ShopApiKey.expires_at.is_(None), ShopApiKey.expires_at > now),
        )
    )
    if live is None:  # the key was rotated out or the shop erased: the session ends with it
        raise SignInRequired
    try:
        shop = await shops.get(conn, found.shop_id)
    except NotFound:
        raise SignInRequired from None
    language = shop_language(shop)
    request.state.dashboard_language = language
    return Merchant(shop, found, sessions.csrf_token(settings.secret_key, found.nonce), language)


async def merchant_alone(request: Request, engine: EngineDep, settings: SettingsDep) -> Merchant:
    """The signed-in shop, read in a transaction of its own that ends at once: for a page that
    must hold no connection while it works (the test e-mail's SMTP conversation)."""
    async with transaction(engine, read_only=True) as conn:
        return await _merchant(request, conn, settings)


async def merchant_for_read(request: Request, conn: ReadConnDep, settings: SettingsDep) -> Merchant:
    return await _merchant(request, conn, settings)


async def merchant_for_write(request: Request, conn: ConnDep, settings: SettingsDep) -> Merchant:
    return await _merchant(request, conn, settings)


# In the request's transaction, like the API's ShopDep.
ReadMerchantDep = Annotated[Merchant, Depends(merchant_for_read, scope="function")]
MerchantDep = Annotated[Merchant, Depends(merchant_for_write, scope="function")]
LoneMerchantDep = Annotated[Merchant, Depends(merchant_alone)]


class Form(dict[str, list[str]]):
    """A posted url-encoded form: name → every value sent under it."""

    def value(self, name: str, default: str = "") -> str:
        values = self.get(name)
        return values[-1] if values else default

    def values(self, name: str) -> list[str]:  # type: ignore[override]
        return self.get(name, [])


async def form_of(request: Request) -> Form:
    """The url-encoded form posted (at most 64 KiB)."""
    body = await read_form(request)
    if body is None:
        raise PageRefused(413, "too_large")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=2000)
    except (UnicodeDecodeError, ValueError):
        raise PageRefused(400, "bad_request") from None
    return Form(fields)


async def checked_form(request: Request, merchant: Merchant, settings: Settings) -> Form:
    """The posted form, refused (403) without the session's CSRF token."""
    form = await form_of(request)
    if not sessions.csrf_matches(settings.secret_key, merchant.session.nonce, form.value("csrf")):
        raise PageRefused(403, "csrf")
    return form


def _language(request: Request) -> str:
    found = getattr(request.state, "dashboard_language", None)
    return found if isinstance(found, str) else language_of(request.headers.get("accept-language"))


class PageRoute(APIRoute):
    """A dashboard route: a missing session sends to the sign-in page, and every refusal is an
    HTML page in the shop's (or the visitor's) language, never problem+json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                response = RedirectResponse(LOGIN_URL, status_code=303)
                response.delete_cookie(sessions.COOKIE, path=sessions.PATH)
                return response
            except PageRefused as exc:
                return error_page(_language(request), exc.status, exc.key)
            except NotFound:
                return error_page(_language(request), 404, "not_found")
            except (AppError, RequestValidationError):
                return error_page(_language(request), 400, "bad_request")
            except Exception as exc:
                if not is_database_unavailable(exc):
                    raise
                return error_page(_language(request), 503, "unavailable")

        return handle
