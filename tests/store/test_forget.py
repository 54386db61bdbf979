"""/forget-me: a member's data goes, what they spent in the running window keeps counting."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest

from bot.clock import FakeClock
from bot.store import JobState, LimitKind, QuotaPolicy, Refusal, Reservation, Store
from bot.store.forget import member_token

from .conftest import GUILD, OTHER_GUILD, START, Target, complete, new_job, raw_read, reserved_job

MIDNIGHT_AFTER_START = dt.datetime(2026, 3, 11, tzinfo=dt.UTC)


@pytest.fixture
async def small(database: Target, clock: FakeClock) -> AsyncIterator[Store]:
    """Allowance 50, a server pool and a budget, so every limit's sums are exercised."""
    policy = QuotaPolicy(default_member_credits=50, bot_budget_credits=10_000, max_active_jobs_per_member=3)
    async with await Store.open(database, clock=clock, policy=policy) as store:
        await store.limits.set_server_pool(GUILD, 1000)
        yield store
        assert await store.check_invariants() == []


async def spend(store: Store, amount: int, *, user_id: int = 1, guild_id: int | None = GUILD) -> None:
    job = await reserved_job(store, amount, user_id=user_id, guild_id=guild_id)
    await complete(store, job.id, amount)
    await store.jobs.transition(job.id, JobState.FAILED)


async def ledger_users(store: Store) -> list[int | None]:
    rows = await raw_read(store, "SELECT user_id FROM ledger ORDER BY id")
    return [r[0] for r in rows]


async def test_forgetting_does_not_give_the_allowance_back(small: Store, clock: FakeClock):
    """Allowance 50, spend 45, forget, ask for 10: refused with 5 available."""
    await spend(small, 45)
    report = await small.delete_member_data(GUILD, 1)
    assert report.usage_kept_until == MIDNIGHT_AFTER_START and report.ledger_rows_kept == 2
    job = await new_job(small)
    refused = await small.quota.reserve(job.id, guild_id=GUILD, user_id=1, role_ids=[], amount=10)
    assert refused == Refusal(LimitKind.GLOBAL_DEFAULT, 5, 10, MIDNIGHT_AFTER_START)
    limits = await small.quota.limits(GUILD, 1)
    assert (limits.used, limits.member_available, limits.pool_available) == (45, 5, 955)
    # Nothing in the ledger names them any more.
    assert 1 not in await ledger_users(small)
    assert all(u is not None and u < 0 for u in await ledger_users(small))

    # Their new usage in the same window adds to the kept one; forgetting again keeps both.
    assert isinstance(await small.quota.reserve(job.id, guild_id=GUILD, user_id=1, role_ids=[], amount=5), Reservation)
    await complete(small, job.id, 5)
    await small.jobs.transition(job.id, JobState.FAILED)
    assert (await small.quota.limits(GUILD, 1)).member_available == 0
    await small.delete_member_data(GUILD, 1)
    assert (await small.quota.limits(GUILD, 1)).member_available == 0

    # After the reset: a new window, a full allowance, and the old rows lose even the token.
    before = await small.quota.usage(GUILD, since=START.replace(hour=0))
    await clock.advance((MIDNIGHT_AFTER_START - clock.now()).total_seconds())
    assert (await small.quota.limits(GUILD, 1)).member_available == 50
    assert await small.sweep_forgotten() == 4
    assert await ledger_users(small) == [None, None, None, None]
    after = await small.quota.usage(GUILD, since=START.replace(hour=0), until=MIDNIGHT_AFTER_START)
    assert after.total == before.total and after.by_member == before.by_member
    assert after.by_member[None].used == 50
    assert await small.sweep_forgotten() == 0


async def test_the_next_reservation_sweeps_ended_windows(small: Store, clock: FakeClock):
    """No explicit sweep needed: any reservation after the reset anonymises the old tokens."""
    await spend(small, 20)
    await small.delete_member_data(GUILD, 1)
    await clock.advance(24 * 3600)
    await reserved_job(small, 1, user_id=2)
    assert [u for u in await ledger_users(small) if u is not None and u < 0] == []


async def test_the_next_deletion_sweeps_ended_windows(small: Store, clock: FakeClock):
    """A deletion after the reset anonymises earlier members' tokens too, and the member's own old rows."""
    await spend(small, 20, user_id=1)
    await spend(small, 10, user_id=2)
    await small.delete_member_data(GUILD, 1)
    await clock.advance(24 * 3600)
    report = await small.delete_member_data(GUILD, 2)
    assert (report.ledger_rows_anonymised, report.ledger_rows_kept, report.usage_kept_until) == (2, 0, None)
    assert await ledger_users(small) == [None, None, None, None]


async def test_grants_of_the_window_keep_counting(small: Store, clock: FakeClock):
    """A positive grant still raises, a negative one still lowers, their allowance until the reset."""
    await small.quota.grant(GUILD, 1, 30, by_user_id=9)
    await small.quota.grant(GUILD, 2, -20, by_user_id=9)
    for user_id in (1, 2):
        await small.delete_member_data(GUILD, user_id)
    assert (await small.quota.limits(GUILD, 1)).granted == 30
    assert (await small.quota.limits(GUILD, 2)).granted == -20
    await clock.advance(24 * 3600)
    report = await small.delete_member_data(GUILD, 3)  # sweeps: old grants of forgotten members go
    assert report.grants_deleted == 0
    assert await ledger_users(small) == []


async def test_a_manager_block_survives_forgetting(small: Store):
    """A member limit of 0 stays, so a blocked member cannot unblock themselves."""
    await small.limits.set_member_limit(GUILD, 1, 0, by_user_id=9)
    report = await small.delete_member_data(GUILD, 1)
    assert report.limits_kept == 1
    job = await new_job(small)
    refused = await small.quota.reserve(job.id, guild_id=GUILD, user_id=1, role_ids=[], amount=1)
    assert refused == Refusal(LimitKind.MEMBER, 0, 1, MIDNIGHT_AFTER_START)


async def test_old_windows_are_anonymised_at_once(small: Store, clock: FakeClock):
    """Rows of ended windows lose the member immediately; grants of ended windows are deleted."""
    await small.quota.grant(GUILD, 1, 10)
    await spend(small, 30)
    await clock.advance(24 * 3600)
    await spend(small, 5)
    report = await small.delete_member_data(GUILD, 1)
    assert (report.ledger_rows_anonymised, report.grants_deleted, report.ledger_rows_kept) == (2, 1, 2)
    assert report.jobs_deleted == 2
    users = await ledger_users(small)
    assert users[:2] == [None, None] and all(u is not None and u < 0 for u in users[2:])
    assert (await small.quota.limits(GUILD, 1)).used == 5


async def test_tokens_are_one_way_per_server_and_never_discord_ids(
    database: Target, second_database: Target, clock: FakeClock
):
    """Negative, different per server and per database, stable within one."""
    secret_a, secret_b = b"a" * 32, b"b" * 32
    token = member_token(secret_a, GUILD, 1)
    assert token < 0 and token == member_token(secret_a, GUILD, 1)
    assert token != member_token(secret_a, OTHER_GUILD, 1) != member_token(secret_a, None, 1)
    assert token != member_token(secret_b, GUILD, 1)
    assert member_token(secret_a, GUILD, 2**63 - 1) >= -(2**56)
    policy = QuotaPolicy()
    async with (
        await Store.open(database, clock=clock, policy=policy) as a,
        await Store.open(second_database, clock=clock, policy=policy) as b,
        await Store.open(database, clock=clock, policy=policy) as a_again,
    ):
        assert a._secret != b._secret and a._secret == a_again._secret and len(a._secret) == 32


async def test_forgetting_everywhere_keeps_each_servers_usage(small: Store):
    """`guild_id=None` covers every server and the command line, each under its own token."""
    await spend(small, 10, guild_id=GUILD)
    await spend(small, 20, guild_id=OTHER_GUILD)
    await spend(small, 30, guild_id=None)
    report = await small.delete_member_data(None, 1)
    assert (report.jobs_deleted, report.ledger_rows_kept) == (3, 6)
    assert [(await small.quota.limits(g, 1)).used for g in (GUILD, OTHER_GUILD, None)] == [10, 20, 30]
    assert len({u for u in await ledger_users(small)}) == 3
