"""Business-hours arithmetic in a shop's zone: pure, exact to the microsecond, day by day.

An opening interval is a pair of local wall-clock times of one local date. It opens at the
first instant at which the local clock shows its start (or later) and closes at the first
instant at which it shows its end (or later), so:

- a boundary that does not exist (in a spring-forward gap) falls on the change itself: an
  interval opening at 02:30 on a night the clock jumps from 02:00 to 03:00 opens at 03:00;
- a boundary that happens twice (in a fall-back overlap) is its first occurrence;
- business time is real elapsed time inside those instants: a 09:00-18:00 day is 9 h on a DST
  day too, and an interval across the change counts what really elapsed (00:00-06:00 is 5 h on
  the spring-forward night and 7 h on the fall-back night).

An end of `time(0)` means the midnight that ends the day (the API's "24:00"). A date is closed
when its weekday has no interval, when it is a public holiday of the country (and subdivision)
in the `holidays` package, or when it is one of `closed_dates`.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_package

from app.timeutil import _holiday_calendar

# add_business_seconds gives up after this many local days: a calendar open so rarely that a
# deadline lies further away has, for every purpose here, no deadline.
HORIZON_DAYS = 3 * 366
MAX_INTERVALS_PER_DAY = 6
# Only whole microseconds are exact; every instant is an integer count of them since the epoch.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_PER_SECOND = 1_000_000
_MIDNIGHT = time(0)
# Bounds the per-calendar cache of days (a calendar usually lives for one request).
_MAX_CACHED_DAYS = 4096

Interval = tuple[time, time]
Span = tuple[int, int]  # [opens, closes) in microseconds since the epoch

DEFAULT_WEEK: dict[int, list[tuple[time, time]]] = {
    **{day: [(time(9), time(18))] for day in range(1, 6)},
    6: [],
    7: [],
}


@lru_cache(maxsize=1)
def holiday_countries() -> Mapping[str, frozenset[str]]:
    """Country (ISO 3166-1 alpha-2) -> its subdivisions, as the `holidays` package knows them."""
    supported = holidays_package.list_supported_countries(include_aliases=False)
    return {country: frozenset(subdivs) for country, subdivs in supported.items()}


def _micros(at: datetime) -> int:
    # Naive datetimes are read as UTC, as everywhere inside the service.
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return (aware - _EPOCH) // _MICROSECOND


def _instant(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _normalized_day(weekday: int, intervals: Sequence[Interval]) -> tuple[Interval, ...]:
    if len(intervals) > MAX_INTERVALS_PER_DAY:
        raise ValueError(f"weekday {weekday}: at most {MAX_INTERVALS_PER_DAY} intervals")
    previous_end: time | None = None
    for start, end in intervals:
        if start.tzinfo is not None or end.tzinfo is not None:
            raise ValueError(f"weekday {weekday}: local times take no offset")
        if end != _MIDNIGHT and end <= start:
            raise ValueError(f"weekday {weekday}: {start} is not before {end}")
        if previous_end is not None and (previous_end == _MIDNIGHT or start < previous_end):
            raise ValueError(f"weekday {weekday}: intervals must be in order, without overlap")
        previous_end = end
    return tuple((start, end) for start, end in intervals)


@dataclass(frozen=True)
class BusinessCalendar:
    """When a shop's support works. Construction validates; a bad calendar raises ValueError."""

    timezone: str
    week: Mapping[int, Sequence[tuple[time, time]]]  # ISO weekday -> opening intervals (local)
    holidays: str | None = None  # country for the `holidays` package
    holidays_subdivision: str | None = None
    closed_dates: frozenset[date] = frozenset()
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _spans: tuple[tuple[Interval, ...], ...] = field(init=False, repr=False, compare=False)
    _days: dict[date, tuple[Span, ...]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    _holidays: dict[int, frozenset[date]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{self.timezone!r} is not an IANA time zone") from exc
        if set(self.week) - set(range(1, 8)):
            raise ValueError("week keys are ISO weekdays 1 (Monday) to 7 (Sunday)")
        if self.holidays is not None:
            subdivisions = holiday_countries().get(self.holidays)
            if subdivisions is None:
                raise ValueError(f"no public-holiday calendar for country {self.holidays!r}")
            subdivision = self.holidays_subdivision
            if subdivision is not None and subdivision not in subdivisions:
                raise ValueError(f"unknown subdivision {self.holidays_subdivision!r}")
        elif self.holidays_subdivision is not None:
            raise ValueError("a holidays subdivision needs a holidays country")
        spans = tuple(_normalized_day(d, self.week.get(d, ())) for d in range(1, 8))
        object.__setattr__(self, "_zone", zone)
        object.__setattr__(self, "_spans", spans)

    def __hash__(self) -> int:
        key = (self.timezone, self._spans, self.holidays, self.holidays_subdivision)
        return hash((*key, self.closed_dates))

    @property
    def always_closed(self) -> bool:
        """True when no weekday has an opening interval."""
        return not any(self._spans)

    def local_date(self, at: datetime) -> date:
        """The shop-local date of an instant."""
        aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
        return aware.astimezone(self._zone).date()

    def business_seconds(self, start: datetime, end: datetime) -> int:
        """Whole business seconds between two instants (rounded down); 0 when end <= start."""
        lo, hi = _micros(start), _micros(end)
        if hi <= lo or self.always_closed:
            return 0
        total = 0
        day = self.local_date(start)
        # One day past `end`'s date: a zone that falls back across midnight opens the next
        # date's first interval before `end` when `end` lies in the repeated hour.
        last = self.local_date(end) + timedelta(days=1)
        while day <= last:
            for opens, closes in self._open_spans(day):
                if opens >= hi:
                    return total // _PER_SECOND
                overlap = min(closes, hi) - max(opens, lo)
                if overlap > 0:
                    total += overlap
            day += timedelta(days=1)
        return total // _PER_SECOND

    def add_business_seconds(self, start: datetime, seconds: int) -> datetime | None:
        """The first instant (UTC) at which `seconds` business seconds have elapsed after start.

        A 24-hour deadline is `add_business_seconds(t, 86400)`. When the budget runs out
        exactly at a closing, that closing is the answer (not the next opening). None when the
        calendar has no opening time at all, or not enough within `HORIZON_DAYS` local days.
        """
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        moment = _micros(start)
        if seconds == 0:
            return _instant(moment)
        if self.always_closed:
            return None
        remaining = seconds * _PER_SECOND
        day = self.local_date(start)
        for _ in range(HORIZON_DAYS):
            for opens, closes in self._open_spans(day):
                if closes <= moment:
                    continue
                begin = max(opens, moment)
                if remaining <= closes - begin:
                    return _instant(begin + remaining)
                remaining -= closes - begin
            day += timedelta(days=1)
        return None

    def is_closed_date(self, day: date) -> bool:
        """A public holiday of the calendar's country or one of its closed dates."""
        if day in self.closed_dates:
            return True
        if self.holidays is None:
            return False
        year = self._holidays.get(day.year)
        if year is None:
            year = _holiday_calendar(self.holidays, self.holidays_subdivision, day.year)
            self._holidays[day.year] = year
        return day in year

    def _open_spans(self, day: date) -> tuple[Span, ...]:
        cached = self._days.get(day)
        if cached is not None:
            return cached
        intervals = self._spans[day.isoweekday() - 1]
        spans: tuple[Span, ...] = ()
        if intervals and not self.is_closed_date(day):
            found = []
            for start, end in intervals:
                opens = self._first_at_or_after(datetime.combine(day, start))
                closing = datetime.combine(
                    day + timedelta(days=1) if end == _MIDNIGHT else day, end
                )
                closes = self._first_at_or_after(closing)
                if closes > opens:  # empty when both ends fall in the same gap
                    found.append((opens, closes))
            spans = tuple(found)
        if len(self._days) >= _MAX_CACHED_DAYS:
            self._days.clear()
        self._days[day] = spans
        return spans

    def _first_at_or_after(self, wall: datetime) -> int:
        """The first instant at which the local clock shows `wall` or later (microseconds)."""
        # fold=0: an ambiguous time's first occurrence; a missing one with the offset in force
        # before the gap, which lands after the change.
        after = _micros(wall.replace(tzinfo=self._zone))
        if _instant(after).astimezone(self._zone).replace(tzinfo=None) == wall:
            return after
        # `wall` is in a gap: the change lies between the two readings of it; find it.
        before = _micros(wall.replace(tzinfo=self._zone, fold=1))
        while after - before > 1:
            middle = (before + after) // 2
            shown = _instant(middle).astimezone(self._zone).replace(tzinfo=None)
            if shown >= wall:
                after = middle
            else:
                before = middle
        return after


def default_calendar(timezone: str) -> BusinessCalendar:
    """Monday to Friday, 09:00-18:00 in `timezone`, no public holidays."""
    return BusinessCalendar(timezone, DEFAULT_WEEK)
