"""The suppression list: the addresses the shop never writes to, newest first, paged like the
API's list; add one, remove one — through `suppressions.service`, as the API does."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.dashboard.auth import Merchant, MerchantDep, PageRoute, ReadMerchantDep, checked_form
from app.dashboard.error_texts import error_text
from app.dashboard.rendering import texts
from app.dashboard.views import back_to, choice, cursor_param, notice, pager, shop_page
from app.db import utcnow
from app.deps import ConnDep, ReadConnDep, SettingsDep
from app.security import address_key
from app.suppressions import service
from app.suppressions.schemas import SuppressionCreate, SuppressionRead
from app.suppressions.vocabulary import SuppressionReason
from app.validation import EmailAddress

router = APIRouter(include_in_schema=False, route_class=PageRoute)

PATH = "/dashboard/settings/suppressions"
PAGE_SIZE = 50
REASONS = [r.value for r in SuppressionReason]
_ADDRESS: TypeAdapter[str] = TypeAdapter(EmailAddress)


async def _page(
    merchant: Merchant,
    conn: AsyncConnection,
    cursor: str | None,
    values: dict[str, str],
    errors: dict[str, list[str]],
    status_code: int = 200,
    done: str | None = None,
    problem: str | None = None,
) -> HTMLResponse:
    rows, next_cursor = await service.list_page(conn, merchant.shop.id, cursor, PAGE_SIZE)
    context = {
        "items": [SuppressionRead.model_validate(r) for r in rows],
        **pager(PATH, {}, cursor is None, next_cursor),
        "reasons": REASONS,
        "v": values,
        "errors": errors,
        **notice(done, problem),
    }
    return shop_page(merchant, "suppressions.html", "settings", context, status_code)


@router.get(PATH)
async def list_suppressions(
    merchant: ReadMerchantDep,
    conn: ReadConnDep,
    cursor: str | None = None,
    done: str | None = None,
    problem: str | None = None,
) -> HTMLResponse:
    values = {"email": "", "reason": SuppressionReason.MANUAL.value}
    return await _page(merchant, conn, cursor_param(cursor), values, {}, done=done, problem=problem)


def _errors(exc: ValidationError, language: str) -> dict[str, list[str]]:
    t = texts(language)
    found: dict[str, list[str]] = {}
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "email"
        code = "email" if field == "email" else None
        found.setdefault(field, []).append(error_text(dict(error), t, language, code))
    return found


@router.post(PATH)
async def add_suppression(
    merchant: MerchantDep, conn: ConnDep, settings: SettingsDep, request: Request
) -> Response:
    form = await checked_form(request, merchant, settings)
    posted: dict[str, Any] = {
        "email": form.value("email").strip(),
        "reason": choice(form.value("reason"), frozenset(REASONS)) or SuppressionReason.MANUAL,
    }
    try:
        body = SuppressionCreate.model_validate(posted)
    except ValidationError as exc:
        values = {"email": form.value("email"), "reason": str(posted["reason"])}
        errors = _errors(exc, merchant.language)
        return await _page(merchant, conn, None, values, errors, 422)
    key = address_key(settings.secret_key)
    added = await service.add(conn, merchant.shop.id, key, body.email, body.reason, utcnow())
    return back_to(PATH, done="suppression_added" if added else "suppression_exists")


@router.post(PATH + "/remove")
async def remove_suppression(
    merchant: MerchantDep, conn: ConnDep, settings: SettingsDep, request: Request
) -> Response:
    form = await checked_form(request, merchant, settings)
    try:
        email = _ADDRESS.validate_python(form.value("email").strip())
    except ValidationError:
        return back_to(PATH, problem="suppression_not_found")
    key = address_key(settings.secret_key)
    if not await service.remove(conn, merchant.shop.id, key, email):
        return back_to(PATH, problem="suppression_not_found")
    return back_to(PATH, done="suppression_removed")
