"""100 concurrent lip-sync jobs through the sandbox: our engine beside the official SDK's `generate`.

    python bench/bench_engine.py [--jobs 100] [--render-seconds 30]

The parent process runs the sandbox (so its counters can be read and its memory isn't counted);
each side runs in a fresh child process that submits every job at once and waits for all of them.
Figures per side: wall time, peak RSS of the child, event-loop lag (p50/p99/max of a 50 ms ticker),
and status requests per job as the sandbox counted them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.config import Settings  # noqa: E402
from bot.jobs.models import Delivery, InputSource, JobHooks, JobRequest, JobUpdate, LinkProvider  # noqa: E402
from bot.sandbox import Sandbox, SandboxConfig  # noqa: E402
from bot.services import Services  # noqa: E402
from bot.store import JobRecord, JobState  # noqa: E402
from bot.testmedia import make_audio, make_video  # noqa: E402

KEY = "bench-key"
TICK = 0.05


class LagMeter:
    """Measures how late a 50 ms sleep wakes: the time the loop was blocked."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(TICK)
            self.lags.append(max(0.0, time.perf_counter() - start - TICK))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> dict[str, float]:
        assert self._task is not None
        self._task.cancel()
        ordered = sorted(self.lags) or [0.0]
        return {
            "lag_p50_ms": 1000 * statistics.median(ordered),
            "lag_p99_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
            "lag_max_ms": 1000 * ordered[-1],
        }


class Quiet:
    async def update(self, update: JobUpdate) -> None:
        return None


class Discard:
    async def deliver(self, job: JobRecord, result: Path | None, *, sandbox: bool, link: LinkProvider) -> Delivery:
        if result is not None:
            result.unlink()
        return Delivery(kind="local")


async def run_ours(base_url: str, jobs: int, media: Path, work: Path) -> dict[str, Any]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        magic_hour_api_key=SecretStr(KEY),
        magic_hour_base_url=base_url,
        database_path=work / "bench.sqlite3",
        work_dir=work / "jobs",
        max_jobs_in_flight=jobs,
        max_concurrent_transfers=8,
        max_active_jobs_per_member=jobs,
        default_member_credits=10**9,
    )
    meter = LagMeter()
    meter.start()
    started = time.perf_counter()
    async with await Services.open(settings) as services:
        records = []
        for index in range(jobs):
            request = JobRequest(
                user_id=index,
                guild_id=1,
                video=InputSource(filename="face.mp4", path=media / "face.mp4"),
                audio=InputSource(filename="voice.mp3", path=media / "voice.mp3"),
            )
            records.append(await services.engine.submit(request, JobHooks(sink=Quiet(), deliverer=Discard())))
        finals = await asyncio.gather(*(services.engine.wait(r.id) for r in records))
        polls = services.engine.poller.requests
    elapsed = time.perf_counter() - started
    done = sum(1 for f in finals if f.state is JobState.DONE)
    return {"seconds": elapsed, "done": done, "client_polls": polls, **meter.stop()}


def sdk_job(media: Path, folder: Path) -> dict[str, Any]:
    """The same job as ours, in the SDK's words: upload both files, wait, download the result."""
    return {
        "assets": {
            "video_file_path": str(media / "face.mp4"),
            "audio_file_path": str(media / "voice.mp3"),
            "video_source": "file",
        },
        "start_seconds": 0.0,
        "end_seconds": 1.5,
        "wait_for_completion": True,
        "download_outputs": True,
        "download_directory": str(folder),
    }


def summary(started: float, outcomes: list[Any], meter: LagMeter) -> dict[str, Any]:
    """Wall time, jobs done and distinct failures of an SDK side."""
    done = sum(1 for o in outcomes if o is True)
    errors = sorted({f"{type(o).__name__}: {str(o)[:80]}" for o in outcomes if isinstance(o, BaseException)})
    return {"seconds": time.perf_counter() - started, "done": done, "errors": errors, **meter.stop()}


async def run_sdk(base_url: str, jobs: int, media: Path, work: Path) -> dict[str, Any]:
    from magic_hour import AsyncClient

    client = AsyncClient(token=KEY, base_url=base_url)
    meter = LagMeter()
    meter.start()
    started = time.perf_counter()

    async def one(index: int) -> bool:
        folder = work / f"sdk-{index}"
        folder.mkdir(parents=True)
        result = await client.v1.lip_sync.generate(**sdk_job(media, folder))
        return bool(getattr(result, "downloaded_paths", None))

    outcomes = await asyncio.gather(*(one(i) for i in range(jobs)), return_exceptions=True)
    return summary(started, outcomes, meter)


async def run_sdk_threads(base_url: str, jobs: int, media: Path, work: Path) -> dict[str, Any]:
    """The SDK's synchronous client, one thread per job: how to use it without blocking a loop."""
    from concurrent.futures import ThreadPoolExecutor

    from magic_hour import Client

    client = Client(token=KEY, base_url=base_url)
    meter = LagMeter()
    meter.start()
    started = time.perf_counter()

    def one(index: int) -> bool:
        folder = work / f"sdk-{index}"
        folder.mkdir(parents=True)
        result = client.v1.lip_sync.generate(**sdk_job(media, folder))
        return bool(getattr(result, "downloaded_paths", None))

    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [loop.run_in_executor(pool, one, i) for i in range(jobs)]
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
    return summary(started, outcomes, meter)


SIDES = {"ours": run_ours, "sdk-async": run_sdk, "sdk-threads": run_sdk_threads}


def child(side: str, base_url: str, jobs: int, media: Path) -> None:
    with tempfile.TemporaryDirectory(prefix=f"bench-{side}-") as tmp:
        runner = SIDES[side]
        figures = asyncio.run(runner(base_url, jobs, media, Path(tmp)))
    figures["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(figures), flush=True)


async def parent(jobs: int, render_seconds: float) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        media = Path(tmp) / "media"
        media.mkdir()
        await make_video(media / "face.mp4", seconds=2.0, fps=30, size=(160, 120))
        await make_audio(media / "voice.mp3", seconds=1.5)
        config = SandboxConfig(api_key=KEY, render_seconds=render_seconds, max_concurrent_renders=4)
        rows = []
        async with Sandbox(config, data_dir=Path(tmp) / "sandbox") as sandbox:
            for side in SIDES:
                sandbox.counters.reset()
                env = {**os.environ, "MAGIC_HOUR_POLL_INTERVAL": "0.5"}
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, __file__, "--child", side, "--base-url", sandbox.base_url,
                    "--jobs", str(jobs), "--media", str(media),
                    stdout=asyncio.subprocess.PIPE, env=env,
                )  # fmt: skip
                out, _ = await proc.communicate()
                figures = json.loads(out.decode().strip().splitlines()[-1])
                figures["status_requests_per_job"] = sandbox.counters.requests["get_project"] / jobs
                figures["jobs_created"] = sandbox.counters.jobs_created
                rows.append((side, figures))
    python = sys.version.split()[0]
    print(f"{jobs} jobs, sandbox render {render_seconds:g} s each, Python {python}, {os.cpu_count()} cores")
    columns = ("done", "seconds", "peak MiB", "lag p50", "lag p99", "lag max", "GET/job")
    print(f"{'side':11} " + " ".join(f"{c:>8}" for c in columns))
    for side, f in rows:
        print(
            f"{side:11} {f['done']:>8} {f['seconds']:>8.1f} {f['peak_rss_mib']:>9.1f} {f['lag_p50_ms']:>7.1f}ms "
            f"{f['lag_p99_ms']:>7.1f}ms {f['lag_max_ms']:>7.0f}ms {f['status_requests_per_job']:>8.1f}"
        )
        for error in f.get("errors", []):
            print(f"    {side} failure: {error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--render-seconds", type=float, default=30.0)
    parser.add_argument("--child", choices=list(SIDES))
    parser.add_argument("--base-url")
    parser.add_argument("--media", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.base_url, args.jobs, args.media)
    else:
        asyncio.run(parent(args.jobs, args.render_seconds))


if __name__ == "__main__":
    main()
