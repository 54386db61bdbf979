"""The ledger: reservations against every limit, idempotent settle/refund, grants, windows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.config import QuotaWindow, Settings
from bot.errors import QuotaExceeded
from bot.store import (
    JobNotActive,
    JobState,
    LedgerKind,
    LimitKind,
    NoReservation,
    QuotaPolicy,
    Refusal,
    Reservation,
    Store,
)

from .conftest import GUILD, OTHER_GUILD, new_job

MIDNIGHT_AFTER_START = dt.datetime(2026, 3, 11, tzinfo=dt.UTC)


async def reserve(store: Store, job_id: int, amount: int, *, user_id: int = 1, guild_id: int | None = GUILD, roles=()):
    return await store.quota.reserve(job_id, guild_id=guild_id, user_id=user_id, role_ids=list(roles), amount=amount)


async def finish(store: Store, job_id: int, charged: int) -> None:
    await store.quota.settle(job_id, charged)
    await store.jobs.transition(job_id, JobState.FAILED)  # any terminal state frees the active slot


async def test_reserve_within_allowance(store: Store):
    """A reservation inside the allowance is granted and counted as used."""
    job = await new_job(store)
    result = await reserve(store, job.id, 300)
    assert isinstance(result, Reservation)
    assert (result.amount, result.remaining, result.resets_at) == (300, 700, MIDNIGHT_AFTER_START)
    assert (await store.jobs.get(job.id)).estimated_credits == 300  # type: ignore[union-attr]
    balance = await store.quota.balance(GUILD, 1)
    assert (balance.used, balance.reserved, balance.remaining, balance.active_jobs) == (300, 300, 700, 1)
    assert balance.limit_kind is LimitKind.GLOBAL_DEFAULT


async def test_refusal_names_the_limit_amount_and_reset(store: Store):
    """Asking for more than is left is a typed refusal with a plain message and the reset time."""
    first = await new_job(store)
    await reserve(store, first.id, 880)
    await finish(store, first.id, 880)
    job = await new_job(store)
    result = await reserve(store, job.id, 300)
    assert isinstance(result, Refusal)
    assert (result.limit, result.available, result.requested) == (LimitKind.GLOBAL_DEFAULT, 120, 300)
    assert result.resets_at == MIDNIGHT_AFTER_START
    stamp = int(MIDNIGHT_AFTER_START.timestamp())
    assert result.user_message == (
        f"You have 120 credits left today; this clip needs 300. Your allowance resets <t:{stamp}:R>."
    )
    error = result.as_error()
    assert isinstance(error, QuotaExceeded) and error.code == "quota_global_default"
    assert [e.kind for e in await store.quota.entries(job.id)] == []


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
    assert isinstance(refused, Refusal)
    assert (refused.limit, refused.available) == (LimitKind.SERVER_POOL, 50)
    assert refused.user_message.startswith("This server has 50 credits left today; this clip needs 100.")
    other = await new_job(store, user_id=3, guild_id=OTHER_GUILD)
    assert isinstance(await reserve(store, other.id, 100, user_id=3, guild_id=OTHER_GUILD), Reservation)
    assert (await store.quota.balance(GUILD, 3)).server_pool_remaining == 50


async def test_bot_budget_caps_every_server(db_path: Path, clock: FakeClock):
    """The bot-wide budget refuses across servers and command-line jobs."""
    policy = QuotaPolicy(default_member_credits=1000, bot_budget_credits=400)
    async with await Store.open(db_path, clock=clock, policy=policy) as store:
        a = await new_job(store, user_id=1)
        b = await new_job(store, user_id=2, guild_id=OTHER_GUILD)
        c = await new_job(store, user_id=3, guild_id=None)
        assert isinstance(await reserve(store, a.id, 250, user_id=1), Reservation)
        refused = await reserve(store, b.id, 200, user_id=2, guild_id=OTHER_GUILD)
        assert isinstance(refused, Refusal)
        assert (refused.limit, refused.available) == (LimitKind.BOT_BUDGET, 150)
        assert "The bot has 150 credits left in its budget today" in refused.user_message
        assert isinstance(await reserve(store, c.id, 150, user_id=3, guild_id=None), Reservation)
        assert (await store.quota.balance(GUILD, 9)).bot_budget_remaining == 0


async def test_the_tightest_failing_limit_is_reported(db_path: Path, clock: FakeClock):
    """When several limits refuse, the one with the least left is named."""
    policy = QuotaPolicy(default_member_credits=100, bot_budget_credits=1000)
    async with await Store.open(db_path, clock=clock, policy=policy) as store:
        await store.limits.set_server_pool(GUILD, 60)
        job = await new_job(store)
        refused = await reserve(store, job.id, 200)
        assert isinstance(refused, Refusal) and (refused.limit, refused.available) == (LimitKind.SERVER_POOL, 60)


async def test_active_job_limit_and_its_server_override(store: Store):
    """A member may hold only so many running reservations; finishing one frees a slot."""
    first, second, third = [await new_job(store) for _ in range(3)]
    assert isinstance(await reserve(store, first.id, 10), Reservation)
    refused = await reserve(store, second.id, 10)
    assert isinstance(refused, Refusal)
    assert (refused.limit, refused.available, refused.requested, refused.resets_at) == (
        LimitKind.ACTIVE_JOBS,
        0,
        1,
        None,
    )
    assert "You already have 1 job running" in refused.user_message
    # Settled but not finished (still downloading or delivering) still takes the slot.
    await store.quota.settle(first.id, 10)
    assert isinstance(await reserve(store, second.id, 10), Refusal)
    await store.limits.set_max_active_jobs(GUILD, 2)
    assert isinstance(await reserve(store, second.id, 10), Reservation)
    assert isinstance(await reserve(store, third.id, 10), Refusal)
    await store.jobs.transition(first.id, JobState.CANCELED)
    assert isinstance(await reserve(store, third.id, 10), Reservation)
    # Unreserved jobs (still being validated) do not count.
    assert await store.jobs.active_count(GUILD, 1) == 2
    assert (await store.quota.balance(GUILD, 1)).max_active_jobs == 2


async def test_settle_and_refund_take_effect_once(store: Store):
    """Settle twice, refund twice, or both: the balance changes once."""
    cases = [("settle", "settle"), ("refund", "refund"), ("settle", "refund"), ("refund", "settle")]
    for user_id, (first, second) in enumerate(cases, start=1):
        job = await new_job(store, user_id=user_id)
        await reserve(store, job.id, 100, user_id=user_id)

        async def close(kind: str, job_id: int = job.id) -> bool:
            return await (store.quota.settle(job_id, 70) if kind == "settle" else store.quota.refund(job_id))

        assert await close(first) is True
        after_first = await store.quota.balance(GUILD, user_id)
        assert await close(second) is False
        assert await close(first) is False
        assert await store.quota.balance(GUILD, user_id) == after_first
        assert after_first.used == (70 if first == "settle" else 0)
        assert after_first.reserved == 0
        closes = [e for e in await store.quota.entries(job.id) if e.kind in (LedgerKind.SETTLE, LedgerKind.REFUND)]
        assert len(closes) == 1


async def test_ledger_rows_follow_the_sign_convention(store: Store):
    """reserve -r, settle +(r - charged), refund +r."""
    a, b = await new_job(store, user_id=1), await new_job(store, user_id=2)
    await reserve(store, a.id, 100, user_id=1)
    await reserve(store, b.id, 100, user_id=2)
    await store.quota.settle(a.id, 30)
    await store.quota.refund(b.id)
    assert [(e.kind, e.amount, e.charged) for e in await store.quota.entries(a.id)] == [
        (LedgerKind.RESERVE, -100, None),
        (LedgerKind.SETTLE, 70, 30),
    ]
    assert [(e.kind, e.amount) for e in await store.quota.entries(b.id)] == [
        (LedgerKind.RESERVE, -100),
        (LedgerKind.REFUND, 100),
    ]
    assert (await store.jobs.get(a.id)).charged_credits == 30  # type: ignore[union-attr]


async def test_settling_above_the_reservation_charges_the_difference(store: Store):
    """A render that cost more than reserved counts in full; the member can end up at zero."""
    job = await new_job(store)
    await reserve(store, job.id, 900)
    assert await store.quota.settle(job.id, 1100)
    assert [e.amount for e in await store.quota.entries(job.id)] == [-900, -200]
    balance = await store.quota.balance(GUILD, 1)
    assert (balance.used, balance.remaining) == (1100, 0)
    await store.jobs.transition(job.id, JobState.FAILED)
    zero = await new_job(store)
    refused = await reserve(store, zero.id, 1)
    assert isinstance(refused, Refusal) and refused.available == 0


async def test_settle_without_reservation_raises_and_refund_is_a_no_op(store: Store):
    """A charge with nothing to settle is a bug; refunding nothing is harmless."""
    job = await new_job(store)
    with pytest.raises(NoReservation):
        await store.quota.settle(job.id, 10)
    assert await store.quota.refund(job.id) is False
    with pytest.raises(ValueError, match="negative"):
        await store.quota.settle(job.id, -1)


async def test_reserving_twice_returns_the_first_reservation(store: Store):
    """A repeated reserve writes nothing new."""
    job = await new_job(store)
    first = await reserve(store, job.id, 100)
    again = await reserve(store, job.id, 500)
    assert isinstance(first, Reservation) and isinstance(again, Reservation)
    assert (again.amount, again.already_reserved, again.remaining) == (100, True, 900)
    assert len(await store.quota.entries(job.id)) == 1


async def test_reserve_rejects_wrong_calls(store: Store):
    """Finished jobs, someone else's job and negative amounts are errors."""
    job = await new_job(store)
    with pytest.raises(ValueError, match="belongs to member 1"):
        await reserve(store, job.id, 10, user_id=2)
    with pytest.raises(ValueError, match="negative"):
        await reserve(store, job.id, -5)
    await store.jobs.transition(job.id, JobState.CANCELED)
    with pytest.raises(JobNotActive):
        await reserve(store, job.id, 10)


async def test_grants_raise_one_members_allowance_for_this_window_only(store: Store, clock: FakeClock):
    """A grant adds to what the member may use now, not to the pool, and lapses at the reset."""
    await store.limits.set_server_pool(GUILD, 1200)
    entry = await store.quota.grant(GUILD, 1, 500, by_user_id=99, note="event winner")
    assert (entry.kind, entry.amount, entry.by_user_id, entry.note) == (LedgerKind.GRANT, 500, 99, "event winner")
    balance = await store.quota.balance(GUILD, 1)
    assert (balance.allowance, balance.granted, balance.remaining) == (1000, 500, 1500)
    job = await new_job(store)
    refused = await reserve(store, job.id, 1300)
    assert isinstance(refused, Refusal) and refused.limit is LimitKind.SERVER_POOL
    assert isinstance(await reserve(store, job.id, 1200), Reservation)
    await finish(store, job.id, 1200)
    await clock.advance(24 * 3600)
    balance = await store.quota.balance(GUILD, 1)
    assert (balance.granted, balance.used, balance.remaining) == (0, 0, 1000)
    with pytest.raises(ValueError):
        await store.quota.grant(GUILD, 1, 0)


async def test_adjustments_count_against_member_and_pool(store: Store):
    """An adjustment corrects usage everywhere, unlike a grant."""
    await store.limits.set_server_pool(GUILD, 1000)
    await store.quota.adjust(GUILD, 1, -300, by_user_id=99, note="billed outside the bot")
    balance = await store.quota.balance(GUILD, 1)
    assert (balance.used, balance.remaining, balance.server_pool_remaining) == (300, 700, 700)
    job = await new_job(store)
    await reserve(store, job.id, 100)
    entry = await store.quota.adjust(GUILD, 1, 50, job_id=job.id)
    assert entry.mode is job.mode and entry.job_id == job.id
    assert (await store.quota.balance(GUILD, 1)).used == 350


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
    job = await new_job(store)
    await reserve(store, job.id, 600)
    await clock.advance(24 * 3600)
    assert (await store.quota.balance(GUILD, 1)).used == 0
    await store.quota.settle(job.id, 100)  # gives 500 back to yesterday's window
    balance = await store.quota.balance(GUILD, 1)
    assert (balance.used, balance.remaining) == (0, 1000)
    entries = await store.quota.entries(job.id)
    assert entries[1].period_at == entries[0].period_at != entries[1].at
    yesterday = await store.quota.usage(GUILD, since=entries[0].period_at - dt.timedelta(hours=1))
    assert yesterday.total.used == 100


async def test_weekly_window_wording(db_path: Path, clock: FakeClock):
    """Refusals speak of the configured window."""
    policy = QuotaPolicy(window=QuotaWindow.WEEKLY, default_member_credits=10)
    async with await Store.open(db_path, clock=clock, policy=policy) as store:
        job = await new_job(store)
        refused = await reserve(store, job.id, 20)
        assert isinstance(refused, Refusal)
        assert "left this week" in refused.user_message
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
    )
    assert QuotaPolicy.from_settings(settings) == QuotaPolicy(QuotaWindow.MONTHLY, dt.time(6, 0), 250, 10_000, 2)
    with pytest.raises(ValueError):
        QuotaPolicy(max_active_jobs_per_member=0)
