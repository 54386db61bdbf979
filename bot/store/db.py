"""What both backends share: a connection's small API, a database's transactions, the migrations.

The store's SQL is written once, against `Connection`: `?` placeholders, `IS NOT DISTINCT FROM`
for comparisons that may meet NULL, datetimes as parameters. Each backend (`bot.store.sqlite`,
`bot.store.postgres`) adapts it, and anything the SQL cannot express alike lives behind a method
here (`lock`, `FOR_UPDATE`, the integrity checks), so jobs, ledger and limits have one
implementation for both. SQLite stores datetimes as fixed-width ISO 8601 text, so text order is
time order. Migrations are `migrations/NNNN_name.sql` and `migrations/postgresql/NNNN_name.sql`,
with the same numbers and names.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import importlib.resources
import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Protocol, TypeVar

from bot.clock import Clock
from bot.store.errors import StoreError

T = TypeVar("T")

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


# How long a store call keeps retrying a database it lost (a restart, a failover) before it gives up
# with `StoreUnavailable`. Short by default because a member usually waits on the answer (Discord
# wants one within 3 s); work nobody waits on (a job's steps, the lease loops) asks for longer.
DEFAULT_PATIENCE = 2.0
_patience: ContextVar[float] = ContextVar("store_patience", default=DEFAULT_PATIENCE)


def patience() -> float:
    """How long store calls made here retry a lost database (`patient` changes it)."""
    return _patience.get()


@contextlib.contextmanager
def patient(seconds: float) -> Iterator[None]:
    """Inside, store calls (and those of tasks started inside) retry a lost database for `seconds`."""
    token = _patience.set(seconds)
    try:
        yield
    finally:
        _patience.reset(token)


class Dialect(StrEnum):
    """Which database a store runs on."""

    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


def ts(moment: dt.datetime) -> str:
    """A UTC datetime as SQLite stores it: fixed-width ISO 8601, so text order is time order."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("the store only takes timezone-aware datetimes")
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def parse_ts(value: str | dt.datetime) -> dt.datetime:
    """A stored timestamp (SQLite's text, PostgreSQL's timestamptz) as an aware UTC datetime."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC)
    return dt.datetime.fromisoformat(value).astimezone(dt.UTC)


def is_postgres_url(target: object) -> bool:
    """True for a `postgresql://` (or `postgres://`) URL: the store then runs on PostgreSQL."""
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


class Row(Protocol):
    """A result row: by column name or position (sqlite3.Row and asyncpg.Record both are)."""

    def __getitem__(self, key: int | str, /) -> Any:  # noqa: ANN401 - a column holds any value
        """A column's value."""
        ...

    def keys(self) -> Iterable[str]:
        """The column names, in order."""
        ...

    def __iter__(self) -> Iterator[Any]:
        """The values, in column order."""
        ...


def row_dict(row: Row) -> dict[str, Any]:
    """A row as a plain dict."""
    return {key: row[key] for key in row.keys()}  # noqa: SIM118 - Row is not a Mapping


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for a named lock (PostgreSQL's advisory locks take integers)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


# Named locks. The ledger lock is taken shared by everything that reserves credits or creates jobs,
# and exclusively by what rewrites a member's history (deleting their data); a server's lock
# covers every limit inside that server (member allowances, active jobs, the pool); the budget
# lock covers the bot-wide budget. Always taken in this order: ledger, server, budget.
LEDGER_LOCK = "ledger"
BUDGET_LOCK = "budget"


def key_share(dialect: Dialect) -> str:
    """Appended to a sub-SELECT of a row that must not be deleted before the statement's transaction
    ends (PostgreSQL's `FOR KEY SHARE`: a heartbeat's UPDATE still passes); nothing on SQLite, whose
    writers are serialised."""
    return " FOR KEY SHARE" if dialect is Dialect.POSTGRESQL else ""


def guild_lock(guild_id: int | None) -> str:
    """The lock for one server's limits (`None`: the command line's jobs)."""
    return f"guild:{'-' if guild_id is None else guild_id}"


class Connection(ABC):
    """One connection inside one transaction (`Database.write`/`read` hand it to a body).

    SQL uses `?` placeholders; parameters may be datetimes (aware, UTC).
    """

    dialect: ClassVar[Dialect]
    # Appended to a SELECT of rows the transaction will change, so a concurrent writer waits.
    FOR_UPDATE: ClassVar[str]
    # The same, but rows another transaction has locked are left out instead of waited for.
    FOR_UPDATE_SKIP_LOCKED: ClassVar[str]

    @abstractmethod
    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return how many rows it changed."""

    @abstractmethod
    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Every row of a query."""

    @abstractmethod
    async def lock(self, *names: str, shared: Sequence[str] = ()) -> None:
        """Hold these named locks until the transaction ends (a no-op where writers are serialised).

        `shared` ones first (others may hold them too), then `names` exclusively, in the order of
        the module's lock list: ledger, server, budget.
        """

    @abstractmethod
    async def integrity_problems(self) -> list[str]:
        """The database engine's own view of its integrity and references, in words."""


class Database(ABC):
    """A backend's transactions, and the clock the store stamps rows with."""

    dialect: ClassVar[Dialect]

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._listeners: dict[str, list[Callable[[str], object]]] = {}

    def now(self) -> dt.datetime:
        """The clock's current UTC time."""
        return self.clock.now()

    @abstractmethod
    async def write(self, body: Callable[[Connection], Awaitable[T]]) -> T:
        """Run `body` in one write transaction; commit if it returns, roll back if it raises.

        `body` may run more than once (PostgreSQL retries a transaction it had to abort), so it
        must not have effects outside the database that a second run would repeat.
        """

    @abstractmethod
    async def read(self, body: Callable[[Connection], Awaitable[T]]) -> T:
        """Run `body` in one read-only transaction that sees one snapshot."""

    @abstractmethod
    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one read statement on its own, with no transaction around it: one round trip.

        A single statement sees one snapshot by itself, so a read that is one query needs no
        `read` (whose BEGIN and COMMIT are two more trips).
        """

    async def write_one(
        self, sql: str, params: Sequence[Any] = (), *, locks: Sequence[str] = (), shared: Sequence[str] = ()
    ) -> list[Row]:
        """Run one write statement (its triggers included) atomically; the rows it returns (`RETURNING`).

        SQLite runs it on its own, without BEGIN and COMMIT (one round trip); PostgreSQL in a write
        transaction holding the named locks (`Connection.lock`), so that a connection lost around
        its COMMIT is told apart from a write that failed (see `bot.store.postgres`).
        """

        async def body(conn: Connection) -> list[Row]:
            await conn.lock(*locks, shared=shared)
            return await conn.fetch_all(sql, params)

        return await self.write(body)

    @abstractmethod
    async def close(self) -> None:
        """Let running transactions finish, then close. Safe to call twice."""

    async def notify(self, channel: str, payload: str) -> None:
        """Tell every process listening on `channel` (PostgreSQL); SQLite has no other processes to tell."""
        for callback in self._listeners.get(channel, []):
            callback(payload)

    async def listen(self, channel: str, callback: Callable[[str], object]) -> None:
        """Call `callback(payload)` for every notification on `channel`, this process's own included."""
        self._listeners.setdefault(channel, []).append(callback)


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered schema change."""

    version: int
    name: str
    sql: str


def load_migrations(dialect: Dialect = Dialect.SQLITE) -> list[Migration]:
    """Every migration shipped for `dialect`, in version order."""
    found: list[Migration] = []
    folder = importlib.resources.files("bot.store") / "migrations"
    if dialect is Dialect.POSTGRESQL:
        folder = folder / "postgresql"
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise StoreError(f"{dialect} migrations must be numbered 0001, 0002, ... without gaps; found {versions}")
    return found


async def fetch_all(conn: Connection, sql: str, params: Iterable[Any] = ()) -> list[Row]:
    """Every row of a query."""
    return await conn.fetch_all(sql, tuple(params))


async def fetch_one(conn: Connection, sql: str, params: Iterable[Any] = ()) -> Row | None:
    """The first row of a query, or None."""
    rows = await conn.fetch_all(sql, tuple(params))
    return rows[0] if rows else None


async def fetch_int(conn: Connection, sql: str, params: Iterable[Any] = ()) -> int:
    """The first column of the first row as an int (0 if there is no row or it is NULL)."""
    row = await fetch_one(conn, sql, params)
    return 0 if row is None or row[0] is None else int(row[0])
