"""SQLite beside PostgreSQL: reservations per second (1 and 4 processes), and jobs finished per minute
with 1 engine process beside 2.

Run from the repository root: `.venv/bin/python -m bench.bench_backends` (`--quick` for a short
run). It starts its own throwaway PostgreSQL server (`tests/store/pgserver.py`) and, for the jobs,
the sandbox in this process. Reservations are timed with and without a bot budget; jobs per minute
is N jobs split over 1 or 2 engine processes, each render 8 s of sandbox time.
docs/benchmarks.md, "SQLite beside PostgreSQL", describes both parts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from bot.clock import SystemClock
from bot.config import GenerationMode
from bot.store import NewJob, QuotaPolicy, Reservation, Store

ROOT = Path(__file__).resolve().parents[1]
GUILDS = (1111, 2222, 3333, 4444)
TASKS_PER_PROCESS = 16
BUDGET = QuotaPolicy(default_member_credits=10**9, bot_budget_credits=10**12, max_active_jobs_per_member=10**6)
NO_BUDGET = QuotaPolicy(default_member_credits=10**9, bot_budget_credits=None, max_active_jobs_per_member=10**6)


def _policy(name: str) -> QuotaPolicy:
    return BUDGET if name == "budget" else NO_BUDGET


# ---------------------------------------------------------------------------- reservations


async def reserve_child(target: str, policy: str, offset: int, per_task: int) -> None:
    """One reserving process: make its jobs, say "ready", wait for "go", reserve, report its window."""
    async with await Store.open(target, policy=_policy(policy), pool_size=16) as store:
        work: list[tuple[int, int, int]] = []
        for t in range(TASKS_PER_PROCESS):
            user, guild = offset + t, GUILDS[(offset + t) % len(GUILDS)]
            for _ in range(per_task):
                job = await store.jobs.create(NewJob(user_id=user, guild_id=guild, mode=GenerationMode.LITE))
                work.append((job.id, guild, user))
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        began = time.time()

        async def task(index: int) -> None:
            for job_id, guild, user in work[index * per_task : (index + 1) * per_task]:
                result = await store.quota.reserve(job_id, guild_id=guild, user_id=user, role_ids=[], amount=10)
                assert isinstance(result, Reservation), result

        await asyncio.gather(*(task(i) for i in range(TASKS_PER_PROCESS)))
        print(json.dumps({"began": began, "ended": time.time(), "count": len(work)}), flush=True)


async def _race(procs: list[asyncio.subprocess.Process]) -> tuple[int, float]:
    """Wait until every child is ready, start them together; return what they did and in how long."""
    for proc in procs:
        assert proc.stdout is not None
        assert (await proc.stdout.readline()).strip() == b"ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
    reports = [json.loads((await proc.communicate())[0]) for proc in procs]
    seconds = max(r["ended"] for r in reports) - min(r["began"] for r in reports)
    return sum(int(r["count"]) for r in reports), float(seconds)


async def reservations(target: str, policy: str, processes: int, per_task: int) -> float:
    """Reservations per second across `processes` processes on `target`."""
    async with await Store.open(target, policy=_policy(policy)) as store:
        for guild in GUILDS:
            await store.limits.set_server_pool(guild, 10**12)
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.bench_backends",
            "--reserve-child",
            target,
            policy,
            str(i * TASKS_PER_PROCESS),
            str(per_task),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for i in range(processes)
    ]
    count, seconds = await _race(procs)
    return count / seconds


# ---------------------------------------------------------------------------- jobs


async def jobs_child(count: int, first_user: int, media: str) -> None:
    """One engine process: wait for "go", submit `count` jobs, wait for every one to end, report."""
    from bot.config import Settings
    from bot.jobs.models import Delivery, InputSource, JobHooks, JobRequest, JobUpdate, LinkProvider
    from bot.services import Services
    from bot.store import JobRecord, JobState

    class Quiet:
        async def update(self, update: JobUpdate) -> None:
            return None

    class Drop:
        async def deliver(self, job: JobRecord, result: Path | None, *, sandbox: bool, link: LinkProvider) -> Delivery:
            return Delivery(kind="local")

    services = await Services.open(Settings(_env_file=None))  # type: ignore[call-arg]
    try:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        began = time.time()
        video, audio = Path(media) / "face.mp4", Path(media) / "voice.mp3"
        ids = []
        for user in range(first_user, first_user + count):
            request = JobRequest(
                user_id=user,
                guild_id=1,
                channel_id=7,
                video=InputSource(filename=video.name, path=video, size=video.stat().st_size),
                audio=InputSource(filename=audio.name, path=audio, size=audio.stat().st_size),
            )
            record = await services.engine.submit(request, JobHooks(sink=Quiet(), deliverer=Drop()))
            ids.append(record.id)
        finals = [await services.engine.wait(job_id) for job_id in ids]
        assert all(f.state is JobState.DONE for f in finals), [f.state for f in finals]
        print(json.dumps({"began": began, "ended": time.time(), "count": count}), flush=True)
    finally:
        await services.aclose()


async def jobs_per_minute(url: str, sandbox_url: str, media: Path, processes: int, jobs: int, work: Path) -> float:
    """Jobs finished per minute by `processes` engine processes sharing `jobs` jobs."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "MAGIC_HOUR_API_KEY": "sandbox-key",
        "MAGIC_HOUR_BASE_URL": sandbox_url,
        "MAX_JOBS_IN_FLIGHT": "8",
        "POLL_INITIAL_SECONDS": "1",
        "POLL_MAX_SECONDS": "2",
        "DEFAULT_MEMBER_CREDITS": "100000",
    }
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.bench_backends",
            "--jobs-child",
            str(jobs // processes),
            str(1000 * (i + 1)),
            str(media),
            cwd=ROOT,
            env={**env, "WORK_DIR": str(work / f"w{processes}-{i}")},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for i in range(processes)
    ]
    count, seconds = await _race(procs)
    return count / seconds * 60


# ---------------------------------------------------------------------------- main


async def main(quick: bool, only: str | None, repeat: int) -> None:
    """Start PostgreSQL, run every scenario (`repeat` times each), print Markdown tables."""
    from bot.sandbox import Sandbox, SandboxConfig
    from bot.testmedia import make_audio, make_video
    from tests.store.pgserver import TempPostgres, create_database

    server = TempPostgres().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            per_task = 10 if quick else 25
            if only in (None, "reservations"):
                print("| Backend | Policy | Processes | Reservations | Reservations/s (each run) |")
                print("|---|---|---:|---:|---:|")
            for policy in ("budget", "no budget") if only in (None, "reservations") else ():
                for processes in (1, 4):
                    for backend in ("SQLite", "PostgreSQL"):
                        rates = []
                        for run in range(repeat):
                            if backend == "SQLite":
                                target = str(folder / f"{policy}-{processes}-{run}.sqlite3")
                            else:
                                target = await create_database(server)
                            rates.append(await reservations(target, policy, processes, per_task))
                        total = processes * TASKS_PER_PROCESS * per_task
                        shown = ", ".join(f"{rate:,.0f}" for rate in rates)
                        print(f"| {backend} | {policy} | {processes} | {total} | {shown} |", flush=True)
            if only == "reservations":
                return
            media = folder / "media"
            media.mkdir()
            await make_video(media / "face.mp4", seconds=2.0, fps=30, size=(160, 120))
            await make_audio(media / "voice.mp3", seconds=1.5)
            jobs = 24 if quick else 64
            config = SandboxConfig(api_key="sandbox-key", render_seconds=8.0)
            async with Sandbox(config, data_dir=folder / "sandbox", clock=SystemClock()) as sandbox:
                print("\n| Engine processes | Jobs | Jobs finished per minute |")
                print("|---:|---:|---:|")
                for processes in (1, 2):
                    url = await create_database(server)
                    rate = await jobs_per_minute(url, sandbox.base_url, media, processes, jobs, folder)
                    print(f"| {processes} | {jobs} | {rate:,.1f} |", flush=True)
    finally:
        server.stop()
    print(f"\nPython {platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer reservations and jobs")
    parser.add_argument("--only", choices=["reservations", "jobs"], help="run one of the two parts")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each reservation scenario (default 1)")
    parser.add_argument("--reserve-child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--jobs-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reserve_child:
        target, policy, offset, per_task = args.reserve_child
        asyncio.run(reserve_child(target, policy, int(offset), int(per_task)))
    elif args.jobs_child:
        count, first_user, media = args.jobs_child
        asyncio.run(jobs_child(int(count), int(first_user), media))
    else:
        asyncio.run(main(args.quick, args.only, args.repeat))
