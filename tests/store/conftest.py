"""Fixtures for the store tests: a fresh database file, a fake clock, a policy."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.config import GenerationMode
from bot.store import JobRecord, JobState, NewJob, QuotaPolicy, Reservation, Store

GUILD = 1111
OTHER_GUILD = 2222
# A Tuesday, mid-morning UTC: far from every reset boundary unless a test moves the clock.
START = dt.datetime(2026, 3, 10, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
def clock() -> FakeClock:
    """A clock that moves only when a test says so."""
    return FakeClock(START)


@pytest.fixture
def policy() -> QuotaPolicy:
    """A daily window resetting at midnight UTC, 1000 credits each, one active job."""
    return QuotaPolicy(default_member_credits=1000, max_active_jobs_per_member=1)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where this test's database lives."""
    return tmp_path / "data" / "store.sqlite3"


@pytest.fixture
async def store(db_path: Path, clock: FakeClock, policy: QuotaPolicy) -> AsyncIterator[Store]:
    """An open store on a fresh file."""
    async with await Store.open(db_path, clock=clock, policy=policy) as opened:
        yield opened
        assert await opened.check_invariants() == []


async def new_job(
    store: Store, *, user_id: int = 1, guild_id: int | None = GUILD, mode: GenerationMode = GenerationMode.STANDARD
) -> JobRecord:
    """A fresh job in `received`."""
    return await store.jobs.create(NewJob(user_id=user_id, guild_id=guild_id, channel_id=5, mode=mode))


# From a fresh job to a completed render: the states `walk` passes through, in order.
TO_RENDERED = (JobState.UPLOADING, JobState.CREATING, JobState.SUBMITTED)


async def walk(store: Store, job_id: int, *states: JobState) -> JobRecord:
    """Move a job through `states` in order; return the last record."""
    record = await store.jobs.get(job_id)
    assert record is not None
    for state in states:
        record = await store.jobs.transition(job_id, state)
    return record


async def complete(store: Store, job_id: int, charged: int) -> JobRecord:
    """Take a job from received to downloading: its render completed, charging `charged` (a settle)."""
    await walk(store, job_id, *TO_RENDERED)
    return await store.jobs.transition(job_id, JobState.DOWNLOADING, charged=charged)


async def reserved_job(
    store: Store, amount: int, *, user_id: int = 1, guild_id: int | None = GUILD, roles: tuple[int, ...] = ()
) -> JobRecord:
    """A fresh job holding `amount` credits (the reservation must succeed)."""
    job = await new_job(store, user_id=user_id, guild_id=guild_id)
    result = await store.quota.reserve(job.id, guild_id=guild_id, user_id=user_id, role_ids=list(roles), amount=amount)
    assert isinstance(result, Reservation), result
    return job
