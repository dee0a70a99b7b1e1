"""Review requests: the list with its filters, one request's e-mails and timeline, and the
merchant's manual actions (cancel, send now, reschedule, re-queue) as POST forms."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from app.dashboard.auth import MerchantDep, PageRoute, ReadMerchantDep, checked_form
from app.dashboard.rendering import texts, when
from app.dashboard.timeline_view import shown_timeline
from app.dashboard.views import (
    back_to,
    choice,
    cursor_param,
    int_param,
    notice,
    pager,
    shop_page,
    timezone_of,
)
from app.db import utcnow
from app.deps import ConnDep, ReadConnDep, SettingsDep
from app.errors import Conflict, NotFound
from app.requests import actions, service
from app.requests.schemas import ReviewRequestDetail, ReviewRequestRead
from app.requests.vocabulary import Reason, Status

router = APIRouter(include_in_schema=False, route_class=PageRoute)

PAGE_SIZE = 50
STATUSES = frozenset(s.value for s in Status)
REASONS = frozenset(r.value for r in Reason)
PATH = "/dashboard/requests"


@router.get(PATH)
async def list_requests(
    merchant: ReadMerchantDep,
    conn: ReadConnDep,
    status: str | None = None,
    reason: str | None = None,
    order_id: str | None = None,
    cursor: str | None = None,
) -> HTMLResponse:
    chosen_status, chosen_reason = choice(status, STATUSES), choice(reason, REASONS)
    order = int_param(order_id)
    filters = {"status": chosen_status, "reason": chosen_reason, "order_id": order}
    rows, next_cursor = await service.list_requests(
        conn,
        merchant.shop.id,
        status=chosen_status,
        reason=chosen_reason,
        order_id=order,
        cursor=cursor_param(cursor),
        limit=PAGE_SIZE,
    )
    items = [ReviewRequestRead.model_validate(r) for r in rows]
    context = {
        "items": items,
        "filters": filters,
        "statuses": [s.value for s in Status],
        "reasons": [r.value for r in Reason],
        **pager(PATH, filters, cursor is None, next_cursor),
    }
    return shop_page(merchant, "requests.html", "requests", context)


@router.get(PATH + "/{request_id}")
async def read_request(
    merchant: ReadMerchantDep,
    conn: ReadConnDep,
    request_id: str,
    done: str | None = None,
    problem: str | None = None,
) -> HTMLResponse:
    number = int_param(request_id)
    if number is None:
        raise NotFound("no such request")
    detail = ReviewRequestDetail.model_validate(
        await service.get_request(conn, merchant.shop.id, number)
    )
    pending = any(d.status == Status.SCHEDULED for d in detail.deliveries)
    failed = any(d.status == Status.FAILED for d in detail.deliveries)
    timezone, language = timezone_of(merchant), merchant.language
    local_now = utcnow().astimezone(ZoneInfo(timezone))
    steps = shown_timeline(
        detail.timeline, texts(language), lambda moment: when(moment, timezone, language)
    )
    context = {
        "r": detail,
        "steps": steps,
        "can_move": pending,
        "can_requeue": failed,
        "now_local": local_now.strftime("%Y-%m-%dT%H:%M"),
        **notice(done, problem),
    }
    return shop_page(merchant, "request.html", "requests", context)


def _local_moment(text: str, timezone: str) -> datetime | None:
    """A `datetime-local` field's value, read in the shop's zone."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return moment.astimezone(UTC)


@router.post(PATH + "/{request_id}/{action}")
async def act(
    merchant: MerchantDep,
    conn: ConnDep,
    settings: SettingsDep,
    request: Request,
    request_id: str,
    action: str,
) -> RedirectResponse:
    form = await checked_form(request, merchant, settings)
    number = int_param(request_id)
    target = f"{PATH}/{request_id}"
    if number is None or action not in ("cancel", "send-now", "reschedule", "requeue"):
        return back_to(PATH, problem="not_found")
    shop_id, now = merchant.shop.id, utcnow()
    try:
        if action == "cancel":
            await actions.cancel(conn, shop_id, number, now)
        elif action == "send-now":
            await actions.move(conn, shop_id, number, now, now)
        elif action == "reschedule":
            due = _local_moment(form.value("due_at"), timezone_of(merchant))
            if due is None:
                return back_to(target, problem="due_at_invalid")
            await actions.move(conn, shop_id, number, due, now)
        else:
            await actions.requeue(conn, shop_id, number, now)
    except Conflict:
        return back_to(target, problem=f"conflict_{action.replace('-', '_')}")
    return back_to(target, done=action.replace("-", "_"))
