"""The SQLite backend: one connection, its transactions, and the numbered migrations.

Every transaction holds an `asyncio.Lock` for its whole length (aiosqlite runs one connection's
statements in order on one thread, so two `BEGIN`s on it would nest or mix), and every write
transaction starts with `BEGIN IMMEDIATE`, so other processes (a second bot, `render`) wait for
SQLite's write lock; `Connection.lock` has nothing left to do. A transaction runs in its own task,
shielded from the caller's cancellation, so it always commits or rolls back in full. Migrations
(`migrations/NNNN_name.sql`) each run in their own `BEGIN IMMEDIATE`, re-reading the recorded
version first, and must not need `PRAGMA foreign_keys=OFF`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import aiosqlite

from bot.clock import Clock
from bot.store.db import Connection, Database, Dialect, Migration, Row, ts
from bot.store.errors import SchemaTooNew, StoreBusy, StoreError

T = TypeVar("T")

DEFAULT_BUSY_TIMEOUT_MS = 10_000
_MIN_SQLITE = (3, 39, 0)  # RETURNING (3.35), IS [NOT] DISTINCT FROM (3.39)


def statements(migration: Migration) -> list[str]:
    """A SQLite script split into statements (triggers' inner semicolons are kept together)."""
    out: list[str] = []
    buf = ""
    for line in migration.sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if _strip_comments(buf):
                out.append(buf.strip())
            buf = ""
    if _strip_comments(buf):
        raise StoreError(f"migration {migration.version:04d} ends with an incomplete statement")
    return out


def _strip_comments(sql: str) -> str:
    return "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--")).strip()


def _param(value: object) -> object:
    return ts(value) if isinstance(value, dt.datetime) else value


class SqliteConnection(Connection):
    """An aiosqlite connection inside one of the store's transactions."""

    dialect: ClassVar[Dialect] = Dialect.SQLITE
    FOR_UPDATE: ClassVar[str] = ""  # BEGIN IMMEDIATE already holds the only write lock
    FOR_UPDATE_SKIP_LOCKED: ClassVar[str] = ""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.raw = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return how many rows it changed."""
        cursor = await self.raw.execute(sql, tuple(_param(p) for p in params))
        return cursor.rowcount

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Every row of a query (one round trip to the connection's thread)."""
        return list(await self.raw.execute_fetchall(sql, tuple(_param(p) for p in params)))

    async def lock(self, *names: str, shared: Sequence[str] = ()) -> None:
        """Nothing to do: `BEGIN IMMEDIATE` serialises every writer."""

    async def integrity_problems(self) -> list[str]:
        """`PRAGMA integrity_check` and `foreign_key_check`, in words."""
        problems: list[str] = []
        integrity = [str(r[0]) for r in await self.fetch_all("PRAGMA integrity_check")]
        if integrity != ["ok"]:
            problems.extend(f"integrity: {line}" for line in integrity)
        for row in await self.fetch_all("PRAGMA foreign_key_check"):
            problems.append(f"foreign key: {row[0]} row {row[1]} points at a missing {row[2]} row")
        return problems


async def connect(path: Path, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> aiosqlite.Connection:
    """Open the database file with the pragmas every connection needs."""
    if sqlite3.sqlite_version_info < _MIN_SQLITE:
        raise StoreError(f"SQLite {sqlite3.sqlite_version} is too old; the store needs 3.39 or newer")
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: the store issues BEGIN/COMMIT itself; Python's implicit transactions
    # would otherwise open deferred ones behind its back.
    conn = await aiosqlite.connect(path, isolation_level=None)
    try:
        conn.row_factory = sqlite3.Row
        # The busy timeout first, so that the journal-mode switch below also waits for others.
        await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        await _enable_wal(conn, path, busy_timeout_ms)
        # NORMAL is safe in WAL mode: a crash of the process never loses a committed transaction;
        # only a power cut can lose the last few, and never corrupts the file.
        await conn.execute("PRAGMA synchronous = NORMAL")
        await conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        await conn.close()
        raise
    return conn


async def _enable_wal(conn: aiosqlite.Connection, path: Path, busy_timeout_ms: int) -> None:
    """Switch the file to WAL (a no-op once it is), retrying while another connection blocks it.

    SQLite does not call the busy handler for this switch: when several processes open a new file
    at once, all but one get "database is locked" immediately. So retry here, within the timeout.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + busy_timeout_ms / 1000
    while True:
        try:
            rows = list(await conn.execute_fetchall("PRAGMA journal_mode = WAL"))
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or loop.time() >= deadline:
                raise StoreBusy("could not switch the database to WAL mode: it stayed locked") from exc
            await asyncio.sleep(0.01)  # a real wait for another process, not test synchronisation
            continue
        mode = str(rows[0][0]).lower()
        if mode != "wal" and str(path) != ":memory:":
            raise StoreError(f"the database stayed in {mode} journal mode; WAL is required")
        return


async def _fetch_version(conn: aiosqlite.Connection) -> int:
    rows = list(await conn.execute_fetchall("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))
    return int(rows[0][0])


async def apply_migrations(
    conn: aiosqlite.Connection, migrations: Sequence[Migration], *, now: Callable[[], dt.datetime]
) -> list[int]:
    """Apply whichever of `migrations` the database lacks, in order; return the versions applied.

    Safe to call again, and from two processes at once. Raises `SchemaTooNew` if the database
    records a version this code does not know.
    """
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    known = max((m.version for m in migrations), default=0)
    current = await _fetch_version(conn)
    if current > known:
        raise SchemaTooNew(f"the database is at schema version {current}; this bot knows up to {known}")
    applied: list[int] = []
    for migration in migrations:
        if migration.version <= current:
            continue
        await _begin_immediate(conn)
        try:
            # Re-read under the write lock: another process may have applied it meanwhile.
            current = await _fetch_version(conn)
            if migration.version > current:
                for statement in statements(migration):
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, ts(now())),
                )
                await conn.execute(f"PRAGMA user_version = {migration.version}")
                applied.append(migration.version)
                current = migration.version
            await conn.execute("COMMIT")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
    return applied


async def _begin_immediate(conn: aiosqlite.Connection) -> None:
    try:
        await conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise StoreBusy("the database stayed locked by another process past the busy timeout") from exc
        raise


class SqliteDatabase(Database):
    """One connection, serialised transactions, and a clock for timestamps."""

    dialect: ClassVar[Dialect] = Dialect.SQLITE

    def __init__(self, conn: aiosqlite.Connection, clock: Clock) -> None:
        super().__init__(clock)
        self.conn = conn
        self._wrapped = SqliteConnection(conn)
        self._lock = asyncio.Lock()
        self._closed = False

    async def write(self, body: Callable[[Connection], Awaitable[T]]) -> T:
        """Run `body` in one `BEGIN IMMEDIATE` transaction; commit if it returns, roll back if it raises."""
        return await self._shielded(body, immediate=True)

    async def read(self, body: Callable[[Connection], Awaitable[T]]) -> T:
        """Run `body` in one read transaction (a consistent snapshot)."""
        return await self._shielded(body, immediate=False)

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """One read statement on its own (SQLite's autocommit: the statement is its own snapshot)."""
        return await self._shielded(lambda conn: conn.fetch_all(sql, params), immediate=None)

    async def write_one(
        self, sql: str, params: Sequence[Any] = (), *, locks: Sequence[str] = (), shared: Sequence[str] = ()
    ) -> list[Row]:
        """One write statement on its own: SQLite applies it, with its triggers, all or nothing.

        It takes the write lock itself (waiting for other processes up to the busy timeout), and
        being one statement it cannot hold a read lock while it waits, so it needs no BEGIN IMMEDIATE.
        The named locks are SQLite's one write lock (see `SqliteConnection.lock`).
        """
        return await self._shielded(lambda conn: conn.fetch_all(sql, params), immediate=None)

    async def _shielded(self, body: Callable[[Connection], Awaitable[T]], *, immediate: bool | None) -> T:
        """`immediate`: a write transaction, a read one (False), or one statement with none (None)."""
        if self._closed:
            raise StoreError("the store is closed")
        task = asyncio.ensure_future(self._transaction(body, immediate=immediate))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            # The transaction finishes on its own; make sure its outcome is not reported as lost.
            task.add_done_callback(consume_result)
            raise

    async def _transaction(self, body: Callable[[Connection], Awaitable[T]], *, immediate: bool | None) -> T:
        async with self._lock:
            if immediate is None:
                try:
                    return await body(self._wrapped)
                except sqlite3.OperationalError as exc:
                    if "locked" in str(exc) or "busy" in str(exc):
                        raise StoreBusy("the database stayed locked by another process past the busy timeout") from exc
                    raise
            if immediate:
                await _begin_immediate(self.conn)
            else:
                await self.conn.execute("BEGIN")
            try:
                result = await body(self._wrapped)
                await self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:
                    await self.conn.execute("ROLLBACK")
                raise
            return result

    async def close(self) -> None:
        """Wait for the running transaction, then close the connection."""
        if self._closed:
            return
        self._closed = True
        async with self._lock:
            # SQLite checkpoints the WAL itself when the last connection to the file closes.
            await self.conn.close()


def consume_result(task: asyncio.Future[Any]) -> None:
    """Retrieve a finished task's outcome so that it is not reported as never retrieved."""
    if not task.cancelled():
        task.exception()


async def open_database(path: Path, clock: Clock, migrations: Sequence[Migration], *, busy_timeout_ms: int) -> Database:
    """Open (creating if needed) the file at `path` and bring its schema up to date."""
    conn = await connect(path, busy_timeout_ms=busy_timeout_ms)
    try:
        await apply_migrations(conn, migrations, now=clock.now)
    except BaseException:
        await conn.close()
        raise
    return SqliteDatabase(conn, clock)
