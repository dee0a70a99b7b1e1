"""`/dashboard`: sign-in with the shop's API key, sign-out, the static files, and every page."""

from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, RedirectResponse

from app.config import Settings
from app.dashboard import (
    hours_pages,
    overview,
    requests_pages,
    reviews_pages,
    settings_pages,
    suppressions_pages,
    templates_pages,
    tickets_pages,
    webhooks_pages,
)
from app.dashboard import session as sessions
from app.dashboard.auth import (
    LOGIN_URL,
    MerchantDep,
    PageRefused,
    PageRoute,
    SignInRequired,
    checked_form,
    form_of,
    key_owner,
    merchant_for_read,
)
from app.dashboard.rendering import error_page, render
from app.db import utcnow
from app.deps import ReadConnDep, SettingsDep
from app.pages import language_of
from app.ratelimit import RateLimiter

router = APIRouter(include_in_schema=False, route_class=PageRoute)

STATIC_DIR = Path(__file__).resolve().parent / "static"
# The only files served, and their types: nothing else under static/ is reachable.
STATIC = {
    "dashboard.css": "text/css; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "vendor/chartjs/chart.umd.min.js": "text/javascript; charset=utf-8",
    "vendor/chartjs/LICENSE.md": "text/plain; charset=utf-8",
}
# Sign-in attempts per client address: enough for typos, too few to try keys.
SIGN_INS_PER_MINUTE = 10
LOGIN_NONCE_TTL = 3600


def _secure(settings: Settings) -> bool:
    return settings.public_url.lower().startswith("https://")


def _limiter(request: Request) -> RateLimiter:
    state = request.app.state
    limiter: RateLimiter | None = getattr(state, "dashboard_sign_ins", None)
    if limiter is None:
        limiter = state.dashboard_sign_ins = RateLimiter(SIGN_INS_PER_MINUTE, 60)
    return limiter


def _login_page(
    request: Request, settings: Settings, status_code: int = 200, error: str | None = None
) -> Response:
    """The sign-in form, its CSRF token bound to a nonce cookie (double submit)."""
    nonce = request.cookies.get(sessions.LOGIN_CSRF_COOKIE) or ""
    if len(nonce) != 16:
        nonce = sessions.new_nonce()
    language = language_of(request.headers.get("accept-language"))
    context = {
        "csrf": sessions.csrf_token(settings.secret_key, nonce),
        "error": error,
        "signed_out": request.query_params.get("signed_out") == "1",
    }
    response = render("login.html", language, context, status_code)
    response.set_cookie(
        sessions.LOGIN_CSRF_COOKIE,
        nonce,
        max_age=LOGIN_NONCE_TTL,
        path=sessions.PATH,
        secure=_secure(settings),
        httponly=True,
        samesite="lax",
    )
    return response


@router.get("/dashboard/login")
async def login_form(request: Request, settings: SettingsDep) -> Response:
    if sessions.decode(settings.secret_key, request.cookies.get(sessions.COOKIE), utcnow()):
        return RedirectResponse("/dashboard", status_code=303)
    return _login_page(request, settings)


@router.post("/dashboard/login")
async def login(request: Request, conn: ReadConnDep, settings: SettingsDep) -> Response:
    language = language_of(request.headers.get("accept-language"))
    address = request.client.host if request.client else "unknown"
    if not _limiter(request).allow(address):
        return error_page(language, 429, "too_many")
    form = await form_of(request)
    nonce = request.cookies.get(sessions.LOGIN_CSRF_COOKIE) or ""
    if not sessions.csrf_matches(settings.secret_key, nonce, form.value("csrf")):
        raise PageRefused(403, "csrf")
    api_key = form.value("api_key").strip()
    now = utcnow()
    found = await key_owner(conn, api_key, now)
    if found is None:
        # Unknown, expired, another shop's gone: one answer for every key that opens nothing.
        return _login_page(request, settings, 401, "login_wrong_key")
    shop, key_id = found
    cookie = sessions.encode(settings.secret_key, sessions.new_session(shop.id, key_id, now))
    response = RedirectResponse("/dashboard", status_code=303)
    response.set_cookie(
        sessions.COOKIE,
        cookie,
        max_age=int(sessions.TTL.total_seconds()),
        path=sessions.PATH,
        secure=_secure(settings),
        httponly=True,
        samesite="lax",
    )
    response.delete_cookie(sessions.LOGIN_CSRF_COOKIE, path=sessions.PATH)
    return response


@router.post("/dashboard/logout")
async def logout(request: Request, merchant: MerchantDep, settings: SettingsDep) -> Response:
    await checked_form(request, merchant, settings)
    response = RedirectResponse(f"{LOGIN_URL}?signed_out=1", status_code=303)
    response.delete_cookie(sessions.COOKIE, path=sessions.PATH)
    return response


@router.get("/dashboard/static/{name:path}")
async def static(name: str, request: Request) -> Response:
    media_type = STATIC.get(name)
    if media_type is None:
        return error_page(language_of(request.headers.get("accept-language")), 404, "not_found")
    return FileResponse(
        STATIC_DIR / name,
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


for _pages in (
    overview,
    requests_pages,
    reviews_pages,
    tickets_pages,
    settings_pages,
    hours_pages,
    suppressions_pages,
    templates_pages,
    webhooks_pages,
):
    router.include_router(_pages.router)


@router.api_route("/dashboard/{rest:path}", methods=["GET", "POST"])
async def not_found(
    rest: str, request: Request, conn: ReadConnDep, settings: SettingsDep
) -> Response:
    if rest == "":
        return RedirectResponse("/dashboard", status_code=307)
    try:  # in the shop's language when signed in
        language = (await merchant_for_read(request, conn, settings)).language
    except SignInRequired:
        language = language_of(request.headers.get("accept-language"))
    return error_page(language, 404, "not_found")
