"""`Store`: open the database, reach jobs, quota and limits, check invariants, delete a member's data.

One implementation over two backends: `Store.open(path)` opens a SQLite file (the default, for one
process), `Store.open("postgresql://…")` a PostgreSQL database that several processes share. Jobs,
ledger and limits are written once against `bot.store.db.Connection`; the backends differ only
in how they run a transaction (`bot.store.sqlite`, `bot.store.postgres`).

`check_invariants` restates the ledger's rules as queries, independently of the code that writes
it, so a bug or a crash that breaks one is named rather than silently summed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

from bot.clock import Clock, SystemClock
from bot.store import forget, totals
from bot.store.db import (
    LEDGER_LOCK,
    Connection,
    Database,
    Dialect,
    fetch_all,
    fetch_int,
    is_postgres_url,
    load_migrations,
)
from bot.store.instances import InstanceStore, new_instance_id
from bot.store.jobs import JobStore
from bot.store.limits import LimitStore
from bot.store.member_settings import MemberSettingsStore
from bot.store.models import (
    LEGACY_TRANSITIONS,
    SETTLED_STATES,
    TERMINAL_STATES,
    UNKNOWN_AT_MAGIC_HOUR,
    DeletionReport,
    JobState,
    QuotaPolicy,
    can_transition,
)
from bot.store.quota import QuotaLedger
from bot.store.renders import Heartbeat, RenderHistory
from bot.store.sqlite import DEFAULT_BUSY_TIMEOUT_MS
from bot.store.usage_figures import UsageQueries
from bot.store.windows import window_bounds

_TERMINAL_SQL = "(" + ", ".join(f"'{state.value}'" for state in sorted(TERMINAL_STATES)) + ")"
_SETTLED_SQL = "(" + ", ".join(f"'{state.value}'" for state in sorted(SETTLED_STATES)) + ")"
_STATES = {state.value for state in JobState}


class Store:
    """The bot's store: `jobs`, `quota` (the ledger), `limits`, `member_settings`, `usage` (balances,
    usage figures) and `renders`, on SQLite or PostgreSQL.

    Open with `await Store.open(path_or_url, policy=...)` and close with `await store.close()`, or
    use `async with await Store.open(...) as store`. Several `Store`s (in this process or others)
    may share one database: SQLite serialises every write (`BEGIN IMMEDIATE`); PostgreSQL runs
    them concurrently under the locks described in `bot.store.postgres`. `owner` names this store's
    process in job claims: a random instance id (`bot.store.instances`), and `name` is how people
    see it (the host name unless given).
    """

    def __init__(
        self,
        db: Database,
        policy: QuotaPolicy,
        target: Path | str,
        *,
        secret: bytes,
        owner: str,
        name: str | None = None,
    ) -> None:
        self._db = db
        self._secret = secret
        self.target = target
        self.policy = policy
        self.jobs = JobStore(db, owner)
        self.instances = InstanceStore(db, owner, name)
        self.quota = QuotaLedger(db, policy, db.clock, secret)
        self.limits = LimitStore(db, policy)
        self.member_settings = MemberSettingsStore(db)
        self.usage = UsageQueries(db, policy, db.clock, secret)
        self.renders = RenderHistory(db)
        self.heartbeat = Heartbeat(db)

    @property
    def dialect(self) -> Dialect:
        """Which database this store runs on."""
        return self._db.dialect

    @property
    def owner(self) -> str:
        """This process's name in job claims."""
        return self.jobs.owner

    @property
    def path(self) -> Path:
        """The SQLite file (a PostgreSQL store has none)."""
        if not isinstance(self.target, Path):
            raise AttributeError("a PostgreSQL store has no file path")
        return self.target

    @classmethod
    async def open(
        cls,
        target: Path | str,
        *,
        clock: Clock | None = None,
        policy: QuotaPolicy,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        pool_size: int | None = None,
        owner: str | None = None,
        name: str | None = None,
    ) -> Store:
        """Open the database and bring its schema up to date.

        `target` is a SQLite file (created if needed; `busy_timeout_ms` applies) or a
        `postgresql://` URL (the database must exist; `pool_size` connections at most). `owner`
        is this process's instance id (random unless given), `name` its name for people.
        """
        clock = clock or SystemClock()
        db: Database
        if is_postgres_url(target):
            from bot.store.postgres import DEFAULT_POOL_SIZE
            from bot.store.postgres import open_database as open_postgres

            url = str(target)
            db = await open_postgres(
                url, clock, load_migrations(Dialect.POSTGRESQL), pool_size=pool_size or DEFAULT_POOL_SIZE
            )
        else:
            from bot.store.sqlite import open_database as open_sqlite

            target = Path(target)
            db = await open_sqlite(target, clock, load_migrations(Dialect.SQLITE), busy_timeout_ms=busy_timeout_ms)
        try:
            secret = await db.read(forget.load_secret)
        except BaseException:
            await db.close()
            raise
        return cls(db, policy, target, secret=secret, owner=owner or new_instance_id(), name=name)

    async def close(self) -> None:
        """Let running transactions finish, then close the connections. Safe to call twice."""
        await self._db.close()

    async def notify(self, channel: str, payload: str) -> None:
        """Tell every process listening on `channel`, this one included (PostgreSQL's NOTIFY)."""
        await self._db.notify(channel, payload)

    async def listen(self, channel: str, callback: Callable[[str], object]) -> None:
        """Call `callback(payload)` for every notification on `channel`, from any process sharing the database."""
        await self._db.listen(channel, callback)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def schema_version(self) -> int:
        """The highest migration applied to this database."""
        return await self._db.read(lambda conn: fetch_int(conn, "SELECT MAX(version) FROM schema_migrations"))

    async def delete_member_data(self, guild_id: int | None, user_id: int) -> DeletionReport:
        """Delete one member's data in one server (`guild_id=None`: everywhere), on their request.

        Deleted: their jobs and job events, their own settings, their name as the author of grants
        and limits, and their grants of ended windows. Their usage of ended windows stays for server totals but is
        anonymised (`user_id` NULL, no job, no note). Their usage and grants of the running window
        are kept under a one-way token and keep counting against their allowance, the pool and the
        budget until the window ends (so deleting one's data never gives back what was spent);
        they are anonymised by a later sweep (see `bot.store.forget`). Limits a manager set on the
        member stay. Refuses with `MemberHasActiveJobs` while any of their jobs is unfinished:
        cancel those first.
        """
        policy = self.policy

        async def body(conn: Connection) -> DeletionReport:
            # Exclusive: no job is created or reserved for anyone while a member's history is rewritten.
            await conn.lock(LEDGER_LOCK)
            start, end = window_bounds(self._db.now(), policy.window, policy.reset_time)
            return await forget.delete_member(conn, self._secret, guild_id, user_id, start, end)

        return await self._db.write(body)

    async def sweep_forgotten(self) -> int:
        """Anonymise deleted members' rows of ended windows now; return how many rows changed.

        Reservations and deletions do this too; an engine may call it at start.
        """
        policy = self.policy

        async def body(conn: Connection) -> int:
            await conn.lock(shared=[LEDGER_LOCK])
            return await forget.sweep(conn, window_bounds(self._db.now(), policy.window, policy.reset_time)[0])

        return await self._db.write(body)

    async def check_invariants(self) -> list[str]:
        """Every broken invariant, in words; empty when the database is sound.

        Checks SQLite's own integrity and foreign keys, the schema version, that each job's state
        matches its last event and its events follow allowed transitions, and the ledger rules: one
        reservation and at most one settle/refund per job, top-ups only on an open reservation and
        in its window, closing amounts that agree with what was held, no finished job still holding
        credits, a completed render settled (never refunded), a job's recorded charge equal to its
        settle (or, once reconciled, to Magic Hour's charge, which its rows then add up to; at
        most one reconciliation, only of a job unknown at Magic Hour), deleted members' tokens
        never tied to a job. Meant for tests and for operators after a crash.
        """
        latest = len(load_migrations(self.dialect))
        return await self._db.read(lambda conn: _check(conn, latest))


async def _check(conn: Connection, latest: int) -> list[str]:
    problems = await conn.integrity_problems()
    version = await fetch_int(conn, "SELECT MAX(version) FROM schema_migrations")
    if version != latest:
        problems.append(f"schema is at version {version}, expected {latest}")

    problems.extend(await _check_jobs(conn))

    held = "(SELECT -SUM(h.amount) FROM ledger AS h WHERE h.job_id = c.job_id AND h.kind IN ('reserve', 'topup'))"
    # A job's usage up to and including its reconcile row: what Magic Hour charged, once reconciled.
    reconciled = "(SELECT -SUM(n.amount) FROM ledger AS n WHERE n.job_id = x.job_id AND n.id <= x.id)"
    simple_checks: list[tuple[str, str]] = [
        (
            "SELECT job_id, COUNT(*) FROM ledger WHERE kind = 'reserve' AND job_id IS NOT NULL"
            " GROUP BY job_id HAVING COUNT(*) > 1",
            "job {0} has {1} reservations",
        ),
        (
            "SELECT job_id, COUNT(*) FROM ledger WHERE kind IN ('settle', 'refund') AND job_id IS NOT NULL"
            " GROUP BY job_id HAVING COUNT(*) > 1",
            "job {0} was settled or refunded {1} times",
        ),
        (
            "SELECT c.job_id, c.kind FROM ledger AS c WHERE c.kind IN ('topup', 'settle', 'refund')"
            " AND c.job_id IS NOT NULL"
            " AND NOT EXISTS (SELECT 1 FROM ledger AS r WHERE r.job_id = c.job_id AND r.kind = 'reserve')",
            "job {0} has a {1} without a reservation",
        ),
        (
            "SELECT t.job_id, t.id FROM ledger AS t JOIN ledger AS c ON c.job_id = t.job_id"
            " AND c.kind IN ('settle', 'refund') WHERE t.kind = 'topup' AND t.id > c.id",
            "job {0}: top-up {1} came after its reservation was closed",
        ),
        (
            f"SELECT c.job_id, c.amount, {held}, c.charged FROM ledger AS c"  # noqa: S608 - constant subquery
            f" WHERE c.job_id IS NOT NULL AND ((c.kind = 'settle' AND c.amount <> {held} - c.charged)"
            f" OR (c.kind = 'refund' AND c.amount <> {held}))",
            "job {0}: closing amount {1} does not match what was held, {2} (charged {3})",
        ),
        (
            "SELECT c.job_id, c.kind FROM ledger AS c JOIN ledger AS r ON r.job_id = c.job_id AND r.kind = 'reserve'"
            " WHERE c.kind IN ('topup', 'settle', 'refund') AND (c.period_at <> r.period_at"
            " OR c.guild_id IS DISTINCT FROM r.guild_id OR c.user_id IS DISTINCT FROM r.user_id)",
            "job {0}: its {1} does not count in its reservation's window or member",
        ),
        (
            f"SELECT j.id, j.state FROM jobs AS j JOIN ledger AS r ON r.job_id = j.id AND r.kind = 'reserve'"  # noqa: S608
            f" WHERE j.state IN {_TERMINAL_SQL} AND NOT EXISTS"
            " (SELECT 1 FROM ledger AS c WHERE c.job_id = j.id AND c.kind IN ('settle', 'refund'))",
            "job {0} is {1} but still holds its reservation",
        ),
        (
            f"SELECT j.id, j.state FROM jobs AS j JOIN ledger AS r ON r.job_id = j.id AND r.kind = 'reserve'"  # noqa: S608
            f" WHERE j.state IN {_SETTLED_SQL} AND NOT EXISTS"
            " (SELECT 1 FROM ledger AS c WHERE c.job_id = j.id AND c.kind = 'settle')",
            "job {0} is {1}, so its render completed, but its reservation was not settled",
        ),
        (
            "SELECT j.id, j.charged_credits, c.charged FROM jobs AS j"
            " JOIN ledger AS c ON c.job_id = j.id AND c.kind = 'settle'"
            " WHERE j.charged_credits IS DISTINCT FROM c.charged"
            " AND NOT EXISTS (SELECT 1 FROM ledger AS x WHERE x.job_id = j.id AND x.kind = 'reconcile')",
            "job {0} records {1} credits charged but was settled at {2}",
        ),
        (
            "SELECT job_id, COUNT(*) FROM ledger WHERE kind = 'reconcile' AND job_id IS NOT NULL"
            " GROUP BY job_id HAVING COUNT(*) > 1",
            "job {0} was reconciled {1} times",
        ),
        (
            f"SELECT x.job_id, j.state, j.error_code FROM ledger AS x JOIN jobs AS j ON j.id = x.job_id"  # noqa: S608
            f" WHERE x.kind = 'reconcile' AND (j.state <> '{JobState.FAILED.value}'"
            f" OR j.error_code IS DISTINCT FROM '{UNKNOWN_AT_MAGIC_HOUR}')",
            "job {0} was reconciled but is {1} ({2}), not unknown at Magic Hour",
        ),
        (
            "SELECT j.id, j.charged_credits, x.charged FROM jobs AS j"
            " JOIN ledger AS x ON x.job_id = j.id AND x.kind = 'reconcile'"
            " WHERE j.charged_credits IS DISTINCT FROM x.charged",
            "job {0} records {1} credits charged but was reconciled at {2}",
        ),
        (
            f"SELECT x.job_id, x.charged, {reconciled} FROM ledger AS x"  # noqa: S608 - constant subquery
            f" WHERE x.kind = 'reconcile' AND x.job_id IS NOT NULL AND x.charged IS DISTINCT FROM {reconciled}",
            "job {0} was reconciled at {1} credits but its ledger rows add up to {2}",
        ),
        (
            "SELECT l.id, l.job_id FROM ledger AS l JOIN jobs AS j ON j.id = l.job_id"
            " WHERE l.user_id IS DISTINCT FROM j.user_id OR l.guild_id IS DISTINCT FROM j.guild_id",
            "ledger row {0} is attributed to a different member than its job {1}",
        ),
        (
            f"SELECT id, state FROM jobs WHERE state <> '{JobState.RECEIVED.value}' AND request IS NOT NULL",  # noqa: S608
            "job {0} is {1} but still keeps its queued request (attachment links)",
        ),
        (
            "SELECT id FROM ledger WHERE kind = 'grant' AND job_id IS NOT NULL",
            "ledger row {0} is a grant tied to a job",
        ),
        (
            "SELECT id, job_id FROM ledger WHERE user_id < 0 AND job_id IS NOT NULL",
            "ledger row {0} is kept under a deleted member's token but still tied to job {1}",
        ),
    ]
    for sql, message in simple_checks:
        for row in await fetch_all(conn, sql):
            problems.append(message.format(*tuple(row)))
    problems.extend(await totals.problems(conn))
    return problems


async def _check_jobs(conn: Connection) -> list[str]:
    problems: list[str] = []
    for row in await fetch_all(conn, "SELECT id, state, mode FROM jobs"):
        if row["state"] not in _STATES:
            problems.append(f"job {row['id']} has an unknown state {row['state']!r}")
    events: dict[int, list[str]] = {}
    for row in await fetch_all(conn, "SELECT job_id, state FROM job_events ORDER BY job_id, id"):
        events.setdefault(int(row[0]), []).append(str(row[1]))
    for row in await fetch_all(conn, "SELECT id, state FROM jobs"):
        job_id, state = int(row[0]), str(row[1])
        history = events.get(job_id, [])
        if not history or history[0] != JobState.RECEIVED.value:
            problems.append(f"job {job_id} has no 'received' event first")
            continue
        if history[-1] != state:
            problems.append(f"job {job_id} is {state} but its last event says {history[-1]}")
        for before, after in itertools.pairwise(history):
            if before not in _STATES or after not in _STATES:
                allowed = False
            else:
                step = (JobState(before), JobState(after))
                allowed = can_transition(*step) or step in LEGACY_TRANSITIONS
            if not allowed:
                problems.append(f"job {job_id} went from {before} to {after}, which is not allowed")
    return problems
