"""Races: many tasks, and several connections, reserving against one allowance at once."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.store import (
    InvalidTransition,
    JobState,
    LedgerKind,
    LimitKind,
    QuotaPolicy,
    Refusal,
    Reservation,
    Store,
    StoreBusy,
)
from bot.store.db import Connection, patient

from .conftest import GUILD, Target, new_job, no_open_transaction

ALLOWANCE = 1000
AMOUNT = 7  # 1000 // 7 = 142 reservations fit, with 6 credits left over


async def _race(stores: list[Store], tasks: int, *, user_id: int = 1) -> list[Reservation | Refusal]:
    """Create `tasks` jobs, then reserve for all of them at once, spread over `stores`."""
    jobs = [await new_job(stores[0], user_id=user_id) for _ in range(tasks)]
    # All coroutines are created before any runs, so every reservation is in flight at once.
    calls = [
        stores[i % len(stores)].quota.reserve(job.id, guild_id=GUILD, user_id=user_id, role_ids=[], amount=AMOUNT)
        for i, job in enumerate(jobs)
    ]
    return list(await asyncio.gather(*calls))


async def _ledger_reserved(store: Store, user_id: int = 1) -> int:
    entries = await store.quota.member_entries(GUILD, user_id)
    return -sum(e.amount for e in entries if e.kind is LedgerKind.RESERVE)


@pytest.fixture
def many_active() -> QuotaPolicy:
    """Only the credit allowance binds: the active-job limit is out of the way."""
    return QuotaPolicy(default_member_credits=ALLOWANCE, max_active_jobs_per_member=10_000)


async def test_200_tasks_on_one_store_never_overspend(database: Target, clock: FakeClock, many_active: QuotaPolicy):
    """200 concurrent reservations grant exactly what fits, and the ledger agrees."""
    async with await Store.open(database, clock=clock, policy=many_active) as store:
        results = await _race([store], 200)
        granted = [r for r in results if isinstance(r, Reservation)]
        refused = [r for r in results if isinstance(r, Refusal)]
        assert len(granted) == ALLOWANCE // AMOUNT
        assert sum(r.amount for r in granted) == await _ledger_reserved(store) == 142 * AMOUNT
        assert all(r.limit is LimitKind.GLOBAL_DEFAULT and r.available == ALLOWANCE % AMOUNT for r in refused)
        limits = await store.quota.limits(GUILD, 1)
        assert limits.used == limits.reserved == sum(r.amount for r in granted) <= ALLOWANCE
        assert sorted(r.remaining for r in granted) == [ALLOWANCE - AMOUNT * n for n in range(142, 0, -1)]
        assert await store.check_invariants() == []


async def test_200_tasks_on_four_connections_never_overspend(
    database: Target, clock: FakeClock, many_active: QuotaPolicy
):
    """The same race across four stores (four SQLite connections) on one file."""
    stores = [await Store.open(database, clock=clock, policy=many_active) for _ in range(4)]
    try:
        results = await _race(stores, 200)
        granted = [r for r in results if isinstance(r, Reservation)]
        assert len(granted) == ALLOWANCE // AMOUNT
        for store in stores:
            assert await _ledger_reserved(store) == sum(r.amount for r in granted)
        assert await stores[0].check_invariants() == []
    finally:
        for store in stores:
            await store.close()


async def test_active_job_limit_holds_under_a_race(database: Target, clock: FakeClock):
    """With three active jobs allowed, exactly three of 200 simultaneous requests get in."""
    policy = QuotaPolicy(default_member_credits=100_000, max_active_jobs_per_member=3)
    stores = [await Store.open(database, clock=clock, policy=policy) for _ in range(2)]
    try:
        results = await _race(stores, 200)
        assert sum(isinstance(r, Reservation) for r in results) == 3
        assert {r.limit for r in results if isinstance(r, Refusal)} == {LimitKind.ACTIVE_JOBS}
    finally:
        for store in stores:
            await store.close()


async def test_racing_transitions_close_credits_once(database: Target, clock: FakeClock):
    """Completing, failing and canceling one job from two connections at once: exactly one wins."""
    policy = QuotaPolicy(default_member_credits=1000)
    stores = [await Store.open(database, clock=clock, policy=policy) for _ in range(2)]
    try:
        job = await new_job(stores[0])
        await stores[0].quota.reserve(job.id, guild_id=GUILD, user_id=1, role_ids=[], amount=100)
        for state in (JobState.UPLOADING, JobState.CREATING, JobState.SUBMITTED):
            await stores[0].jobs.transition(job.id, state)

        async def attempt(i: int) -> JobState | None:
            store = stores[i % 2]
            to = (JobState.DOWNLOADING, JobState.FAILED, JobState.CANCELED)[i % 3]
            try:
                await store.jobs.transition(job.id, to, charged=60 if to is JobState.DOWNLOADING else None)
            except InvalidTransition:
                return None
            return to

        outcomes = await asyncio.gather(*(attempt(i) for i in range(60)))
        winners = [o for o in outcomes if o is not None]
        assert len(winners) == 1 or (winners[0] is JobState.DOWNLOADING and len(winners) == 2)
        closes = [e for e in await stores[1].quota.entries(job.id) if e.kind in (LedgerKind.SETTLE, LedgerKind.REFUND)]
        assert len(closes) == 1
        limits = await stores[0].quota.limits(GUILD, 1)
        assert limits.used == (60 if closes[0].kind is LedgerKind.SETTLE else 0)
        assert await stores[0].check_invariants() == []
    finally:
        for store in stores:
            await store.close()


async def test_racing_top_ups_never_overspend(database: Target, clock: FakeClock):
    """Top-ups of many jobs racing over two connections stay within the member's allowance."""
    policy = QuotaPolicy(default_member_credits=ALLOWANCE, max_active_jobs_per_member=10_000)
    stores = [await Store.open(database, clock=clock, policy=policy) for _ in range(2)]
    try:
        results = await _race(stores, 50)
        held = [r for r in results if isinstance(r, Reservation)]
        assert len(held) == 50  # 350 of 1000
        for r in held:
            for state in (JobState.UPLOADING, JobState.CREATING):
                await stores[0].jobs.transition(r.job_id, state)
        tops = await asyncio.gather(*(stores[i % 2].quota.top_up(r.job_id, AMOUNT + 20) for i, r in enumerate(held)))
        granted = [t for t in tops if isinstance(t, Reservation)]
        assert len(granted) == (ALLOWANCE - 50 * AMOUNT) // 20
        assert (await stores[0].quota.limits(GUILD, 1)).used == 50 * AMOUNT + 20 * len(granted) <= ALLOWANCE
        assert await stores[1].check_invariants() == []
    finally:
        for store in stores:
            await store.close()


async def test_cancelled_callers_never_leave_a_transaction_open(store: Store):
    """Cancelling callers mid-write leaves every transaction complete and the store usable."""
    jobs = [await new_job(store, user_id=u) for u in range(1, 41)]
    tasks = [
        asyncio.create_task(store.quota.reserve(job.id, guild_id=GUILD, user_id=job.user_id, role_ids=[], amount=10))
        for job in jobs
    ]
    # Yield a few times so some reservations are mid-transaction when they are cancelled.
    for _ in range(3):
        await asyncio.sleep(0)
    for task in tasks[::2]:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert any(isinstance(r, asyncio.CancelledError) for r in results)
    # Whatever the cancelled callers never saw still happened in full (or not at all).
    for job in jobs:
        entries = await store.quota.entries(job.id)
        assert len(entries) in (0, 1)
        await store.jobs.transition(job.id, JobState.CANCELED)
    assert await store.check_invariants() == []
    assert no_open_transaction(store)


async def test_a_writer_holding_the_lock_too_long_gives_store_busy(sqlite_path: Path, clock: FakeClock):
    """SQLite: past the busy timeout a write fails with StoreBusy and leaves the store usable."""
    policy = QuotaPolicy()
    async with await Store.open(sqlite_path, clock=clock, policy=policy, busy_timeout_ms=50) as store:
        job = await new_job(store)
        other = sqlite3.connect(sqlite_path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another process's write transaction, never finishing
            with pytest.raises(StoreBusy):
                await store.quota.reserve(job.id, guild_id=GUILD, user_id=1, role_ids=[], amount=10)
            assert (await store.jobs.get(job.id)) == job  # reads still work in WAL mode
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert isinstance(
            await store.quota.reserve(job.id, guild_id=GUILD, user_id=1, role_ids=[], amount=10), Reservation
        )


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_busy_pool_is_a_queue_not_an_outage(database: Target, clock: FakeClock):
    """Every connection busy for longer than a caller's patience: the caller waits its turn.

    Its patience is for a database that went away; many calls at once (a burst of members) only
    queue for a connection, and must not be told the database is unavailable.
    """
    store = await Store.open(database, clock=clock, policy=QuotaPolicy(), pool_size=1)
    holding, release = asyncio.Event(), asyncio.Event()

    async def hold(conn: Connection) -> None:
        holding.set()
        await release.wait()

    try:
        holder = asyncio.create_task(store._db.read(hold))
        await holding.wait()
        with patient(0.1):
            waiting = asyncio.create_task(store.jobs.unfinished())
        # Real time, on purpose: past the caller's patience and the shortest try for a connection.
        await asyncio.sleep(1.5)
        assert not waiting.done()
        release.set()
        await holder
        assert await waiting == []
    finally:
        release.set()
        await store.close()
