"""A server's credits per UTC day, by member, and what its pool had left at each day's end.

The figures behind the managers' usage chart and its CSV export, computed once from ledger rows so
the picture and the file can't disagree. Pure: `daily_usage` takes rows the store read
(`UsageQueries.daily`) and the window rules; nothing here touches the database or makes words.

A row counts on the UTC day of its `period_at`, the moment that decides its window (so a job's
settle counts on the day it was reserved, as in every other sum). The pool's line is the pool's
remainder at the end of each day: the pool per window minus what the server used in the window
running at that moment, up to it; today's pool is used for every day (past settings aren't kept).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from bot.config import QuotaWindow
from bot.store.windows import window_bounds

DAY = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One non-grant ledger row, as the daily figures need it: who, when it counts, how much it used."""

    user_id: int | None  # None for a deleted member (a token or no one)
    period_at: dt.datetime
    used: int  # the row's usage: minus its amount


@dataclass(frozen=True, slots=True)
class DailyUsage:
    """Credits used per UTC day, by member, over `days`; and the pool's remainder at each day's end."""

    days: tuple[dt.date, ...]
    by_member: dict[int | None, tuple[int, ...]]  # member (None: deleted members) -> credits per day
    pool_limit: int | None  # the pool per window; None: the server has none
    pool_left: tuple[int, ...] | None  # the pool's remainder at each day's end (never below 0); None: no pool

    @property
    def totals(self) -> tuple[int, ...]:
        """Every member's credits together, per day."""
        return tuple(sum(series[i] for series in self.by_member.values()) for i in range(len(self.days)))


def chart_days(now: dt.datetime, window: QuotaWindow, reset_time: dt.time, *, at_least: int = 14) -> list[dt.date]:
    """The UTC days a chart covers: the current window's, and at least the last `at_least` days."""
    today = now.astimezone(dt.UTC).date()
    start = window_bounds(now, window, reset_time)[0].astimezone(dt.UTC).date()
    first = min(start, today - dt.timedelta(days=at_least - 1))
    return [first + dt.timedelta(days=i) for i in range((today - first).days + 1)]


def rows_since(days: list[dt.date], window: QuotaWindow, reset_time: dt.time) -> dt.datetime:
    """The earliest `period_at` whose row the figures for `days` need (the first day's window start)."""
    return window_bounds(_midnight(days[0]), window, reset_time)[0]


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0, 0), tzinfo=dt.UTC)


def daily_usage(
    rows: Iterable[UsageRow],
    days: list[dt.date],
    *,
    window: QuotaWindow,
    reset_time: dt.time,
    pool_limit: int | None,
    now: dt.datetime,
) -> DailyUsage:
    """The figures for `days` from a server's non-grant rows since `rows_since(days, ...)`.

    The pool's remainder on today is taken now (the day hasn't ended); on earlier days at midnight.
    """
    rows = list(rows)
    index = {day: i for i, day in enumerate(days)}
    by_member: dict[int | None, list[int]] = {}
    for row in rows:
        i = index.get(row.period_at.astimezone(dt.UTC).date())
        if i is not None:
            by_member.setdefault(row.user_id, [0] * len(days))[i] += row.used
    pool_left: tuple[int, ...] | None = None
    if pool_limit is not None:
        ends = [min(_midnight(day) + DAY, now) for day in days]
        pool_left = tuple(
            max(0, pool_limit - _window_use(rows, end, window, reset_time, through=end == now)) for end in ends
        )
    ordered = dict(sorted(by_member.items(), key=lambda item: (-sum(item[1]), item[0] is None, item[0] or 0)))
    return DailyUsage(
        days=tuple(days),
        by_member={member: tuple(series) for member, series in ordered.items()},
        pool_limit=pool_limit,
        pool_left=pool_left,
    )


def _window_use(
    rows: list[UsageRow], end: dt.datetime, window: QuotaWindow, reset_time: dt.time, *, through: bool
) -> int:
    """What the server used in the window running at `end`, up to it.

    A day's end (midnight) belongs to the window before it: rows before it count. `through` (now)
    belongs to the window running now, as every balance counts it: rows up to and at it count.
    """
    if through:
        start = window_bounds(end, window, reset_time)[0]
        return sum(row.used for row in rows if start <= row.period_at <= end)
    start = window_bounds(end - dt.timedelta(microseconds=1), window, reset_time)[0]
    return sum(row.used for row in rows if start <= row.period_at < end)
