"""Fixtures for the store tests: a fresh database file, a fake clock, a policy."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.config import GenerationMode
from bot.store import JobRecord, NewJob, QuotaPolicy, Store

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
