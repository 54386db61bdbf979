"""`check_invariants` names each kind of damage an operator could find after a crash or a bug."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.clock import FakeClock
from bot.store import JobState, QuotaPolicy, Store

from .conftest import GUILD, INTEGRITY_ERRORS, Target, new_job, raw_write

NOW = dt.datetime(2026, 3, 10, 9, 30, tzinfo=dt.UTC)


async def test_a_sound_database_has_no_problems(store: Store):
    """A store used normally reports nothing."""
    job = await new_job(store)
    await store.quota.reserve(job.id, guild_id=GUILD, user_id=1, role_ids=[], amount=10)
    await store.jobs.transition(job.id, JobState.FAILED)
    assert await store.check_invariants() == []


async def test_damage_is_reported(database: Target, clock: FakeClock):
    """Rows written behind the store's back are each reported in words."""
    policy = QuotaPolicy()
    async with await Store.open(database, clock=clock, policy=policy) as store:
        held = await new_job(store, user_id=1)
        await store.quota.reserve(held.id, guild_id=GUILD, user_id=1, role_ids=[], amount=100)
        bad_settle = await new_job(store, user_id=2)
        await store.quota.reserve(bad_settle.id, guild_id=GUILD, user_id=2, role_ids=[], amount=100)
        orphan = await new_job(store, user_id=3)
        skipped = await new_job(store, user_id=4)
        late_topup = await new_job(store, user_id=5)
        await store.quota.reserve(late_topup.id, guild_id=GUILD, user_id=5, role_ids=[], amount=100)
        await store.jobs.transition(late_topup.id, JobState.FAILED)
        refunded_render = await new_job(store, user_id=6)
        await store.quota.reserve(refunded_render.id, guild_id=GUILD, user_id=6, role_ids=[], amount=100)
        for state in (JobState.UPLOADING, JobState.CREATING, JobState.SUBMITTED):
            await store.jobs.transition(refunded_render.id, state)

        # Damage the database directly, as a bug or a hand edit could.
        await raw_write(
            store,
            ("UPDATE jobs SET state = 'done' WHERE id = ?", (held.id,)),
            ("INSERT INTO job_events (job_id, state, at) VALUES (?, 'done', ?)", (held.id, NOW)),
            (
                "INSERT INTO ledger (kind, job_id, guild_id, user_id, amount, charged, period_at, at)"
                " SELECT 'settle', job_id, guild_id, user_id, 5, 30, period_at, at FROM ledger WHERE job_id = ?",
                (bad_settle.id,),
            ),
            (
                "INSERT INTO ledger (kind, job_id, guild_id, user_id, amount, period_at, at)"
                " VALUES ('refund', ?, ?, 3, 50, ?, ?)",
                (orphan.id, GUILD, NOW, NOW),
            ),
            ("UPDATE jobs SET state = 'submitted' WHERE id = ?", (skipped.id,)),
            ("INSERT INTO job_events (job_id, state, at) VALUES (?, 'submitted', ?)", (skipped.id, NOW)),
            (
                "INSERT INTO ledger (kind, job_id, guild_id, user_id, amount, period_at, at)"
                " SELECT 'topup', job_id, guild_id, user_id, -7, period_at, at FROM ledger WHERE job_id = ?"
                " AND kind = 'reserve'",
                (late_topup.id,),
            ),
            (
                "INSERT INTO ledger (kind, job_id, guild_id, user_id, amount, period_at, at)"
                " SELECT 'refund', job_id, guild_id, user_id, 100, period_at, at FROM ledger WHERE job_id = ?",
                (refunded_render.id,),
            ),
            ("UPDATE jobs SET state = 'downloading' WHERE id = ?", (refunded_render.id,)),
            ("INSERT INTO job_events (job_id, state, at) VALUES (?, 'downloading', ?)", (refunded_render.id, NOW)),
            (
                "INSERT INTO ledger (kind, job_id, guild_id, user_id, amount, period_at, at)"
                " VALUES ('adjust', ?, ?, -12345, -1, ?, ?)",
                (skipped.id, GUILD, NOW, NOW),
            ),
        )

    async with await Store.open(database, clock=clock, policy=policy) as store:
        problems = await store.check_invariants()
    assert f"job {held.id} is done but still holds its reservation" in problems
    assert f"job {held.id} went from received to done, which is not allowed" in problems
    assert any(p.startswith(f"job {bad_settle.id}: closing amount 5 does not match") for p in problems)
    assert f"job {bad_settle.id} records None credits charged but was settled at 30" in problems
    assert f"job {orphan.id} has a refund without a reservation" in problems
    assert f"job {skipped.id} went from received to submitted, which is not allowed" in problems
    assert any(
        p.startswith(f"job {late_topup.id}: top-up ") and "after its reservation was closed" in p for p in problems
    )
    assert any(
        p.startswith(f"job {late_topup.id}: closing amount 100 does not match what was held, 107") for p in problems
    )
    assert f"job {refunded_render.id} is downloading, so its render completed, but its reservation was not settled" in (
        problems
    )
    assert any("kept under a deleted member's token but still tied to job" in p for p in problems)
    assert any(p.startswith("ledger row") and "different member than its job" in p for p in problems)


async def test_the_ledger_is_append_only(store: Store):
    """An UPDATE of a row's amount is refused by the schema itself."""
    job = await new_job(store)
    await store.quota.reserve(job.id, guild_id=GUILD, user_id=1, role_ids=[], amount=10)
    with pytest.raises(INTEGRITY_ERRORS, match="append-only"):
        await raw_write(store, ("UPDATE ledger SET amount = 0", ()))
