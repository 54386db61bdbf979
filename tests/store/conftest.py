"""Fixtures for the store tests: a fresh database on each backend, a fake clock, a policy.

`database` is parametrised: every test that uses it (or `store`) runs once on a SQLite file and
once on a fresh PostgreSQL database of the session's throwaway server (`postgres_server`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot.clock import FakeClock
from bot.config import GenerationMode
from bot.store import JobRecord, JobState, NewJob, QuotaPolicy, Reservation, Store
from bot.store import postgres as postgres_backend
from bot.store import sqlite as sqlite_backend
from bot.store.db import Connection, Migration
from bot.store.pgmigrate import apply_migrations as apply_postgres_migrations
from bot.store.postgres import PostgresDatabase
from bot.store.sqlite import SqliteDatabase
from tests.store.pgserver import create_database, drop_database

# What `Store.open` takes: a SQLite file or a PostgreSQL URL.
Target = Path | str
# A constraint or trigger refusing a write, as each backend's driver raises it.
INTEGRITY_ERRORS = (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError)

GUILD = 1111
OTHER_GUILD = 2222
# A Tuesday, mid-morning UTC: far from every reset boundary unless a test moves the clock.
START = dt.datetime(2026, 3, 10, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
def clock() -> FakeClock:
    """A clock that moves only when a test says so."""
    return FakeClock(START)


@pytest.fixture
def policy() -> QuotaPolicy:
    """A daily window resetting at midnight UTC, 1000 credits each, one active job."""
    return QuotaPolicy(default_member_credits=1000, max_active_jobs_per_member=1)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """Which database the test runs on."""
    return str(request.param)


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    """A SQLite file, for the tests of SQLite's own behaviour (WAL, busy timeout, its files)."""
    return tmp_path / "data" / "store.sqlite3"


@pytest.fixture
async def database(backend: str, sqlite_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Target]:
    """A fresh, empty database: a SQLite file, or a new database on the session's PostgreSQL server."""
    async with _fresh(backend, sqlite_path, request) as target:
        yield target


@pytest.fixture
async def second_database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Target]:
    """Another fresh database on the same backend."""
    async with _fresh(backend, tmp_path / "other" / "store.sqlite3", request) as target:
        yield target


@contextlib.asynccontextmanager
async def _fresh(backend: str, sqlite_file: Path, request: pytest.FixtureRequest) -> AsyncIterator[Target]:
    if backend == "sqlite":
        yield sqlite_file
        return
    server = request.getfixturevalue("postgres_server")
    url = await create_database(server)
    try:
        yield url
    finally:
        await drop_database(server, url)


@pytest.fixture
async def store(database: Target, clock: FakeClock, policy: QuotaPolicy) -> AsyncIterator[Store]:
    """An open store on a fresh database."""
    async with await Store.open(database, clock=clock, policy=policy) as opened:
        yield opened
        assert await opened.check_invariants() == []


class RawDatabase:
    """A connection outside any `Store`, to build old schemas, seed them, and look at the catalogue."""

    def __init__(self, target: Target, conn: Any) -> None:
        self.target = target
        self.conn = conn
        self.sqlite = isinstance(target, Path)

    @classmethod
    async def open(cls, target: Target) -> RawDatabase:
        """Connect without migrating anything."""
        if isinstance(target, Path):
            return cls(target, await sqlite_backend.connect(target))
        return cls(target, await asyncpg.connect(target))

    async def close(self) -> None:
        """Close the connection."""
        await self.conn.close()

    async def migrate(self, migrations: list[Migration], now: Callable[[], dt.datetime]) -> list[int]:
        """The backend's own migration runner."""
        if self.sqlite:
            return await sqlite_backend.apply_migrations(self.conn, migrations, now=now)
        return await apply_postgres_migrations(self.conn, migrations, now=now)

    async def execute(self, sql: str, *params: object) -> None:
        """One statement (`?` placeholders), committed at once."""
        if self.sqlite:
            await self.conn.execute(sql, params)
        else:
            await self.conn.execute(postgres_backend.positional(sql), *params)

    async def fetch(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        """Every row, as tuples."""
        if self.sqlite:
            return [tuple(r) for r in await self.conn.execute_fetchall(sql, params)]
        return [tuple(r) for r in await self.conn.fetch(postgres_backend.positional(sql), *params)]

    async def names(self, kind: str) -> set[str]:
        """The names of the database's tables (`kind="table"`) or indexes (`"index"`)."""
        if self.sqlite:
            return {r[0] for r in await self.fetch("SELECT name FROM sqlite_master WHERE type = ?", kind)}
        catalogue = "pg_tables WHERE schemaname" if kind == "table" else "pg_indexes WHERE schemaname"
        column = "tablename" if kind == "table" else "indexname"
        return {r[0] for r in await self.fetch(f"SELECT {column} FROM {catalogue} = current_schema()")}

    async def advance_ids(self) -> None:
        """After rows were inserted with explicit ids: PostgreSQL's identity sequences move past them (never back)."""
        if self.sqlite:
            return
        for table in ("jobs", "job_events", "ledger"):
            if table not in await self.names("table"):
                continue
            [(sequence,)] = await self.fetch(f"SELECT pg_get_serial_sequence('{table}', 'id')")
            [(last, called)] = await self.fetch(f"SELECT last_value, is_called FROM {sequence}")
            [(highest,)] = await self.fetch(f"SELECT COALESCE(MAX(id), 0) FROM {table}")
            if highest >= (last + 1 if called else last):
                await self.execute(f"SELECT setval('{sequence}', {int(highest)}, true)")


async def raw_write(store: Store, *statements: tuple[str, tuple[object, ...]]) -> None:
    """Run SQL behind the store's back (`?` placeholders), in one transaction: damage, as a bug could."""

    async def body(conn: Connection) -> None:
        for sql, params in statements:
            await conn.execute(sql, params)

    await store._db.write(body)


async def raw_read(store: Store, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """Rows of a query run behind the store's back, as tuples."""
    rows = await store._db.read(lambda conn: conn.fetch_all(sql, params))
    return [tuple(r) for r in rows]


def no_open_transaction(store: Store) -> bool:
    """True when no transaction is open on the store's connections."""
    db = store._db
    if isinstance(db, SqliteDatabase):
        return not db.conn.in_transaction
    assert isinstance(db, PostgresDatabase)
    return bool(db.pool.get_idle_size() == db.pool.get_size())


async def new_job(
    store: Store, *, user_id: int = 1, guild_id: int | None = GUILD, mode: GenerationMode = GenerationMode.STANDARD
) -> JobRecord:
    """A fresh job in `received`."""
    return await store.jobs.create(NewJob(user_id=user_id, guild_id=guild_id, channel_id=5, mode=mode))


# From a fresh job to a completed render: the states `walk` passes through, in order.
TO_RENDERED = (JobState.UPLOADING, JobState.CREATING, JobState.SUBMITTED)


async def walk(store: Store, job_id: int, *states: JobState) -> JobRecord:
    """Move a job through `states` in order; return the last record."""
    record = await store.jobs.get(job_id)
    assert record is not None
    for state in states:
        record = await store.jobs.transition(job_id, state)
    return record


async def complete(store: Store, job_id: int, charged: int) -> JobRecord:
    """Take a job from received to downloading: its render completed, charging `charged` (a settle)."""
    await walk(store, job_id, *TO_RENDERED)
    return await store.jobs.transition(job_id, JobState.DOWNLOADING, charged=charged)


async def reserved_job(
    store: Store, amount: int, *, user_id: int = 1, guild_id: int | None = GUILD, roles: tuple[int, ...] = ()
) -> JobRecord:
    """A fresh job holding `amount` credits (the reservation must succeed)."""
    job = await new_job(store, user_id=user_id, guild_id=guild_id)
    result = await store.quota.reserve(job.id, guild_id=guild_id, user_id=user_id, role_ids=list(roles), amount=amount)
    assert isinstance(result, Reservation), result
    return job
