"""PostgreSQL's schema: `migrations/postgresql/NNNN_name.sql`, applied in order when the store opens.

Each migration is applied in its own transaction that first takes an advisory lock and re-reads
the recorded version, so processes starting together apply each migration once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

import asyncpg

from bot.store.db import Migration, lock_key
from bot.store.errors import SchemaTooNew

_MIGRATION_LOCK = lock_key("schema_migrations")


async def _version(conn: asyncpg.Connection) -> int:
    value = await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
    return int(value)


async def apply_migrations(
    conn: asyncpg.Connection, migrations: Sequence[Migration], *, now: Callable[[], dt.datetime]
) -> list[int]:
    """Apply whichever of `migrations` the database lacks, in order; return the versions applied.

    Safe to call again, and from several processes at once (an advisory lock orders them).
    Raises `SchemaTooNew` if the database records a version this code does not know.
    """
    known = max((m.version for m in migrations), default=0)
    applied: list[int] = []
    for migration in [None, *migrations]:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
            )
            current = await _version(conn)
            if current > known:
                raise SchemaTooNew(f"the database is at schema version {current}; this bot knows up to {known}")
            if migration is None or migration.version <= current:
                continue
            await conn.execute(migration.sql)  # a whole script: the simple query protocol runs it all
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                now(),
            )
            applied.append(migration.version)
    return applied
