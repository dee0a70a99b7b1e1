"""Settings: the shop's settings as a form (the API's validation, its errors next to the
fields), the e-mail template preview and the test e-mail."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.dashboard import settings_form
from app.dashboard.auth import (
    LoneMerchantDep,
    Merchant,
    MerchantDep,
    PageRoute,
    ReadMerchantDep,
    checked_form,
)
from app.dashboard.views import back_to, choice, notice, shop_page
from app.db import transaction, utcnow
from app.deps import ConnDep, ReadConnDep, SettingsDep
from app.emailtemplates import service as templates
from app.emailtemplates.rendering import TemplateKind
from app.errors import AppError, InvalidInput
from app.languages import LANGUAGES
from app.shops import service as shops
from app.shops.schemas import ShopSettingsUpdate

router = APIRouter(include_in_schema=False, route_class=PageRoute)

PATH = "/dashboard/settings"
LANGUAGE_CHOICES = sorted(LANGUAGES)
KINDS = [k.value for k in TemplateKind]


async def _states(conn: AsyncConnection, merchant: Merchant, chosen: list[str]) -> list[Any]:
    """The catalogue's states (named in the shop's language), and any state chosen that the
    catalogue does not hold, so saving the form never drops it silently."""
    language = merchant.language
    rows = await shops.list_order_states(conn, merchant.shop.id)
    states = []
    for row in rows:
        names: dict[str, str] = row["names"] or {}
        name = names.get(language) or names.get("en") or next(iter(names.values()), "")
        states.append({"id": str(row["state_id"]), "name": name})
    known = {s["id"] for s in states}
    states += [{"id": i, "name": ""} for i in chosen if i not in known and i.isdigit()]
    return states


async def _page(
    merchant: Merchant,
    conn: AsyncConnection,
    values: dict[str, Any],
    errors: dict[str, list[str]],
    status_code: int = 200,
    done: str | None = None,
) -> HTMLResponse:
    catalogue = await shops.list_order_states(conn, merchant.shop.id)
    chosen = [*values.get("trigger_state_ids", []), *values.get("cancel_state_ids", [])]
    context = {
        "v": values,
        "errors": errors,
        "has_catalogue": bool(catalogue),
        "states": await _states(conn, merchant, chosen) if catalogue else [],
        "languages": LANGUAGE_CHOICES,
        "weekdays": settings_form.WEEKDAYS,
        "kinds": KINDS,
        **notice(done, None),
    }
    return shop_page(merchant, "settings.html", "settings", context, status_code)


@router.get(PATH)
async def read_settings(
    merchant: ReadMerchantDep, conn: ReadConnDep, done: str | None = None
) -> HTMLResponse:
    values = settings_form.values_of(merchant.shop.settings)
    return await _page(merchant, conn, values, {}, done=done)


@router.post(PATH)
async def save_settings(
    merchant: MerchantDep, conn: ConnDep, settings: SettingsDep, request: Request
) -> Response:
    form = await checked_form(request, merchant, settings)
    catalogue = await shops.list_order_states(conn, merchant.shop.id)
    changes = settings_form.changes_of(form, bool(catalogue))
    errors: list[dict[str, Any]] = []
    try:
        update = ShopSettingsUpdate.model_validate(changes)
    except ValidationError as exc:
        errors = [dict(e) for e in exc.errors()]  # with type and ctx: said in the language
    else:
        sent = update.model_dump(mode="json", exclude_unset=True)
        try:
            await shops.update_settings(conn, merchant.shop, sent, utcnow())
        except InvalidInput as exc:
            errors = exc.errors or [{"loc": [], "msg": exc.detail}]
    if errors:
        by_field = settings_form.errors_by_field(errors, changes, merchant.language)
        values = settings_form.values_posted(form)
        return await _page(merchant, conn, values, by_field, 422)
    return back_to(PATH, done="settings_saved")


@router.get(PATH + "/preview")
async def preview(
    merchant: ReadMerchantDep,
    conn: ReadConnDep,
    settings: SettingsDep,
    kind: str | None = None,
    language: str | None = None,
    done: str | None = None,
    problem: str | None = None,
) -> HTMLResponse:
    chosen_kind = choice(kind, frozenset(KINDS)) or TemplateKind.REQUEST.value
    chosen_language = choice(language, LANGUAGES) or merchant.language
    rendered, own = await templates.preview(
        conn, merchant.shop, TemplateKind(chosen_kind), chosen_language, None, settings, utcnow()
    )
    context = {
        "kind": chosen_kind,
        "language": chosen_language,
        "kinds": KINDS,
        "languages": LANGUAGE_CHOICES,
        "subject": rendered.subject,
        "text": rendered.text,
        "html": rendered.html,
        "own_template": own,
        **notice(done, problem),
    }
    return shop_page(merchant, "preview.html", "settings", context)


@router.get(PATH + "/preview.html")
async def preview_html(
    merchant: ReadMerchantDep,
    conn: ReadConnDep,
    settings: SettingsDep,
    kind: str | None = None,
    language: str | None = None,
) -> HTMLResponse:
    """The e-mail's HTML alone, for the preview's frame: sandboxed, nothing runs in it."""
    chosen_kind = choice(kind, frozenset(KINDS)) or TemplateKind.REQUEST.value
    chosen_language = choice(language, LANGUAGES) or merchant.language
    rendered, _ = await templates.preview(
        conn, merchant.shop, TemplateKind(chosen_kind), chosen_language, None, settings, utcnow()
    )
    return HTMLResponse(
        rendered.html,
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
            "img-src https: data:; sandbox; frame-ancestors 'self'",
            "X-Frame-Options": "SAMEORIGIN",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.post(PATH + "/test-email")
async def test_email(
    merchant: LoneMerchantDep, settings: SettingsDep, request: Request
) -> RedirectResponse:
    """Send the preview to an address now; no connection is held across the SMTP exchange."""
    form = await checked_form(request, merchant, settings)
    kind = choice(form.value("kind"), frozenset(KINDS)) or TemplateKind.REQUEST.value
    language = choice(form.value("language"), LANGUAGES) or merchant.language
    to = form.value("to").strip()
    back = {"kind": kind, "language": language}
    if not to or len(to) > 254 or "@" not in to or any(c.isspace() for c in to):
        return back_to(PATH + "/preview", **back, problem="test_address")
    now = utcnow()
    try:
        async with transaction(request.app.state.engine, read_only=True) as conn:
            message, sender, _ = await templates.compose_test(
                conn, merchant.shop, TemplateKind(kind), language, None, to, settings, now
            )
        await templates.send_test(message, sender, to, settings)
    except AppError:
        return back_to(PATH + "/preview", **back, problem="test_failed")
    return back_to(PATH + "/preview", **back, done="test_sent")
