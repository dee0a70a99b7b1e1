"""Business hours: what `GET`/`PUT …/business-hours` read and replace, as a form (the API's
schema validates it, its errors are said next to the fields, `tickets.hours` stores it)."""

import re
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from app.dashboard.auth import Form, Merchant, MerchantDep, PageRoute, ReadMerchantDep, checked_form
from app.dashboard.error_texts import error_text
from app.dashboard.rendering import texts
from app.dashboard.views import back_to, notice, shop_page
from app.db import utcnow
from app.deps import ConnDep, ReadConnDep, SettingsDep
from app.errors import InvalidInput
from app.tickets import hours
from app.tickets.hours_schemas import BusinessHoursUpdate

router = APIRouter(include_in_schema=False, route_class=PageRoute)

PATH = "/dashboard/settings/hours"
WEEKDAYS = hours.WEEKDAYS
FORM = "_form"
# "09:00-12:30, 14:00-18:00": a dash (or an en dash) between opening and closing.
_INTERVAL = re.compile(r"^\s*([^-\u2013\s]+)\s*[-\u2013]\s*([^-\u2013\s]+)\s*$")
_FIELD_CODES = {"timezone": "timezone", "holidays": "holidays_country"}


def values_of(stored: hours.Hours) -> dict[str, str]:
    """The form's fields filled from the stored (or default) hours."""
    return {
        "timezone": stored.timezone,
        **{f"week_{d}": ", ".join(f"{a}-{b}" for a, b in stored.week.get(d, [])) for d in WEEKDAYS},
        "holidays": stored.holidays or "",
        "holidays_subdivision": stored.holidays_subdivision or "",
        "closed_dates": "\n".join(stored.closed_dates),
    }


def _items(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"[,;\n]", text) if part.strip()]


def body_of(form: Form) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """The PUT body the form stands for, and the days whose text is not intervals at all."""
    week: dict[str, list[list[str]]] = {}
    unreadable: dict[str, list[dict[str, Any]]] = {}
    for day in WEEKDAYS:
        week[day] = []
        for part in _items(form.value(f"week_{day}")):
            found = _INTERVAL.match(part)
            if found is None:
                error = {"type": "value_error", "msg": f"not an interval: {part[:40]!r}"}
                unreadable.setdefault(f"week_{day}", [error])
                continue
            week[day].append([found.group(1), found.group(2)])
    body = {
        "timezone": form.value("timezone").strip(),
        "week": week,
        "holidays": form.value("holidays").strip() or None,
        "holidays_subdivision": form.value("holidays_subdivision").strip() or None,
        "closed_dates": _items(form.value("closed_dates")),
    }
    return body, unreadable


def _place(loc: list[Any], kind: str, has_country: bool) -> tuple[str, str | None]:
    """The form field an error's `loc` names, and the code of the rule that refused it
    (`has_country`: a holidays country was posted, which tells the subdivision's two rules
    apart)."""
    head = str(loc[0]) if loc else FORM
    if head == "week" and len(loc) > 1:
        field = f"week_{loc[1]}"
        if kind == "string_pattern_mismatch":
            return field, "clock"
        return field, ("interval_order" if len(loc) > 2 else "interval_overlap")
    if head == "closed_dates":
        return head, "closed_date"
    if head == "holidays_subdivision":
        return head, "holidays_subdivision" if has_country else "holidays_subdivision_country"
    if head in ("timezone", "holidays"):
        return head, _FIELD_CODES[head]
    return FORM, None


def errors_by_field(
    errors: Iterable[Mapping[str, Any]], language: str, has_country: bool = True
) -> dict[str, list[str]]:
    """Each error in `language`, under the field it belongs to."""
    t = texts(language)
    found: dict[str, list[str]] = {}
    for error in errors:
        loc = [p for p in error.get("loc", ()) if p != "body"]
        field, code = _place(loc, str(error.get("type", "")), has_country)
        message = error_text(error, t, language, code)
        if message not in found.get(field, []):
            found.setdefault(field, []).append(message)
    return found


def _page(
    merchant: Merchant,
    values: Mapping[str, str],
    errors: dict[str, list[str]],
    is_default: bool,
    status_code: int = 200,
    done: str | None = None,
) -> HTMLResponse:
    context = {
        "v": values,
        "errors": errors,
        "weekdays": WEEKDAYS,
        "is_default": is_default,
        **notice(done, None),
    }
    return shop_page(merchant, "hours.html", "settings", context, status_code)


@router.get(PATH)
async def read_hours(
    merchant: ReadMerchantDep, conn: ReadConnDep, done: str | None = None
) -> HTMLResponse:
    stored = await hours.get(conn, merchant.shop.id)
    return _page(merchant, values_of(stored), {}, stored.is_default, done=done)


@router.post(PATH)
async def save_hours(
    merchant: MerchantDep, conn: ConnDep, settings: SettingsDep, request: Request
) -> Response:
    form = await checked_form(request, merchant, settings)
    body, unreadable = body_of(form)
    errors: list[dict[str, Any]] = []
    try:
        update = BusinessHoursUpdate.model_validate(body)
    except ValidationError as exc:
        errors = [dict(e) for e in exc.errors()]
    else:
        if not unreadable:
            try:
                await hours.replace(
                    conn, merchant.shop.id, update.model_dump(mode="json"), utcnow()
                )
            except InvalidInput as exc:
                errors = exc.errors or [{"loc": [], "msg": exc.detail}]
    has_country = bool(form.value("holidays").strip())
    by_field = errors_by_field(errors, merchant.language, has_country)
    t = texts(merchant.language)
    for field, [error] in unreadable.items():
        said = error_text(error, t, merchant.language, "interval_format")
        by_field[field] = [said, *(m for m in by_field.get(field, []) if m != said)]
    if by_field:
        values = {name: form.value(name) for name in values_of(hours.default_hours("UTC"))}
        stored = await hours.get(conn, merchant.shop.id)
        return _page(merchant, values, by_field, stored.is_default, 422)
    return back_to(PATH, done="hours_saved")
