"""Rules that hold everywhere in the store: the operator's settings bound the managers', a window's
budget holds in real spend (reconciliations included), and every typed number has its bound."""

from __future__ import annotations

import math

import pytest

from bot import bounds
from bot.bounds import OutOfBounds
from bot.clock import FakeClock
from bot.config import GenerationMode
from bot.errors import InvalidInput
from bot.store import (
    UNKNOWN_AT_MAGIC_HOUR,
    AboveCeiling,
    GuildSettings,
    JobNotFound,
    JobState,
    QuotaPolicy,
    Store,
)

from .conftest import GUILD, Target, new_job, reserved_job, walk

LITE, STANDARD, PRO = GenerationMode.LITE, GenerationMode.STANDARD, GenerationMode.PRO
OPERATOR = QuotaPolicy(
    default_member_credits=100,
    bot_budget_credits=500,
    max_active_jobs_per_member=3,
    server_credits_ceiling=400,
    allowed_modes=(LITE, STANDARD),
    max_clip_seconds=60.0,
)


async def test_managers_cannot_widen_the_operators_settings(database: Target, clock: FakeClock):
    """Modes the operator doesn't offer, a longer clip, more jobs at a time, credits above the ceiling: refused."""
    async with await Store.open(database, clock=clock, policy=OPERATOR) as store:
        with pytest.raises(InvalidInput) as refused:
            await store.limits.set_allowed_modes(GUILD, [LITE, PRO])
        assert (refused.value.code, refused.value.data) == (
            "modes_not_offered",
            {"modes": "pro", "allowed": "lite, standard"},
        )
        with pytest.raises(InvalidInput) as refused:
            await store.limits.set_max_clip_seconds(GUILD, 61.0)
        assert (refused.value.code, refused.value.data) == ("clip_cap", {"limit": 60.0})
        with pytest.raises(InvalidInput) as refused:
            await store.limits.set_max_active_jobs(GUILD, 4)
        assert (refused.value.code, refused.value.data) == ("jobs_cap", {"limit": 3})
        for setter in (store.limits.set_server_default, store.limits.set_server_pool):
            with pytest.raises(AboveCeiling):
                await setter(GUILD, 401)
        # Narrowing is always allowed, and what was refused changed nothing.
        settings = await store.limits.set_allowed_modes(GUILD, [STANDARD])
        await store.limits.set_max_clip_seconds(GUILD, 10.0)
        settings = await store.limits.set_max_active_jobs(GUILD, 2)
        assert settings == GuildSettings(GUILD, None, None, (STANDARD,), 10.0, 2)


async def test_what_managers_set_is_narrowed_when_the_operator_narrows_later(database: Target, clock: FakeClock):
    """Stored settings wider than the operator's new ones apply only as far as the operator's reach."""
    wide = QuotaPolicy(default_member_credits=100, max_active_jobs_per_member=5, server_credits_ceiling=1000)
    async with await Store.open(database, clock=clock, policy=wide) as store:
        await store.limits.set_allowed_modes(GUILD, [LITE, PRO])
        await store.limits.set_max_clip_seconds(GUILD, 300.0)
        await store.limits.set_max_active_jobs(GUILD, 5)
        await store.limits.set_server_default(GUILD, 900)
        await store.limits.set_server_pool(GUILD, 1000)
        await store.limits.set_member_limit(GUILD, 1, 800)
        await store.limits.set_role_limit(GUILD, 7, 700)
    async with await Store.open(database, clock=clock, policy=OPERATOR) as store:
        settings = await store.limits.guild_settings(GUILD)
        # Only the modes both allow: the server's choice is never widened back to the operator's list.
        assert settings == GuildSettings(GUILD, 400, 400, (LITE,), 60.0, 3)
        member = await store.quota.limits(GUILD, 1)
        assert (member.allowance, member.member_available, member.pool_limit, member.max_active_jobs) == (
            400,
            400,
            400,
            3,
        )
        assert (await store.quota.limits(GUILD, 2, (7,))).allowance == 400
        assert (await store.quota.limits(GUILD, 3)).allowance == 400  # the server default, capped
    narrower = QuotaPolicy(default_member_credits=100, allowed_modes=(STANDARD,), max_clip_seconds=30.0)
    async with await Store.open(database, clock=clock, policy=narrower) as store:
        assert (await store.limits.guild_settings(GUILD)).allowed_modes == ()  # no mode left to use here


async def test_a_grant_never_lifts_a_member_above_the_ceiling(database: Target, clock: FakeClock):
    """A grant, then a higher limit: allowance plus grants still stops at the operator's ceiling."""
    async with await Store.open(database, clock=clock, policy=OPERATOR) as store:
        await store.limits.set_member_limit(GUILD, 1, 100)
        await store.quota.grant(GUILD, 1, 300)
        await store.limits.set_member_limit(GUILD, 1, 400)
        limits = await store.quota.limits(GUILD, 1)
        assert (limits.allowance, limits.granted, limits.member_available) == (400, 300, 400)


async def test_a_reconciliation_counts_in_its_jobs_window(database: Target, clock: FakeClock):
    """Credits given back for a job of an ended window lower that window's spend, not this one's budget."""
    async with await Store.open(database, clock=clock, policy=OPERATOR) as store:
        job = await reserved_job(store, 90)
        await walk(store, job.id, JobState.UPLOADING, JobState.CREATING)
        await store.jobs.transition(job.id, JobState.FAILED, charged=90, error_code=UNKNOWN_AT_MAGIC_HOUR)
        before = await store.quota.usage(GUILD)
        assert before.total.used == 90
        await clock.advance(86_400)  # the next day: a new window, with its whole budget
        fresh = await store.quota.limits(GUILD, 2)
        assert fresh.budget_available == 500

        done = await store.quota.reconcile(job.id, 0)

        assert done.given_back == 90
        now = await store.quota.limits(GUILD, 2)
        assert (now.budget_available, now.pool_available) == (500, 400)  # not 590 and 490
        assert (await store.quota.usage(GUILD, since=before.since, until=before.until)).total.used == 0
        assert await store.check_invariants() == []


async def test_every_number_the_store_is_given_is_bounded(store: Store):
    """Beyond its bound (or NaN) a number is refused with its own code, before anything is written."""
    too_many = bounds.MAX_CREDITS + 1
    cases = [
        (store.limits.set_member_limit(GUILD, 1, too_many), "credits_out_of_range"),
        (store.limits.set_role_limit(GUILD, 7, too_many), "credits_out_of_range"),
        (store.limits.set_server_default(GUILD, too_many), "credits_out_of_range"),
        (store.limits.set_server_pool(GUILD, -1), "credits_out_of_range"),
        (store.limits.set_max_clip_seconds(GUILD, math.nan), "clip_seconds_out_of_range"),
        (store.limits.set_max_clip_seconds(GUILD, 0.05), "clip_seconds_out_of_range"),
        (store.limits.set_max_active_jobs(GUILD, 0), "count_out_of_range"),
        (store.quota.grant(GUILD, 1, too_many), "grant_out_of_range"),
        (store.quota.grant(GUILD, 1, -too_many), "grant_out_of_range"),
        (store.quota.adjust(GUILD, 1, too_many), "credits_out_of_range"),
        (store.quota.reconcile(1, bounds.MAX_JOB_CREDITS + 1), "charge_out_of_range"),
    ]
    for call, code in cases:
        with pytest.raises(OutOfBounds) as refused:
            await call
        assert refused.value.code == code
    # Grants that each fit may not add up past what one member can be counted.
    await store.quota.grant(GUILD, 1, bounds.MAX_CREDITS - 1000)
    with pytest.raises(OutOfBounds) as refused:
        await store.quota.grant(GUILD, 1, 1)
    assert refused.value.code == "grant_total_out_of_range"
    # A job number no database can hold is simply no job.
    assert await store.jobs.get(2**63) is None
    with pytest.raises(JobNotFound):
        await store.quota.reconcile(2**63, 0)
    job = await new_job(store)
    assert await store.jobs.get(job.id) is not None
    assert await store.check_invariants() == []
