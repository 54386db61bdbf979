"""Ledger entries say which way they move credits, so no caller reads a sign."""

from __future__ import annotations

from bot.store import Direction, JobState, Store

from .conftest import GUILD, reserved_job


async def test_entries_say_in_or_out(store: Store):
    """A reservation is out, its refund in, a grant in, credits taken back out; `credits` is never negative."""
    job = await reserved_job(store, 40)
    await store.jobs.transition(job.id, JobState.FAILED)
    given = await store.quota.grant(GUILD, 1, 25)
    taken = await store.quota.grant(GUILD, 1, -10)
    assert given is not None and taken is not None
    entries = [*await store.quota.entries(job.id), given, taken]
    assert [(e.kind.value, e.direction, e.credits) for e in entries] == [
        ("reserve", Direction.OUT, 40),
        ("refund", Direction.IN, 40),
        ("grant", Direction.IN, 25),
        ("grant", Direction.OUT, 10),
    ]
