"""Management: limits and server settings, usage reports, and deleting a member's data."""

from __future__ import annotations

import dataclasses

import pytest

from bot.config import GenerationMode
from bot.store import GuildSettings, JobState, LimitKind, MemberHasActiveJobs, Reservation, Store, UsageLine

from .conftest import GUILD, OTHER_GUILD, complete, new_job, walk

LITE, STANDARD, PRO = GenerationMode.LITE, GenerationMode.STANDARD, GenerationMode.PRO


async def run_job(
    store: Store, user_id: int, amount: int, *, charged: int | None, mode=STANDARD, guild_id: int | None = GUILD
):
    """A job that reserves `amount`, then settles at `charged` (None: refunded), and ends."""
    job = await new_job(store, user_id=user_id, mode=mode, guild_id=guild_id)
    result = await store.quota.reserve(job.id, guild_id=guild_id, user_id=user_id, role_ids=[], amount=amount)
    assert isinstance(result, Reservation)
    if charged is None:
        await store.jobs.transition(job.id, JobState.FAILED)
    else:
        await complete(store, job.id, charged)
        await walk(store, job.id, JobState.DELIVERING, JobState.DONE)
    return job


async def test_guild_settings_set_and_clear(store: Store):
    """Each server setting can be set, read back and cleared."""
    assert await store.limits.guild_settings(GUILD) == GuildSettings(GUILD)
    await store.limits.set_server_default(GUILD, 300)
    await store.limits.set_server_pool(GUILD, 5000)
    await store.limits.set_allowed_modes(GUILD, [LITE, STANDARD, LITE])
    await store.limits.set_max_clip_seconds(GUILD, 30.0)
    settings = await store.limits.set_max_active_jobs(GUILD, 1)
    assert settings == GuildSettings(GUILD, 300, 5000, (LITE, STANDARD), 30.0, 1)
    assert await store.limits.guild_settings(OTHER_GUILD) == GuildSettings(OTHER_GUILD)
    settings = await store.limits.set_allowed_modes(GUILD, None)
    assert settings.allowed_modes is None and settings.pool_credits == 5000
    assert await store.limits.clear_guild_settings(GUILD)
    assert await store.limits.guild_settings(GUILD) == GuildSettings(GUILD)


async def test_limit_values_are_validated(store: Store):
    """Negative credits, no modes, zero seconds and zero jobs are refused."""
    with pytest.raises(ValueError):
        await store.limits.set_member_limit(GUILD, 1, -1)
    with pytest.raises(ValueError):
        await store.limits.set_role_limit(GUILD, 1, -1)
    with pytest.raises(ValueError):
        await store.limits.set_server_pool(GUILD, -1)
    with pytest.raises(ValueError):
        await store.limits.set_allowed_modes(GUILD, [])
    with pytest.raises(ValueError):
        await store.limits.set_max_clip_seconds(GUILD, 0)
    with pytest.raises(ValueError):
        await store.limits.set_max_active_jobs(GUILD, 0)


async def test_member_and_role_limits_listed_and_replaced(store: Store):
    """Setting a limit again replaces it; listings show the server's limits only."""
    await store.limits.set_member_limit(GUILD, 1, 100, by_user_id=9)
    await store.limits.set_member_limit(GUILD, 1, 150, by_user_id=9)
    await store.limits.set_member_limit(OTHER_GUILD, 1, 10)
    await store.limits.set_role_limit(GUILD, 10, 400)
    assert await store.limits.member_limits(GUILD) == {1: 150}
    assert await store.limits.role_limits(GUILD) == {10: 400}
    assert (await store.quota.limits(GUILD, 1)).limit_kind is LimitKind.MEMBER


async def test_usage_report_by_member_and_mode(store: Store):
    """Totals add up by member, by mode and overall; other servers and other windows are excluded."""
    await run_job(store, 1, 100, charged=90, mode=LITE)
    await run_job(store, 1, 200, charged=None, mode=PRO)
    await run_job(store, 2, 300, charged=300, mode=PRO)
    running = await new_job(store, user_id=3, mode=STANDARD)
    await store.quota.reserve(running.id, guild_id=GUILD, user_id=3, role_ids=[], amount=50)
    await store.quota.adjust(GUILD, 2, -25, by_user_id=9)
    await store.quota.grant(GUILD, 2, 1000)  # not usage
    await run_job(store, 1, 999, charged=999, guild_id=OTHER_GUILD)

    report = await store.quota.usage(GUILD)
    assert report.total == UsageLine(jobs=4, settled=2, refunded=1, charged=390, in_flight=50, adjusted=25, used=465)
    assert report.by_member[1] == UsageLine(jobs=2, settled=1, refunded=1, charged=90, used=90)
    assert report.by_member[2] == UsageLine(jobs=1, settled=1, charged=300, adjusted=25, used=325)
    assert report.by_member[3] == UsageLine(jobs=1, in_flight=50, used=50)
    assert report.by_mode[PRO] == UsageLine(jobs=2, settled=1, refunded=1, charged=300, used=300)
    assert report.by_mode[LITE].used == 90 and report.by_mode[STANDARD].used == 50
    assert report.by_mode[None] == UsageLine(adjusted=25, used=25)
    assert sum(line.used for line in report.by_member.values()) == report.total.used
    assert (report.since, report.until) == store.quota.window()

    later = await store.quota.usage(GUILD, since=report.until, until=report.until.replace(year=2030))
    assert later.total == UsageLine()


async def test_delete_member_data_keeps_server_totals(database, clock):
    """Deleting a member removes their jobs but not their usage: totals and their own limits stand."""
    from bot.store import QuotaPolicy

    policy = QuotaPolicy(default_member_credits=1000, bot_budget_credits=100_000)
    async with await Store.open(database, clock=clock, policy=policy) as store:
        await store.limits.set_server_pool(GUILD, 5000)
        await store.limits.set_member_limit(GUILD, 1, 800)
        await store.limits.set_member_limit(GUILD, 2, 700, by_user_id=1)
        await store.quota.grant(GUILD, 1, 100, by_user_id=2)
        await store.quota.grant(GUILD, 2, 100, by_user_id=1)
        kept = [await run_job(store, 1, 100, charged=80, mode=PRO), await run_job(store, 1, 50, charged=None)]
        await store.quota.adjust(GUILD, 1, -10)
        await run_job(store, 2, 300, charged=250)
        elsewhere = await run_job(store, 1, 40, charged=40, guild_id=OTHER_GUILD)
        running = await new_job(store, user_id=1)
        await store.quota.reserve(running.id, guild_id=GUILD, user_id=1, role_ids=[], amount=10)

        with pytest.raises(MemberHasActiveJobs) as info:
            await store.delete_member_data(GUILD, 1)
        assert info.value.job_ids == (running.id,)
        await store.jobs.transition(running.id, JobState.CANCELED)

        before = await store.quota.usage(GUILD)
        before_limits_1 = await store.quota.limits(GUILD, 1)
        before_limits_2 = await store.quota.limits(GUILD, 2)
        report = await store.delete_member_data(GUILD, 1)
        assert (report.jobs_deleted, report.grants_deleted, report.limits_kept) == (3, 0, 1)
        # 3 reserves, 1 settle, 2 refunds, 1 adjustment and 1 grant, all of the running window.
        assert (report.ledger_rows_kept, report.ledger_rows_anonymised) == (8, 0)
        assert report.usage_kept_until == store.quota.window()[1]

        after = await store.quota.usage(GUILD)
        assert after.total == before.total
        assert after.by_mode == before.by_mode
        assert after.by_member[None] == before.by_member[1]
        assert 1 not in after.by_member and after.by_member[2] == before.by_member[2]
        assert await store.quota.limits(GUILD, 2) == before_limits_2  # pool and budget unchanged too
        # Still counting against the member: used, grants and their manager-set limit all stand.
        assert await store.quota.limits(GUILD, 1) == before_limits_1
        assert before_limits_1.limit_kind is LimitKind.MEMBER and before_limits_1.used == 90

        for job in [*kept, running]:
            assert await store.jobs.get(job.id) is None
            assert await store.jobs.events(job.id) == []
            assert await store.quota.entries(job.id) == []
        assert await store.jobs.get(elsewhere.id) is not None  # another server's data stays
        assert await store.quota.member_entries(GUILD, 1) == []
        grants_by_1 = [e for e in await store.quota.member_entries(GUILD, 2) if e.by_user_id == 1]
        assert grants_by_1 == []
        assert await store.limits.member_limits(GUILD) == {1: 800, 2: 700}
        assert await store.check_invariants() == []

        everywhere = await store.delete_member_data(None, 1)
        assert everywhere.jobs_deleted == 1
        assert await store.jobs.get(elsewhere.id) is None
        assert (await store.quota.usage(OTHER_GUILD)).by_member[None].charged == 40
        assert (await store.quota.limits(OTHER_GUILD, 1)).used == 40
        assert await store.check_invariants() == []


def test_usage_line_fields_are_documented():
    """`used` is charged + in flight + adjusted (kept in sync with the docs)."""
    names = [f.name for f in dataclasses.fields(UsageLine)]
    assert names == ["jobs", "settled", "refunded", "charged", "in_flight", "adjusted", "used"]
