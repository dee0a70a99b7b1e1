"""Business-hours arithmetic: nights, weekends, lunch breaks, holidays, closed dates, DST.

Every expected figure is worked out by hand in the test's comments. Instants are written in the
calendar's own zone (`at`), so a test reads like the merchant's clock.
"""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.tickets.calendar import (
    DEFAULT_WEEK,
    HORIZON_DAYS,
    BusinessCalendar,
    default_calendar,
)

H = 3600
PARIS = "Europe/Paris"
WEEKDAYS_9_TO_18 = {day: [(time(9), time(18))] for day in range(1, 8)}
LUNCH = {day: [(time(9), time(12, 30)), (time(14), time(18))] for day in range(1, 6)}


def at(zone: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A local wall-clock time of `zone` (first occurrence), as the UTC instant we handle."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return at(PARIS, year, month, day, hour, minute)


# --- Nights, weekends, lunch breaks --------------------------------------------------------


def test_a_night_counts_nothing() -> None:
    # Monday 17:00 -> Tuesday 10:00: 1 h on Monday evening, 1 h on Tuesday morning.
    calendar = default_calendar(PARIS)
    assert calendar.business_seconds(paris(2026, 3, 2, 17), paris(2026, 3, 3, 10)) == 2 * H
    assert calendar.add_business_seconds(paris(2026, 3, 2, 17), 2 * H) == paris(2026, 3, 3, 10)


def test_friday_evening_to_monday_skips_the_weekend() -> None:
    # Friday 17:30 -> Monday 09:30: 30 min on Friday, 30 min on Monday.
    calendar = default_calendar(PARIS)
    friday, monday = paris(2026, 3, 6, 17, 30), paris(2026, 3, 9, 9, 30)
    assert calendar.business_seconds(friday, monday) == H
    assert calendar.add_business_seconds(friday, H) == monday
    # Saturday to Sunday: nothing at all.
    assert calendar.business_seconds(paris(2026, 3, 7, 8), paris(2026, 3, 8, 20)) == 0


def test_the_24_hour_deadline_spans_three_working_days() -> None:
    # Monday 09:00 + 24 business hours of 9 h days: Monday 9 h, Tuesday 9 h, Wednesday 6 h.
    calendar = default_calendar(PARIS)
    assert calendar.add_business_seconds(paris(2026, 3, 2, 9), 24 * H) == paris(2026, 3, 4, 15)
    # Sent on Saturday: the clock starts on Monday 09:00.
    assert calendar.add_business_seconds(paris(2026, 3, 7, 11), 24 * H) == paris(2026, 3, 11, 15)


def test_the_lunch_break_is_closed() -> None:
    calendar = BusinessCalendar(PARIS, LUNCH)
    noon = paris(2026, 3, 2, 12)
    # 12:00 -> 14:30: 30 min before the break, 30 min after it.
    assert calendar.business_seconds(noon, paris(2026, 3, 2, 14, 30)) == H
    assert calendar.add_business_seconds(noon, H) == paris(2026, 3, 2, 14, 30)
    # The budget ends exactly at the 12:30 closing: the answer is the closing, not 14:00.
    assert calendar.add_business_seconds(noon, H // 2) == paris(2026, 3, 2, 12, 30)
    # A day is 3 h 30 + 4 h = 7 h 30.
    assert calendar.business_seconds(paris(2026, 3, 2), paris(2026, 3, 3)) == 7 * H + H // 2


def test_before_opening_the_clock_waits_for_the_opening() -> None:
    calendar = default_calendar(PARIS)
    assert calendar.business_seconds(paris(2026, 3, 2, 7), paris(2026, 3, 2, 9)) == 0
    assert calendar.add_business_seconds(paris(2026, 3, 2, 7), 60) == paris(2026, 3, 2, 9, 1)
    assert calendar.add_business_seconds(paris(2026, 3, 2, 7), 0) == paris(2026, 3, 2, 7)


def test_seconds_are_whole_and_rounded_down() -> None:
    calendar = default_calendar(PARIS)
    start = paris(2026, 3, 2, 10)
    assert calendar.business_seconds(start, start + timedelta(seconds=1.999)) == 1
    assert calendar.business_seconds(start, start) == 0
    assert calendar.business_seconds(start + timedelta(hours=1), start) == 0


def test_naive_instants_are_read_as_utc() -> None:
    calendar = default_calendar(PARIS)
    # 08:00 UTC is 09:00 in Paris in winter.
    naive = datetime(2026, 3, 2, 8)
    assert calendar.add_business_seconds(naive, 60) == datetime(2026, 3, 2, 8, 1, tzinfo=UTC)
    assert calendar.local_date(datetime(2026, 3, 2, 23, 30)) == date(2026, 3, 3)


# --- Public holidays and closed dates ------------------------------------------------------


def test_french_national_day_and_christmas_are_closed() -> None:
    plain = default_calendar(PARIS)
    france = BusinessCalendar(PARIS, DEFAULT_WEEK, holidays="FR")
    # Monday 13 July 17:00 -> Wednesday 15 July 10:00, Tuesday 14 July the national day:
    # 1 h + 1 h in France; 1 h + 9 h + 1 h without holidays.
    start, end = paris(2026, 7, 13, 17), paris(2026, 7, 15, 10)
    assert france.business_seconds(start, end) == 2 * H
    assert plain.business_seconds(start, end) == 11 * H
    # Thursday 24 December 17:00 + 2 h: Friday 25 is Christmas, so Monday 28 at 10:00.
    assert france.add_business_seconds(paris(2026, 12, 24, 17), 2 * H) == paris(2026, 12, 28, 10)
    assert plain.add_business_seconds(paris(2026, 12, 24, 17), 2 * H) == paris(2026, 12, 25, 10)
    assert france.is_closed_date(date(2026, 12, 25))
    assert not plain.is_closed_date(date(2026, 12, 25))


def test_a_subdivision_has_its_own_holidays() -> None:
    # Corpus Christi, Thursday 4 June 2026, is a holiday in Bavaria, not in Berlin nor
    # nationally. Wednesday 17:00 -> Friday 10:00: 1 h + 1 h in Bavaria, 1 + 9 + 1 h elsewhere.
    berlin = "Europe/Berlin"
    start, end = at(berlin, 2026, 6, 3, 17), at(berlin, 2026, 6, 5, 10)
    bavaria = BusinessCalendar(berlin, DEFAULT_WEEK, holidays="DE", holidays_subdivision="BY")
    city = BusinessCalendar(berlin, DEFAULT_WEEK, holidays="DE", holidays_subdivision="BE")
    germany = BusinessCalendar(berlin, DEFAULT_WEEK, holidays="DE")
    assert bavaria.business_seconds(start, end) == 2 * H
    assert city.business_seconds(start, end) == 11 * H
    assert germany.business_seconds(start, end) == 11 * H


def test_closed_dates_are_closed() -> None:
    # Wednesday 11 March closed: Tuesday 17:00 -> Thursday 10:00 is 1 h + 1 h.
    calendar = BusinessCalendar(PARIS, DEFAULT_WEEK, closed_dates=frozenset({date(2026, 3, 11)}))
    start, end = paris(2026, 3, 10, 17), paris(2026, 3, 12, 10)
    assert calendar.business_seconds(start, end) == 2 * H
    assert calendar.add_business_seconds(start, 2 * H) == end
    assert default_calendar(PARIS).business_seconds(start, end) == 11 * H


def test_holidays_of_another_year_are_looked_up_for_that_year() -> None:
    france = BusinessCalendar(PARIS, DEFAULT_WEEK, holidays="FR")
    # Thursday 31 December 2026 17:00 + 2 h: 1 January 2027 (Friday) is closed, so Monday 4.
    assert france.add_business_seconds(paris(2026, 12, 31, 17), 2 * H) == paris(2027, 1, 4, 10)


# --- Daylight saving time ------------------------------------------------------------------


def test_a_working_day_is_9_hours_on_both_dst_sundays_in_paris() -> None:
    # Open every day 09:00-18:00; the clocks change on Sunday 29 March and Sunday 25 October.
    calendar = BusinessCalendar(PARIS, WEEKDAYS_9_TO_18)
    for day in (date(2026, 3, 29), date(2026, 10, 25)):
        start = paris(day.year, day.month, day.day)
        assert calendar.business_seconds(start, start + timedelta(days=1)) == 9 * H, day
    # Saturday 28 March 17:00 (UTC+1) + 2 h: 1 h on Saturday, then Sunday 10:00 (UTC+2).
    result = calendar.add_business_seconds(paris(2026, 3, 28, 17), 2 * H)
    assert result == datetime(2026, 3, 29, 8, tzinfo=UTC)


def test_an_interval_across_the_change_counts_the_real_time() -> None:
    night = BusinessCalendar(PARIS, {7: [(time(0), time(6))]})
    whole = BusinessCalendar(PARIS, {7: [(time(0), time(0))]})  # 00:00-24:00
    for day, night_hours, day_hours in (
        (date(2026, 3, 29), 5, 23),  # 02:00-03:00 does not exist
        (date(2026, 10, 25), 7, 25),  # 02:00-03:00 happens twice
        (date(2026, 3, 22), 6, 24),  # an ordinary Sunday
    ):
        start = paris(day.year, day.month, day.day)
        end = start + timedelta(days=2)
        assert night.business_seconds(start, end) == night_hours * H, day
        assert whole.business_seconds(start, end) == day_hours * H, day


def test_a_boundary_the_clock_skips_falls_on_the_change() -> None:
    # 02:30-04:00 every Sunday. On 29 March the clock jumps from 02:00 to 03:00 (01:00 UTC):
    # the interval opens at the change, 03:00, and lasts 1 h instead of 1 h 30.
    calendar = BusinessCalendar(PARIS, {7: [(time(2, 30), time(4))]})
    saturday = paris(2026, 3, 28, 12)
    assert calendar.business_seconds(saturday, saturday + timedelta(days=1)) == H
    assert calendar.add_business_seconds(saturday, 1) == datetime(2026, 3, 29, 1, 0, 1, tzinfo=UTC)
    # An interval wholly inside the skipped hour is empty that day.
    skipped = BusinessCalendar(PARIS, {7: [(time(2, 10), time(2, 50))]})
    assert skipped.business_seconds(saturday, saturday + timedelta(days=1)) == 0
    assert skipped.add_business_seconds(saturday, 60) == paris(2026, 4, 5, 2, 11)


def test_a_boundary_the_clock_repeats_is_its_first_occurrence() -> None:
    # 02:30-04:00 on Sunday 25 October: 02:30 is first reached at 00:30 UTC (UTC+2) and
    # 04:00 at 03:00 UTC (UTC+1): 2 h 30 of real time.
    calendar = BusinessCalendar(PARIS, {7: [(time(2, 30), time(4))]})
    saturday = paris(2026, 10, 24, 12)
    assert calendar.business_seconds(saturday, saturday + timedelta(days=1)) == 2 * H + H // 2
    opening = calendar.add_business_seconds(saturday, 1)
    assert opening == datetime(2026, 10, 25, 0, 30, 1, tzinfo=UTC)


def test_a_zone_far_from_utc() -> None:
    auckland = "Pacific/Auckland"
    plain = default_calendar(auckland)
    # Friday 3 April 17:00 (UTC+13) -> Monday 6 April 10:00 (UTC+12, DST ended on Sunday 5):
    # 1 h + 1 h. Friday 04:00 UTC is already 17:00 there.
    start, end = at(auckland, 2026, 4, 3, 17), at(auckland, 2026, 4, 6, 10)
    assert start == datetime(2026, 4, 3, 4, tzinfo=UTC)
    assert end == datetime(2026, 4, 5, 22, tzinfo=UTC)
    assert plain.business_seconds(start, end) == 2 * H
    # Good Friday and Easter Monday are New Zealand holidays: nothing is open in between.
    kiwi = BusinessCalendar(auckland, DEFAULT_WEEK, holidays="NZ")
    assert kiwi.business_seconds(start, end) == 0
    assert kiwi.add_business_seconds(start, H) == at(auckland, 2026, 4, 7, 10)
    # Local dates: 10:30 UTC on Monday 6 April is 22:30 there; 12:30 UTC is Tuesday 00:30.
    assert plain.local_date(datetime(2026, 4, 6, 10, 30, tzinfo=UTC)) == date(2026, 4, 6)
    assert plain.local_date(datetime(2026, 4, 6, 12, 30, tzinfo=UTC)) == date(2026, 4, 7)
    # UTC+14: Sunday 20:00 UTC is already Monday 10:00 on Kiritimati, and open.
    line = default_calendar("Pacific/Kiritimati")
    sunday = datetime(2026, 3, 1, 20, tzinfo=UTC)
    assert line.business_seconds(sunday, sunday + timedelta(hours=1)) == H


# --- No opening time -----------------------------------------------------------------------


def test_an_all_empty_week_never_reaches_a_deadline() -> None:
    calendar = BusinessCalendar(PARIS, {day: [] for day in range(1, 8)})
    start = paris(2026, 3, 2, 10)
    assert calendar.always_closed
    assert calendar.add_business_seconds(start, 1) is None
    assert calendar.business_seconds(start, start + timedelta(days=30)) == 0
    assert calendar.add_business_seconds(start, 0) == start


def test_a_deadline_beyond_the_horizon_is_none() -> None:
    # Open one hour a week: 100 hours take 100 weeks (inside 3 years), 200 hours do not.
    calendar = BusinessCalendar(PARIS, {3: [(time(10), time(11))]})
    start = paris(2026, 3, 2, 10)
    reached = calendar.add_business_seconds(start, 100 * H)
    assert reached is not None
    assert reached == paris(2028, 1, 26, 11)  # the 100th Wednesday after 2 March 2026
    assert calendar.add_business_seconds(start, 200 * H) is None
    assert 200 * 7 > HORIZON_DAYS > 100 * 7


# --- Refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "time zone"),
        ({"week": {8: [(time(9), time(18))]}}, "weekdays"),
        ({"week": {1: [(time(18), time(9))]}}, "not before"),
        ({"week": {1: [(time(9), time(13)), (time(12), time(18))]}}, "overlap"),
        ({"week": {1: [(time(0), time(0)), (time(9), time(10))]}}, "overlap"),
        ({"week": {1: [(time(h), time(h, 30)) for h in range(7)]}}, "at most"),
        ({"holidays": "XX"}, "country"),
        ({"holidays": "FR", "holidays_subdivision": "BY"}, "subdivision"),
        ({"holidays_subdivision": "BY"}, "needs a holidays country"),
    ],
)
def test_a_calendar_that_makes_no_sense_is_refused(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"timezone": PARIS, "week": DEFAULT_WEEK, **kwargs}
    with pytest.raises(ValueError, match=message):
        BusinessCalendar(**arguments)  # type: ignore[arg-type]


def test_a_negative_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        default_calendar(PARIS).add_business_seconds(paris(2026, 3, 2, 10), -1)


def test_equal_calendars_hash_alike() -> None:
    assert default_calendar(PARIS) == default_calendar(PARIS)
    assert hash(default_calendar(PARIS)) == hash(default_calendar(PARIS))
    assert default_calendar(PARIS) != default_calendar("Europe/Rome")


# --- add_business_seconds and business_seconds agree ---------------------------------------

CALENDARS = [
    BusinessCalendar(PARIS, DEFAULT_WEEK, holidays="FR"),
    BusinessCalendar("Europe/Berlin", LUNCH, holidays="DE", holidays_subdivision="BY"),
    # Open round the clock on Sundays (23 h and 25 h days included), and at odd hours.
    BusinessCalendar(
        "Pacific/Auckland",
        {7: [(time(0), time(0))], 3: [(time(2, 15), time(2, 45)), (time(23), time(0))]},
    ),
    BusinessCalendar(
        "America/New_York",
        {d: [(time(1, 30), time(2, 30)), (time(9), time(17))] for d in (6, 7)},
        closed_dates=frozenset({date(2027, 3, 13)}),
    ),
]

instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=400, derandomize=True, database=None, deadline=None)
@given(
    calendar=st.sampled_from(CALENDARS),
    start=instants,
    seconds=st.integers(min_value=0, max_value=40 * 86400),
)
def test_adding_then_counting_gives_back_the_seconds(
    calendar: BusinessCalendar, start: datetime, seconds: int
) -> None:
    reached = calendar.add_business_seconds(start, seconds)
    if reached is None:  # only when the horizon holds too little opening time
        horizon = start + timedelta(days=HORIZON_DAYS - 1)
        assert calendar.business_seconds(start, horizon) < seconds
        return
    assert reached >= start
    assert calendar.business_seconds(start, reached) == seconds
    if seconds:
        # It is the first such instant: one microsecond earlier, a second is still missing.
        assert calendar.business_seconds(start, reached - timedelta(microseconds=1)) == seconds - 1


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(
    calendar=st.sampled_from(CALENDARS),
    points=st.lists(instants, min_size=3, max_size=3),
)
def test_counting_is_additive(calendar: BusinessCalendar, points: list[datetime]) -> None:
    a, b, c = sorted(p.replace(microsecond=0) for p in points)
    assert calendar.business_seconds(a, c) == (
        calendar.business_seconds(a, b) + calendar.business_seconds(b, c)
    )
