"""`QuotaLedger.reconcile`: a job unknown at Magic Hour brought to Magic Hour's real charge, once."""

from __future__ import annotations

import asyncio

import pytest

from bot.clock import FakeClock
from bot.store import (
    UNKNOWN_AT_MAGIC_HOUR,
    AlreadyReconciled,
    JobNotFound,
    JobState,
    LedgerKind,
    NotReconcilable,
    QuotaPolicy,
    Reconciliation,
    Store,
)

from .conftest import GUILD, INTEGRITY_ERRORS, TO_RENDERED, Target, complete, raw_read, raw_write, reserved_job, walk

HELD = 100


async def unknown_job(store: Store, held: int = HELD, *, user_id: int = 1) -> int:
    """A job that held `held` credits and failed with its create outcome unknown (settled to what it held)."""
    job = await reserved_job(store, held, user_id=user_id)
    await walk(store, job.id, JobState.UPLOADING, JobState.CREATING)
    await store.jobs.transition(job.id, JobState.FAILED, charged=held, error_code=UNKNOWN_AT_MAGIC_HOUR)
    return job.id


async def net_charge(store: Store, job_id: int) -> int:
    """What the job's ledger rows add up to as usage."""
    return -sum(e.amount for e in await store.quota.entries(job_id))


@pytest.mark.parametrize("charged", [0, 30, HELD, 160])
async def test_reconcile_sets_the_jobs_charge_and_its_ledger_to_magic_hours(store: Store, charged: int):
    """One call: a reconcile row of the difference, the job's charge, and every sum agree with Magic Hour."""
    job_id = await unknown_job(store)
    assert (await store.quota.limits(GUILD, 1)).used == HELD  # counted as spent until the operator looks

    done = await store.quota.reconcile(job_id, charged, by_user_id=99)

    assert (done.job_id, done.counted, done.charged, done.given_back) == (job_id, HELD, charged, HELD - charged)
    entry = done.entry
    assert (entry.kind, entry.job_id, entry.amount, entry.charged, entry.by_user_id) == (
        LedgerKind.RECONCILE,
        job_id,
        HELD - charged,
        charged,
        99,
    )
    assert [e.kind for e in await store.quota.entries(job_id)] == [
        LedgerKind.RESERVE,
        LedgerKind.SETTLE,
        LedgerKind.RECONCILE,
    ]
    assert await net_charge(store, job_id) == charged
    job = await store.jobs.get(job_id)
    assert job is not None and job.charged_credits == charged
    assert job.error_data == {"reconciled_charge": charged}
    assert (await store.quota.limits(GUILD, 1)).used == charged
    usage = await store.quota.usage(GUILD)
    assert (usage.total.charged, usage.total.adjusted, usage.total.used) == (charged, 0, charged)
    assert await store.check_invariants() == []


async def test_a_second_reconcile_is_refused_and_changes_nothing(store: Store):
    """The first figure stands; a repeat (even with another figure) raises and writes nothing."""
    job_id = await unknown_job(store)
    await store.quota.reconcile(job_id, 30)
    entries = await store.quota.entries(job_id)
    job = await store.jobs.get(job_id)

    for charged in (30, 0, 500):
        with pytest.raises(AlreadyReconciled) as refused:
            await store.quota.reconcile(job_id, charged)
        assert (refused.value.job_id, refused.value.charged) == (job_id, 30)

    assert await store.quota.entries(job_id) == entries
    assert await store.jobs.get(job_id) == job
    assert (await store.quota.limits(GUILD, 1)).used == 30


async def test_only_a_job_unknown_at_magic_hour_is_reconciled(store: Store):
    """Any other job, a missing one and a negative charge are refused, and nothing is written."""
    rendered = await reserved_job(store, 50, user_id=1)
    await complete(store, rendered.id, 40)
    failed = await reserved_job(store, 50, user_id=2)
    await store.jobs.transition(failed.id, JobState.FAILED, error_code="upload_failed")
    running = await reserved_job(store, 50, user_id=3)
    await walk(store, running.id, *TO_RENDERED)
    before = await raw_read(store, "SELECT * FROM ledger ORDER BY id")

    for job_id, state in ((rendered.id, "downloading"), (failed.id, "failed"), (running.id, "submitted")):
        with pytest.raises(NotReconcilable) as refused:
            await store.quota.reconcile(job_id, 10)
        assert (refused.value.job_id, refused.value.state) == (job_id, state)
    with pytest.raises(JobNotFound):
        await store.quota.reconcile(999, 10)
    unknown = await unknown_job(store, user_id=4)
    with pytest.raises(ValueError, match="negative"):
        await store.quota.reconcile(unknown, -1)

    assert [r for r in await raw_read(store, "SELECT * FROM ledger ORDER BY id") if r[2] != unknown] == before
    assert LedgerKind.RECONCILE not in {e.kind for e in await store.quota.entries(unknown)}


async def test_two_stores_reconciling_at_once_write_one_adjustment(database: Target, clock: FakeClock):
    """Two connections reconciling one job at the same moment: one wins, the other is refused."""
    policy = QuotaPolicy(default_member_credits=1000)
    stores = [await Store.open(database, clock=clock, policy=policy) for _ in range(2)]
    try:
        job_id = await unknown_job(stores[0])
        results = await asyncio.gather(
            stores[0].quota.reconcile(job_id, 20),
            stores[1].quota.reconcile(job_id, 70),
            return_exceptions=True,
        )
        [won] = [r for r in results if isinstance(r, Reconciliation)]
        [refused] = [r for r in results if isinstance(r, AlreadyReconciled)]
        assert refused.charged == won.charged
        [row] = [e for e in await stores[1].quota.entries(job_id) if e.kind is LedgerKind.RECONCILE]
        assert row == won.entry and row.amount == HELD - won.charged
        job = await stores[1].jobs.get(job_id)
        assert job is not None and job.charged_credits == won.charged
        assert await net_charge(stores[1], job_id) == won.charged
        assert (await stores[0].quota.limits(GUILD, 1)).used == won.charged
        assert await stores[0].check_invariants() == []
    finally:
        for store in stores:
            await store.close()


async def test_the_schema_allows_one_reconcile_row_per_job(store: Store):
    """The unique index refuses a second reconcile row written behind the store's back."""
    job_id = await unknown_job(store)
    await store.quota.reconcile(job_id, 30)
    with pytest.raises(INTEGRITY_ERRORS):
        await raw_write(
            store,
            (
                "INSERT INTO ledger (kind, job_id, guild_id, user_id, amount, charged, period_at, at)"
                " SELECT 'reconcile', job_id, guild_id, user_id, 0, 30, period_at, at FROM ledger"
                " WHERE job_id = ? AND kind = 'reconcile'",
                (job_id,),
            ),
        )
    with pytest.raises(INTEGRITY_ERRORS):  # a reconcile row always says what Magic Hour charged
        await raw_write(
            store,
            (
                "INSERT INTO ledger (kind, guild_id, user_id, amount, period_at, at)"
                " SELECT 'reconcile', guild_id, user_id, 0, period_at, at FROM ledger WHERE job_id = ?"
                " AND kind = 'reserve'",
                (job_id,),
            ),
        )
    assert len(await store.quota.entries(job_id)) == 3


async def test_a_reconciled_members_data_can_still_be_deleted(store: Store):
    """Deleting the member keeps the reconciled charge counting against them, under their token."""
    job_id = await unknown_job(store)
    await store.quota.reconcile(job_id, 160)
    await store.delete_member_data(GUILD, 1)
    assert await store.jobs.get(job_id) is None
    assert (await store.quota.limits(GUILD, 1)).used == 160


async def test_check_invariants_names_a_reconciliation_that_does_not_add_up(database: Target, clock: FakeClock):
    """A reconcile row or a job charge that disagrees with Magic Hour's figure is reported."""
    async with await Store.open(database, clock=clock, policy=QuotaPolicy()) as store:
        wrong_amount = await unknown_job(store, user_id=1)
        wrong_charge = await unknown_job(store, user_id=2)
        not_unknown = await reserved_job(store, 50, user_id=3)
        await store.jobs.transition(not_unknown.id, JobState.FAILED)
        await store.quota.reconcile(wrong_charge, 40)
        await raw_write(
            store,
            (
                "INSERT INTO ledger (kind, job_id, guild_id, user_id, amount, charged, period_at, at)"
                " SELECT 'reconcile', job_id, guild_id, user_id, 1, 40, period_at, at FROM ledger"
                " WHERE job_id = ? AND kind = 'reserve'",
                (wrong_amount,),
            ),
            ("UPDATE jobs SET charged_credits = 40 WHERE id = ?", (wrong_amount,)),
            ("UPDATE jobs SET charged_credits = 7 WHERE id = ?", (wrong_charge,)),
            (
                "INSERT INTO ledger (kind, job_id, guild_id, user_id, amount, charged, period_at, at)"
                " SELECT 'reconcile', job_id, guild_id, user_id, 0, 0, period_at, at FROM ledger"
                " WHERE job_id = ? AND kind = 'reserve'",
                (not_unknown.id,),
            ),
        )
        problems = await store.check_invariants()
    assert f"job {wrong_amount} was reconciled at 40 credits but its ledger rows add up to 99" in problems
    assert f"job {wrong_charge} records 7 credits charged but was reconciled at 40" in problems
    assert f"job {not_unknown.id} was reconciled but is failed (None), not unknown at Magic Hour" in problems
    assert f"job {not_unknown.id} was reconciled at 0 credits but its ledger rows add up to 0" not in problems


async def test_a_reconciled_job_is_known_again(store: Store):
    """Once reconciled it leaves the managers' "unknown at Magic Hour" list, and its record says so."""
    job_id = await unknown_job(store)
    since = (await store.jobs.get(job_id)).created_at  # type: ignore[union-attr]
    [listed] = await store.jobs.unknown_at_magic_hour(GUILD, since)
    assert listed.id == job_id and listed.fate_unknown
    await store.quota.reconcile(job_id, 30)
    assert await store.jobs.unknown_at_magic_hour(GUILD, since) == []
    job = await store.jobs.get(job_id)
    assert job is not None and not job.fate_unknown
    assert (await store.quota.usage(GUILD)).uncertain == []
