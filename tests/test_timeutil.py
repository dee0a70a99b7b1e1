"""Durations, calendar-day delays across DST, and send windows with public holidays."""

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from app.timeutil import Window, add_duration, next_in_window, parse_duration

PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(
    ("given", "days", "seconds", "iso"),
    [
        ("P2D", 2, 0, "P2D"),
        ("PT30S", 0, 30, "PT30S"),
        (30, 0, 30, "PT30S"),
        ("90", 0, 90, "PT1M30S"),
        ("P1W", 7, 0, "P7D"),
        ("P1DT12H", 1, 43200, "P1DT12H"),
        ("pt1.5s", 0, 1.5, "PT1.5S"),
    ],
)
def test_parse_duration(given: str | int, days: int, seconds: float, iso: str) -> None:
    duration = parse_duration(given)
    assert (duration.days, duration.seconds, duration.iso) == (days, seconds, iso)


@pytest.mark.parametrize("bad", ["P1M", "P1Y", "P", "PT", "2 days", "-5", -1, True])
def test_parse_duration_refuses(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)  # type: ignore[arg-type]


def test_days_are_calendar_days_across_the_dst_change() -> None:
    # 28 March 2026, 10:00 in Paris (UTC+1); 30 March is summer time (UTC+2).
    start = datetime(2026, 3, 28, 9, 0, tzinfo=UTC)
    due = add_duration(start, parse_duration("P2D"), PARIS)
    assert due.astimezone(PARIS).hour == 10
    assert due == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)
    # …whereas 48 hours are 48 hours.
    assert add_duration(start, parse_duration("PT48H"), PARIS) == datetime(
        2026, 3, 30, 9, 0, tzinfo=UTC
    )


def test_window_moves_to_next_open_day_skipping_weekend_and_holidays() -> None:
    window = Window(frozenset({1, 2, 3, 4, 5}), time(9), time(18), "FR")
    # Thursday 24 Dec 2026, 19:30 Paris: closed; 25 Dec holiday; 26-27 weekend.
    due = next_in_window(datetime(2026, 12, 24, 18, 30, tzinfo=UTC), window, PARIS)
    assert due.astimezone(PARIS) == datetime(2026, 12, 28, 9, 0, tzinfo=PARIS)


def test_window_keeps_a_moment_inside_it() -> None:
    window = Window(frozenset(range(1, 8)), time(9), time(18))
    moment = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert next_in_window(moment, window, PARIS) == moment
    early = datetime(2026, 11, 24, 5, 0, tzinfo=UTC)
    assert next_in_window(early, window, PARIS).astimezone(PARIS).time() == time(9)


def test_no_window_means_any_time() -> None:
    moment = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
    assert next_in_window(moment, None, PARIS) == moment


def test_exact_seconds_are_added_to_the_instant_across_a_dst_change() -> None:
    # 2026-03-29 02:00 Paris jumps to 03:00: one day of seconds is 24 real hours, not wall hours.
    start = datetime(2026, 3, 28, 10, 0, tzinfo=PARIS)
    assert add_duration(start, parse_duration("PT86400S"), PARIS) == datetime(
        2026, 3, 29, 9, 0, tzinfo=UTC
    )
