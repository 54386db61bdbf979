"""Quota store benchmark: reservations per second under contention, and a reservation's latency.

Run from the repository root: `.venv/bin/python -m bench.bench_quota` (add `--quick` for a short
run). Scenarios, each on a fresh database file: `1 task` (uncontended latency), `N tasks` of one
process through one `Store`, and `2 processes` on the same file. Every reservation checks all four
limits; only `reserve` calls are timed, so latency under contention includes the wait for the
lock. docs/benchmarks.md, "Quota store", describes the set-up.
"""

from __future__ import annotations

import argparse
import asyncio
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


def sqlite_version() -> str:
    """The SQLite library Python is linked against."""
    return sqlite3.sqlite_version


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer reservations per task")
    parser.add_argument("--child", nargs=4, metavar=("DB", "TASKS", "PER_TASK", "OFFSET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        db, tasks, per_task, offset = args.child
        asyncio.run(child(Path(db), int(tasks), int(per_task), int(offset)))
    else:
        asyncio.run(main(args.quick))
