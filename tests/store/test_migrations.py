"""Migrations on both backends: fresh databases, every earlier schema version, re-runs, failures.

Both dialects ship the same numbered migrations; each test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from bot.clock import FakeClock
from bot.config import GenerationMode
from bot.store import (
    AlreadyReconciled,
    JobState,
    MemberSettings,
    NewJob,
    QuotaPolicy,
    Reservation,
    ResultPlace,
    SchemaTooNew,
    Store,
)
from bot.store.db import Dialect, Migration, load_migrations
from bot.store.sqlite import statements

from .conftest import GUILD, INTEGRITY_ERRORS, RawDatabase, Target

NOW = "2026-03-10T09:00:00.000000+00:00"
DAY = "2026-03-10T00:00:00.000000+00:00"  # the start of NOW's daily window

# Data a database at each schema version could hold, written with that version's columns only.
SEEDS: dict[int, list[str]] = {
    1: [
        "INSERT INTO jobs (id, user_id, guild_id, mode, state, created_at, updated_at, project_id)"
        f" VALUES (1, 7, {GUILD}, 'pro', 'submitted', '{NOW}', '{NOW}', 'p-1')",
        f"INSERT INTO job_events (job_id, state, at) VALUES (1, 'received', '{NOW}')",
        f"INSERT INTO job_events (job_id, state, at) VALUES (1, 'uploading', '{NOW}')",
        f"INSERT INTO job_events (job_id, state, at) VALUES (1, 'submitted', '{NOW}')",
    ],
    2: [
        "INSERT INTO ledger (kind, job_id, guild_id, user_id, mode, amount, period_at, at)"
        f" VALUES ('reserve', 1, {GUILD}, 7, 'pro', -120, '{NOW}', '{NOW}')",
        f"INSERT INTO member_limits (guild_id, user_id, credits, set_at) VALUES ({GUILD}, 7, 500, '{NOW}')",
    ],
    3: [
        "INSERT INTO ledger (kind, job_id, guild_id, user_id, mode, amount, period_at, at)"
        f" VALUES ('topup', 1, {GUILD}, 7, 'pro', -30, '{NOW}', '{NOW}')",
        """UPDATE jobs SET error_data = '{"status": 503}', role_ids = '10,11' WHERE id = 1""",
    ],
    4: [
        "INSERT INTO render_times (job_id, mode, frames, low_seconds, high_seconds, seconds, finished_at)"
        f" VALUES (1, 'pro', 45, 20.0, 22.0, 21.0, '{NOW}')",
        f"INSERT INTO store_heartbeat (id, beat_at) VALUES (1, '{NOW}')",
    ],
    5: [],  # a placeholder for another branch's migration (see 0006)
    6: [
        "UPDATE jobs SET locale = 'es-ES', video_file_path = 'api-assets/v.mp4', audio_file_path = 'api-assets/a.mp3',"
        f" files_uploaded_at = '{NOW}', video_seconds = 2.0, audio_seconds = 1.5, source_fps = 30.0 WHERE id = 1",
    ],
    7: [
        "INSERT INTO jobs (id, user_id, guild_id, mode, state, created_at, updated_at, claimed_by, lease_until)"
        f" VALUES (2, 8, {GUILD}, 'lite', 'received', '{NOW}', '{NOW}', 'gone:1:abc', '{NOW}')",
        f"INSERT INTO job_events (job_id, state, at) VALUES (2, 'received', '{NOW}')",
    ],
    8: [  # job 3: unknown at Magic Hour, settled to the 40 it held, then reconciled: Magic Hour charged 0
        "INSERT INTO jobs (id, user_id, guild_id, mode, state, error_code, error_data, charged_credits,"
        " created_at, updated_at)"
        f" VALUES (3, 9, {GUILD}, 'lite', 'failed', 'unknown_at_magic_hour', '{{\"reconciled_charge\":0}}', 0,"
        f" '{NOW}', '{NOW}')",
        f"INSERT INTO job_events (job_id, state, at) VALUES (3, 'received', '{NOW}')",
        f"INSERT INTO job_events (job_id, state, at) VALUES (3, 'failed', '{NOW}')",
        "INSERT INTO ledger (kind, job_id, guild_id, user_id, mode, amount, charged, period_at, at) VALUES"
        f" ('reserve', 3, {GUILD}, 9, 'lite', -40, NULL, '{NOW}', '{NOW}'),"
        f" ('settle', 3, {GUILD}, 9, 'lite', 0, 40, '{NOW}', '{NOW}'),"
        f" ('reconcile', 3, {GUILD}, 9, 'lite', 40, 0, '{NOW}', '{NOW}')",
    ],
    9: [  # job 4: queued, its request kept, claimed by a registered process, a cancel asked for
        "INSERT INTO instances (id, name, host, pid, started_at, beats, beat_at)"
        f" VALUES ('i-9', 'bot-9', 'host-9', 1, '{NOW}', 5, '{NOW}')",
        "INSERT INTO jobs (id, user_id, guild_id, mode, state, created_at, updated_at, claimed_by, request,"
        f" cancel_requested_by) VALUES (4, 10, {GUILD}, 'lite', 'received', '{NOW}', '{NOW}', 'i-9',"
        """ '{"version": 1}', 10)""",
        f"INSERT INTO job_events (job_id, state, at) VALUES (4, 'received', '{NOW}')",
    ],
    10: [  # member 11's grant; and the running totals of every row seeded so far, as the store keeps them
        "INSERT INTO ledger (kind, guild_id, user_id, amount, period_at, at)"
        f" VALUES ('grant', {GUILD}, 11, 25, '{NOW}', '{NOW}')",
        "DELETE FROM ledger_totals",
        "INSERT INTO ledger_totals (scope, window_start, used, granted, reserved) VALUES"
        f" ('bot', '{DAY}', 150, 0, 0), ('guild:{GUILD}', '{DAY}', 150, 0, 0),"
        f" ('member:{GUILD}:7', '{DAY}', 150, 0, 150), ('member:{GUILD}:11', '{DAY}', 0, 25, 0)",
    ],
    11: [  # a member's own settings, and job 4's result going to a thread without a ping
        "INSERT INTO member_settings (guild_id, user_id, mode, max_fps, results, ping, updated_at)"
        f" VALUES ({GUILD}, 10, 'pro', 24.0, 'thread', FALSE, '{NOW}')",
        "UPDATE jobs SET deliver_to = 'thread', ping_owner = FALSE WHERE id = 4",
    ],
    12: [  # job 5: its events are the database's to write (none inserted here), then it failed
        "INSERT INTO jobs (id, user_id, guild_id, mode, state, created_at, updated_at)"
        f" VALUES (5, 11, {GUILD}, 'lite', 'received', '{NOW}', '{NOW}')",
        f"UPDATE jobs SET state = 'failed', updated_at = '{NOW}' WHERE id = 5",
    ],
}


def dialect_of(target: Target) -> Dialect:
    return Dialect.SQLITE if isinstance(target, Path) else Dialect.POSTGRESQL


def policy() -> QuotaPolicy:
    return QuotaPolicy(default_member_credits=1000)


def test_there_are_at_least_two_numbered_migrations():
    """Migrations ship as package data, numbered from 0001 without gaps."""
    migrations = load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert len(migrations) >= 2
    assert set(SEEDS) == {m.version for m in migrations}, "add a seed for the new schema version"


def test_both_dialects_ship_the_same_migrations():
    """Every SQLite migration has its PostgreSQL counterpart, with the same number and name."""
    sqlite = [(m.version, m.name) for m in load_migrations(Dialect.SQLITE)]
    postgres = [(m.version, m.name) for m in load_migrations(Dialect.POSTGRESQL)]
    assert sqlite == postgres


def test_statement_splitting_keeps_triggers_whole():
    """SQLite: a trigger body's semicolons do not split it."""
    quota = load_migrations()[1]
    split = statements(quota)
    trigger = [s for s in split if "CREATE TRIGGER" in s]
    assert len(trigger) == 1 and trigger[0].rstrip().endswith("END;")
    assert all(sqlite3.complete_statement(s) for s in split)


async def test_fresh_database_gets_every_migration(database: Target, clock: FakeClock):
    """An empty database is migrated to the latest version, with every migration recorded."""
    async with await Store.open(database, clock=clock, policy=policy()) as store:
        migrations = load_migrations(dialect_of(database))
        assert await store.schema_version() == len(migrations)
        raw = await RawDatabase.open(database)
        try:
            rows = await raw.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
        finally:
            await raw.close()
        assert rows == [(m.version, m.name) for m in migrations]
        assert await store.check_invariants() == []


async def test_a_fresh_sqlite_file_gets_the_pragmas(sqlite_path: Path, clock: FakeClock):
    """SQLite: WAL mode, foreign keys on, the busy timeout, and `user_version`."""
    async with await Store.open(sqlite_path, clock=clock, policy=policy(), busy_timeout_ms=4321) as store:
        latest = len(load_migrations())
        assert await store.schema_version() == latest
        latest = len(load_migrations())
        conn = store._db.conn  # type: ignore[attr-defined]
        assert [tuple(r) for r in await conn.execute_fetchall("PRAGMA journal_mode")] == [("wal",)]
        assert [tuple(r) for r in await conn.execute_fetchall("PRAGMA foreign_keys")] == [(1,)]
        assert [tuple(r) for r in await conn.execute_fetchall("PRAGMA busy_timeout")] == [(4321,)]
        assert [tuple(r) for r in await conn.execute_fetchall("PRAGMA user_version")] == [(latest,)]


async def test_opening_again_applies_nothing_and_keeps_data(database: Target, clock: FakeClock):
    """Running the migrations again is a no-op."""
    async with await Store.open(database, clock=clock, policy=policy()) as store:
        job = await store.jobs.create(_job())
    raw = await RawDatabase.open(database)
    try:
        assert await raw.migrate(load_migrations(dialect_of(database)), clock.now) == []
    finally:
        await raw.close()
    async with await Store.open(database, clock=clock, policy=policy()) as store:
        assert await store.jobs.get(job.id) == job


@pytest.mark.parametrize("version", range(len(load_migrations()) + 1))
async def test_upgrade_from_every_earlier_version(database: Target, clock: FakeClock, version: int):
    """A database created by schema version N, with data in it, upgrades and keeps working."""
    migrations = load_migrations(dialect_of(database))
    raw = await RawDatabase.open(database)
    try:
        applied: list[int] = []
        # Each version's data is written by that version's schema (later ones may add triggers).
        for seed_version in range(1, version + 1):
            applied += await raw.migrate(migrations[:seed_version], clock.now)
            for sql in SEEDS[seed_version]:
                await raw.execute(sql)
        assert applied == list(range(1, version + 1))
        await raw.advance_ids()
    finally:
        await raw.close()

    async with await Store.open(database, clock=clock, policy=policy()) as store:
        assert await store.schema_version() == len(migrations)
        assert await store.check_invariants() == []
        if version >= 1:
            job = await store.jobs.get(1)
            assert job is not None and job.project_id == "p-1" and job.state is JobState.SUBMITTED
            assert [e.state for e in await store.jobs.events(1)][-1] is JobState.SUBMITTED
        if version >= 2:
            assert await store.limits.member_limits(GUILD) == {7: 500}
            held = 150 if version >= 3 else 120
            assert (await store.quota.limits(GUILD, 7)).reserved == held
            job = await store.jobs.transition(1, JobState.DOWNLOADING, charged=100)
            assert job.charged_credits == 100
            assert (await store.quota.limits(GUILD, 7)).used == 100
        if version >= 3:
            assert job is not None and job.error_data == {"status": 503}
        if version >= 4:
            [sample] = await store.renders.recent(GenerationMode.PRO, 10)
            assert (sample.frames, sample.low, sample.high, sample.job_id) == (45, 20.0, 22.0, 1)
        if version >= 6:
            assert job is not None and job.locale == "es-ES" and job.source_fps == 30.0
            assert job.files_uploaded_at is not None and job.files_uploaded_at.isoformat() == NOW.replace(".000000", "")
        if version >= 7:
            # Job 1 was never claimed; job 2's claim was left by a process that is gone and has expired.
            assert [j.id for j in await store.jobs.claimable()] == [1, 2]
            assert [j.claimed_by for j in await store.jobs.claim([2])] == [store.owner]
        if version >= 8:
            with pytest.raises(AlreadyReconciled):
                await store.quota.reconcile(3, 40)
            assert (await store.quota.limits(GUILD, 9)).used == 0
        if version >= 9:
            # Job 4's process is registered: its claim holds; its request and the cancel asked for are there.
            assert await store.jobs.claim([4]) == []
            assert [i.name for i in await store.instances.all()] == ["bot-9"]
            queued = await store.jobs.get(4)
            assert queued is not None and queued.cancel_requested_by == 10
            assert await store.jobs.stored_request(4) is not None
        if version >= 10:
            assert (await store.quota.limits(GUILD, 11)).granted == 25
        if version >= 11:
            assert await store.member_settings.get(GUILD, 10) == MemberSettings(
                mode=GenerationMode.PRO, max_fps=24.0, results=ResultPlace.THREAD, ping=False
            )
            queued = await store.jobs.get(4)
            assert queued is not None and (queued.deliver_to, queued.ping_owner) == (ResultPlace.THREAD, False)
        # The upgraded database does everything a fresh one does.
        fresh = await store.jobs.create(_job(user_id=8))
        assert isinstance(
            await store.quota.reserve(fresh.id, guild_id=GUILD, user_id=8, role_ids=[], amount=10), Reservation
        )
        await store.jobs.transition(fresh.id, JobState.FAILED)
        assert await store.check_invariants() == []


async def test_a_failing_migration_rolls_back_whole(database: Target, clock: FakeClock):
    """A migration that fails part-way leaves no trace and the version unchanged."""
    broken = Migration(99, "broken", "CREATE TABLE half_done (x INTEGER);\nINSERT INTO no_such_table VALUES (1);\n")
    migrations = load_migrations(dialect_of(database))
    raw = await RawDatabase.open(database)
    try:
        await raw.migrate(migrations, clock.now)
        with pytest.raises((sqlite3.OperationalError, asyncpg.UndefinedTableError), match="no_such_table"):
            await raw.migrate([*migrations, broken], clock.now)
        if raw.sqlite:
            assert not raw.conn.in_transaction
        else:
            assert not raw.conn.is_in_transaction()
        assert "half_done" not in await raw.names("table")
        assert await raw.fetch("SELECT MAX(version) FROM schema_migrations") == [(len(migrations),)]
    finally:
        await raw.close()


async def test_a_newer_database_is_refused(database: Target, clock: FakeClock):
    """A database migrated by a newer bot is not silently used."""
    async with await Store.open(database, clock=clock, policy=policy()):
        pass
    raw = await RawDatabase.open(database)
    try:
        await raw.execute(f"INSERT INTO schema_migrations VALUES (999, 'future', '{NOW}')")
    finally:
        await raw.close()
    with pytest.raises(SchemaTooNew):
        await Store.open(database, clock=clock, policy=policy())


async def test_several_stores_opening_a_new_database_at_once(database: Target, clock: FakeClock):
    """Concurrent first opens apply each migration exactly once."""
    stores = await asyncio.gather(*(Store.open(database, clock=clock, policy=policy()) for _ in range(8)))
    try:
        raw = await RawDatabase.open(database)
        try:
            rows = await raw.fetch("SELECT version FROM schema_migrations")
        finally:
            await raw.close()
        assert sorted(r[0] for r in rows) == [m.version for m in load_migrations(dialect_of(database))]
    finally:
        for store in stores:
            await store.close()


def _job(user_id: int = 7) -> NewJob:
    return NewJob(user_id=user_id, guild_id=GUILD, mode=GenerationMode.LITE)


async def test_0003_keeps_ledger_ids_and_settles_jobs_past_their_render(database: Target, clock: FakeClock):
    """The ledger keeps its ids (SQLite rebuilds it; a deleted id is never reused); live rendered jobs get settled."""
    migrations = load_migrations(dialect_of(database))
    conn = await RawDatabase.open(database)
    try:
        await conn.migrate(migrations[:2], clock.now)
        for job_id, state, charged in ((1, "delivering", 90), (2, "downloading", None), (3, "done", 50)):
            await conn.execute(
                "INSERT INTO jobs (id, user_id, guild_id, mode, state, charged_credits, created_at, updated_at)"
                f" VALUES (?, 7, {GUILD}, 'lite', ?, ?, '{NOW}', '{NOW}')",
                job_id,
                state,
                charged,
            )
            path = ["received", "uploading", "submitted", "downloading", "delivering", "done"]
            for event in path[: path.index(state) + 1]:
                await conn.execute(f"INSERT INTO job_events (job_id, state, at) VALUES (?, ?, '{NOW}')", job_id, event)
            await conn.execute(
                "INSERT INTO ledger (kind, job_id, guild_id, user_id, mode, amount, period_at, at)"
                f" VALUES ('reserve', ?, {GUILD}, 7, 'lite', -100, '{NOW}', '{NOW}')",
                job_id,
            )
        await conn.execute(
            "INSERT INTO ledger (kind, job_id, guild_id, user_id, mode, amount, charged, period_at, at)"
            f" VALUES ('settle', 3, {GUILD}, 7, 'lite', 50, 50, '{NOW}', '{NOW}')"
        )
        await conn.execute(
            "INSERT INTO ledger (kind, guild_id, user_id, amount, period_at, at)"
            f" VALUES ('grant', {GUILD}, 8, 5, '{NOW}', '{NOW}')"
        )
        await conn.execute("DELETE FROM ledger WHERE kind = 'grant'")  # id 5 existed once
        await conn.advance_ids()
    finally:
        await conn.close()

    async with await Store.open(database, clock=clock, policy=policy()) as store:
        assert await store.check_invariants() == []
        assert [(e.id, e.kind.value, e.charged) for e in await store.quota.entries(1)] == [
            (1, "reserve", None),
            (6, "settle", 90),
        ]
        assert [(e.kind.value, e.amount, e.charged) for e in await store.quota.entries(2)] == [
            ("reserve", -100, None),
            ("settle", 0, 100),
        ]
        assert (await store.jobs.get(2)).charged_credits == 100  # type: ignore[union-attr]
        assert len(await store.quota.entries(3)) == 2  # already settled: untouched
        entry = await store.quota.adjust(GUILD, 7, -1)
        assert entry.id == 8  # after the migration's two settles; 5 is never reused
    raw = await RawDatabase.open(database)
    try:
        index_names = await raw.names("index")
        assert {"ledger_one_reserve", "ledger_one_close", "ledger_by_member", "ledger_forgotten"} <= index_names
        with pytest.raises(INTEGRITY_ERRORS, match="append-only"):
            await raw.execute("UPDATE ledger SET amount = 0")
        with pytest.raises(INTEGRITY_ERRORS):
            await raw.execute(
                "INSERT INTO ledger (kind, job_id, guild_id, user_id, amount, period_at, at)"
                f" VALUES ('topup', 1, {GUILD}, 7, 5, '{NOW}', '{NOW}')"
            )
    finally:
        await raw.close()


async def test_0008_gives_earlier_reconciliations_their_row(database: Target, clock: FakeClock):
    """Jobs the old command reconciled (an adjustment, a note in error_data) get their reconcile row and charge."""
    migrations = load_migrations(dialect_of(database))
    conn = await RawDatabase.open(database)
    try:
        await conn.migrate(migrations[:7], clock.now)
        # Job 1: reconciled to 0 (45 given back). Job 2: reconciled at what it held (no adjustment).
        # Job 3: reconciled to 10, but two runs raced and gave back 35 twice. Job 4: never reconciled.
        cases: tuple[tuple[int, int | None, list[int]], ...] = (
            (1, 0, [35 + 10]),
            (2, 45, []),
            (3, 10, [35, 35]),
            (4, None, []),
        )
        for job_id, reconciled, adjustments in cases:
            data = "NULL" if reconciled is None else f"'{{\"reconciled_charge\":{reconciled}}}'"
            await conn.execute(
                "INSERT INTO jobs (id, user_id, guild_id, mode, state, error_code, error_data, charged_credits,"
                f" created_at, updated_at) VALUES (?, 7, {GUILD}, 'lite', 'failed', 'unknown_at_magic_hour',"
                f" {data}, 45, '{NOW}', '{NOW}')",
                job_id,
            )
            for event in ("received", "uploading", "creating", "failed"):
                await conn.execute(f"INSERT INTO job_events (job_id, state, at) VALUES (?, ?, '{NOW}')", job_id, event)
            for kind, amount, charged in (("reserve", -45, None), ("settle", 0, 45)):
                await conn.execute(
                    "INSERT INTO ledger (kind, job_id, guild_id, user_id, mode, amount, charged, period_at, at)"
                    f" VALUES (?, ?, {GUILD}, 7, 'lite', ?, ?, '{NOW}', '{NOW}')",
                    kind,
                    job_id,
                    amount,
                    charged,
                )
            for amount in adjustments:
                await conn.execute(
                    "INSERT INTO ledger (kind, job_id, guild_id, user_id, mode, amount, period_at, at)"
                    f" VALUES ('adjust', ?, {GUILD}, 7, 'lite', ?, '{NOW}', '{NOW}')",
                    job_id,
                    amount,
                )
        await conn.advance_ids()
    finally:
        await conn.close()

    async with await Store.open(database, clock=clock, policy=policy()) as store:
        assert await store.check_invariants() == []
        for job_id, reconciled, _ in cases:
            job = await store.jobs.get(job_id)
            assert job is not None
            entries = await store.quota.entries(job_id)
            reconciles = [e for e in entries if e.kind.value == "reconcile"]
            if reconciled is None:
                assert reconciles == [] and job.charged_credits == 45
                await store.quota.reconcile(job_id, 45)  # the new command takes it from here
                continue
            [row] = reconciles
            assert (row.charged, job.charged_credits) == (reconciled, reconciled)
            assert -sum(e.amount for e in entries) == reconciled  # the rows add up to Magic Hour's charge
            with pytest.raises(AlreadyReconciled):
                await store.quota.reconcile(job_id, reconciled)
        assert [e.amount for e in await store.quota.entries(3) if e.kind.value == "reconcile"] == [-35]
        assert (await store.quota.limits(GUILD, 7)).used == 0 + 45 + 10 + 45
        assert await store.check_invariants() == []
    raw = await RawDatabase.open(database)
    try:
        assert "ledger_one_reconcile" in await raw.names("index")
        with pytest.raises(INTEGRITY_ERRORS, match="append-only"):
            await raw.execute("UPDATE ledger SET amount = 0")
    finally:
        await raw.close()
