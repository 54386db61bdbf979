"""Several engine processes on one PostgreSQL: how fast a dead process's jobs are taken over, and jobs per
minute with 1, 2 and 3 processes when every job arrives at the first one.

Run from the repository root: `.venv/bin/python -m bench.bench_processes` (`--quick` for a short
run). It starts its own throwaway PostgreSQL server (`tests/store/pgserver.py`), the sandbox in
this process, and a local HTTP server for the inputs; the engine processes are
`tests/jobs/engine_worker.py`. Takeover is timed from a victim's SIGKILL until the survivor has
claimed its three jobs; jobs per minute also counts PostgreSQL transactions per job and writes to
`instances`. docs/benchmarks.md, "Several processes", describes both parts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
from aiohttp import web

from bot.clock import SystemClock
from bot.store import JobState, QuotaPolicy, Store
from tests.store.pgserver import TempPostgres, create_database

ROOT = Path(__file__).resolve().parents[1]
SANDBOX_KEY = "sandbox-key"


class Fleet:
    """Engine processes (`tests.jobs.engine_worker`) sharing one database, the sandbox and the inputs."""

    def __init__(self, folder: Path, env: dict[str, str], media_url: str) -> None:
        self.folder = folder
        self.env = env
        self.media_url = media_url
        self.deliveries = folder / "deliveries"
        self.deliveries.mkdir(parents=True, exist_ok=True)
        self._users = 1000
        self._names = 0

    async def start(self, jobs: int) -> asyncio.subprocess.Process:
        """A process that submits `jobs` jobs (after it started taking over), then runs until stopped."""
        first, self._users = self._users, self._users + max(jobs, 1)
        self._names += 1
        name = f"p{self._names}"
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.jobs.engine_worker",
            str(first),
            str(jobs),
            f"{self.media_url}/face.mp4",
            f"{self.media_url}/voice.mp3",
            str(self.deliveries),
            "-1",
            cwd=ROOT,
            env={**self.env, "WORK_DIR": str(self.folder / f"work-{name}"), "INSTANCE_NAME": name},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 120)
        assert line.strip() == b"SUBMITTED", line
        return proc

    @staticmethod
    async def stop(proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 60)


async def _until(check: Callable[[], Awaitable[bool]], seconds: float, every: float = 0.05) -> float:
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > seconds:
            raise TimeoutError("the benchmark's state never came")
        await asyncio.sleep(every)
    return time.monotonic() - started


async def takeover_times(fleet: Fleet, store: Store, rounds: int) -> list[float]:
    """Seconds from a victim's SIGKILL until a survivor has claimed all its jobs, `rounds` times."""
    survivor = await fleet.start(0)
    times: list[float] = []
    try:
        for _ in range(rounds):
            times.append(await _one_takeover(fleet, store))
            print(f"  takeover {len(times)}: {times[-1]:.2f} s", file=sys.stderr, flush=True)
    finally:
        await fleet.stop(survivor)
    return times


async def _one_takeover(fleet: Fleet, store: Store) -> float:
    before = {j.id for j in await store.jobs.for_guild(1, limit=10_000)}
    victim = await fleet.start(3)
    mine: set[int] = set()

    async def rendering() -> bool:
        jobs = [j for j in await store.jobs.for_guild(1, limit=10_000) if j.id not in before]
        mine.update(j.id for j in jobs)
        return len(jobs) == 3 and all(j.state is JobState.RENDERING for j in jobs)

    await _until(rendering, 60)
    [holder] = {j.claimed_by for j in await store.jobs.for_guild(1, limit=10_000) if j.id in mine}
    victim.kill()
    killed = time.monotonic()
    await victim.wait()

    async def taken() -> bool:
        jobs = [j for j in await store.jobs.for_guild(1, limit=10_000) if j.id in mine]
        return all(j.claimed_by not in (None, holder) for j in jobs)

    await _until(taken, 60)
    return time.monotonic() - killed


async def jobs_per_minute(
    fleet: Fleet, store: Store, url: str, processes: int, jobs: int
) -> tuple[float, float, float]:
    """(jobs per minute, transactions per job, heartbeat writes per minute per process)."""
    helpers = [await fleet.start(0) for _ in range(processes - 1)]
    stats = await asyncpg.connect(url)
    try:
        commits_before = await _commits(stats)
        beats_before = await _beats(stats)
        began = time.monotonic()
        first = await fleet.start(jobs)

        async def all_done() -> bool:
            records = await store.jobs.for_guild(1, limit=10_000)
            return sum(j.state is JobState.DONE for j in records) >= jobs

        await _until(all_done, 900, every=0.2)
        # From the first job recorded to the last one done, by the database rows (one machine's clock).
        records = await store.jobs.for_guild(1, limit=10_000)
        seconds = (max(j.updated_at for j in records) - min(j.created_at for j in records)).total_seconds()
        minutes = (time.monotonic() - began) / 60
        commits = await _commits(stats) - commits_before
        beats = await _beats(stats) - beats_before
        for proc in (first, *helpers):
            await fleet.stop(proc)
    finally:
        await stats.close()
    return jobs / seconds * 60, commits / jobs, beats / processes / minutes


async def _commits(conn: asyncpg.Connection) -> int:
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    return int(await conn.fetchval("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"))


async def _beats(conn: asyncpg.Connection) -> int:
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    value = await conn.fetchval("SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'instances'")
    return int(value or 0)


async def main(quick: bool, rounds: int | None) -> None:
    """Start PostgreSQL, the sandbox and the inputs' server; run both parts; print Markdown tables."""
    from bot.sandbox import Sandbox, SandboxConfig
    from bot.testmedia import make_audio, make_video

    server = TempPostgres().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            media = folder / "media"
            media.mkdir()
            await make_video(media / "face.mp4", seconds=2.0, fps=30, size=(160, 120))
            await make_audio(media / "voice.mp3", seconds=1.5)
            app = web.Application()
            app.router.add_static("/", media)
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            media_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
            try:
                config = SandboxConfig(api_key=SANDBOX_KEY, render_seconds=8.0)
                async with Sandbox(config, data_dir=folder / "sandbox", clock=SystemClock()) as sandbox:
                    env = {
                        **os.environ,
                        "MAGIC_HOUR_API_KEY": SANDBOX_KEY,
                        "MAGIC_HOUR_BASE_URL": sandbox.base_url,
                        "MAX_JOBS_IN_FLIGHT": "8",
                        "POLL_INITIAL_SECONDS": "1",
                        "POLL_MAX_SECONDS": "2",
                        "DEFAULT_MEMBER_CREDITS": "100000",
                        "PYTHONPATH": str(ROOT),
                    }
                    await _takeover_part(server, folder, env, media_url, rounds or (5 if quick else 20))
                    await _jobs_part(server, folder, env, media_url, 24 if quick else 64)
            finally:
                await runner.cleanup()
    finally:
        server.stop()
    print(f"\nPython {platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores")


async def _takeover_part(server: TempPostgres, folder: Path, env: dict[str, str], media_url: str, rounds: int) -> None:
    url = await create_database(server)
    sandbox_env = {**env, "DATABASE_URL": url}
    async with await Store.open(url, clock=SystemClock(), policy=QuotaPolicy()) as store:
        fleet = Fleet(folder / "takeover", sandbox_env, media_url)
        # Renders long enough to be taken over while they run.
        times = await takeover_times(fleet, store, rounds)
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    print("| Rounds | Median (s) | p95 (s) | Min (s) | Max (s) |")
    print("|---:|---:|---:|---:|---:|")
    print(
        f"| {len(times)} | {statistics.median(times):.2f} | {p95:.2f} | {ordered[0]:.2f} | {ordered[-1]:.2f} |",
        flush=True,
    )


async def _jobs_part(server: TempPostgres, folder: Path, env: dict[str, str], media_url: str, jobs: int) -> None:
    print(
        "\n| Engine processes | Jobs (all sent to the first) | Jobs finished per minute | Transactions per job |"
        " Heartbeat and fence writes per minute per process |"
    )
    print("|---:|---:|---:|---:|---:|")
    for processes in (1, 2, 3):
        url = await create_database(server)
        work = folder / f"jobs-{processes}"
        async with await Store.open(url, clock=SystemClock(), policy=QuotaPolicy()) as store:
            fleet = Fleet(work, {**env, "DATABASE_URL": url}, media_url)
            rate, per_job, beats = await jobs_per_minute(fleet, store, url, processes, jobs)
        print(f"| {processes} | {jobs} | {rate:,.1f} | {per_job:.1f} | {beats:.0f} |", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer takeover rounds and jobs")
    parser.add_argument("--rounds", type=int, help="takeover rounds (default 20, 5 with --quick)")
    args = parser.parse_args()
    asyncio.run(main(args.quick, args.rounds))
