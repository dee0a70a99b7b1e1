"""A shop's business hours: read, replace, and the calendar the waiting times are counted in."""

import logging
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.dialect import PerDialect
from app.errors import InvalidInput, NotFound
from app.shops.models import Shop
from app.tickets.calendar import DEFAULT_WEEK, BusinessCalendar, Interval
from app.tickets.models import BusinessHours

log = logging.getLogger("relance.tickets")

END_OF_DAY = "24:00"
WEEKDAYS = tuple(str(day) for day in range(1, 8))


def _clock(value: time) -> str:
    return value.strftime("%H:%M")


DEFAULT_WEEK_JSON: dict[str, list[list[str]]] = {
    str(day): [[_clock(start), _clock(end)] for start, end in DEFAULT_WEEK[day]]
    for day in range(1, 8)
}


@dataclass(frozen=True)
class Hours:
    """Business hours as stored (JSON shapes); `updated_at` is None for the defaults."""

    timezone: str
    week: dict[str, list[list[str]]]
    holidays: str | None
    holidays_subdivision: str | None
    closed_dates: list[str]
    updated_at: datetime | None

    @property
    def is_default(self) -> bool:
        return self.updated_at is None


def default_hours(timezone: str) -> Hours:
    return Hours(timezone, DEFAULT_WEEK_JSON, None, None, [], None)


def _interval(pair: list[str]) -> Interval:
    start, end = pair
    # "24:00" is the midnight that ends the day, which the calendar writes time(0).
    return time.fromisoformat(start), time(0) if end == END_OF_DAY else time.fromisoformat(end)


def to_calendar(hours: Hours) -> BusinessCalendar:
    """The calendar of stored hours; ValueError when they do not make one."""
    week = {int(day): [_interval(pair) for pair in hours.week.get(day, [])] for day in WEEKDAYS}
    return BusinessCalendar(
        timezone=hours.timezone,
        week=week,
        holidays=hours.holidays,
        holidays_subdivision=hours.holidays_subdivision,
        closed_dates=frozenset(date.fromisoformat(d) for d in hours.closed_dates),
    )


# The stored hours, or the shop's zone for the defaults: one round trip.
_READ = (
    select(
        Shop.timezone.label("shop_timezone"),
        BusinessHours.timezone,
        BusinessHours.week,
        BusinessHours.holidays,
        BusinessHours.holidays_subdivision,
        BusinessHours.closed_dates,
        BusinessHours.updated_at,
    )
    .select_from(Shop)
    .outerjoin(BusinessHours, BusinessHours.shop_id == Shop.id)
    .where(Shop.id == bindparam("b_shop"))
)


# What a cached calendar is checked against: the shop's zone and its hours' updated_at.
_KEY = (
    select(Shop.timezone.label("shop_timezone"), BusinessHours.updated_at)
    .select_from(Shop)
    .outerjoin(BusinessHours, BusinessHours.shop_id == Shop.id)
    .where(Shop.id == bindparam("b_shop"))
)


async def get(conn: AsyncConnection, shop_id: str) -> Hours:
    """The shop's hours, or the defaults in its settings time zone (NotFound: no such shop)."""
    row = (await conn.execute(_READ, {"b_shop": shop_id})).mappings().first()
    if row is None:
        raise NotFound(f"No shop {shop_id!r}.")
    if row["updated_at"] is None:
        return default_hours(row["shop_timezone"])
    return Hours(
        timezone=row["timezone"],
        week={day: row["week"].get(day, []) for day in WEEKDAYS},
        holidays=row["holidays"],
        holidays_subdivision=row["holidays_subdivision"],
        closed_dates=row["closed_dates"],
        updated_at=row["updated_at"],
    )


# Calendars built in this process, by shop, with what they were built from: the shop's zone and
# the business_hours row's updated_at (every edit sets it). The hot path reads those two with
# the ticket and builds a calendar (and its holidays) only when one of them changed, so edits
# made through another process are seen by the next message. Bounded: the oldest go first.
_CALENDARS: dict[str, tuple[tuple[str, datetime | None], BusinessCalendar]] = {}
MAX_CACHED_CALENDARS = 1024


def _build(shop_id: str, hours: Hours) -> BusinessCalendar:
    try:
        return to_calendar(hours)
    except ValueError as exc:
        # Checked when stored; only a later `holidays` release that dropped the country or
        # subdivision gets here. Counting without those holidays beats refusing every message.
        log.warning("business hours of shop %s: %s; public holidays ignored", shop_id, exc)
        return to_calendar(
            Hours(hours.timezone, hours.week, None, None, hours.closed_dates, hours.updated_at)
        )


def _remember(shop_id: str, key: tuple[str, datetime | None], calendar: BusinessCalendar) -> None:
    _CALENDARS.pop(shop_id, None)
    while len(_CALENDARS) >= MAX_CACHED_CALENDARS:
        del _CALENDARS[next(iter(_CALENDARS))]
    _CALENDARS[shop_id] = key, calendar


async def calendar_for(conn: AsyncConnection, shop_id: str) -> BusinessCalendar:
    """The calendar a shop's waiting times are counted in: its hours, else the defaults."""
    row = (await conn.execute(_KEY, {"b_shop": shop_id})).first()
    if row is None:
        raise NotFound(f"No shop {shop_id!r}.")
    return await cached_calendar(conn, shop_id, row.shop_timezone, row.updated_at)


async def cached_calendar(
    conn: AsyncConnection, shop_id: str, shop_timezone: str, hours_updated_at: datetime | None
) -> BusinessCalendar:
    """The shop's calendar, given its zone and its hours' `updated_at` (None: no hours stored),
    as read in the caller's transaction: built again (one more read) only when either changed."""
    key = (shop_timezone, hours_updated_at)
    cached = _CALENDARS.get(shop_id)
    if cached is not None and cached[0] == key:
        return cached[1]
    hours = await get(conn, shop_id)
    calendar = _build(shop_id, hours)
    # Remembered under what it was built from (the defaults depend on the shop's zone only).
    _remember(
        shop_id, (hours.timezone if hours.is_default else shop_timezone, hours.updated_at), calendar
    )
    return calendar


_UPSERT = PerDialect(
    lambda insert_: (
        stmt := insert_(BusinessHours).values(
            shop_id=bindparam("b_shop"),
            timezone=bindparam("b_timezone"),
            week=bindparam("b_week"),
            holidays=bindparam("b_holidays"),
            holidays_subdivision=bindparam("b_subdivision"),
            closed_dates=bindparam("b_closed"),
            updated_at=bindparam("b_now"),
        )
    ).on_conflict_do_update(
        index_elements=[BusinessHours.shop_id],
        set_={
            "timezone": stmt.excluded.timezone,
            "week": stmt.excluded.week,
            "holidays": stmt.excluded.holidays,
            "holidays_subdivision": stmt.excluded.holidays_subdivision,
            "closed_dates": stmt.excluded.closed_dates,
            "updated_at": stmt.excluded.updated_at,
        },
    )
)


async def replace(
    conn: AsyncConnection, shop_id: str, hours: dict[str, Any], now: datetime
) -> Hours:
    """Store a shop's hours (validated JSON shapes: `timezone`, `week`, `holidays`, …).

    Waiting times already recorded keep the hours they were counted in; `relance kpis
    recompute` counts them again on request.
    """
    stored = Hours(
        timezone=hours["timezone"],
        week={day: hours["week"].get(day, []) for day in WEEKDAYS},
        holidays=hours.get("holidays"),
        holidays_subdivision=hours.get("holidays_subdivision"),
        closed_dates=list(hours.get("closed_dates", [])),
        updated_at=now,
    )
    try:
        to_calendar(stored)  # the very check calendar_for relies on
    except ValueError as exc:
        raise InvalidInput(str(exc), [{"loc": ["body"], "msg": str(exc)}]) from exc
    await conn.execute(
        _UPSERT.on(conn),
        {
            "b_shop": shop_id,
            "b_timezone": stored.timezone,
            "b_week": stored.week,
            "b_holidays": stored.holidays,
            "b_subdivision": stored.holidays_subdivision,
            "b_closed": stored.closed_dates,
            "b_now": now,
        },
    )
    return stored
