"""Quota windows at their boundaries."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.config import QuotaWindow
from bot.store.windows import next_reset, window_bounds

UTC = dt.UTC
MIDNIGHT = dt.time(0, 0)


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_daily_exactly_at_reset_starts_a_new_window():
    """At the reset instant the new window has begun."""
    assert window_bounds(at(2026, 3, 10), QuotaWindow.DAILY, MIDNIGHT) == (at(2026, 3, 10), at(2026, 3, 11))


def test_daily_one_second_before_reset_is_still_the_old_window():
    """One second before the reset belongs to the previous day's window."""
    now = at(2026, 3, 10, 23, 59, 59)
    assert window_bounds(now, QuotaWindow.DAILY, MIDNIGHT) == (at(2026, 3, 10), at(2026, 3, 11))
    assert next_reset(now, QuotaWindow.DAILY, MIDNIGHT) == at(2026, 3, 11)


def test_daily_with_a_reset_time_during_the_day():
    """A 06:30 reset splits the calendar day."""
    reset = dt.time(6, 30)
    assert window_bounds(at(2026, 3, 10, 6, 29, 59), QuotaWindow.DAILY, reset) == (
        at(2026, 3, 9, 6, 30),
        at(2026, 3, 10, 6, 30),
    )
    assert window_bounds(at(2026, 3, 10, 6, 30), QuotaWindow.DAILY, reset) == (
        at(2026, 3, 10, 6, 30),
        at(2026, 3, 11, 6, 30),
    )


def test_daily_window_crosses_month_and_year_ends():
    """The last day of a year resets into the next year."""
    assert next_reset(at(2026, 12, 31, 12), QuotaWindow.DAILY, MIDNIGHT) == at(2027, 1, 1)
    reset = dt.time(12, 0)
    assert window_bounds(at(2027, 1, 1, 11), QuotaWindow.DAILY, reset) == (at(2026, 12, 31, 12), at(2027, 1, 1, 12))


def test_weekly_resets_on_monday():
    """Weekly windows run Monday to Monday at the reset time."""
    monday = at(2026, 3, 9)  # a Monday
    assert monday.weekday() == 0
    assert window_bounds(monday, QuotaWindow.WEEKLY, MIDNIGHT) == (monday, at(2026, 3, 16))
    assert window_bounds(at(2026, 3, 8, 23, 59, 59), QuotaWindow.WEEKLY, MIDNIGHT) == (at(2026, 3, 2), monday)
    assert window_bounds(at(2026, 3, 12, 15), QuotaWindow.WEEKLY, MIDNIGHT) == (monday, at(2026, 3, 16))


def test_weekly_monday_before_the_reset_time_is_last_week():
    """On Monday before the reset time the previous week still runs."""
    reset = dt.time(9, 0)
    assert window_bounds(at(2026, 3, 9, 8, 59, 59), QuotaWindow.WEEKLY, reset) == (
        at(2026, 3, 2, 9),
        at(2026, 3, 9, 9),
    )


def test_weekly_across_a_year_end():
    """A week that spans New Year is one window."""
    assert window_bounds(at(2027, 1, 1), QuotaWindow.WEEKLY, MIDNIGHT) == (at(2026, 12, 28), at(2027, 1, 4))


def test_monthly_resets_on_the_first():
    """Monthly windows run from the 1st to the 1st."""
    assert window_bounds(at(2026, 1, 31, 23, 59, 59), QuotaWindow.MONTHLY, MIDNIGHT) == (at(2026, 1, 1), at(2026, 2, 1))
    assert window_bounds(at(2026, 2, 1), QuotaWindow.MONTHLY, MIDNIGHT) == (at(2026, 2, 1), at(2026, 3, 1))
    assert next_reset(at(2026, 4, 30, 23), QuotaWindow.MONTHLY, MIDNIGHT) == at(2026, 5, 1)


def test_monthly_february_in_a_leap_year():
    """29 February 2028 is still February's window."""
    assert window_bounds(at(2028, 2, 29, 23, 59, 59), QuotaWindow.MONTHLY, MIDNIGHT) == (
        at(2028, 2, 1),
        at(2028, 3, 1),
    )


def test_monthly_first_before_reset_time_belongs_to_last_month_and_year():
    """1 January before the reset time is still December's window."""
    reset = dt.time(8, 0)
    assert window_bounds(at(2027, 1, 1, 7, 59, 59), QuotaWindow.MONTHLY, reset) == (
        at(2026, 12, 1, 8),
        at(2027, 1, 1, 8),
    )
    assert next_reset(at(2026, 12, 15), QuotaWindow.MONTHLY, reset) == at(2027, 1, 1, 8)


@pytest.mark.parametrize("window", list(QuotaWindow))
def test_next_reset_is_always_after_now_and_start_not_after(window: QuotaWindow):
    """Every instant lies in `[start, end)` across a spread of moments."""
    moment = at(2026, 1, 1)
    for _ in range(400):
        start, end = window_bounds(moment, window, dt.time(3, 15))
        assert start <= moment < end
        moment += dt.timedelta(hours=23, minutes=7, seconds=13)


def test_other_time_zones_are_converted_to_utc():
    """An aware non-UTC `now` is the same instant in UTC."""
    paris = dt.timezone(dt.timedelta(hours=1))
    now = dt.datetime(2026, 3, 10, 0, 30, tzinfo=paris)  # 23:30 UTC the day before
    assert window_bounds(now, QuotaWindow.DAILY, MIDNIGHT) == (at(2026, 3, 9), at(2026, 3, 10))


def test_naive_now_and_non_utc_reset_time_are_rejected():
    """Window arithmetic refuses ambiguous times."""
    with pytest.raises(ValueError, match="timezone-aware"):
        window_bounds(dt.datetime(2026, 3, 10), QuotaWindow.DAILY, MIDNIGHT)  # noqa: DTZ001
    with pytest.raises(ValueError, match="UTC"):
        window_bounds(at(2026, 3, 10), QuotaWindow.DAILY, dt.time(0, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))))
    assert window_bounds(at(2026, 3, 10), QuotaWindow.DAILY, dt.time(0, 0, tzinfo=UTC))[0] == at(2026, 3, 10)
