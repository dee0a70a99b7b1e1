"""Reviews: the list with rating and status filters, moderation (publish, reject), the public
reply, and the CSV export of the reviews the filters select."""

import csv
import io
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse

from app.dashboard.auth import MerchantDep, PageRoute, ReadMerchantDep, checked_form
from app.dashboard.views import (
    back_to,
    choice,
    cursor_param,
    filtered,
    int_param,
    notice,
    pager,
    shop_page,
)
from app.db import transaction, utcnow
from app.deps import ConnDep, ReadConnDep, SettingsDep
from app.errors import NotFound
from app.reviews import service
from app.reviews.schemas import ReviewRead

router = APIRouter(include_in_schema=False, route_class=PageRoute)

PAGE_SIZE = 25
EXPORT_PAGE = 500
STATUSES = ("pending", "published", "rejected")
MAX_REPLY = 5000
PATH = "/dashboard/reviews"
# The API's CSV columns (GET …/reviews/export?format=csv), in its order.
CSV_COLUMNS = (
    "id", "order_id", "rating", "comment", "nps", "status", "reply", "language",
    "purchased_at", "created_at", "updated_at", "products",
)  # fmt: skip


@router.get(PATH)
async def list_reviews(
    merchant: ReadMerchantDep,
    conn: ReadConnDep,
    rating: str | None = None,
    status: str | None = None,
    cursor: str | None = None,
    done: str | None = None,
    problem: str | None = None,
) -> HTMLResponse:
    chosen_rating = int_param(rating, 1, 5)
    chosen_status = choice(status, frozenset(STATUSES))
    filters = {"rating": chosen_rating, "status": chosen_status}
    rows, next_cursor = await service.list_reviews(
        conn,
        merchant.shop.id,
        rating=chosen_rating,
        status=chosen_status,
        created_from=None,
        created_to=None,
        cursor=cursor_param(cursor),
        limit=PAGE_SIZE,
    )
    context = {
        "items": [ReviewRead.model_validate(r) for r in rows],
        "filters": filters,
        "statuses": STATUSES,
        **pager(PATH, filters, cursor is None, next_cursor),
        "export_url": filtered(PATH + "/export.csv", filters),
        **notice(done, problem),
    }
    return shop_page(merchant, "reviews.html", "reviews", context)


@router.post(PATH + "/{review_id}")
async def moderate(
    merchant: MerchantDep,
    conn: ConnDep,
    settings: SettingsDep,
    request: Request,
    review_id: str,
) -> RedirectResponse:
    """One form per review: `status` (publish, reject) or `reply` (empty removes it)."""
    form = await checked_form(request, merchant, settings)
    number = int_param(review_id)
    if number is None:
        raise NotFound("no such review")
    changes: dict[str, str | None] = {}
    if form.value("status") in STATUSES:
        changes["status"] = form.value("status")
    if "reply" in form:
        reply = form.value("reply").replace("\r\n", "\n").strip()
        if len(reply) > MAX_REPLY:
            return back_to(PATH, problem="reply_too_long")
        changes["reply"] = reply or None
    if not changes:
        return back_to(PATH, problem="nothing_to_change")
    await service.moderate(conn, merchant.shop.id, number, changes, utcnow())
    done = f"status_{changes['status']}" if "status" in changes else "reply_saved"
    return back_to(PATH, done=done)


@router.get(PATH + "/export.csv")
async def export(
    merchant: ReadMerchantDep,
    request: Request,
    rating: str | None = None,
    status: str | None = None,
) -> StreamingResponse:
    """The reviews the filters select, as the API's CSV export writes them."""
    shop_id = merchant.shop.id
    chosen_rating = int_param(rating, 1, 5)
    chosen_status = choice(status, frozenset(STATUSES))
    engine = request.app.state.engine

    async def lines() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        cursor = None
        while True:
            # One short read transaction per page: a long download holds no connection.
            async with transaction(engine, read_only=True) as conn:
                rows, cursor = await service.list_reviews(
                    conn,
                    shop_id,
                    rating=chosen_rating,
                    status=chosen_status,
                    created_from=None,
                    created_to=None,
                    cursor=cursor,
                    limit=EXPORT_PAGE,
                )
            for r in (ReviewRead.model_validate(row) for row in rows):
                products = ";".join(
                    f"{p.product_id}-{p.product_attribute_id}:{p.rating}" for p in r.products
                )
                data = r.model_dump(mode="json")
                cells = [_cell(data[c]) for c in CSV_COLUMNS if c != "products"]
                writer.writerow([*cells, products])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if cursor is None:
                return

    headers = {
        "Content-Disposition": f'attachment; filename="reviews-{shop_id}.csv"',
        "Cache-Control": "no-store",
    }
    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8", headers=headers)


def _cell(value: object) -> object:
    # A cell starting with = + - @ is a formula to a spreadsheet: quote it out (CSV injection).
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value
