"""Business hours API: when a shop's support works, which its waiting times are counted in."""

from datetime import date

from fastapi import APIRouter

from app.db import utcnow
from app.deps import AuthFirstRoute, ConnDep, ReadConnDep
from app.openapi import SHOP_RESPONSES
from app.shops.deps import ReadShopDep, ShopDep
from app.tickets import hours
from app.tickets.hours_schemas import BusinessHoursRead, BusinessHoursUpdate, BusinessWeek

router = APIRouter(
    prefix="/api/v1/shops/{shop_id}/business-hours",
    tags=["business hours"],
    route_class=AuthFirstRoute,
    responses=SHOP_RESPONSES,
)

_COUNTING = (
    "Business time is real elapsed time inside the opening intervals, read as local wall-clock "
    "times of `timezone` (a 09:00-18:00 day is 9 h on a DST day too; a time the clock skips "
    "opens at the change, a time it repeats at its first occurrence). A date is closed when "
    "its weekday has no interval, on the public holidays of `holidays` (and "
    "`holidays_subdivision`), and on `closed_dates`."
)


def _read(stored: hours.Hours) -> BusinessHoursRead:
    return BusinessHoursRead(
        timezone=stored.timezone,
        week=BusinessWeek.model_validate(stored.week),
        holidays=stored.holidays,
        holidays_subdivision=stored.holidays_subdivision,
        closed_dates=[date.fromisoformat(d) for d in stored.closed_dates],
        is_default=stored.is_default,
        updated_at=stored.updated_at,
    )


@router.get("", summary="The shop's business hours (or the defaults)", description=_COUNTING)
async def read_hours(shop: ReadShopDep, conn: ReadConnDep) -> BusinessHoursRead:
    return _read(await hours.get(conn, shop.id))


@router.put(
    "",
    summary="Replace the shop's business hours",
    description=_COUNTING
    + "\n\nThe new hours count for what is recorded from now on. Waiting times already "
    "recorded keep the hours they were counted in (history does not move); "
    "`relance kpis recompute --shop …` counts them again in the current hours.",
)
async def replace_hours(
    shop: ShopDep, conn: ConnDep, body: BusinessHoursUpdate
) -> BusinessHoursRead:
    stored = await hours.replace(conn, shop.id, body.model_dump(mode="json"), utcnow())
    return _read(stored)
