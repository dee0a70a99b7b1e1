"""Durations (ISO 8601 or seconds), calendar-day delays and send windows in a shop's zone."""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

_ISO = re.compile(
    r"^P(?!$)(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


@dataclass(frozen=True)
class Duration:
    """A delay: whole calendar days (in the shop's zone) plus an exact number of seconds."""

    days: int
    seconds: float

    @property
    def iso(self) -> str:
        out = "P" + (f"{self.days}D" if self.days else "")
        secs = self.seconds
        if secs or not self.days:
            h, rem = divmod(secs, 3600)
            m, s = divmod(rem, 60)
            out += "T" + (f"{int(h)}H" if h else "") + (f"{int(m)}M" if m else "")
            if s or (not h and not m):
                out += f"{s:.3f}".rstrip("0").rstrip(".") + "S"
        return out

    def approx(self) -> timedelta:
        return timedelta(days=self.days, seconds=self.seconds)


# Every duration is bounded where it is parsed, so nothing accepted can overflow a datetime
# later (a reminder scheduled after a send, a max age compared at send time).
MAX_DAYS = 3660  # about ten years
MAX_SECONDS = MAX_DAYS * 86400
_MAX_TEXT = 64


@lru_cache(maxsize=1024)
def parse_duration(value: str | int | float) -> Duration:
    """Parse `"P2D"`, `"PT30S"`, `"P1W"`, `"P1DT12H"` or a number of seconds.

    Years and months are refused: their length is ambiguous. Seconds keep millisecond
    precision; the whole duration is at most `MAX_DAYS` days.
    """
    if isinstance(value, bool):
        raise ValueError("expected an ISO 8601 duration or a number of seconds")
    if isinstance(value, int | float):
        if not 0 <= value <= MAX_SECONDS:  # also refuses NaN
            raise ValueError(f"a duration must be between 0 and {MAX_DAYS} days")
        return _bounded(0, float(value))
    text = value.strip().upper()
    if len(text) > _MAX_TEXT:
        raise ValueError(f"a duration is at most {_MAX_TEXT} characters")
    if text.lstrip("-").replace(".", "", 1).isdigit():
        return parse_duration(float(text))
    match = _ISO.match(text)
    if not match:
        raise ValueError(
            f"{value!r} is not an ISO 8601 duration such as 'P2D', 'PT30S' or 'P1DT12H' "
            "(years and months are not accepted)"
        )
    g = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    days = g["w"] * 7 + g["d"]
    seconds = g["h"] * 3600 + g["m"] * 60 + g["s"]
    if days > MAX_DAYS or days * 86400 + seconds > MAX_SECONDS:
        raise ValueError(f"a duration must be at most {MAX_DAYS} days")
    return _bounded(int(days), seconds)


def _bounded(days: int, seconds: float) -> Duration:
    if days * 86400 + seconds > MAX_SECONDS:
        raise ValueError(f"a duration must be at most {MAX_DAYS} days")
    return Duration(days, round(seconds, 3))


def add_duration(start: datetime, duration: Duration, tz: ZoneInfo) -> datetime:
    """`start` plus the duration: days move the wall clock in `tz`, seconds are exact."""
    if duration.days:
        local = start.astimezone(tz)
        wall = local.replace(tzinfo=None) + timedelta(days=duration.days)
        start = wall.replace(tzinfo=tz).astimezone(UTC)
    # Exact seconds: added to the UTC instant (aware arithmetic in a zone adds wall-clock time).
    return start.astimezone(UTC) + timedelta(seconds=duration.seconds)


@dataclass(frozen=True)
class Window:
    """When e-mails may leave, in the shop's zone: ISO weekdays, [start, end), holidays."""

    weekdays: frozenset[int]
    start: time
    end: time
    holidays_country: str | None = None
    holidays_subdivision: str | None = None


@lru_cache(maxsize=256)
def _holiday_calendar(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    days = holidays.country_holidays(country, subdiv=subdivision, years=year)
    return frozenset(days.keys())


def _is_open_day(day: date, window: Window) -> bool:
    if day.isoweekday() not in window.weekdays:
        return False
    if window.holidays_country:
        cal = _holiday_calendar(window.holidays_country, window.holidays_subdivision, day.year)
        return day not in cal
    return True


def next_in_window(moment: datetime, window: Window | None, tz: ZoneInfo) -> datetime:
    """The first instant at or after `moment` inside the send window (UTC)."""
    if window is None:
        return moment
    local = moment.astimezone(tz)
    day = local.date()
    for offset in range(400):
        current = day + timedelta(days=offset)
        if not _is_open_day(current, window):
            continue
        opens = datetime.combine(current, window.start, tzinfo=tz)
        closes = datetime.combine(current, window.end, tzinfo=tz)
        if offset == 0 and local >= closes:
            continue
        return max(moment, opens.astimezone(UTC)).astimezone(UTC)
    raise ValueError("the send window never opens")
