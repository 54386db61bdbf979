"""Quota store benchmark: a reservation's latency against a full ledger, beside a minimal ledger.

Run from the repository root: `.venv/bin/python -m bench.bench_quota` (`--quick` for fewer
reservations; `--contention` for the contention scenarios: 1 task, N tasks of one process, and 2
processes on one SQLite file). It starts its own throwaway PostgreSQL server beside a SQLite file;
for 0 and 100,000 ledger rows it times reservations that check all four limits, each followed by
one UPDATE-and-INSERT of a minimal ledger on the same driver. docs/benchmarks.md, "Quota store",
describes the set-up and records the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bot.config import GenerationMode
from bot.store import NewJob, QuotaPolicy, Reservation, Store
from bot.store.db import Connection

GUILD = 1111
ROOT = Path(__file__).resolve().parents[1]
POLICY = QuotaPolicy(default_member_credits=10**9, bot_budget_credits=10**12, max_active_jobs_per_member=10**6)


@dataclass
class Result:
    """One scenario's figures."""

    name: str
    reservations: int
    seconds: float
    latencies: list[float]

    @property
    def per_second(self) -> float:
        """Reservations per second of wall-clock time."""
        return self.reservations / self.seconds

    def percentile(self, q: float) -> float:
        """The q-quantile latency in milliseconds (nearest rank)."""
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def _prepare(store: Store, tasks: int, per_task: int, member_offset: int) -> list[list[int]]:
    """Create the jobs each task will reserve for (untimed)."""
    jobs: list[list[int]] = []
    for t in range(tasks):
        user = member_offset + t
        ids = []
        for _ in range(per_task):
            job = await store.jobs.create(NewJob(user_id=user, guild_id=GUILD, mode=GenerationMode.STANDARD))
            ids.append(job.id)
        jobs.append(ids)
    return jobs


async def _reserve_all(store: Store, jobs: list[list[int]], member_offset: int) -> tuple[float, list[float]]:
    """Run every task's reservations at once; return (elapsed seconds, latencies)."""
    latencies: list[float] = []

    async def task(index: int, ids: list[int]) -> None:
        for job_id in ids:
            began = time.perf_counter()
            result = await store.quota.reserve(
                job_id, guild_id=GUILD, user_id=member_offset + index, role_ids=[], amount=100
            )
            latencies.append(time.perf_counter() - began)
            assert isinstance(result, Reservation)

    began = time.perf_counter()
    await asyncio.gather(*(task(i, ids) for i, ids in enumerate(jobs)))
    return time.perf_counter() - began, latencies


async def in_process(db: Path, tasks: int, per_task: int) -> Result:
    """N tasks on one Store."""
    async with await Store.open(db, policy=POLICY) as store:
        await store.limits.set_server_pool(GUILD, 10**12)
        jobs = await _prepare(store, tasks, per_task, 0)
        seconds, latencies = await _reserve_all(store, jobs, 0)
    name = "1 task" if tasks == 1 else f"{tasks} tasks, 1 process"
    return Result(name, tasks * per_task, seconds, latencies)


async def child(db: Path, tasks: int, per_task: int, member_offset: int) -> None:
    """One of the contending processes: prepare, say "ready", wait for "go", reserve, report."""
    async with await Store.open(db, policy=POLICY) as store:
        jobs = await _prepare(store, tasks, per_task, member_offset)
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        began = time.time()
        seconds, latencies = await _reserve_all(store, jobs, member_offset)
        print(json.dumps({"began": began, "ended": began + seconds, "latencies": latencies}), flush=True)


async def two_processes(db: Path, tasks: int, per_task: int) -> Result:
    """N/2 tasks in each of two processes on one file, started together."""
    async with await Store.open(db, policy=POLICY) as store:
        await store.limits.set_server_pool(GUILD, 10**12)
    half = tasks // 2
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.bench_quota",
            "--child",
            str(db),
            str(half),
            str(per_task),
            str(i * half),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for i in range(2)
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert (await proc.stdout.readline()).strip() == b"ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
    reports = []
    for proc in procs:
        assert proc.stdout is not None
        reports.append(json.loads(await proc.stdout.readline()))
        await proc.wait()
    seconds = max(r["ended"] for r in reports) - min(r["began"] for r in reports)
    latencies = [x for r in reports for x in r["latencies"]]
    return Result(f"{tasks} tasks, 2 processes", 2 * half * per_task, seconds, latencies)


async def main(quick: bool) -> None:
    """Run every scenario and print a Markdown table."""
    per_task = 5 if quick else 25
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results.append(await in_process(folder / "single.db", 1, 200 if quick else 1000))
        for tasks in (50, 200):
            results.append(await in_process(folder / f"one-{tasks}.db", tasks, per_task))
            results.append(await two_processes(folder / f"two-{tasks}.db", tasks, per_task))
    print(f"Python {platform.python_version()}, {platform.machine()}, SQLite {sqlite_version()}")
    print("| Scenario | Reservations | Reservations/s | p50 latency (ms) | p99 latency (ms) |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        p50, p99 = r.percentile(0.5), r.percentile(0.99)
        print(f"| {r.name} | {r.reservations} | {r.per_second:,.0f} | {p50:.2f} | {p99:.2f} |")
    median = statistics.median(results[0].latencies) * 1000
    print(f"\nUncontended median latency: {median:.2f} ms")


SEEDED_MEMBERS = 1000
SEEDED_JOBS = 50_000  # two ledger rows each: 100,000 rows
FIRST_SEEDED_JOB = 10_000_000  # far above the ids the store gives the timed jobs


@dataclass
class Timing:
    """One full-ledger scenario's figures."""

    backend: str
    rows: int
    what: str
    latencies: list[float]

    def percentile(self, q: float) -> float:
        """The q-quantile latency in milliseconds (nearest rank)."""
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    @property
    def per_second(self) -> float:
        """Operations per second, one after another."""
        return len(self.latencies) / sum(self.latencies)


def _seed_rows(now: dt.datetime) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Finished jobs and their reserve and settle rows, counting in `now`'s window."""
    jobs: list[tuple[object, ...]] = []
    ledger: list[tuple[object, ...]] = []
    for n in range(SEEDED_JOBS):
        job_id, user = FIRST_SEEDED_JOB + n, n % SEEDED_MEMBERS
        jobs.append((job_id, user, GUILD, "standard", "done", now, now))
        ledger.append(("reserve", job_id, GUILD, user, "standard", -100, None, now, now))
        ledger.append(("settle", job_id, GUILD, user, "standard", 10, 90, now, now))
    return jobs, ledger


_JOB_COLUMNS = ["id", "user_id", "guild_id", "mode", "state", "created_at", "updated_at"]
_LEDGER_COLUMNS = ["kind", "job_id", "guild_id", "user_id", "mode", "amount", "charged", "period_at", "at"]


async def _seed(target: Path | str, now: dt.datetime) -> None:
    """Write the 100,000 rows straight into the tables (untimed)."""
    jobs, ledger = _seed_rows(now)
    if isinstance(target, Path):
        from bot.store.db import ts

        def write() -> None:
            conn = sqlite3.connect(target)
            with conn:
                conn.executemany(
                    f"INSERT INTO jobs ({', '.join(_JOB_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(*j[:5], ts(now), ts(now)) for j in jobs],
                )
                conn.executemany(
                    f"INSERT INTO ledger ({', '.join(_LEDGER_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(*r[:7], ts(now), ts(now)) for r in ledger],
                )
            conn.close()

        await asyncio.to_thread(write)
        return
    import asyncpg

    conn = await asyncpg.connect(target)
    try:
        await conn.copy_records_to_table("jobs", records=jobs, columns=_JOB_COLUMNS)
        await conn.copy_records_to_table("ledger", records=ledger, columns=_LEDGER_COLUMNS)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def _recount(store: Store) -> None:
    """Count the seeded rows into the running totals, where this version keeps them."""
    ensure = getattr(store.quota, "ensure_totals", None)
    if ensure is None:
        return  # a version of the store without running totals
    await store._db.write(lambda conn: conn.execute("DELETE FROM ledger_totals_window"))
    await ensure()


async def _create_minimal_ledger(store: Store) -> None:
    """The minimal ledger's two tables, beside the store's."""
    key = "BIGSERIAL" if store.dialect.value == "postgresql" else "INTEGER"

    async def create(conn: Connection) -> None:
        await conn.execute("CREATE TABLE bench_balance (member BIGINT PRIMARY KEY, used BIGINT NOT NULL)")
        await conn.execute(f"CREATE TABLE bench_ledger (id {key} PRIMARY KEY, member BIGINT, amount BIGINT)")
        for member in range(SEEDED_MEMBERS):
            await conn.execute("INSERT INTO bench_balance (member, used) VALUES (?, 0)", (member,))

    await store._db.write(create)


async def _minimal_op(store: Store, member: int) -> float:
    """One UPDATE and one INSERT, through the store's own transactions; its latency."""

    async def op(conn: Connection) -> None:
        await conn.execute("UPDATE bench_balance SET used = used + 100 WHERE member = ?", (member,))
        await conn.execute("INSERT INTO bench_ledger (member, amount) VALUES (?, -100)", (member,))

    began = time.perf_counter()
    await store._db.write(op)
    return time.perf_counter() - began


async def full_ledger(target: Path | str, backend: str, rows: int, count: int) -> list[Timing]:
    """Reservations (one task, one after another) against `rows` ledger rows, each followed by one
    minimal-ledger operation, so both meet the same machine load."""
    async with await Store.open(target, policy=POLICY) as store:
        now = store._db.now()
    if rows:
        await _seed(target, now)
    async with await Store.open(target, policy=POLICY) as store:
        await _recount(store)
        await store.limits.set_server_pool(GUILD, 10**12)
        await _create_minimal_ledger(store)
        ids = []
        for n in range(count):
            member = n % SEEDED_MEMBERS
            job = await store.jobs.create(NewJob(user_id=member, guild_id=GUILD, mode=GenerationMode.STANDARD))
            ids.append((job.id, member))
        latencies, minimal = [], []
        for job_id, user in ids:
            began = time.perf_counter()
            result = await store.quota.reserve(job_id, guild_id=GUILD, user_id=user, role_ids=[], amount=100)
            latencies.append(time.perf_counter() - began)
            assert isinstance(result, Reservation), result
            minimal.append(await _minimal_op(store, user))
    return [Timing(backend, rows, "reserve", latencies), Timing(backend, rows, "minimal ledger", minimal)]


async def main_full_ledger(quick: bool) -> None:
    """Both backends, 0 and 100,000 rows: print a Markdown table."""
    from tests.store.pgserver import TempPostgres, create_database

    count = 200 if quick else 1000
    timings: list[Timing] = []
    server = TempPostgres().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for rows in (0, 2 * SEEDED_JOBS):
                timings += await full_ledger(Path(tmp) / f"rows-{rows}.sqlite3", "SQLite", rows, count)
                timings += await full_ledger(await create_database(server), "PostgreSQL", rows, count)
    finally:
        server.stop()
    print(
        f"Python {platform.python_version()}, {platform.machine()}, SQLite {sqlite_version()}, {count} operations each"
    )
    print("| Backend | Ledger rows | Operation | p50 (ms) | p95 (ms) | Per second |")
    print("|---|---:|---|---:|---:|---:|")
    for t in timings:
        print(
            f"| {t.backend} | {t.rows:,} | {t.what} | {t.percentile(0.5):.2f} | {t.percentile(0.95):.2f}"
            f" | {t.per_second:,.0f} |"
        )


def sqlite_version() -> str:
    """The SQLite library Python is linked against."""
    return sqlite3.sqlite_version


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer reservations")
    parser.add_argument("--contention", action="store_true", help="the contention scenarios instead")
    parser.add_argument("--child", nargs=4, metavar=("DB", "TASKS", "PER_TASK", "OFFSET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        db, tasks, per_task, offset = args.child
        asyncio.run(child(Path(db), int(tasks), int(per_task), int(offset)))
    elif args.contention:
        asyncio.run(main(args.quick))
    else:
        asyncio.run(main_full_ledger(args.quick))
