"""`Store`: open the database, reach jobs, quota and limits, check invariants, delete a member's data."""

from __future__ import annotations

import itertools
from pathlib import Path
from types import TracebackType
from typing import Self

import aiosqlite

from bot.clock import Clock, SystemClock
from bot.store.db import (
    DEFAULT_BUSY_TIMEOUT_MS,
    Database,
    apply_migrations,
    connect,
    fetch_all,
    fetch_int,
    load_migrations,
)
from bot.store.errors import MemberHasActiveJobs
from bot.store.jobs import JobStore
from bot.store.limits import LimitStore
from bot.store.models import TERMINAL_STATES, DeletionReport, JobState, QuotaPolicy, can_transition
from bot.store.quota import QuotaLedger

_TERMINAL_SQL = "(" + ", ".join(f"'{state.value}'" for state in sorted(TERMINAL_STATES)) + ")"
_STATES = {state.value for state in JobState}


class Store:
    """The bot's SQLite store: `jobs`, `quota` (the ledger) and `limits`.

    Open with `await Store.open(path, policy=...)` and close with `await store.close()`, or use
    `async with await Store.open(...) as store`. Several `Store`s (in this process or others) may
    share one file; every write is a serialised, `BEGIN IMMEDIATE` transaction.
    """

    def __init__(self, db: Database, policy: QuotaPolicy, path: Path) -> None:
        self._db = db
        self.path = path
        self.policy = policy
        self.jobs = JobStore(db)
        self.quota = QuotaLedger(db, policy, db.clock)
        self.limits = LimitStore(db, policy)

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        clock: Clock | None = None,
        policy: QuotaPolicy,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    ) -> Store:
        """Open (creating if needed) the database at `path` and bring its schema up to date."""
        clock = clock or SystemClock()
        conn = await connect(path, busy_timeout_ms=busy_timeout_ms)
        try:
            await apply_migrations(conn, load_migrations(), now=clock.now)
        except BaseException:
            await conn.close()
            raise
        return cls(Database(conn, clock), policy, path)

    async def close(self) -> None:
        """Let the running transaction finish, then close the connection. Safe to call twice."""
        await self._db.close()

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

        Removed: their jobs and job events, their grants, the limits set for them, and their name
        as the author of grants and limits. Kept, but anonymised: their usage rows (reserve,
        settle, refund, adjust) lose their member and job and stay in the ledger with
        `user_id = NULL`, so server pools, the bot budget and usage reports add up exactly as
        before (the usage report lists them under `None`, "deleted members"). Refuses with
        `MemberHasActiveJobs` while any of their jobs is unfinished: cancel those first.
        """
        scope = "" if guild_id is None else " AND guild_id = ?"
        args: tuple[int, ...] = (user_id,) if guild_id is None else (user_id, guild_id)

        async def body(conn: aiosqlite.Connection) -> DeletionReport:
            running = await fetch_all(
                conn,
                f"SELECT id FROM jobs WHERE user_id = ?{scope} AND state NOT IN {_TERMINAL_SQL} ORDER BY id",  # noqa: S608
                args,
            )
            if running:
                raise MemberHasActiveJobs(user_id, [int(r[0]) for r in running])
            # Anonymise before deleting jobs: ledger.job_id is ON DELETE RESTRICT, so a job with
            # attributed usage cannot be deleted by mistake.
            anonymised = await conn.execute(
                f"UPDATE ledger SET user_id = NULL, job_id = NULL, note = NULL"  # noqa: S608
                f" WHERE user_id = ?{scope} AND kind <> 'grant'",
                args,
            )
            grants = await conn.execute(f"DELETE FROM ledger WHERE kind = 'grant' AND user_id = ?{scope}", args)  # noqa: S608
            await conn.execute(f"UPDATE ledger SET by_user_id = NULL WHERE by_user_id = ?{scope}", args)  # noqa: S608
            jobs = await conn.execute(f"DELETE FROM jobs WHERE user_id = ?{scope}", args)  # noqa: S608
            limits = await conn.execute(f"DELETE FROM member_limits WHERE user_id = ?{scope}", args)  # noqa: S608
            await conn.execute(f"UPDATE member_limits SET set_by = NULL WHERE set_by = ?{scope}", args)  # noqa: S608
            await conn.execute(f"UPDATE role_limits SET set_by = NULL WHERE set_by = ?{scope}", args)  # noqa: S608
            return DeletionReport(
                jobs_deleted=jobs.rowcount,
                ledger_rows_anonymised=anonymised.rowcount,
                grants_deleted=grants.rowcount,
                limits_deleted=limits.rowcount,
            )

        return await self._db.write(body)

    async def check_invariants(self) -> list[str]:
        """Every broken invariant, in words; empty when the database is sound.

        Checks SQLite's own integrity and foreign keys, the schema version, that each job's state
        matches its last event and its events follow allowed transitions, and the ledger rules: one
        reservation and at most one settle/refund per job, amounts that agree with the reservation,
        no finished job still holding credits. Meant for tests and for operators after a crash.
        """
        latest = len(load_migrations())
        return await self._db.read(lambda conn: _check(conn, latest))


async def _check(conn: aiosqlite.Connection, latest: int) -> list[str]:
    problems: list[str] = []
    integrity = [str(r[0]) for r in await fetch_all(conn, "PRAGMA integrity_check")]
    if integrity != ["ok"]:
        problems.extend(f"integrity: {line}" for line in integrity)
    for row in await fetch_all(conn, "PRAGMA foreign_key_check"):
        problems.append(f"foreign key: {row[0]} row {row[1]} points at a missing {row[2]} row")
    version = await fetch_int(conn, "SELECT MAX(version) FROM schema_migrations")
    if version != latest:
        problems.append(f"schema is at version {version}, expected {latest}")

    problems.extend(await _check_jobs(conn))

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
            "SELECT c.job_id, c.kind FROM ledger AS c WHERE c.kind IN ('settle', 'refund') AND c.job_id IS NOT NULL"
            " AND NOT EXISTS (SELECT 1 FROM ledger AS r WHERE r.job_id = c.job_id AND r.kind = 'reserve')",
            "job {0} has a {1} without a reservation",
        ),
        (
            "SELECT c.job_id, c.amount, r.amount, c.charged FROM ledger AS c"
            " JOIN ledger AS r ON r.job_id = c.job_id AND r.kind = 'reserve'"
            " WHERE (c.kind = 'settle' AND c.amount <> -r.amount - c.charged)"
            " OR (c.kind = 'refund' AND c.amount <> -r.amount)",
            "job {0}: closing amount {1} does not match reservation {2} (charged {3})",
        ),
        (
            "SELECT c.job_id FROM ledger AS c JOIN ledger AS r ON r.job_id = c.job_id AND r.kind = 'reserve'"
            " WHERE c.kind IN ('settle', 'refund') AND (c.period_at <> r.period_at"
            " OR c.guild_id IS NOT r.guild_id OR c.user_id IS NOT r.user_id)",
            "job {0}: its settle/refund does not count in its reservation's window or member",
        ),
        (
            f"SELECT j.id, j.state FROM jobs AS j JOIN ledger AS r ON r.job_id = j.id AND r.kind = 'reserve'"  # noqa: S608
            f" WHERE j.state IN {_TERMINAL_SQL} AND NOT EXISTS"
            " (SELECT 1 FROM ledger AS c WHERE c.job_id = j.id AND c.kind IN ('settle', 'refund'))",
            "job {0} is {1} but still holds its reservation",
        ),
        (
            "SELECT j.id, j.charged_credits, c.charged FROM jobs AS j"
            " JOIN ledger AS c ON c.job_id = j.id AND c.kind = 'settle'"
            " WHERE j.charged_credits IS NOT c.charged",
            "job {0} records {1} credits charged but was settled at {2}",
        ),
        (
            "SELECT l.id, l.job_id FROM ledger AS l JOIN jobs AS j ON j.id = l.job_id"
            " WHERE l.user_id IS NOT j.user_id OR l.guild_id IS NOT j.guild_id",
            "ledger row {0} is attributed to a different member than its job {1}",
        ),
        (
            "SELECT id FROM ledger WHERE kind = 'grant' AND job_id IS NOT NULL",
            "ledger row {0} is a grant tied to a job",
        ),
    ]
    for sql, message in simple_checks:
        for row in await fetch_all(conn, sql):
            problems.append(message.format(*tuple(row)))
    return problems


async def _check_jobs(conn: aiosqlite.Connection) -> list[str]:
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
            if before not in _STATES or after not in _STATES or not can_transition(JobState(before), JobState(after)):
                problems.append(f"job {job_id} went from {before} to {after}, which is not allowed")
    return problems
