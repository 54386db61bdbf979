"""Counting the store's database round trips, by call site: for benchmarks and the tests that pin them.

`TripCounter.attach(store)` wraps the driver connection of an open store (SQLite's aiosqlite
connection, each of PostgreSQL's pooled asyncpg connections through asyncpg's query logger) and
counts every statement that reaches the driver, transaction control (`BEGIN`, `COMMIT`) included.
Each is one round trip: to SQLite's connection thread, or to the PostgreSQL server. A trip is
filed under the store call that made it and the code outside the store that called that, e.g.
`jobs.transition <- jobs/run.py:_upload`, so a benchmark can say where the trips go.

Nothing in the bot uses this; it changes nothing the store does except count.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.store.db import Database
    from bot.store.store import Store


# The store's package as imported (a benchmark may count an older checkout's store with this file).
_STORE = Path(sys.modules[__package__ or "bot.store"].__file__ or __file__).resolve().parent
_BOT = _STORE.parent
# The store's own plumbing: a trip is filed under the first frame outside these.
_PLUMBING = frozenset({"db.py", "sqlite.py", "postgres.py", "trips.py"})
# Callers that are the process's own loops (its heartbeat, takeovers), whatever jobs it runs.
BACKGROUND_CALLERS = ("jobs/leases.py:", "jobs/takeover.py:")
_site: ContextVar[str] = ContextVar("trip_site", default="(outside a store call)")


def _where(frame: FrameType | None) -> str:
    """`store function <- caller file:function`, from the frame that called `Database.write`/`read`."""
    store_call = caller = ""
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        inside_store = path.parent == _STORE
        if inside_store and path.name in _PLUMBING:
            frame = frame.f_back
            continue
        if inside_store and not store_call:
            store_call = f"{path.stem}.{frame.f_code.co_name}"
        elif not inside_store and frame.f_code.co_name != "<lambda>":
            try:
                shown = path.relative_to(_BOT).as_posix()
            except ValueError:
                shown = path.name
            caller = f"{shown}:{frame.f_code.co_name}"
            break
        frame = frame.f_back
    return f"{store_call or '?'} <- {caller or '?'}"


def is_background(site: str) -> bool:
    """Whether a call site is one of the process's own loops (see `BACKGROUND_CALLERS`)."""
    return any(f"<- {caller}" in site for caller in BACKGROUND_CALLERS)


class _CountingSqlite:
    """An aiosqlite connection that counts each statement it is given."""

    def __init__(self, raw: Any, counter: TripCounter) -> None:  # noqa: ANN401 - aiosqlite.Connection
        self._raw = raw
        self._counter = counter

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401 - everything else is the connection's
        return getattr(self._raw, name)

    async def execute(self, sql: str, params: Any = ()) -> Any:  # noqa: ANN401
        self._counter.saw(sql)
        return await self._raw.execute(sql, params)

    async def execute_fetchall(self, sql: str, params: Any = ()) -> Any:  # noqa: ANN401
        self._counter.saw(sql)
        return await self._raw.execute_fetchall(sql, params)


class _CountingPool:
    """An asyncpg pool whose connections report each query to the counter (asyncpg's query logger)."""

    def __init__(self, raw: Any, counter: TripCounter) -> None:  # noqa: ANN401 - asyncpg.Pool
        self._raw = raw
        self._counter = counter

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401 - everything else is the pool's
        return getattr(self._raw, name)

    async def acquire(self, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        conn = await self._raw.acquire(*args, **kwargs)
        conn.add_query_logger(self._counter.logged)  # a set: the same logger is added once
        return conn


class TripCounter:
    """Round trips per call site since the last `reset` (see the module's description)."""

    def __init__(self) -> None:
        self.sites: Counter[str] = Counter()
        self.statements: Counter[str] = Counter()
        self.transactions: Counter[str] = Counter()

    @property
    def total(self) -> int:
        """Every round trip counted."""
        return sum(self.sites.values())

    def reset(self) -> None:
        """Forget what was counted."""
        self.sites.clear()
        self.statements.clear()
        self.transactions.clear()

    def saw(self, sql: str) -> None:
        """One statement reached the driver."""
        self.sites[_site.get()] += 1
        self.statements[" ".join(sql.split())[:90]] += 1

    @property
    def foreground(self) -> int:
        """The trips made by work rather than by the process's own loops (`BACKGROUND_CALLERS`)."""
        return sum(count for site, count in self.sites.items() if not is_background(site))

    def logged(self, record: Any) -> None:  # noqa: ANN401 - asyncpg's LoggedQuery
        """asyncpg's query logger: one query reached the server."""
        self.saw(str(record.query))

    def matching(self, part: str) -> int:
        """Trips whose call site mentions `part` (a store call such as `jobs.transition`, or a caller)."""
        return sum(count for site, count in self.sites.items() if part in site)

    def attach(self, store: Store) -> TripCounter:
        """Count the trips of `store` from now on (it must be open); returns self."""
        db: Database = store._db  # the counter's one job is to look inside
        raw_pool = getattr(db, "pool", None)
        if raw_pool is not None:
            db.pool = _CountingPool(raw_pool, self)  # type: ignore[attr-defined]
        else:
            wrapped = _CountingSqlite(db.conn, self)  # type: ignore[attr-defined]
            db.conn = wrapped  # type: ignore[attr-defined]
            db._wrapped.raw = wrapped  # type: ignore[attr-defined]
        for name in ("write", "read", "fetch", "write_one"):
            if hasattr(db, name):  # an older store may lack the one-statement calls
                self._wrap(db, name)
        return self

    def _wrap(self, db: Database, name: str) -> None:
        inner: Callable[..., Awaitable[Any]] = getattr(db, name)
        transactions = self.transactions

        async def counted(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401 - whatever the call returns
            site = _where(sys._getframe(1))
            if _site.get() != site:  # `write_one` on PostgreSQL is a `write`: one call, counted once
                transactions[site] += 1
            token = _site.set(site)
            try:
                return await inner(*args, **kwargs)
            finally:
                _site.reset(token)

        setattr(db, name, counted)
