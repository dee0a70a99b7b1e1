"""Reviews API: list with filters, export (CSV or JSON, streamed), moderate."""

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from app.db import transaction, utcnow
from app.deps import AuthFirstRoute, ConnDep, CursorQuery, IdPath, ReadConnDep
from app.errors import InvalidInput
from app.openapi import SHOP_RESPONSES
from app.reviews import service
from app.reviews.schemas import ReviewPage, ReviewRead, ReviewStatus, ReviewUpdate
from app.shops.deps import ReadShopDep, ShopDep
from app.shops.service import ShopAccount

router = APIRouter(
    prefix="/api/v1/shops/{shop_id}/reviews",
    tags=["reviews"],
    route_class=AuthFirstRoute,
    responses=SHOP_RESPONSES,
)

RatingQuery = Annotated[int | None, Query(ge=1, le=5)]
StatusQuery = Annotated[ReviewStatus | None, Query()]
DateQuery = Annotated[date | None, Query(description="A local date of the shop, included.")]
EXPORT_PAGE = 500


def _bounds(
    shop: ShopAccount, from_: date | None, to: date | None
) -> tuple[datetime | None, datetime | None]:
    """`from`/`to` are the shop's local dates, both included."""
    tz = ZoneInfo(shop.settings.timezone)
    if from_ and to and to < from_:
        raise InvalidInput(
            "`to` is before `from`.", [{"loc": ["query", "to"], "msg": "must not be before from"}]
        )
    start = datetime.combine(from_, time(), tz) if from_ else None
    end = datetime.combine(to + timedelta(days=1), time(), tz) if to else None
    return start, end


@router.get("", summary="Reviews, newest first")
async def list_reviews(
    shop: ReadShopDep,
    conn: ReadConnDep,
    rating: RatingQuery = None,
    status: StatusQuery = None,
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: DateQuery = None,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ReviewPage:
    start, end = _bounds(shop, from_, to)
    rows, next_cursor = await service.list_reviews(
        conn,
        shop.id,
        rating=rating,
        status=status,
        created_from=start,
        created_to=end,
        cursor=cursor,
        limit=limit,
    )
    return ReviewPage(items=[ReviewRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/export",
    summary="Every review matching the filters, streamed as CSV or JSON",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}, "application/json": {}}}},
)
async def export_reviews(
    shop: ReadShopDep,
    request: Request,
    format: Literal["csv", "json"] = "csv",
    rating: RatingQuery = None,
    status: StatusQuery = None,
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: DateQuery = None,
) -> StreamingResponse:
    start, end = _bounds(shop, from_, to)
    engine = request.app.state.engine

    async def pages() -> AsyncIterator[list[ReviewRead]]:
        # One short read transaction per page, so a long download holds no connection.
        cursor = None
        while True:
            async with transaction(engine, read_only=True) as conn:
                rows, cursor = await service.list_reviews(
                    conn,
                    shop.id,
                    rating=rating,
                    status=status,
                    created_from=start,
                    created_to=end,
                    cursor=cursor,
                    limit=EXPORT_PAGE,
                )
            yield [ReviewRead.model_validate(r) for r in rows]
            if cursor is None:
                return

    filename = f"reviews-{shop.id}.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if format == "json":
        return StreamingResponse(_json(pages()), media_type="application/json", headers=headers)
    return StreamingResponse(_csv(pages()), media_type="text/csv; charset=utf-8", headers=headers)


_CSV_COLUMNS = (
    "id", "order_id", "rating", "comment", "nps", "status", "reply", "language",
    "purchased_at", "created_at", "updated_at", "products",
)  # fmt: skip


async def _csv(pages: AsyncIterator[list[ReviewRead]]) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(_CSV_COLUMNS)
    async for items in pages:
        for r in items:
            products = ";".join(
                f"{p.product_id}-{p.product_attribute_id}:{p.rating}" for p in r.products
            )
            row = r.model_dump(mode="json")
            writer.writerow([_cell(row[c]) for c in _CSV_COLUMNS if c != "products"] + [products])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def _cell(value: object) -> object:
    # A cell starting with = + - @ is a formula to a spreadsheet: quote it out (CSV injection).
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


async def _json(pages: AsyncIterator[list[ReviewRead]]) -> AsyncIterator[str]:
    yield '{"items": ['
    first = True
    async for items in pages:
        for r in items:
            yield ("" if first else ",") + json.dumps(r.model_dump(mode="json"), ensure_ascii=False)
            first = False
    yield "]}"


@router.patch("/{review_id}", summary="Publish, reject or reply to a review")
async def moderate_review(
    shop: ShopDep, conn: ConnDep, review_id: IdPath, body: ReviewUpdate
) -> ReviewRead:
    changes = body.model_dump(exclude_unset=True)
    if changes.get("status", "") is None:
        raise InvalidInput(
            "status cannot be null.", [{"loc": ["body", "status"], "msg": "must not be null"}]
        )
    return ReviewRead.model_validate(
        await service.moderate(conn, shop.id, review_id, changes, utcnow())
    )
