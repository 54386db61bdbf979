"""Claims and heartbeats on both backends: who may claim a job, when a claim is void, the fence.

Each `Store` here is one process: its own connection and a random instance id. A claim holds while
its process is registered; `instances.forget` (what a process does to one it found dead) voids it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator

import pytest

from bot.clock import FakeClock
from bot.config import GenerationMode
from bot.store import JobState, LeaseLost, NewJob, QuotaPolicy, Store

from .conftest import Target, new_job, raw_read, raw_write


@pytest.fixture
async def two(database: Target, clock: FakeClock) -> AsyncIterator[tuple[Store, Store]]:
    """Two stores on one database, as two processes would have, each registered."""
    policy = QuotaPolicy()
    a = await Store.open(database, clock=clock, policy=policy, owner="a")
    b = await Store.open(database, clock=clock, policy=policy, owner="b")
    await a.instances.register()
    await b.instances.register()
    yield a, b
    assert await a.check_invariants() == []
    await a.close()
    await b.close()


async def test_a_live_process_s_claim_holds(two: tuple[Store, Store], clock: FakeClock):
    """A job created claimed is its creator's; the other process can't claim it, however long it waits."""
    a, b = two
    job = await a.jobs.create(NewJob(user_id=1, guild_id=1, mode=GenerationMode.LITE), claimed=True)
    assert (job.claimed_by, job.lease_until) == ("a", None)
    await clock.advance(3600)  # no time runs out: only a's heartbeat, judged by others, decides
    assert await b.jobs.claimable() == []
    assert await b.jobs.claim([job.id]) == []
    assert [j.id for j in await a.jobs.claimable()] == [job.id]  # its own stay claimable by it


async def test_a_process_found_dead_loses_its_claims_and_is_fenced(two: tuple[Store, Store]):
    """b forgets a (its counter stood still): a's jobs are claimable, and a's transitions raise LeaseLost."""
    a, b = two
    job = await new_job(a)
    await a.jobs.claim([job.id])
    await a.jobs.transition(job.id, JobState.UPLOADING)
    seen = (await b.instances.beat()).beats["a"]
    assert await b.instances.forget({"a": seen}) == ["a"]
    assert [j.id for j in await b.jobs.claimable()] == [job.id]
    [taken] = await b.jobs.claim([job.id])
    assert taken.claimed_by == "b" and taken.state is JobState.UPLOADING
    with pytest.raises(LeaseLost) as lost:
        await a.jobs.transition(job.id, JobState.FAILED)
    assert lost.value.holder == "b"
    # a wakes: its heartbeat registers it again and tells it the job is b's now.
    beat = await a.instances.beat([job.id])
    assert beat.registered_again and beat.claims == {job.id: "b"}
    assert (await b.jobs.transition(job.id, JobState.FAILED)).state is JobState.FAILED


async def test_a_process_found_dead_changes_and_posts_nothing_even_before_its_jobs_are_taken(
    two: tuple[Store, Store],
):
    """Its claims are void the moment its row is deleted: a transition and the fence raise LeaseLost
    though nobody has claimed the job yet (the takeover comes a moment later)."""
    a, b = two
    job = await a.jobs.create(NewJob(user_id=1, guild_id=1, mode=GenerationMode.LITE), claimed=True)
    await a.jobs.transition(job.id, JobState.FETCHING)
    seen = (await b.instances.beat()).beats["a"]
    assert await b.instances.forget({"a": seen}) == ["a"]
    with pytest.raises(LeaseLost):
        await a.jobs.fence(job.id)
    with pytest.raises(LeaseLost):
        await a.jobs.transition(job.id, JobState.FAILED)
    after = await a.jobs.get(job.id)
    assert after is not None and (after.state, after.claimed_by) == (JobState.FETCHING, "a")
    assert not await a.instances.registered("a")  # the fence didn't register it again
    [taken] = await b.jobs.claim([job.id])
    assert taken.claimed_by == "b"


async def test_a_stale_process_cannot_write_a_job_s_fields_through_update(two: tuple[Store, Store]):
    """`update` is fenced like a state change: found dead, and again once the job is taken over, a
    process's update raises LeaseLost and changes nothing; the new holder's goes through."""
    a, b = two
    job = await a.jobs.create(NewJob(user_id=1, guild_id=1, mode=GenerationMode.LITE), claimed=True)
    written = await a.jobs.update(job.id, name="first")
    assert written == await a.jobs.get(job.id) and written.name == "first"  # the row as written
    seen = (await b.instances.beat()).beats["a"]
    assert await b.instances.forget({"a": seen}) == ["a"]
    with pytest.raises(LeaseLost):
        await a.jobs.update(job.id, project_id="stale", name="stale")
    [taken] = await b.jobs.claim([job.id])
    with pytest.raises(LeaseLost) as lost:
        await a.jobs.update(job.id, project_id="stale")
    assert lost.value.holder == "b"
    after = await b.jobs.get(job.id)
    assert after is not None and (after.project_id, after.name) == (None, "first")
    assert (await b.jobs.update(taken.id, project_id="p-b")).project_id == "p-b"
    nobodys = await a.jobs.create(NewJob(user_id=2, guild_id=1, mode=GenerationMode.LITE))
    assert (await a.jobs.update(nobodys.id, name="free")).name == "free"  # unclaimed: not fenced


async def test_the_fence_is_a_heartbeat_a_process_that_fenced_is_not_found_dead_on_an_older_count(
    two: tuple[Store, Store],
):
    """The fence bumps its process's counter in its own transaction: a count read before it can't void the claim."""
    a, b = two
    job = await a.jobs.create(NewJob(user_id=1, guild_id=1, mode=GenerationMode.LITE), claimed=True)
    seen = (await b.instances.beat()).beats["a"]
    fenced = await a.jobs.fence(job.id)
    assert (fenced.id, fenced.claimed_by) == (job.id, "a")
    assert await b.instances.forget({"a": seen}) == []
    assert await b.jobs.claim([job.id]) == []


async def test_the_fence_refuses_a_job_that_ended_or_another_process_holds_and_passes_an_unclaimed_one(
    two: tuple[Store, Store],
):
    """Posting is for the job's holder only, and never after the job ended."""
    a, b = two
    mine = await a.jobs.create(NewJob(user_id=1, guild_id=1, mode=GenerationMode.LITE), claimed=True)
    theirs = await b.jobs.create(NewJob(user_id=2, guild_id=1, mode=GenerationMode.LITE), claimed=True)
    nobodys = await a.jobs.create(NewJob(user_id=3, guild_id=1, mode=GenerationMode.LITE))
    with pytest.raises(LeaseLost) as held:
        await a.jobs.fence(theirs.id)
    assert held.value.holder == "b"
    assert (await a.jobs.fence(nobodys.id)).id == nobodys.id
    await a.jobs.transition(mine.id, JobState.CANCELED)
    with pytest.raises(LeaseLost):
        await a.jobs.fence(mine.id)


async def test_a_process_that_beat_since_it_was_seen_is_not_forgotten(two: tuple[Store, Store]):
    """Forgetting is compare-and-delete: a counter that moved means the process is alive after all."""
    a, b = two
    job = await a.jobs.create(NewJob(user_id=1, guild_id=1, mode=GenerationMode.LITE), claimed=True)
    seen = (await b.instances.beat()).beats["a"]
    await a.instances.beat()  # a was only slow
    assert await b.instances.forget({"a": seen}) == []
    assert await b.jobs.claim([job.id]) == []
    assert await b.instances.registered("a")


async def test_release_and_unregister_give_jobs_back_at_once(two: tuple[Store, Store]):
    """A clean stop: released jobs, and those of an unregistered process, are claimable at once."""
    a, b = two
    first = await a.jobs.create(NewJob(user_id=1, guild_id=1, mode=GenerationMode.LITE), claimed=True)
    second = await a.jobs.create(NewJob(user_id=2, guild_id=1, mode=GenerationMode.LITE), claimed=True)
    assert await a.jobs.release([first.id]) == 1
    assert [j.claimed_by for j in await b.jobs.claim([first.id, second.id])] == ["b"]
    await a.instances.unregister()
    assert [j.id for j in await b.jobs.claim([second.id])] == [second.id]


async def test_a_previous_version_s_claim_holds_until_its_lease_ends(two: tuple[Store, Store], clock: FakeClock):
    """During an upgrade an old process claims by host:pid with `lease_until`: honoured until it passes."""
    a, b = two
    job = await new_job(a)
    until = clock.now() + dt.timedelta(seconds=30)
    await raw_write(b, ("UPDATE jobs SET claimed_by = ?, lease_until = ? WHERE id = ?", ("host:7:abc", until, job.id)))
    assert await b.jobs.claim([job.id]) == []
    await clock.advance(31)
    assert [j.claimed_by for j in await b.jobs.claim([job.id])] == ["b"]


async def test_finished_jobs_are_never_claimed(two: tuple[Store, Store]):
    """Only unfinished jobs are claimable."""
    a, b = two
    job = await new_job(a)
    await a.jobs.transition(job.id, JobState.CANCELED)
    assert await b.jobs.claimable() == []
    assert await b.jobs.claim([job.id]) == []


async def test_the_heartbeat_brings_back_cancels_for_the_jobs_it_watches(two: tuple[Store, Store]):
    """A Cancel recorded by b reaches a with a's next heartbeat; finished jobs take no request."""
    a, b = two
    running = await a.jobs.create(NewJob(user_id=1, guild_id=1, mode=GenerationMode.LITE), claimed=True)
    other = await a.jobs.create(NewJob(user_id=2, guild_id=1, mode=GenerationMode.LITE), claimed=True)
    assert await b.jobs.request_cancel(running.id, 1)
    beat = await a.instances.beat([running.id, other.id])
    assert beat.cancels == {running.id: 1} and beat.claims == {running.id: "a", other.id: "a"}
    assert set(beat.beats) == {"a", "b"}
    await a.jobs.transition(other.id, JobState.CANCELED)
    assert not await b.jobs.request_cancel(other.id, 2)


async def test_a_queued_job_s_request_is_kept_only_while_it_waits(two: tuple[Store, Store]):
    """The stored request (attachment links) goes when the job leaves the queue; a leftover one is flagged."""
    a, _ = two
    job = await a.jobs.create(NewJob(user_id=1, guild_id=1, mode=GenerationMode.LITE), request='{"version":1}')
    stored = await a.jobs.stored_request(job.id)
    assert stored is not None and json.loads(stored) == {"version": 1}  # PostgreSQL keeps JSONB in its own form
    await a.jobs.transition(job.id, JobState.FETCHING)
    assert await a.jobs.stored_request(job.id) is None
    assert await raw_read(a, "SELECT request FROM jobs WHERE id = ?", job.id) == [(None,)]
    await raw_write(a, ("UPDATE jobs SET request = ? WHERE id = ?", ('{"version":1}', job.id)))
    assert await a.check_invariants() == [
        f"job {job.id} is fetching but still keeps its queued request (attachment links)"
    ]
    await raw_write(a, ("UPDATE jobs SET request = NULL WHERE id = ?", (job.id,)))


async def test_racing_claims_give_each_job_to_exactly_one_process(database: Target, clock: FakeClock):
    """Four stores claiming the same 100 unclaimed jobs at once: each job ends up with one owner."""
    policy = QuotaPolicy()
    stores = [await Store.open(database, clock=clock, policy=policy, owner=f"p{i}") for i in range(4)]
    try:
        for store in stores:
            await store.instances.register()
        jobs = [await new_job(stores[0], user_id=u) for u in range(1, 101)]
        ids = [j.id for j in jobs]
        won = await asyncio.gather(*(s.jobs.claim(ids) for s in stores for _ in range(3)))
        owners: dict[int, set[str]] = {}
        for records in won:
            for record in records:
                owners.setdefault(record.id, set()).add(str(record.claimed_by))
        assert sorted(owners) == ids
        # A store may re-claim its own job; no job was claimed by two stores.
        assert all(len(holders) == 1 for holders in owners.values()), owners
        final = {j.id: j.claimed_by for j in await stores[0].jobs.unfinished()}
        assert all(final[i] in owners[i] for i in ids)
    finally:
        for store in stores:
            await store.close()
