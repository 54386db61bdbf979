"""Job leases on both backends: claim, renew, release, takeover after expiry, and the fence."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import pytest

from bot.clock import FakeClock
from bot.store import JobState, LeaseLost, QuotaPolicy, Store

from .conftest import Target, new_job

LEASE = 30.0


@pytest.fixture
async def two(database: Target, clock: FakeClock) -> AsyncIterator[tuple[Store, Store]]:
    """Two stores on one database, as two processes would have, with their own names."""
    policy = QuotaPolicy()
    a = await Store.open(database, clock=clock, policy=policy, owner="a")
    b = await Store.open(database, clock=clock, policy=policy, owner="b")
    yield a, b
    assert await a.check_invariants() == []
    await a.close()
    await b.close()


async def test_a_job_created_with_a_lease_is_its_creators(two: tuple[Store, Store], clock: FakeClock):
    """`create(lease_seconds=...)` claims the job; the other process cannot claim it while the lease runs."""
    a, b = two
    job = await new_job(a)  # unclaimed until claimed
    claimed = await a.jobs.claim([job.id], LEASE)
    assert [(j.id, j.claimed_by, j.lease_until) for j in claimed] == [
        (job.id, "a", clock.now() + dt.timedelta(seconds=LEASE))
    ]
    assert await b.jobs.claimable() == []
    assert await b.jobs.claim([job.id], LEASE) == []
    assert [j.id for j in await a.jobs.claimable()] == [job.id]  # its own stay claimable by it


async def test_an_expired_lease_is_taken_over_and_the_old_owner_is_fenced(two: tuple[Store, Store], clock: FakeClock):
    """Past the lease, another process claims the job; the old owner's transitions then raise LeaseLost."""
    a, b = two
    job = await new_job(a)
    await a.jobs.claim([job.id], LEASE)
    await a.jobs.transition(job.id, JobState.UPLOADING)
    await clock.advance(LEASE + 1)
    assert [j.id for j in await b.jobs.claimable()] == [job.id]
    [taken] = await b.jobs.claim([job.id], LEASE)
    assert taken.claimed_by == "b" and taken.state is JobState.UPLOADING
    with pytest.raises(LeaseLost) as lost:
        await a.jobs.transition(job.id, JobState.FAILED)
    assert lost.value.holder == "b"
    assert await a.jobs.renew([job.id], LEASE) == set()
    assert (await b.jobs.transition(job.id, JobState.FAILED)).state is JobState.FAILED


async def test_renewing_keeps_a_job_and_release_gives_it_back(two: tuple[Store, Store], clock: FakeClock):
    """Renewed in time, a lease never expires; released, the job is claimable at once."""
    a, b = two
    job = await new_job(a)
    await a.jobs.claim([job.id], LEASE)
    for _ in range(5):
        await clock.advance(LEASE / 2)
        assert await a.jobs.renew([job.id], LEASE) == {job.id}
        assert await b.jobs.claim([job.id], LEASE) == []
    assert await a.jobs.release([job.id]) == 1
    assert [j.claimed_by for j in await b.jobs.claim([job.id], LEASE)] == ["b"]


async def test_finished_jobs_are_never_claimed(two: tuple[Store, Store], clock: FakeClock):
    """Only unfinished jobs are claimable."""
    a, b = two
    job = await new_job(a)
    await a.jobs.transition(job.id, JobState.CANCELED)
    assert await b.jobs.claimable() == []
    assert await b.jobs.claim([job.id], LEASE) == []


async def test_racing_claims_give_each_job_to_exactly_one_process(database: Target, clock: FakeClock):
    """Four stores claiming the same 100 expired jobs at once: each job ends up with one owner."""
    policy = QuotaPolicy()
    stores = [await Store.open(database, clock=clock, policy=policy, owner=f"p{i}") for i in range(4)]
    try:
        jobs = [await new_job(stores[0], user_id=u) for u in range(1, 101)]
        ids = [j.id for j in jobs]
        won = await asyncio.gather(*(s.jobs.claim(ids, LEASE) for s in stores for _ in range(3)))
        owners: dict[int, set[str]] = {}
        for records in won:
            for record in records:
                owners.setdefault(record.id, set()).add(str(record.claimed_by))
        assert sorted(owners) == ids
        # A store may re-claim its own job (a renewal); no job was claimed by two stores.
        assert all(len(holders) == 1 for holders in owners.values()), owners
        final = {j.id: j.claimed_by for j in await stores[0].jobs.unfinished()}
        assert all(final[i] in owners[i] for i in ids)
    finally:
        for store in stores:
            await store.close()
