"""`store.usage`: a member's `Balance` and the usage chart's figures, against what the test wrote."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.config import QuotaWindow
from bot.store import Balance, EffectiveLimits, JobState, LedgerEntry, LedgerKind, LimitKind, QuotaPolicy, Store
from bot.store.daily import UsageRow, chart_days, daily_usage

from .conftest import GUILD, START, complete, reserved_job, walk

DAY = 24 * 3600.0


async def done(store: Store, job_id: int, charged: int) -> None:
    """A job rendered, charged `charged`, and delivered: it no longer counts as running."""
    await complete(store, job_id, charged)
    await walk(store, job_id, JobState.DELIVERING, JobState.DONE)


async def test_daily_figures_are_the_ledgers_sums(store: Store, clock: FakeClock) -> None:
    """Credits per UTC day by member are what the jobs were charged on the day they were made.

    Grants never count; a running job counts what it holds; the pool's remainder at today's end is
    what the member's balance says the pool has left, and today's total is the usage report's.
    """
    await store.limits.set_server_pool(GUILD, 900)
    expected: dict[tuple[dt.date, int], int] = defaultdict(int)
    plan = [(1, 40, 30), (2, 25, 25), (1, 60, 61)]  # member, held, charged (Magic Hour may charge more)
    for day in range(3):
        for member, held, charged in plan:
            job = await reserved_job(store, held + day, user_id=member)
            await done(store, job.id, charged + day)
            expected[(clock.now().date(), member)] += charged + day
        await store.quota.grant(GUILD, 1, 10)  # grants are allowance, never usage
        await clock.advance(DAY)
    running = await reserved_job(store, 33, user_id=2)  # today, still holding
    expected[(clock.now().date(), 2)] += 33

    daily = await store.usage.daily(GUILD)
    assert daily.days[-1] == clock.now().date() and len(daily.days) == 14
    for who, series in daily.by_member.items():
        assert who is not None
        for date, credits in zip(daily.days, series, strict=True):
            assert credits == expected.get((date, who), 0), (date, who)
    assert set(daily.by_member) == {1, 2}

    report = await store.quota.usage(GUILD)
    assert daily.totals[-1] == report.total.used == 33
    balance = await store.usage.balance(GUILD, 1)
    assert daily.pool_left is not None and daily.pool_left[-1] == balance.pool_left == 900 - 33
    yesterday = sum(expected[(daily.days[-2], m)] for m in (1, 2))
    assert daily.pool_left[-2] == 900 - yesterday
    assert (await store.usage.balance(GUILD, 2)).held == 33 and not running.terminal


def test_the_pool_line_follows_the_window_not_the_day() -> None:
    """With a weekly window, the pool's remainder falls day by day and comes back at the reset."""
    monday = dt.datetime(2026, 3, 9, tzinfo=dt.UTC)  # a Monday: weekly windows start then
    rows = [UsageRow(user_id=1, period_at=monday + dt.timedelta(days=d, hours=12), used=100) for d in range(10)]
    now = monday + dt.timedelta(days=9, hours=18)
    days = chart_days(now, QuotaWindow.WEEKLY, dt.time(0, 0), at_least=10)
    daily = daily_usage(rows, days, window=QuotaWindow.WEEKLY, reset_time=dt.time(0, 0), pool_limit=1000, now=now)
    assert daily.by_member[1] == (100,) * 10
    # Monday to Sunday the pool falls by 100 a day; the next Monday a new window starts at 1000.
    assert daily.pool_left == tuple(1000 - 100 * (i % 7 + 1) for i in range(10))


async def test_balance_lists_grants_and_take_backs_apart(store: Store) -> None:
    """A grant then a take-back: the member and the manager read both, not their difference."""
    await store.quota.grant(GUILD, 1, 100, by_user_id=9, note="contest")
    job = await reserved_job(store, 45)
    await done(store, job.id, 45)
    balance = await store.usage.balance(GUILD, 1)
    asked = balance.take_back(5000)
    assert asked == 1000 + 100 - 45  # everything unspent, not allowance plus grants
    await store.quota.grant(GUILD, 1, -asked, by_user_id=9)
    after = await store.usage.balance(GUILD, 1)
    assert (after.granted, after.taken_back, after.used, after.left, after.overdrawn) == (100, asked, 45, 0, 0)
    assert [(row.amount, row.by_user_id, row.note) for row in after.grants] == [(100, 9, "contest"), (-asked, 9, None)]
    totals = await store.usage.grant_totals(GUILD, after.window_start, after.resets_at)
    assert totals == {1: dataclasses.replace(totals[1], granted=100, taken_back=asked)}


async def test_grants_kept_after_a_member_deleted_their_data_still_count(store: Store) -> None:
    """A deleted member's grants of the running window stay theirs (under a token), without the note."""
    await store.quota.grant(GUILD, 1, 50, by_user_id=9, note="private reason")
    await store.delete_member_data(GUILD, 1)
    balance = await store.usage.balance(GUILD, 1)
    assert balance.granted == 50 and [(row.amount, row.note) for row in balance.grants] == [(50, None)]


NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def limits(**fields: object) -> EffectiveLimits:
    values: dict[str, object] = {
        "allowance": 600,
        "limit_kind": LimitKind.GLOBAL_DEFAULT,
        "granted": 0,
        "used": 0,
        "reserved": 0,
        "member_available": 600,
        "pool_limit": None,
        "pool_available": None,
        "budget_limit": None,
        "budget_available": None,
        "remaining": 600,
        "window_start": NOW,
        "resets_at": NOW + dt.timedelta(days=1),
        "active_jobs": 0,
        "max_active_jobs": 1,
        "guild": None,
    }
    values.update(fields)
    return EffectiveLimits(**values)  # type: ignore[arg-type]


def grant(amount: int) -> LedgerEntry:
    return LedgerEntry(1, LedgerKind.GRANT, None, 1, 1, None, amount, None, NOW, NOW, 9, None)


def test_a_balance_adds_up() -> None:
    """Allowance + granted - taken back - capped - used = what the allowance has left; rows must match."""
    capped = Balance.of(limits(granted=300, used=100, member_available=600, remaining=600), [grant(300)])
    assert (capped.capped, capped.own_left, capped.takeable) == (200, 600, 600)  # a ceiling of 700
    over = Balance.of(limits(used=650, member_available=-50, remaining=0), [])
    assert (over.own_left, over.overdrawn, over.takeable, over.left) == (-50, 50, 0, 0)
    pooled = Balance.of(limits(pool_limit=100, pool_available=-5, remaining=0), [])
    assert (pooled.pool_left, pooled.limited_by) == (0, LimitKind.SERVER_POOL)
    with pytest.raises(ValueError, match="add up"):
        Balance.of(limits(granted=10, member_available=610, remaining=610), [grant(5)])
    with pytest.raises(ValueError, match="positive"):
        over.take_back(0)


async def test_balance_follows_the_window(tmp_path: Path, clock: FakeClock) -> None:
    """Yesterday's grants and use are not today's: the balance is the current window's."""
    policy = QuotaPolicy(default_member_credits=100, max_active_jobs_per_member=1)
    async with await Store.open(tmp_path / "s.sqlite3", clock=clock, policy=policy) as store:
        await store.quota.grant(GUILD, 1, 20)
        assert (await store.usage.balance(GUILD, 1)).granted == 20
        await clock.advance(DAY)
        fresh = await store.usage.balance(GUILD, 1)
        assert (fresh.granted, fresh.left, fresh.grants) == (0, 100, ())
        assert fresh.window_start > START
