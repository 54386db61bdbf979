"""The PostgreSQL backend: a pool of asyncpg connections, locks, migrations, LISTEN/NOTIFY.

Chosen by `DATABASE_URL=postgresql://…`, for several processes (shards, or two copies during an
upgrade) sharing one database. The store's SQL is the same as on SQLite (`bot.store.db`); this
module turns `?` into `$n` and gives each transaction a pooled connection.

Concurrency model. Write transactions run at READ COMMITTED, the server's default, and hold
explicit locks wherever a check and the write that depends on it must not be split by another
process: a job's row is read `FOR UPDATE` before its state changes (so exactly one of two racing
transitions wins, and credits close once), and a reservation holds transaction-scoped advisory
locks on the limits it checks (the server's, and the bot budget's) while it sums the ledger and
appends to it, so reservations stay exact across processes without serialisation failures to
retry. The locks are named in `bot.store.db` and always taken in one order (ledger, server,
budget), so they cannot deadlock; should PostgreSQL still abort a transaction as a deadlock or a
serialisation failure, it is run again, up to `_ATTEMPTS` times. Reads run at REPEATABLE READ,
read-only: one snapshot, like a SQLite read transaction.

Like the SQLite backend, a transaction runs in its own task, shielded from the caller's
cancellation, so it always commits or rolls back in full.

Migrations are `migrations/postgresql/NNNN_name.sql`, with the numbers and names of SQLite's.
Each is applied in its own transaction that first takes an advisory lock and re-reads the
recorded version, so processes starting together apply each migration once.

Notifications: `notify` is `pg_notify` (delivered to every listening process, this one too, when
the transaction commits); `listen` keeps one dedicated connection that reconnects if it drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, TypeVar

import asyncpg

from bot.clock import Clock
from bot.store.db import Connection, Database, Dialect, Migration, Row, lock_key
from bot.store.errors import SchemaTooNew, StoreError
from bot.store.sqlite import consume_result

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_POOL_SIZE = 10
_ATTEMPTS = 5
_RETRYABLE = (asyncpg.exceptions.SerializationError, asyncpg.exceptions.DeadlockDetectedError)
_MIGRATION_LOCK = lock_key("schema_migrations")
_RECONNECT_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)


@functools.lru_cache(maxsize=1024)
def positional(sql: str) -> str:
    """`?` placeholders as PostgreSQL's `$1`, `$2`, … (never inside quoted text or identifiers)."""
    out: list[str] = []
    number = 0
    quote: str | None = None
    for char in sql:
        if quote is not None:
            if char == quote:
                quote = None
        elif char in ("'", '"'):
            quote = char
        elif char == "?":
            number += 1
            out.append(f"${number}")
            continue
        out.append(char)
    return "".join(out)


def _changed(status: str) -> int:
    """Rows changed, from a command tag such as `UPDATE 3` or `INSERT 0 1`."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class PostgresConnection(Connection):
    """A pooled asyncpg connection inside one of the store's transactions."""

    dialect: ClassVar[Dialect] = Dialect.POSTGRESQL
    FOR_UPDATE: ClassVar[str] = " FOR UPDATE"
    FOR_UPDATE_SKIP_LOCKED: ClassVar[str] = " FOR UPDATE SKIP LOCKED"

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.raw = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return how many rows it changed."""
        status: str = await self.raw.execute(positional(sql), *params)
        return _changed(status)

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Every row of a query."""
        rows: list[Row] = await self.raw.fetch(positional(sql), *params)
        return rows

    async def lock(self, *names: str, shared: Sequence[str] = ()) -> None:
        """Transaction-scoped advisory locks, all in one statement (PostgreSQL evaluates its list in order)."""
        calls = [f"pg_advisory_xact_lock_shared(${i})" for i in range(1, len(shared) + 1)]
        calls += [f"pg_advisory_xact_lock(${i})" for i in range(len(shared) + 1, len(shared) + len(names) + 1)]
        if calls:
            await self.raw.execute(f"SELECT {', '.join(calls)}", *(lock_key(n) for n in (*shared, *names)))

    async def integrity_problems(self) -> list[str]:
        """PostgreSQL enforces every constraint as it writes; report any it was told not to check yet."""
        rows = await self.fetch_all(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint"
            " WHERE NOT convalidated AND connamespace = current_schema()::regnamespace"
        )
        return [f"constraint {r[1]} on {r[0]} is not validated" for r in rows]


class PostgresDatabase(Database):
    """A connection pool; each transaction takes one connection from it."""

    dialect: ClassVar[Dialect] = Dialect.POSTGRESQL

    def __init__(self, pool: asyncpg.Pool, url: str, clock: Clock) -> None:
        super().__init__(clock)
        self.pool = pool
        self._url = url
        self._closed = False
        self._inflight: set[asyncio.Future[Any]] = set()
        self._listen_conn: Any = None
        self._listen_task: asyncio.Task[None] | None = None
        self._rng = random.Random()  # noqa: S311 - retry jitter, not cryptography

    async def write(self, body: Callable[[Connection], Awaitable[T]]) -> T:
        """Run `body` in one READ COMMITTED transaction, again if PostgreSQL aborts it as a deadlock."""
        return await self._shielded(body, readonly=False)

    async def read(self, body: Callable[[Connection], Awaitable[T]]) -> T:
        """Run `body` in one read-only REPEATABLE READ transaction (one snapshot)."""
        return await self._shielded(body, readonly=True)

    async def _shielded(self, body: Callable[[Connection], Awaitable[T]], *, readonly: bool) -> T:
        if self._closed:
            raise StoreError("the store is closed")
        task = asyncio.ensure_future(self._transaction(body, readonly=readonly))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(consume_result)
            raise

    async def _transaction(self, body: Callable[[Connection], Awaitable[T]], *, readonly: bool) -> T:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                async with self.pool.acquire() as conn:
                    options = {"isolation": "repeatable_read", "readonly": True} if readonly else {}
                    async with conn.transaction(**options):
                        return await body(PostgresConnection(conn))
            except _RETRYABLE as exc:
                if attempt == _ATTEMPTS:
                    raise
                log.info("retrying a transaction PostgreSQL aborted (%s)", type(exc).__name__)
                await asyncio.sleep(self._rng.uniform(0, 0.01 * 2**attempt))  # real back-off between processes
        raise AssertionError("unreachable")

    async def notify(self, channel: str, payload: str) -> None:
        """`pg_notify`: every process listening on `channel` hears it, this one included."""
        if self._closed:
            return
        async with self.pool.acquire() as conn:
            await conn.execute("SELECT pg_notify($1, $2)", channel, payload)

    async def listen(self, channel: str, callback: Callable[[str], object]) -> None:
        """Call `callback(payload)` for each notification on `channel`, on a dedicated connection."""
        self._listeners.setdefault(channel, []).append(callback)
        if self._listen_conn is None:
            await self._connect_listener()
        else:
            await self._listen_conn.add_listener(channel, self._dispatch)

    def _dispatch(self, conn: object, pid: int, channel: str, payload: str) -> None:
        for callback in self._listeners.get(channel, []):
            try:
                callback(payload)
            except Exception:
                log.exception("a notification handler for %s failed", channel)

    async def _connect_listener(self) -> None:
        conn = await asyncpg.connect(self._url)
        conn.add_termination_listener(self._listener_lost)
        for channel in self._listeners:
            await conn.add_listener(channel, self._dispatch)
        self._listen_conn = conn

    def _listener_lost(self, conn: object) -> None:
        if self._closed or conn is not self._listen_conn:
            return
        log.warning("lost the PostgreSQL connection that listens for notifications; reconnecting")
        self._listen_conn = None
        self._listen_task = asyncio.get_running_loop().create_task(self._reconnect(), name="pg-listen-reconnect")

    async def _reconnect(self) -> None:
        attempt = 0
        while not self._closed and self._listen_conn is None:
            try:
                await self._connect_listener()
                log.info("listening for notifications again")
                return
            except (OSError, asyncpg.PostgresError) as exc:
                pause = _RECONNECT_SECONDS[min(attempt, len(_RECONNECT_SECONDS) - 1)]
                log.warning("could not reconnect the notification listener (%s); again in %.1f s", exc, pause)
                attempt += 1
                await asyncio.sleep(pause)  # real time: waiting for the server to come back

    async def close(self) -> None:
        """Let running transactions finish, then close the pool and the listener."""
        if self._closed:
            return
        self._closed = True
        if self._listen_task is not None:
            self._listen_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listen_task
        if self._listen_conn is not None:
            conn, self._listen_conn = self._listen_conn, None
            with contextlib.suppress(Exception):
                await conn.close()
        if self._inflight:
            await asyncio.wait(list(self._inflight))
        await self.pool.close()


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


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Nothing to reset when a connection goes back to the pool: the store leaves no session state.

    Its locks are transaction-scoped, it never LISTENs on a pooled connection (the listener has its
    own), never SETs anything after connecting, and holds no cursors past a transaction. asyncpg's
    default reset would cost a round trip per transaction.
    """


async def open_database(url: str, clock: Clock, migrations: Sequence[Migration], *, pool_size: int) -> Database:
    """Connect to the database at `url` and bring its schema up to date."""
    try:
        pool = await asyncpg.create_pool(
            url, min_size=1, max_size=pool_size, server_settings={"timezone": "UTC"}, reset=_keep_session
        )
    except (OSError, asyncpg.PostgresError) as exc:
        raise StoreError(f"could not connect to PostgreSQL: {exc}") from exc
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn, migrations, now=clock.now)
    except BaseException:
        await pool.close()
        raise
    return PostgresDatabase(pool, url, clock)
