"""The operator's ceiling: no server spends more per window, no manager sets or grants more."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest

from bot.clock import FakeClock
from bot.store import AboveCeiling, LimitKind, QuotaPolicy, Refusal, Reservation, Store, StoreError

from .conftest import GUILD, OTHER_GUILD, Target, new_job, reserved_job

MIDNIGHT_AFTER_START = dt.datetime(2026, 3, 11, tzinfo=dt.UTC)
CEILING = 500


@pytest.fixture
async def capped(database: Target, clock: FakeClock) -> AsyncIterator[Store]:
    policy = QuotaPolicy(default_member_credits=300, max_active_jobs_per_member=5, server_credits_ceiling=CEILING)
    async with await Store.open(database, clock=clock, policy=policy) as store:
        yield store
        assert await store.check_invariants() == []


async def test_a_server_without_a_pool_is_capped_at_the_ceiling(capped: Store):
    """Members together cannot spend more than the ceiling, pool or no pool."""
    limits = await capped.quota.limits(GUILD, 1)
    assert (limits.pool_limit, limits.pool_available, limits.remaining) == (CEILING, CEILING, 300)
    await reserved_job(capped, 300, user_id=1)
    job = await new_job(capped, user_id=2)
    refused = await capped.quota.reserve(job.id, guild_id=GUILD, user_id=2, role_ids=[], amount=250)
    assert refused == Refusal(LimitKind.SERVER_POOL, 200, 250, MIDNIGHT_AFTER_START)
    # Another server has its own ceiling; command-line jobs have no server and no pool.
    assert (await capped.quota.limits(OTHER_GUILD, 2)).pool_available == CEILING
    assert (await capped.quota.limits(None, 2)).pool_limit is None


async def test_a_pool_below_the_ceiling_applies(capped: Store):
    """The effective pool is the smaller of the two."""
    await capped.limits.set_server_pool(GUILD, 200)
    assert (await capped.quota.limits(GUILD, 1)).pool_limit == 200


async def test_managers_cannot_set_limits_above_the_ceiling(capped: Store):
    """Member, role, server default and pool all stop at the ceiling; at it is fine."""
    setters = [
        lambda credits: capped.limits.set_member_limit(GUILD, 1, credits),
        lambda credits: capped.limits.set_role_limit(GUILD, 10, credits),
        lambda credits: capped.limits.set_server_default(GUILD, credits),
        lambda credits: capped.limits.set_server_pool(GUILD, credits),
    ]
    for setter in setters:
        with pytest.raises(AboveCeiling) as info:
            await setter(CEILING + 1)
        assert (info.value.ceiling, info.value.requested) == (CEILING, CEILING + 1)
        assert isinstance(info.value, StoreError)
        await setter(CEILING)
    assert await capped.limits.member_limits(GUILD) == {1: CEILING}


async def test_grants_cannot_lift_a_member_above_the_ceiling(capped: Store):
    """allowance + grants may reach the ceiling, not pass it; taking back is always allowed."""
    assert await capped.quota.grant(GUILD, 1, 200) is not None  # 300 + 200 = 500
    with pytest.raises(AboveCeiling) as info:
        await capped.quota.grant(GUILD, 1, 1)
    assert (info.value.ceiling, info.value.requested) == (CEILING, 501)
    assert await capped.quota.grant(GUILD, 1, -50) is not None
    assert await capped.quota.grant(GUILD, 1, 50) is not None
    # With roles: the role's allowance is what the grant adds to.
    await capped.limits.set_role_limit(GUILD, 10, 450)
    with pytest.raises(AboveCeiling):
        await capped.quota.grant(GUILD, 2, 100, role_ids=[10])
    assert await capped.quota.grant(GUILD, 2, 50, role_ids=[10]) is not None
    # Command-line grants are the operator's own: no server, no ceiling.
    assert await capped.quota.grant(None, 2, 10_000) is not None


async def test_without_a_ceiling_nothing_is_capped(store: Store):
    """The default policy has no ceiling."""
    assert store.policy.server_credits_ceiling is None
    await store.limits.set_server_pool(GUILD, 10**9)
    await store.limits.set_member_limit(GUILD, 1, 10**9)
    assert (await store.quota.limits(GUILD, 2)).pool_limit == 10**9
    assert (await store.quota.limits(OTHER_GUILD, 2)).pool_limit is None
    assert isinstance(await store.quota.grant(GUILD, 1, 10**9), object)
    job = await new_job(store)
    assert isinstance(
        await store.quota.reserve(job.id, guild_id=GUILD, user_id=1, role_ids=[], amount=10**9), Reservation
    )
