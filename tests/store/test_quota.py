"""The ledger: one credit rule (`EffectiveLimits.refusal_for`), reservations against it, grants, windows."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from bot.clock import FakeClock
from bot.config import GenerationMode, QuotaWindow, Settings
from bot.store import (
    EffectiveLimits,
    JobNotActive,
    JobState,
    LedgerKind,
    LimitKind,
    QuotaPolicy,
    Refusal,
    Reservation,
    Store,
)

from .conftest import GUILD, OTHER_GUILD, START, Target, complete, new_job, reserved_job

MIDNIGHT_AFTER_START = dt.datetime(2026, 3, 11, tzinfo=dt.UTC)


async def reserve(store: Store, job_id: int, amount: int, *, user_id: int = 1, guild_id: int | None = GUILD, roles=()):
    return await store.quota.reserve(job_id, guild_id=guild_id, user_id=user_id, role_ids=list(roles), amount=amount)


async def finish(store: Store, job_id: int, charged: int) -> None:
    """The render completed, charging `charged`; then the job ends (which frees its active slot)."""
    await complete(store, job_id, charged)
    await store.jobs.transition(job_id, JobState.FAILED)  # a settled job stays settled


def limits_with(**changes: object) -> EffectiveLimits:
    """An `EffectiveLimits` with plenty everywhere, except `changes`."""
    base = EffectiveLimits(
        allowance=100,
        limit_kind=LimitKind.GLOBAL_DEFAULT,
        granted=0,
        used=0,
        reserved=0,
        member_available=100,
        pool_limit=None,
        pool_available=None,
        budget_limit=None,
        budget_available=None,
        remaining=100,
        window_start=START,
        resets_at=MIDNIGHT_AFTER_START,
        active_jobs=0,
        max_active_jobs=1,
        guild=None,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_refusal_for_is_the_credit_rule():
    """Active jobs first (new jobs only), then every credit limit for every amount; tightest wins."""
    assert limits_with().refusal_for(100) is None
    assert limits_with().refusal_for(101) == Refusal(LimitKind.GLOBAL_DEFAULT, 100, 101, MIDNIGHT_AFTER_START)
    busy = limits_with(active_jobs=1)
    assert busy.refusal_for(1) == Refusal(LimitKind.ACTIVE_JOBS, 0, 1, None, max_active=1)
    assert busy.refusal_for(1, new_job=False) is None  # a top-up: the job already holds its slot
    # Zero is not a way around a limit: a member below zero cannot start even a free job.
    below = limits_with(member_available=-20, remaining=0)
    assert below.refusal_for(0) == Refusal(LimitKind.GLOBAL_DEFAULT, 0, 0, MIDNIGHT_AFTER_START)
    assert limits_with(member_available=0).refusal_for(0) is None
    # The tightest failing limit is named; ties go to member, then pool, then budget.
    three = limits_with(member_available=50, pool_available=30, budget_available=40)
    assert three.refusal_for(60) == Refusal(LimitKind.SERVER_POOL, 30, 60, MIDNIGHT_AFTER_START)
    assert three.refusal_for(35) == Refusal(LimitKind.SERVER_POOL, 30, 35, MIDNIGHT_AFTER_START)
    tied = limits_with(member_available=30, pool_available=30, budget_available=30)
    assert tied.refusal_for(31) is not None and tied.refusal_for(31).limit is LimitKind.GLOBAL_DEFAULT  # type: ignore[union-attr]
    pool_budget = limits_with(pool_available=10, budget_available=10)
    assert pool_budget.refusal_for(11).limit is LimitKind.SERVER_POOL  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        limits_with().refusal_for(-1)


async def test_reserve_within_allowance(store: Store):
    """A reservation inside the allowance is granted and counted as used."""
    job = await new_job(store)
    result = await reserve(store, job.id, 300)
    assert isinstance(result, Reservation)
    assert (result.amount, result.remaining, result.resets_at) == (300, 700, MIDNIGHT_AFTER_START)
    assert (await store.jobs.get(job.id)).estimated_credits == 300  # type: ignore[union-attr]
    limits = await store.quota.limits(GUILD, 1)
    assert (limits.used, limits.reserved, limits.member_available, limits.remaining, limits.active_jobs) == (
        300,
        300,
        700,
        700,
        1,
    )
    assert limits.limit_kind is LimitKind.GLOBAL_DEFAULT
    assert (limits.window_start, limits.resets_at) == (dt.datetime(2026, 3, 10, tzinfo=dt.UTC), MIDNIGHT_AFTER_START)
    assert limits.pool_available is None and limits.budget_available is None
    assert limits.guild is not None and limits.guild.guild_id == GUILD


async def test_a_refusal_is_data(store: Store):
    """Asking for more than is left is a typed refusal: the limit, its numbers, the reset; no sentence."""
    first = await new_job(store)
    await reserve(store, first.id, 880)
    await finish(store, first.id, 880)
    job = await new_job(store)
    result = await reserve(store, job.id, 300)
    assert result == Refusal(LimitKind.GLOBAL_DEFAULT, 120, 300, MIDNIGHT_AFTER_START, None)
    assert not hasattr(result, "user_message") and not hasattr(result, "as_error")
    assert [e.kind for e in await store.quota.entries(job.id)] == []


async def test_reserve_applies_the_same_rule_as_limits(store: Store):
    """What `limits().refusal_for` predicts is what `reserve` answers."""
    await store.limits.set_server_pool(GUILD, 700)
    await store.limits.set_role_limit(GUILD, 10, 400)
    await reserved_job(store, 300, user_id=2)
    for amount in (1, 399, 400, 401, 500):
        job = await new_job(store)
        predicted = (await store.quota.limits(GUILD, 1, [10])).refusal_for(amount)
        result = await reserve(store, job.id, amount, roles=[10])
        assert result == predicted if predicted is not None else isinstance(result, Reservation)
        await store.jobs.transition(job.id, JobState.CANCELED)


async def test_allowance_resolution_most_specific_wins(store: Store):
    """Member override, else best role, else server default, else the global default."""
    limits = store.limits
    assert await limits.resolve_allowance(GUILD, 1, [10, 11]) == (1000, LimitKind.GLOBAL_DEFAULT)
    await limits.set_server_default(GUILD, 200)
    assert await limits.resolve_allowance(GUILD, 1, [10, 11]) == (200, LimitKind.SERVER_DEFAULT)
    await limits.set_role_limit(GUILD, 10, 300)
    await limits.set_role_limit(GUILD, 11, 500)
    await limits.set_role_limit(OTHER_GUILD, 12, 9000)
    assert await limits.resolve_allowance(GUILD, 1, [10, 11, 12]) == (500, LimitKind.ROLE)
    assert await limits.resolve_allowance(GUILD, 1, [10]) == (300, LimitKind.ROLE)
    assert await limits.resolve_allowance(GUILD, 1, []) == (200, LimitKind.SERVER_DEFAULT)
    await limits.set_member_limit(GUILD, 1, 50)  # lower than the roles: still wins
    assert await limits.resolve_allowance(GUILD, 1, [10, 11]) == (50, LimitKind.MEMBER)
    assert await limits.resolve_allowance(GUILD, 2, [10, 11]) == (500, LimitKind.ROLE)
    assert await limits.resolve_allowance(OTHER_GUILD, 1, [10]) == (1000, LimitKind.GLOBAL_DEFAULT)
    assert await limits.clear_member_limit(GUILD, 1)
    assert not await limits.clear_member_limit(GUILD, 1)
    assert await limits.resolve_allowance(GUILD, 1, [10, 11]) == (500, LimitKind.ROLE)
    await limits.set_server_default(GUILD, None)
    assert await limits.clear_role_limit(GUILD, 10) and await limits.clear_role_limit(GUILD, 11)
    assert await limits.resolve_allowance(GUILD, 1, [10, 11]) == (1000, LimitKind.GLOBAL_DEFAULT)
    assert await limits.resolve_allowance(None, 1, [10]) == (1000, LimitKind.GLOBAL_DEFAULT)


async def test_role_limit_refusal_names_the_role(store: Store):
    """A refusal under a role limit says so."""
    await store.limits.set_role_limit(GUILD, 10, 100)
    job = await new_job(store)
    result = await reserve(store, job.id, 150, roles=[10])
    assert isinstance(result, Refusal) and result.limit is LimitKind.ROLE and result.available == 100


async def test_server_pool_caps_all_members_together(store: Store):
    """The pool refuses once members together reach it, even with allowance left."""
    await store.limits.set_server_pool(GUILD, 500)
    a = await new_job(store, user_id=1)
    b = await new_job(store, user_id=2)
    c = await new_job(store, user_id=3)
    assert isinstance(await reserve(store, a.id, 300, user_id=1), Reservation)
    assert isinstance(await reserve(store, b.id, 150, user_id=2), Reservation)
    refused = await reserve(store, c.id, 100, user_id=3)
    assert refused == Refusal(LimitKind.SERVER_POOL, 50, 100, MIDNIGHT_AFTER_START)
    other = await new_job(store, user_id=3, guild_id=OTHER_GUILD)
    assert isinstance(await reserve(store, other.id, 100, user_id=3, guild_id=OTHER_GUILD), Reservation)
    limits = await store.quota.limits(GUILD, 3)
    assert (limits.pool_limit, limits.pool_available, limits.member_available, limits.remaining) == (500, 50, 1000, 50)


async def test_bot_budget_caps_every_server(database: Target, clock: FakeClock):
    """The bot-wide budget refuses across servers and command-line jobs."""
    policy = QuotaPolicy(default_member_credits=1000, bot_budget_credits=400)
    async with await Store.open(database, clock=clock, policy=policy) as store:
        a = await new_job(store, user_id=1)
        b = await new_job(store, user_id=2, guild_id=OTHER_GUILD)
        c = await new_job(store, user_id=3, guild_id=None)
        assert isinstance(await reserve(store, a.id, 250, user_id=1), Reservation)
        refused = await reserve(store, b.id, 200, user_id=2, guild_id=OTHER_GUILD)
        assert refused == Refusal(LimitKind.BOT_BUDGET, 150, 200, MIDNIGHT_AFTER_START)
        assert isinstance(await reserve(store, c.id, 150, user_id=3, guild_id=None), Reservation)
        limits = await store.quota.limits(GUILD, 9)
        assert (limits.budget_limit, limits.budget_available, limits.remaining) == (400, 0, 0)


async def test_the_tightest_failing_limit_is_reported(database: Target, clock: FakeClock):
    """When several limits refuse, the one with the least left is named."""
    policy = QuotaPolicy(default_member_credits=100, bot_budget_credits=1000)
    async with await Store.open(database, clock=clock, policy=policy) as store:
        await store.limits.set_server_pool(GUILD, 60)
        job = await new_job(store)
        refused = await reserve(store, job.id, 200)
        assert isinstance(refused, Refusal) and (refused.limit, refused.available) == (LimitKind.SERVER_POOL, 60)


async def test_active_job_limit_and_its_server_override(database: Target, clock: FakeClock):
    """A member may hold only so many running reservations; finishing one frees a slot.

    A server may narrow the operator's number of jobs at a time, and clearing its own restores it.
    """
    policy = QuotaPolicy(default_member_credits=1000, max_active_jobs_per_member=2)
    async with await Store.open(database, clock=clock, policy=policy) as store:
        await store.limits.set_max_active_jobs(GUILD, 1)
        first, second, third = [await new_job(store) for _ in range(3)]
        assert isinstance(await reserve(store, first.id, 10), Reservation)
        refused = await reserve(store, second.id, 10)
        assert refused == Refusal(LimitKind.ACTIVE_JOBS, 0, 1, None, max_active=1)
        # Settled but not finished (still downloading or delivering) still takes the slot.
        await complete(store, first.id, 10)
        assert isinstance(await reserve(store, second.id, 10), Refusal)
        await store.limits.set_max_active_jobs(GUILD, None)
        assert isinstance(await reserve(store, second.id, 10), Reservation)
        assert await reserve(store, third.id, 10) == Refusal(LimitKind.ACTIVE_JOBS, 0, 1, None, max_active=2)
        await store.jobs.transition(first.id, JobState.CANCELED)
        assert isinstance(await reserve(store, third.id, 10), Reservation)
        # Unreserved jobs (still being validated) do not count.
        assert await store.jobs.active_count(GUILD, 1) == 2
        assert (await store.quota.limits(GUILD, 1)).max_active_jobs == 2


async def test_ledger_rows_follow_the_sign_convention(store: Store):
    """reserve -r, topup -t, settle +(r + t - charged), refund +(r + t)."""
    a, b = await reserved_job(store, 100, user_id=1), await reserved_job(store, 100, user_id=2)
    await walk_to_creating(store, a.id)
    await walk_to_creating(store, b.id)
    assert isinstance(await store.quota.top_up(a.id, 120), Reservation)
    assert isinstance(await store.quota.top_up(b.id, 150), Reservation)
    await store.jobs.transition(a.id, JobState.SUBMITTED)
    await store.jobs.transition(a.id, JobState.DOWNLOADING, charged=30)
    await store.jobs.transition(b.id, JobState.FAILED)
    assert [(e.kind, e.amount, e.charged) for e in await store.quota.entries(a.id)] == [
        (LedgerKind.RESERVE, -100, None),
        (LedgerKind.TOPUP, -20, None),
        (LedgerKind.SETTLE, 90, 30),
    ]
    assert [(e.kind, e.amount) for e in await store.quota.entries(b.id)] == [
        (LedgerKind.RESERVE, -100),
        (LedgerKind.TOPUP, -50),
        (LedgerKind.REFUND, 150),
    ]
    assert (await store.jobs.get(a.id)).charged_credits == 30  # type: ignore[union-attr]
    assert (await store.jobs.get(b.id)).charged_credits is None  # type: ignore[union-attr]


async def walk_to_creating(store: Store, job_id: int) -> None:
    await store.jobs.transition(job_id, JobState.UPLOADING)
    await store.jobs.transition(job_id, JobState.CREATING)


async def test_settling_above_the_reservation_charges_the_difference(store: Store):
    """A render that cost more than reserved counts in full; the member is then below zero."""
    job = await reserved_job(store, 900)
    await complete(store, job.id, 1100)
    assert [e.amount for e in await store.quota.entries(job.id)] == [-900, -200]
    limits = await store.quota.limits(GUILD, 1)
    assert (limits.used, limits.member_available, limits.remaining) == (1100, -100, 0)
    await store.jobs.transition(job.id, JobState.FAILED)
    zero = await new_job(store)
    assert await reserve(store, zero.id, 1) == Refusal(LimitKind.GLOBAL_DEFAULT, 0, 1, MIDNIGHT_AFTER_START)


async def test_reserving_twice_returns_the_first_reservation(store: Store):
    """A repeated reserve writes nothing new."""
    job = await new_job(store)
    first = await reserve(store, job.id, 100)
    again = await reserve(store, job.id, 500)
    assert isinstance(first, Reservation) and isinstance(again, Reservation)
    assert (again.amount, again.already_reserved, again.remaining) == (100, True, 900)
    assert len(await store.quota.entries(job.id)) == 1


async def test_reserve_rejects_wrong_calls(store: Store):
    """Finished jobs, someone else's job, and amounts below one credit are errors."""
    job = await new_job(store)
    with pytest.raises(ValueError, match="belongs to member 1"):
        await reserve(store, job.id, 10, user_id=2)
    for amount in (-5, 0):
        with pytest.raises(ValueError, match="at least 1"):
            await reserve(store, job.id, amount)
    await store.jobs.transition(job.id, JobState.CANCELED)
    with pytest.raises(JobNotActive):
        await reserve(store, job.id, 10)


async def test_grants_raise_one_members_allowance_for_this_window_only(store: Store, clock: FakeClock):
    """A grant adds to what the member may use now, not to the pool, and lapses at the reset."""
    await store.limits.set_server_pool(GUILD, 1200)
    entry = await store.quota.grant(GUILD, 1, 500, by_user_id=99, note="event winner")
    assert entry is not None
    assert (entry.kind, entry.amount, entry.by_user_id, entry.note) == (LedgerKind.GRANT, 500, 99, "event winner")
    limits = await store.quota.limits(GUILD, 1)
    assert (limits.allowance, limits.granted, limits.member_available, limits.remaining) == (1000, 500, 1500, 1200)
    job = await new_job(store)
    refused = await reserve(store, job.id, 1300)
    assert isinstance(refused, Refusal) and refused.limit is LimitKind.SERVER_POOL
    assert isinstance(await reserve(store, job.id, 1200), Reservation)
    await finish(store, job.id, 1200)
    await clock.advance(24 * 3600)
    limits = await store.quota.limits(GUILD, 1)
    assert (limits.granted, limits.used, limits.remaining) == (0, 0, 1000)
    with pytest.raises(ValueError):
        await store.quota.grant(GUILD, 1, 0)


async def test_negative_grants_never_take_the_allowance_below_zero(store: Store):
    """Taking back more than the member has is clamped; the entry says what was really taken."""
    await store.limits.set_role_limit(GUILD, 10, 300)
    await store.limits.set_server_default(GUILD, 100)
    await store.quota.grant(GUILD, 1, 40, role_ids=[10])
    taken = await store.quota.grant(GUILD, 1, -500, by_user_id=9, role_ids=[10])
    assert taken is not None and taken.amount == -340  # 300 (role) + 40 (grant), not 500
    limits = await store.quota.limits(GUILD, 1, [10])
    assert (limits.allowance, limits.granted, limits.member_available, limits.remaining) == (300, -300, 0, 0)
    assert await store.quota.grant(GUILD, 1, -1, role_ids=[10]) is None  # nothing left to take
    # Without the role the allowance is the server default: less to take from.
    taken = await store.quota.grant(GUILD, 2, -500)
    assert taken is not None and taken.amount == -100
    # A member already spent: the grant still takes only allowance + grants, and `used` stays.
    job = await reserved_job(store, 80, user_id=3)
    taken = await store.quota.grant(GUILD, 3, -90)
    assert taken is not None and taken.amount == -90
    limits = await store.quota.limits(GUILD, 3)
    assert (limits.used, limits.member_available, limits.remaining) == (80, -70, 0)
    await store.jobs.transition(job.id, JobState.CANCELED)


async def test_adjustments_count_against_member_and_pool(store: Store):
    """An adjustment corrects usage everywhere, unlike a grant."""
    await store.limits.set_server_pool(GUILD, 1000)
    await store.quota.adjust(GUILD, 1, -300, by_user_id=99, note="billed outside the bot")
    limits = await store.quota.limits(GUILD, 1)
    assert (limits.used, limits.member_available, limits.pool_available) == (300, 700, 700)
    job = await new_job(store)
    await reserve(store, job.id, 100)
    entry = await store.quota.adjust(GUILD, 1, 50, job_id=job.id)
    assert entry.mode is job.mode and entry.job_id == job.id
    assert (await store.quota.limits(GUILD, 1)).used == 350


async def test_usage_resets_at_the_window_boundary(store: Store, clock: FakeClock):
    """One second before the reset the old usage counts; at the reset it does not."""
    job = await new_job(store)
    await reserve(store, job.id, 1000)
    await finish(store, job.id, 1000)
    await clock.advance((MIDNIGHT_AFTER_START - clock.now()).total_seconds() - 1)
    late = await new_job(store)
    assert isinstance(await reserve(store, late.id, 1), Refusal)
    await clock.advance(1)
    assert clock.now() == MIDNIGHT_AFTER_START
    reservation = await reserve(store, late.id, 1000)
    assert isinstance(reservation, Reservation)
    assert reservation.resets_at == MIDNIGHT_AFTER_START + dt.timedelta(days=1)


async def test_a_reservation_counts_in_the_window_where_it_was_made(store: Store, clock: FakeClock):
    """Settling or refunding after a reset changes the old window, not the new one."""
    job = await reserved_job(store, 600)
    await clock.advance(24 * 3600)
    assert (await store.quota.limits(GUILD, 1)).used == 0
    await complete(store, job.id, 100)  # gives 500 back to yesterday's window
    limits = await store.quota.limits(GUILD, 1)
    assert (limits.used, limits.remaining) == (0, 1000)
    entries = await store.quota.entries(job.id)
    assert entries[1].period_at == entries[0].period_at != entries[1].at
    yesterday = await store.quota.usage(GUILD, since=entries[0].period_at - dt.timedelta(hours=1))
    assert yesterday.total.used == 100


async def test_weekly_window(database: Target, clock: FakeClock):
    """Refusals carry the configured window's reset."""
    policy = QuotaPolicy(window=QuotaWindow.WEEKLY, default_member_credits=10)
    async with await Store.open(database, clock=clock, policy=policy) as store:
        job = await new_job(store)
        refused = await reserve(store, job.id, 20)
        assert isinstance(refused, Refusal)
        assert refused.resets_at == dt.datetime(2026, 3, 16, tzinfo=dt.UTC)


def test_policy_from_settings():
    """The policy carries the operator's quota settings."""
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        quota_window=QuotaWindow.MONTHLY,
        quota_reset_time=dt.time(6, 0),
        default_member_credits=250,
        bot_budget_credits=10_000,
        max_active_jobs_per_member=2,
        server_credits_ceiling=5_000,
        allowed_modes=[GenerationMode.PRO, GenerationMode.LITE],
        max_clip_seconds=45.0,
    )
    # The modes and longest clip too: they bound what a server's managers may set.
    assert QuotaPolicy.from_settings(settings) == QuotaPolicy(
        QuotaWindow.MONTHLY, dt.time(6, 0), 250, 10_000, 2, 5_000, (GenerationMode.PRO, GenerationMode.LITE), 45.0
    )
    with pytest.raises(ValueError):
        QuotaPolicy(max_active_jobs_per_member=0)
    with pytest.raises(ValueError):
        QuotaPolicy(server_credits_ceiling=-1)


def test_policy_reads_the_ceiling_setting_when_it_exists():
    """Once Settings has SERVER_CREDITS_CEILING, the policy carries it."""

    class WithCeiling(Settings):
        server_credits_ceiling: int | None = 5000

    settings = WithCeiling(_env_file=None)  # type: ignore[call-arg]
    assert QuotaPolicy.from_settings(settings).server_credits_ceiling == 5000
