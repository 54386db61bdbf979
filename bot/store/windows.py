"""Quota windows: when the current one started and when it resets.

Pure functions on UTC datetimes. A window is half-open, `[start, end)`: at exactly the reset time
the new window has begun. Daily windows reset every day at `reset_time`, weekly ones on Monday at
`reset_time`, monthly ones on the 1st at `reset_time`. Everything is UTC, so there is no DST.
"""

from __future__ import annotations

import datetime as dt

from bot.config import QuotaWindow


def _check(now: dt.datetime, reset_time: dt.time) -> tuple[dt.datetime, dt.time]:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("window arithmetic needs a timezone-aware datetime")
    if reset_time.tzinfo is not None and reset_time.utcoffset() not in (None, dt.timedelta(0)):
        raise ValueError("quota reset times are UTC; give a naive or UTC time")
    return now.astimezone(dt.UTC), reset_time.replace(tzinfo=None)


def _at(day: dt.date, reset_time: dt.time) -> dt.datetime:
    return dt.datetime.combine(day, reset_time, tzinfo=dt.UTC)


def _add_months(day: dt.date, months: int) -> dt.date:
    """The first of the month `months` after `day`'s month (`day` must be a 1st)."""
    index = day.year * 12 + (day.month - 1) + months
    return dt.date(index // 12, index % 12 + 1, 1)


def window_bounds(now: dt.datetime, window: QuotaWindow, reset_time: dt.time) -> tuple[dt.datetime, dt.datetime]:
    """The UTC window `[start, end)` that contains `now`."""
    now, reset_time = _check(now, reset_time)
    window = QuotaWindow(window)  # a policy read from text carries "daily", which must not mean monthly
    today = now.date()
    if window is QuotaWindow.DAILY:
        start = _at(today, reset_time)
        if now < start:
            start -= dt.timedelta(days=1)
        return start, start + dt.timedelta(days=1)
    if window is QuotaWindow.WEEKLY:
        start = _at(today - dt.timedelta(days=today.weekday()), reset_time)
        if now < start:
            start -= dt.timedelta(days=7)
        return start, start + dt.timedelta(days=7)
    first = today.replace(day=1)
    start = _at(first, reset_time)
    if now < start:
        first = _add_months(first, -1)
        start = _at(first, reset_time)
    return start, _at(_add_months(first, 1), reset_time)


def next_reset(now: dt.datetime, window: QuotaWindow, reset_time: dt.time) -> dt.datetime:
    """When the window containing `now` ends (strictly after `now`)."""
    return window_bounds(now, window, reset_time)[1]
