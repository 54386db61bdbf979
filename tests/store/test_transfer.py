"""`lipsync-bot migrate-db --to postgresql://…`: a used SQLite store, moved, reads back the same."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.clock import FakeClock
from bot.config import GenerationMode
from bot.store import JobState, LimitKind, QuotaPolicy, Refusal, Store
from tests.store.pgserver import TempPostgres, create_database, drop_database

from .conftest import GUILD, OTHER_GUILD, START, complete, new_job, reserved_job, walk

POLICY = QuotaPolicy(default_member_credits=500, bot_budget_credits=100_000, max_active_jobs_per_member=5)
MEMBERS = [(GUILD, 1), (GUILD, 2), (GUILD, 3), (OTHER_GUILD, 1), (None, 1)]


async def _use(store: Store, clock: FakeClock) -> None:
    """A little of everything: every ledger kind, limits, settings, a forgotten member, a claim, old windows."""
    await store.limits.set_member_limit(GUILD, 2, 300, by_user_id=9)
    await store.limits.set_role_limit(GUILD, 10, 700, by_user_id=9)
    await store.limits.set_server_pool(GUILD, 5000)
    await store.limits.set_allowed_modes(OTHER_GUILD, [GenerationMode.LITE])
    await store.limits.set_max_clip_seconds(OTHER_GUILD, 12.5)
    old = await reserved_job(store, 40, user_id=1)
    await complete(store, old.id, 35)
    await store.jobs.transition(old.id, JobState.DELIVERING)
    await store.jobs.transition(old.id, JobState.DONE, delivery_kind="file", delivery_message_id=2**62)
    await clock.advance(86_400)  # a new window: yesterday's rows count no more
    settled = await reserved_job(store, 100, user_id=1, roles=(10,))
    await walk(store, settled.id, JobState.UPLOADING, JobState.CREATING)
    await store.quota.top_up(settled.id, 130)
    await store.jobs.transition(settled.id, JobState.SUBMITTED, project_id="p-settled")
    await store.jobs.transition(settled.id, JobState.DOWNLOADING, charged=120)
    refunded = await reserved_job(store, 50, user_id=2)
    await store.jobs.transition(refunded.id, JobState.FAILED, error_code="bad_video", error_data={"seconds": 1.5})
    unknown = await reserved_job(store, 60, user_id=3, guild_id=OTHER_GUILD)
    await walk(store, unknown.id, JobState.UPLOADING, JobState.CREATING)
    await store.jobs.transition(unknown.id, JobState.FAILED, charged=60, error_code="unknown_at_magic_hour")
    running = await reserved_job(store, 70, user_id=1, guild_id=None)
    await store.instances.register()
    await store.jobs.claim([running.id])
    await store.quota.grant(GUILD, 3, 25, by_user_id=9, note="welcome")
    await store.quota.grant(GUILD, 3, -5, by_user_id=9)
    await store.quota.adjust(GUILD, 2, -7, by_user_id=9, note="reconciled")
    forgotten = await reserved_job(store, 90, user_id=4)
    await store.jobs.transition(forgotten.id, JobState.CANCELED)
    spent = await reserved_job(store, 80, user_id=4)
    await complete(store, spent.id, 80)
    await store.jobs.transition(spent.id, JobState.FAILED, error_code="delivery_failed")
    await store.delete_member_data(GUILD, 4)  # their 80 keep counting, under a token
    await new_job(store, user_id=5)  # received, never reserved


async def _snapshot(store: Store) -> dict[str, object]:
    """Everything the store's API can say about its data."""
    jobs = {}
    for job_id in range(1, 20):
        record = await store.jobs.get(job_id)
        if record is not None:
            jobs[job_id] = (record.model_dump(), await store.jobs.events(job_id), await store.quota.entries(job_id))
    limits = {m: await store.quota.limits(m[0], m[1], (10,)) for m in [*MEMBERS, (GUILD, 4)]}
    return {
        "jobs": jobs,
        "limits": limits,
        "member_limits": await store.limits.member_limits(GUILD),
        "role_limits": await store.limits.role_limits(GUILD),
        "settings": [await store.limits.guild_settings(g) for g in (GUILD, OTHER_GUILD)],
        "usage": [dataclasses.asdict(await store.quota.usage(g)) for g in (GUILD, OTHER_GUILD, None)],
        "entries": [await store.quota.member_entries(g, u, START - dt.timedelta(days=2)) for g, u in MEMBERS],
        "secret": store._secret,
    }


@pytest.fixture
async def pg_url(postgres_server: TempPostgres):
    url = await create_database(postgres_server)
    yield url
    await drop_database(postgres_server, url)


async def test_migrate_db_moves_everything_and_keeps_ids(sqlite_path: Path, pg_url: str, clock: FakeClock, capsys):
    """The command copies every row; through the store's API, PostgreSQL says what SQLite said."""
    async with await Store.open(sqlite_path, clock=clock, policy=POLICY) as store:
        await _use(store, clock)
        # The newest ledger row (a grant) is removed by hand: its id must never be given again.
        last = (await store.quota.grant(GUILD, 5, 1)).id  # type: ignore[union-attr]
        await store._db.write(lambda conn: conn.execute("DELETE FROM ledger WHERE id = ?", (last,)))
        # ... and so is what it added to the member's running total, as a full deletion would.
        await store._db.write(
            lambda conn: conn.execute(
                "UPDATE ledger_totals SET granted = granted - 1 WHERE scope = ?", (f"member:{GUILD}:5",)
            )
        )
        before = await _snapshot(store)
        assert await store.check_invariants() == []

    # The command, as an operator runs it (in a thread: it runs its own event loop).
    assert await asyncio.to_thread(main, ["migrate-db", "--to", pg_url, "--from", str(sqlite_path)]) == 0
    out = capsys.readouterr().out
    assert (
        "check_invariants on PostgreSQL: no problems" in out and "jobs: 6" in out
    )  # 8 made, 2 deleted with their member

    async with await Store.open(pg_url, clock=clock, policy=POLICY) as moved:
        assert await _snapshot(moved) == before
        assert await moved.check_invariants() == []
        # The forgotten member's spending still counts against them (the token secret came along).
        job = await new_job(moved, user_id=4)
        refusal = await moved.quota.reserve(job.id, guild_id=GUILD, user_id=4, role_ids=[], amount=421)
        assert isinstance(refusal, Refusal) and (refusal.limit, refusal.available) == (LimitKind.GLOBAL_DEFAULT, 420)
        # New rows continue after the old ids, and never reuse a deleted one.
        assert job.id == 9  # 8 were made on SQLite (2 since deleted): AUTOINCREMENT never reuses one
        assert (await moved.quota.adjust(GUILD, 1, 1)).id == last + 1
        # The claimed job is still claimed by the process that had it; once released, it is free.
        claimable = {j.id for j in await moved.jobs.claimable()}
        assert job.id in claimable

    # A database that already holds data is refused, and left as it was.
    assert await asyncio.to_thread(main, ["migrate-db", "--to", pg_url, "--from", str(sqlite_path)]) == 1
    assert "already holds data" in capsys.readouterr().err


def test_migrate_db_needs_a_postgres_url(sqlite_path: Path, capsys):
    """--to must name a PostgreSQL database."""
    assert main(["migrate-db", "--to", "sqlite:///x.db", "--from", str(sqlite_path)]) == 2
    assert "postgresql://" in capsys.readouterr().err
