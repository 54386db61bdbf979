"""Top-ups: a create answer that costs more than the estimate, held within the same limits."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.clock import FakeClock
from bot.store import JobNotActive, JobState, LedgerKind, LimitKind, NoReservation, Refusal, Reservation, Store

from .conftest import GUILD, complete, new_job, reserved_job, walk

MIDNIGHT_AFTER_START = dt.datetime(2026, 3, 11, tzinfo=dt.UTC)


async def creating(store: Store, amount: int, *, user_id: int = 1, roles: tuple[int, ...] = ()) -> int:
    job = await reserved_job(store, amount, user_id=user_id, roles=roles)
    await walk(store, job.id, JobState.UPLOADING, JobState.CREATING)
    return job.id


async def test_top_up_raises_the_hold_and_counts_as_usage(store: Store):
    """A top-up writes one `topup` row for the increase; the job now holds the total."""
    job_id = await creating(store, 100)
    result = await store.quota.top_up(job_id, 160)
    assert isinstance(result, Reservation)
    assert (result.amount, result.already_reserved, result.remaining, result.resets_at) == (
        160,
        False,
        840,
        MIDNIGHT_AFTER_START,
    )
    entries = await store.quota.entries(job_id)
    assert [(e.kind, e.amount) for e in entries] == [(LedgerKind.RESERVE, -100), (LedgerKind.TOPUP, -60)]
    assert entries[1].period_at == entries[0].period_at
    limits = await store.quota.limits(GUILD, 1)
    assert (limits.used, limits.reserved) == (160, 160)
    assert (await store.jobs.get(job_id)).estimated_credits == 160  # type: ignore[union-attr]
    # A second top-up adds only the difference; a smaller or equal amount is a no-op.
    assert isinstance(await store.quota.top_up(job_id, 200), Reservation)
    for to in (200, 150, 0):
        same = await store.quota.top_up(job_id, to)
        assert isinstance(same, Reservation) and (same.amount, same.already_reserved) == (200, True)
    assert [e.amount for e in await store.quota.entries(job_id)] == [-100, -60, -40]


async def test_top_up_is_refused_by_any_credit_limit_and_writes_nothing(store: Store):
    """The increase must fit the member's allowance, the pool and the budget."""
    await store.limits.set_server_pool(GUILD, 500)
    job_id = await creating(store, 300)
    await reserved_job(store, 150, user_id=2)
    refused = await store.quota.top_up(job_id, 400)
    assert refused == Refusal(LimitKind.SERVER_POOL, 50, 100, MIDNIGHT_AFTER_START)
    assert [e.kind for e in await store.quota.entries(job_id)] == [LedgerKind.RESERVE]
    assert isinstance(await store.quota.top_up(job_id, 350), Reservation)  # exactly what is left


async def test_top_up_ignores_the_active_job_limit(store: Store):
    """The job already holds its slot: a member at their active-job limit can still top up."""
    job_id = await creating(store, 100)
    assert (await store.quota.limits(GUILD, 1)).active_jobs == 1  # the limit is 1
    assert isinstance(await store.quota.top_up(job_id, 150), Reservation)


async def test_top_up_uses_the_roles_recorded_at_reserve(store: Store):
    """The allowance a top-up is checked against is the one the reservation was checked against."""
    await store.limits.set_server_default(GUILD, 100)
    await store.limits.set_role_limit(GUILD, 10, 500)
    job_id = await creating(store, 80, roles=(10,))
    assert isinstance(await store.quota.top_up(job_id, 300), Reservation)  # above the server default
    refused = await store.quota.top_up(job_id, 600)
    assert isinstance(refused, Refusal) and (refused.limit, refused.available) == (LimitKind.ROLE, 200)
    refused = await store.quota.top_up(job_id, 400, role_ids=[])
    assert isinstance(refused, Refusal) and refused.limit is LimitKind.SERVER_DEFAULT


async def test_settle_and_refund_count_against_the_total_held(store: Store):
    """Closing a topped-up job gives back (or charges) against reservation plus top-ups."""
    settled = await creating(store, 100, user_id=1)
    refunded = await creating(store, 100, user_id=2)
    for job_id in (settled, refunded):
        assert isinstance(await store.quota.top_up(job_id, 130), Reservation)
    await store.jobs.transition(settled, JobState.SUBMITTED)
    await store.jobs.transition(settled, JobState.DOWNLOADING, charged=125)
    await store.jobs.transition(refunded, JobState.FAILED)
    assert [e.amount for e in await store.quota.entries(settled)][-1] == 5
    assert [e.amount for e in await store.quota.entries(refunded)][-1] == 130
    assert (await store.quota.limits(GUILD, 1)).used == 125
    assert (await store.quota.limits(GUILD, 2)).used == 0
    assert await store.check_invariants() == []


async def test_top_up_needs_an_open_reservation_on_a_live_job(store: Store):
    """No reservation, a closed one, or a finished job: errors, nothing written."""
    bare = await new_job(store)
    with pytest.raises(NoReservation):
        await store.quota.top_up(bare.id, 10)
    job = await reserved_job(store, 50, user_id=2)
    await complete(store, job.id, 50)
    with pytest.raises(NoReservation):
        await store.quota.top_up(job.id, 100)
    await store.jobs.transition(job.id, JobState.FAILED)
    with pytest.raises(JobNotActive):
        await store.quota.top_up(job.id, 100)
    with pytest.raises(ValueError):
        await store.quota.top_up(bare.id, -1)


async def test_a_top_up_after_the_reset_counts_in_the_reservations_window(store: Store, clock: FakeClock):
    """Reserved at 23:59, topped up at 00:01: the top-up is checked against and counts in yesterday."""
    await clock.advance((MIDNIGHT_AFTER_START - clock.now()).total_seconds() - 60)
    job_id = await creating(store, 900)
    await clock.advance(120)
    refused = await store.quota.top_up(job_id, 1100)  # yesterday has 100 left, today has 1000
    assert refused == Refusal(LimitKind.GLOBAL_DEFAULT, 100, 200, MIDNIGHT_AFTER_START)
    result = await store.quota.top_up(job_id, 1000)
    assert isinstance(result, Reservation) and (result.resets_at, result.remaining) == (MIDNIGHT_AFTER_START, 0)
    assert (await store.quota.limits(GUILD, 1)).used == 0
