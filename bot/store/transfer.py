"""Moving a SQLite store to PostgreSQL (`lipsync-bot migrate-db --to postgresql://…`).

With the bot stopped, both databases are migrated to the latest schema; the destination must hold
no jobs, ledger rows or limits. Every table is copied in one transaction, references kept valid and
ids unchanged, values converted to PostgreSQL's column types, the member-token secret included,
and identity sequences moved past the copied ids. Row counts and `check_invariants` must then agree
on both; a difference is reported, and the SQLite file is never changed beyond its own migrations.
docs/design-notes.md, "Several processes", gives the reasons.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from bot.clock import Clock, SystemClock
from bot.store.db import Connection, Row, parse_ts
from bot.store.errors import StoreError
from bot.store.models import QuotaPolicy
from bot.store.postgres import PostgresDatabase
from bot.store.sqlite import SqliteDatabase
from bot.store.store import Store

# Tables that others reference come first; tables added by later migrations follow in name order.
_ORDER = ("jobs", "job_events", "ledger", "member_limits", "role_limits", "guild_settings", "store_secrets")
# Liveness of the processes that used the SQLite file means nothing to the new database.
_BOOKKEEPING = ("schema_migrations", "sqlite_sequence", "instances")
_MUST_BE_EMPTY = ("jobs", "ledger", "member_limits", "role_limits", "guild_settings")


@dataclass
class TransferReport:
    """What `copy_to_postgres` copied, table by table, and what it checked."""

    rows: dict[str, int] = field(default_factory=dict)
    problems_before: list[str] = field(default_factory=list)
    problems_after: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Rows copied in all."""
        return sum(self.rows.values())


def _converter(pg_type: str) -> Any:  # noqa: ANN401 - one converter per column type
    if pg_type == "timestamp with time zone":
        return lambda value: None if value is None else parse_ts(value)
    if pg_type in ("bigint", "integer", "smallint"):
        return lambda value: None if value is None else int(value)
    if pg_type == "double precision":
        return lambda value: None if value is None else float(value)
    if pg_type == "boolean":
        return lambda value: None if value is None else bool(value)
    if pg_type == "bytea":
        return lambda value: None if value is None else bytes(value)
    return lambda value: value  # text, jsonb (JSON text as SQLite stored it)


async def copy_to_postgres(
    source: Path, destination: str, *, clock: Clock | None = None, policy: QuotaPolicy | None = None
) -> TransferReport:
    """Copy the SQLite store at `source` into the empty PostgreSQL database at `destination`."""
    if not await asyncio.to_thread(source.exists):
        raise StoreError(f"there is no SQLite database at {source}")
    clock = clock or SystemClock()
    policy = policy or QuotaPolicy()
    report = TransferReport()
    async with (
        await Store.open(source, clock=clock, policy=policy) as old,
        await Store.open(destination, clock=clock, policy=policy, pool_size=2) as new,
    ):
        assert isinstance(old._db, SqliteDatabase) and isinstance(new._db, PostgresDatabase)
        report.problems_before = await old.check_invariants()
        tables = await _source_tables(old._db)
        async with new._db.pool.acquire() as conn, conn.transaction():
            for table in _MUST_BE_EMPTY:
                if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"):  # noqa: S608 - constant names
                    raise StoreError(f"the PostgreSQL database already holds data (table {table}); give an empty one")
            await conn.execute("DELETE FROM store_secrets")  # the fresh database's own secret gives way
            await conn.execute("DELETE FROM ledger_totals_window")  # the copied totals say which rule they keep
            # The copied history is complete: the triggers that write a job's events must not add to it.
            await conn.execute("ALTER TABLE jobs DISABLE TRIGGER USER")
            for table in tables:
                report.rows[table] = await _copy_table(old._db, conn, table)
            await conn.execute("ALTER TABLE jobs ENABLE TRIGGER USER")
            for table in tables:
                await _advance_identity(conn, table, await _sqlite_sequence(old._db, table))
        report.problems_after = await new.check_invariants()
        counts = await _counts(new._db, tables)
    if counts != report.rows:
        raise StoreError(f"row counts differ after the copy: copied {report.rows}, found {counts}")
    return report


async def _source_tables(db: SqliteDatabase) -> list[str]:
    rows = await db.read(
        lambda conn: conn.fetch_all("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    )
    names = {str(r[0]) for r in rows} - set(_BOOKKEEPING)
    known = [t for t in _ORDER if t in names]
    return known + sorted(names - set(known))


async def _copy_table(db: SqliteDatabase, conn: asyncpg.Connection, table: str) -> int:
    columns = await conn.fetch(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        table,
    )
    if not columns:
        raise StoreError(f"PostgreSQL has no table {table}: its migrations lag behind SQLite's")
    pg_types = {str(c["column_name"]): str(c["data_type"]) for c in columns}
    rows: list[Row] = await db.read(lambda c: c.fetch_all(f"SELECT * FROM {table} ORDER BY rowid"))  # noqa: S608
    if not rows:
        return 0
    names = list(rows[0].keys())
    missing = [n for n in names if n not in pg_types]
    if missing:
        raise StoreError(f"PostgreSQL's {table} lacks the columns {', '.join(missing)}: its migrations lag behind")
    convert = [_converter(pg_types[n]) for n in names]
    records = [tuple(f(row[i]) for i, f in enumerate(convert)) for row in rows]
    await conn.copy_records_to_table(table, records=records, columns=names)
    return len(records)


async def _sqlite_sequence(db: SqliteDatabase, table: str) -> int:
    """The highest id SQLite's AUTOINCREMENT ever gave in `table` (0 if none)."""
    rows = await db.read(lambda c: c.fetch_all("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)))
    return int(rows[0][0]) if rows else 0


async def _advance_identity(conn: asyncpg.Connection, table: str, given: int) -> None:
    sequence = await conn.fetchval(
        "SELECT pg_get_serial_sequence($1, 'id') FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = $1 AND column_name = 'id'",
        table,
    )
    if sequence is None:
        return
    highest = max(given, int(await conn.fetchval(f"SELECT COALESCE(MAX(id), 0) FROM {table}")))  # noqa: S608
    if highest > 0:
        # SQLite's AUTOINCREMENT never reuses an id, even one whose row was deleted: neither does this.
        await conn.execute("SELECT setval($1, $2, true)", sequence, highest)


async def _counts(db: PostgresDatabase, tables: list[str]) -> dict[str, int]:
    async def body(conn: Connection) -> dict[str, int]:
        return {t: int((await conn.fetch_all(f"SELECT COUNT(*) FROM {t}"))[0][0]) for t in tables}  # noqa: S608

    return await db.read(body)


def describe(report: TransferReport) -> str:
    """The report in a few lines, for the terminal."""
    lines = [f"copied {report.total} rows:"]
    lines += [f"  {table}: {count}" for table, count in report.rows.items()]
    if report.problems_after:
        lines.append("check_invariants on PostgreSQL reports:")
        lines += [f"  {problem}" for problem in report.problems_after]
    else:
        lines.append("check_invariants on PostgreSQL: no problems")
    return "\n".join(lines)
