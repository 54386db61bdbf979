"""The ledger's running totals: kept for one window rule, recounted for another, proven by `check_invariants`."""

from __future__ import annotations

import dataclasses
import datetime as dt

from bot.clock import FakeClock
from bot.config import QuotaWindow
from bot.store import JobState, QuotaPolicy, Store
from bot.store.windows import window_bounds

from .conftest import GUILD, Target, raw_read, raw_write, reserved_job

POLICY = QuotaPolicy(default_member_credits=1000, bot_budget_credits=5000, max_active_jobs_per_member=10)
WEEKLY = dataclasses.replace(POLICY, window=QuotaWindow.WEEKLY, reset_time=dt.time(6, 30))


async def _rule(store: Store) -> str:
    [(key,)] = await raw_read(store, "SELECT window_key FROM ledger_totals_window")
    return str(key)


async def test_a_new_window_rule_recounts_the_totals_once(database: Target, clock: FakeClock):
    """Totals kept for daily windows are recounted from the ledger when the bot's window becomes weekly."""
    async with await Store.open(database, clock=clock, policy=POLICY) as store:
        first = await reserved_job(store, 100)
        await store.jobs.transition(first.id, JobState.FAILED)
        await reserved_job(store, 40)
        await clock.advance(86_400)  # the next day: a new daily window, the same weekly one
        await reserved_job(store, 30)
        assert await _rule(store) == "daily 00:00:00"
    async with await Store.open(database, clock=clock, policy=WEEKLY) as store:
        assert (await store.quota.limits(GUILD, 1)).used == 70  # summed from the ledger meanwhile
        assert await store.quota.ensure_totals() is True
        assert await store.quota.ensure_totals() is False
        assert await _rule(store) == "weekly 06:30:00"
        limits = await store.quota.limits(GUILD, 1)
        assert (limits.used, limits.reserved) == (70, 70)
        await reserved_job(store, 5)
        assert await store.check_invariants() == []


async def test_processes_with_different_rules_stay_right(database: Target, clock: FakeClock):
    """A process whose rule is not the totals' sums the ledger, and its writes keep the totals right."""
    async with (
        await Store.open(database, clock=clock, policy=POLICY) as daily,
        await Store.open(database, clock=clock, policy=WEEKLY) as weekly,
    ):
        await reserved_job(daily, 100)
        await clock.advance(86_400)
        await reserved_job(weekly, 10)  # recounts the totals for weekly windows
        assert await _rule(daily) == "weekly 06:30:00"
        await reserved_job(daily, 20)
        assert (await daily.quota.limits(GUILD, 1)).used == 30  # today only, summed from the ledger
        assert (await weekly.quota.limits(GUILD, 1)).used == 130  # the week, from the totals
        assert await daily.check_invariants() == []


async def test_a_wrong_total_is_reported(database: Target, clock: FakeClock):
    """A total changed behind the store's back is named, with what the ledger says."""
    async with await Store.open(database, clock=clock, policy=POLICY) as store:
        await reserved_job(store, 100)
        await raw_write(store, ("UPDATE ledger_totals SET used = used + 1 WHERE scope = 'bot'", ()))
        start = window_bounds(clock.now(), QuotaWindow.DAILY, dt.time(0))[0]
        assert await store.check_invariants() == [
            f"running total used of bot for the window from {start.isoformat()} is 101, but its ledger rows sum to 100"
        ]


async def test_a_reservation_reads_the_totals(database: Target, clock: FakeClock):
    """With the totals kept, limits and reservations go by what they say, not by a sum of rows."""
    async with await Store.open(database, clock=clock, policy=POLICY) as store:
        await reserved_job(store, 100)
        await raw_write(store, ("UPDATE ledger_totals SET used = used + 900 WHERE scope = ?", (f"member:{GUILD}:1",)))
        assert (await store.quota.limits(GUILD, 1)).used == 1000


def test_a_window_given_as_text_is_that_window():
    """A policy read from text ("daily") gets daily windows, not the monthly fallback."""
    at = dt.datetime(2026, 3, 10, 9, 30, tzinfo=dt.UTC)
    assert window_bounds(at, "daily", dt.time(0)) == window_bounds(at, QuotaWindow.DAILY, dt.time(0))  # type: ignore[arg-type]
