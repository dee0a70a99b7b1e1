"""Outgoing webhooks: the shop's endpoints, one added (its secret shown once, in that answer
only), disabled, enabled again or deleted, and an endpoint's delivery log — through
`hooks.service` and the API's schemas, as the API does."""

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.dashboard.auth import Merchant, MerchantDep, PageRoute, ReadMerchantDep, checked_form
from app.dashboard.error_texts import error_text
from app.dashboard.rendering import texts
from app.dashboard.views import back_to, choice, cursor_param, notice, pager, shop_page
from app.db import utcnow
from app.deps import ConnDep, ReadConnDep, SettingsDep
from app.errors import Conflict, InvalidInput, NotFound
from app.hooks import service
from app.hooks.addresses import refused, url_problem
from app.hooks.schemas import (
    WebhookDeliveryRead,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointRead,
)
from app.hooks.sender import resolve
from app.hooks.vocabulary import EventType, HookStatus

router = APIRouter(include_in_schema=False, route_class=PageRoute)

PATH = "/dashboard/settings/webhooks"
EVENTS = [e.value for e in EventType]
STATUSES = [s.value for s in HookStatus]
DELIVERIES_PER_PAGE = 20
FORM = "_form"
_MAX_ID = 32  # as the API's path parameter


def _endpoint_id(value: str) -> str:
    if not value or len(value) > _MAX_ID:
        raise NotFound(f"No webhook endpoint {value[:_MAX_ID]!r}.")
    return value


async def _page(
    merchant: Merchant,
    conn: AsyncConnection,
    values: dict[str, Any],
    errors: dict[str, list[str]],
    status_code: int = 200,
    done: str | None = None,
    problem: str | None = None,
    created: WebhookEndpointCreated | None = None,
) -> HTMLResponse:
    rows = await service.list_endpoints(conn, merchant.shop.id)
    context = {
        "items": [WebhookEndpointRead.model_validate(r) for r in rows],
        "events": EVENTS,
        "v": values,
        "errors": errors,
        "created": created,
        "max_endpoints": service.MAX_ENDPOINTS,
        **notice(done, problem),
    }
    return shop_page(merchant, "webhooks.html", "settings", context, status_code)


@router.get(PATH)
async def list_endpoints(
    merchant: ReadMerchantDep,
    conn: ReadConnDep,
    done: str | None = None,
    problem: str | None = None,
) -> HTMLResponse:
    values = {"url": "", "events": []}
    return await _page(merchant, conn, values, {}, done=done, problem=problem)


async def _url_said(url: str, error: Mapping[str, Any], language: str) -> str:
    """Why the service refused a URL, in the shop's language: its form (the pure rule says
    so), or where the host leads (resolved again, as the service did)."""
    t = texts(language)
    if url_problem(url) is not None:
        return error_text(error, t, language, "webhook_url_form")
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = await resolve(host, port)
    if not addresses:
        return error_text(error, t, language, "webhook_url_unresolved", {"host": host})
    for address in addresses:
        if refused(ipaddress.ip_address(address.split("%", 1)[0])) is not None:
            extra = {"host": host, "address": address}
            return error_text(error, t, language, "webhook_url_private", extra)
    return str(error.get("msg", ""))  # the name's answer changed since: the API's words


async def _errors(
    errors: Iterable[Mapping[str, Any]], url: str, language: str
) -> dict[str, list[str]]:
    """The schema's or the service's errors, each under its field in `language`."""
    t = texts(language)
    found: dict[str, list[str]] = {}
    for error in errors:
        loc = [p for p in error.get("loc", ()) if p != "body"]
        field = str(loc[0]) if loc else FORM
        if field == "events":
            # The boxes offer the vocabulary only: what is left is choosing none.
            message = t["value_webhook_events"]
        elif field == "url" and not error.get("type"):
            message = await _url_said(url, error, language)
        else:
            message = error_text(error, t, language)
        if message not in found.get(field, []):
            found.setdefault(field, []).append(message)
    return found


@router.post(PATH)
async def add_endpoint(
    merchant: MerchantDep, conn: ConnDep, settings: SettingsDep, request: Request
) -> Response:
    """Register an endpoint; its secret is on the answer to this form and nowhere after."""
    form = await checked_form(request, merchant, settings)
    url = form.value("url").strip()
    chosen = [e for e in EVENTS if e in set(form.values("events"))]
    posted: dict[str, Any] = {"events": chosen}
    if url:
        posted["url"] = url
    values = {"url": form.value("url"), "events": chosen}
    try:
        body = WebhookEndpointCreate.model_validate(posted)
    except ValidationError as exc:
        errors = [dict(e) for e in exc.errors()]
        found = await _errors(errors, url, merchant.language)
        return await _page(merchant, conn, values, found, 422)
    try:
        row, secret = await service.create(
            conn, merchant.shop.id, body.url, body.events, secret_key=settings.secret_key,
            allow_private=settings.webhook_allow_private, now=utcnow(),
        )  # fmt: skip
    except InvalidInput as exc:
        found = await _errors(
            exc.errors or [{"loc": [], "msg": exc.detail}], url, merchant.language
        )
        return await _page(merchant, conn, values, found, 422)
    except Conflict:
        too_many = texts(merchant.language)["webhooks_too_many"].format(count=service.MAX_ENDPOINTS)
        return await _page(merchant, conn, values, {FORM: [too_many]}, 409)
    created = WebhookEndpointCreated.model_validate({**row, "secret": secret})
    blank = {"url": "", "events": []}
    return await _page(merchant, conn, blank, {}, 201, done="webhook_added", created=created)


async def _set_enabled(
    endpoint_id: str, enabled: bool, merchant: Merchant, conn: AsyncConnection, allow: bool
) -> Response:
    await service.update_endpoint(
        conn, merchant.shop.id, _endpoint_id(endpoint_id), {"enabled": enabled},
        allow_private=allow, now=utcnow(),
    )  # fmt: skip
    return back_to(PATH, done="webhook_enabled" if enabled else "webhook_disabled")


@router.post(PATH + "/{endpoint_id}/disable")
async def disable_endpoint(
    endpoint_id: str, merchant: MerchantDep, conn: ConnDep, settings: SettingsDep, request: Request
) -> Response:
    await checked_form(request, merchant, settings)
    return await _set_enabled(endpoint_id, False, merchant, conn, settings.webhook_allow_private)


@router.post(PATH + "/{endpoint_id}/enable")
async def enable_endpoint(
    endpoint_id: str, merchant: MerchantDep, conn: ConnDep, settings: SettingsDep, request: Request
) -> Response:
    await checked_form(request, merchant, settings)
    return await _set_enabled(endpoint_id, True, merchant, conn, settings.webhook_allow_private)


@router.post(PATH + "/{endpoint_id}/delete")
async def delete_endpoint(
    endpoint_id: str, merchant: MerchantDep, conn: ConnDep, settings: SettingsDep, request: Request
) -> Response:
    """The endpoint and its delivery log, as `DELETE …/webhook-endpoints/{id}`."""
    await checked_form(request, merchant, settings)
    await service.delete_endpoint(conn, merchant.shop.id, _endpoint_id(endpoint_id))
    return back_to(PATH, done="webhook_deleted")


@router.get(PATH + "/{endpoint_id}")
async def read_endpoint(
    endpoint_id: str,
    merchant: ReadMerchantDep,
    conn: ReadConnDep,
    status: str | None = None,
    cursor: str | None = None,
) -> HTMLResponse:
    """One endpoint and its deliveries, newest first, paged like the API's log."""
    endpoint = await service.get(conn, merchant.shop.id, _endpoint_id(endpoint_id))
    chosen = choice(status, frozenset(STATUSES))
    rows, next_cursor = await service.list_deliveries(
        conn, merchant.shop.id, endpoint_id,
        status=HookStatus(chosen) if chosen else None, cursor=cursor_param(cursor),
        limit=DELIVERIES_PER_PAGE,
    )  # fmt: skip
    here = f"{PATH}/{endpoint_id}"
    context = {
        "endpoint": WebhookEndpointRead.model_validate(endpoint),
        "deliveries": [WebhookDeliveryRead.model_validate(r) for r in rows],
        "statuses": STATUSES,
        "status": chosen,
        "here": here,
        **pager(here, {"status": chosen}, cursor_param(cursor) is None, next_cursor),
    }
    return shop_page(merchant, "webhook.html", "settings", context)
