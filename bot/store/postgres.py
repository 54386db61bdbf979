"""The PostgreSQL backend: a pool of asyncpg connections, locks, migrations, LISTEN/NOTIFY.

Chosen by `DATABASE_URL=postgresql://…`. The store's SQL is the same as on SQLite (`bot.store.db`);
this module turns `?` into `$n` and runs each transaction on a pooled connection, in its own task
shielded from the caller's cancellation: writes at READ COMMITTED with the advisory locks
`bot.store.db` names (run again on a deadlock or serialisation failure, up to `_ATTEMPTS` times),
reads at REPEATABLE READ. A broken connection is dropped and the call run again only when that
cannot apply it twice. Migrations are `migrations/postgresql/` (`bot.store.pgmigrate`), listening
is `bot.store.pglisten`. docs/design-notes.md, "Several processes", gives the reasons.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, TypeVar, cast

import asyncpg

from bot.clock import Clock
from bot.store.db import Connection, Database, Dialect, Migration, Row, lock_key, patience
from bot.store.errors import CommitUncertain, StoreError, StoreUnavailable
from bot.store.pglisten import Listener
from bot.store.pgmigrate import apply_migrations
from bot.store.sqlite import consume_result

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_POOL_SIZE = 10
_ATTEMPTS = 5
_RETRYABLE = (asyncpg.exceptions.SerializationError, asyncpg.exceptions.DeadlockDetectedError)
# The server went away or refused to take the connection: a restart, a failover, a cut link, too
# many clients. Worth trying again on a fresh connection, unlike an error in the SQL itself.
_CONNECTION_ERRORS = (
    OSError,  # refused, reset, the socket file gone
    TimeoutError,  # no connection within the wait
    asyncpg.exceptions.PostgresConnectionError,  # 08xxx: the connection is gone
    asyncpg.exceptions.CannotConnectNowError,  # starting up, shutting down
    asyncpg.exceptions.AdminShutdownError,  # terminated by a restart
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
)
_CONNECT_SECONDS = 5.0  # to open one connection (a server that doesn't answer at all)
_ACQUIRE_SECONDS = 10.0  # at most, to get a free connection ready (less if the caller is in a hurry)
# At most, to wait for a connection while every one is busy with other calls: a queue, not an
# outage, so it doesn't count against the caller's patience (a busy pool refused members' requests).
_QUEUE_SECONDS = 30.0
_MIN_WAIT = 0.5  # however little patience is left, a try gets this long for a connection
_RELEASE_SECONDS = 5.0
_CLOSE_SECONDS = 5.0  # for running transactions to finish, then for the pool to close, at shutdown
_BACKOFF_FIRST = 0.1  # between tries on a lost server: 0.1 s, doubling, up to 2 s
_BACKOFF_MAX = 2.0


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


class _CommitLost(Exception):
    """The connection was lost while the server committed: `xid` says which transaction to ask about."""

    def __init__(self, xid: int | None, result: object) -> None:
        super().__init__("the connection was lost during COMMIT")
        self.xid = xid
        self.result = result


def lost_connection(exc: BaseException, conn: asyncpg.Connection | None = None) -> bool:
    """True when `exc` means the connection (or the server) went away, not that the SQL was refused."""
    if isinstance(exc, _CONNECTION_ERRORS):
        return True
    # What asyncpg raises when a connection was cut under a running query: "cannot switch to state
    # 15; another operation is in progress", "the underlying connection is closed".
    if isinstance(exc, asyncpg.exceptions.InternalClientError):
        return True
    return isinstance(exc, asyncpg.exceptions.InterfaceError) and (conn is None or conn.is_closed())


class PostgresDatabase(Database):
    """A connection pool; each transaction takes one connection from it.

    It survives the server going away (a restart, a failover, a cut connection): a connection that
    was lost is terminated rather than given back (asyncpg would otherwise keep its pool slot in
    use for ever), and the transaction is run again on a fresh one for as long as the caller's
    `patience` allows, when that is safe: a read always; a write when it provably did not commit
    (it failed before COMMIT, or the server says afterwards that its transaction id aborted). Only
    a write whose COMMIT was cut and whose outcome the server can't tell raises `CommitUncertain`.
    Getting a connection and closing the pool are bounded too, and the first failure and the
    recovery of an outage are logged. Waiting while every connection is busy is queueing, bounded
    on its own (`_QUEUE_SECONDS`): a busy pool is not an outage.
    """

    dialect: ClassVar[Dialect] = Dialect.POSTGRESQL

    def __init__(self, pool: asyncpg.Pool, url: str, clock: Clock) -> None:
        super().__init__(clock)
        self.pool = pool
        self._url = url
        self._closed = False
        self._inflight: set[asyncio.Future[Any]] = set()
        self._listener = Listener(url, connect_seconds=_CONNECT_SECONDS, close_seconds=_CLOSE_SECONDS)
        self._rng = random.Random()  # noqa: S311 - retry jitter, not cryptography
        self._down_since: float | None = None  # when the current outage was first seen (loop time)
        # One per pool connection: a call waits here, however long its queue, before it asks the
        # pool for a connection with its patience.
        self._slots = asyncio.Semaphore(pool.get_max_size())

    async def write(self, body: Callable[[Connection], Awaitable[T]]) -> T:
        """Run `body` in one READ COMMITTED transaction, again if PostgreSQL aborts it as a deadlock."""
        return await self._shielded(body, readonly=False)

    async def read(self, body: Callable[[Connection], Awaitable[T]]) -> T:
        """Run `body` in one read-only REPEATABLE READ transaction (one snapshot)."""
        return await self._shielded(body, readonly=True)

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """One read statement on its own, outside any transaction (it sees one snapshot by itself)."""
        return await self._shielded(lambda conn: conn.fetch_all(sql, params), readonly=True, bare=True)

    async def _shielded(self, body: Callable[[Connection], Awaitable[T]], *, readonly: bool, bare: bool = False) -> T:
        if self._closed:
            raise StoreError("the store is closed")
        transaction = self._transaction(body, readonly=readonly, patience=patience(), bare=bare)
        task = asyncio.ensure_future(transaction)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(consume_result)
            raise

    async def _transaction(
        self, body: Callable[[Connection], Awaitable[T]], *, readonly: bool, patience: float, bare: bool = False
    ) -> T:
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + patience
        aborted = 0  # deadlocks and serialisation failures PostgreSQL aborted
        lost = 0  # connections lost
        while True:
            failure: BaseException
            try:
                wait = max(give_up_at - loop.time(), _MIN_WAIT)
                result = await self._attempt(body, readonly=readonly, wait=wait, bare=bare)
            except _RETRYABLE as exc:
                aborted += 1
                if aborted == _ATTEMPTS:
                    raise
                log.info("retrying a transaction PostgreSQL aborted (%s)", type(exc).__name__)
                await asyncio.sleep(self._rng.uniform(0, 0.01 * 2**aborted))  # real back-off between processes
                continue
            except _CommitLost as cut:
                committed = await self._committed(cut.xid, give_up_at)
                if committed is None:
                    raise CommitUncertain(
                        "the connection to PostgreSQL was lost while a write committed, and whether it did is unknown"
                    ) from cut.__cause__
                if committed:
                    self._recovered()
                    return cast("T", cut.result)
                failure = cut.__cause__ or cut  # it provably did not commit: run it again
            except Exception as exc:
                if not lost_connection(exc):
                    raise
                failure = exc
            else:
                self._recovered()
                return result
            lost += 1
            self._trouble(failure)
            if self._closed:
                raise StoreUnavailable("the store was closed while PostgreSQL could not be reached") from failure
            pause = min(_BACKOFF_FIRST * 2 ** (lost - 1), _BACKOFF_MAX) * self._rng.uniform(0.5, 1.0)
            if loop.time() + pause > give_up_at:
                raise StoreUnavailable(f"PostgreSQL could not be reached ({_describe(failure)})") from failure
            await asyncio.sleep(pause)  # real time: waiting for the server to come back

    async def _attempt(
        self, body: Callable[[Connection], Awaitable[T]], *, readonly: bool, wait: float, bare: bool = False
    ) -> T:
        """One try: a connection, the transaction, and the connection given back (or dropped if it broke).

        `bare`: a read of one statement, run without a transaction (one round trip, not three).
        """
        conn = await self._acquire(wait)
        clean = False  # the transaction ended (committed or rolled back) and the connection still works
        try:
            if bare:
                try:
                    result = await body(PostgresConnection(conn))
                except BaseException as exc:
                    clean = not conn.is_closed() and not lost_connection(exc, conn)
                    raise
                clean = True
                return result
            options = {"isolation": "repeatable_read", "readonly": True} if readonly else {}
            transaction = conn.transaction(**options)
            await transaction.start()
            try:
                result = await body(PostgresConnection(conn))
                # A write's transaction id, to ask about if COMMIT's answer is lost; None if it wrote nothing.
                xid = None if readonly else await conn.fetchval("SELECT txid_current_if_assigned()")
            except BaseException:
                clean = await _rolled_back(transaction, conn)
                raise
            try:
                await transaction.commit()
            except Exception as exc:
                if lost_connection(exc, conn):
                    raise _CommitLost(xid, result) from exc
                raise
            clean = True
            return result
        finally:
            await self._give_back(conn, clean)

    async def _acquire(self, wait: float) -> asyncpg.Connection:
        """A connection: a free slot first (queueing behind busy ones, up to `_QUEUE_SECONDS`), then
        at most `wait` to have it (a new connection may have to be made). `_give_back` frees the slot."""
        try:
            await asyncio.wait_for(self._slots.acquire(), _QUEUE_SECONDS)
        except TimeoutError as exc:
            raise StoreUnavailable(f"every connection to PostgreSQL stayed busy for {_QUEUE_SECONDS:.0f} s") from exc
        try:
            conn: asyncpg.Connection = await self.pool.acquire(timeout=min(wait, _ACQUIRE_SECONDS))
        except BaseException:
            self._slots.release()
            raise
        return conn

    async def _give_back(self, conn: asyncpg.Connection, clean: bool) -> None:
        """Return the connection to the pool, or drop it if it broke, and free its slot. Never raises."""
        try:
            await self._return(conn, clean)
        finally:
            self._slots.release()

    async def _return(self, conn: asyncpg.Connection, clean: bool) -> None:
        if clean and not conn.is_closed():
            try:
                await self.pool.release(conn, timeout=_RELEASE_SECONDS)
                return
            except Exception as exc:  # asyncpg has dropped the connection itself
                log.warning("could not return a connection to the pool (%s); dropped it", _describe(exc))
                return
        # asyncpg frees the pool slot of a connection it lost only when the connection is terminated:
        # released as it is, the slot would stay in use for ever (and `Pool.close` would wait on it).
        with contextlib.suppress(Exception):
            conn.terminate()

    async def _committed(self, xid: int | None, give_up_at: float) -> bool | None:
        """Whether the transaction `xid` committed (asked on a fresh connection); None if that can't be learnt."""
        if xid is None:
            return True  # it wrote nothing: what it read is its result either way
        loop = asyncio.get_running_loop()
        while True:
            try:
                status = await self._ask_status(xid, wait=max(give_up_at - loop.time(), _MIN_WAIT))
            except Exception as exc:
                if not lost_connection(exc):
                    log.warning("could not learn whether transaction %s committed: %s", xid, _describe(exc))
                    return None
                self._trouble(exc)
                status = "unreachable"
            if status == "committed":
                return True
            if status == "aborted":
                return False
            if self._closed or loop.time() + _BACKOFF_FIRST > give_up_at:
                return None
            await asyncio.sleep(_BACKOFF_FIRST)  # "in progress": the server is still finishing it

    async def _ask_status(self, xid: int, *, wait: float) -> str:
        conn = await self._acquire(wait)
        clean = False
        try:
            try:
                status = await conn.fetchval("SELECT txid_status($1)", xid)
            except asyncpg.exceptions.InvalidParameterValueError:
                # "transaction ID is in the future": the server restarted without ever recording it.
                status = "aborted"
            clean = True
            return str(status)
        finally:
            await self._give_back(conn, clean)

    def _trouble(self, exc: BaseException) -> None:
        if self._down_since is None:
            self._down_since = asyncio.get_running_loop().time()
            log.warning("lost the connection to PostgreSQL (%s); retrying", _describe(exc))

    def _recovered(self) -> None:
        if self._down_since is not None:
            seconds = asyncio.get_running_loop().time() - self._down_since
            self._down_since = None
            log.info("PostgreSQL answers again, after %.1f s", seconds)

    async def notify(self, channel: str, payload: str) -> None:
        """`pg_notify`: every process listening on `channel` hears it, this one included."""
        if self._closed:
            return
        await self.write(lambda conn: conn.execute("SELECT pg_notify(?, ?)", (channel, payload)))

    async def listen(self, channel: str, callback: Callable[[str], object]) -> None:
        """Call `callback(payload)` for each notification on `channel`, on a dedicated connection."""
        await self._listener.listen(channel, callback)

    async def close(self) -> None:
        """Let running transactions finish (for a bounded time), then close the pool and the listener."""
        if self._closed:
            return
        self._closed = True
        await self._listener.aclose()
        if self._inflight:
            _, pending = await asyncio.wait(list(self._inflight), timeout=_CLOSE_SECONDS)
            if pending:
                log.warning("closing the store with %d transaction(s) still waiting for PostgreSQL", len(pending))
        try:
            await asyncio.wait_for(self.pool.close(), _CLOSE_SECONDS)
        except Exception as exc:  # a timeout, or a connection that broke while closing
            log.warning("could not close the PostgreSQL pool cleanly (%s); terminating it", _describe(exc))
            self.pool.terminate()


async def _rolled_back(transaction: Any, conn: asyncpg.Connection) -> bool:  # noqa: ANN401 - asyncpg's Transaction
    """Roll back after a failed body; False when the connection can't be trusted any more."""
    if conn.is_closed():
        return False
    try:
        await transaction.rollback()
    except Exception:
        return False
    return True


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text[:120]}" if text else type(exc).__name__


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
            url,
            min_size=1,
            max_size=pool_size,
            server_settings={"timezone": "UTC"},
            reset=_keep_session,
            timeout=_CONNECT_SECONDS,
        )
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise StoreUnavailable(f"could not connect to PostgreSQL: {exc}") from exc
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn, migrations, now=clock.now)
    except BaseException:
        await pool.close()
        raise
    return PostgresDatabase(pool, url, clock)
