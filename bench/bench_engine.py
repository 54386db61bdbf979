"""100 concurrent lip-sync jobs through the sandbox: our engine beside the official SDK's `generate`.

    python bench/bench_engine.py [--jobs 100] [--seconds-per-frame 0.6 --overhead 3 --noise 0.1]
    python bench/bench_engine.py --seconds-per-frame 0 --render-seconds 30   # every render 30 s

The parent runs the sandbox; each side (`ours-before`: forecast off, `ours-forecast`,
`sdk-threads`, and on request `sdk-async`) runs in a fresh child that submits every job at once and
waits for all of them; the `ours` sides first finish `--warmup` jobs so the forecast has a history.
Figures: wall time, peak RSS, event-loop lag, status requests per job, and how late completion was
noticed. docs/benchmarks.md, "100 concurrent jobs" and "Polling that knows when a render ends".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.config import Settings  # noqa: E402
from bot.jobs.models import Delivery, InputSource, JobHooks, JobRequest, JobUpdate, LinkProvider  # noqa: E402
from bot.sandbox import Sandbox, SandboxConfig  # noqa: E402
from bot.sandbox import jobs as sandbox_jobs  # noqa: E402
from bot.services import Services  # noqa: E402
from bot.store import JobRecord, JobState  # noqa: E402
from bot.testmedia import make_audio, make_video  # noqa: E402

KEY = "bench-key"
TICK = 0.05
WAVE = 5  # warm-up jobs run in waves this size (FORECAST_MIN_RENDERS): the second wave has a forecast


def clip_end(index: int) -> float:
    """Job `index`'s clip: 0.5, 0.75, 1.0, 1.25 or 1.5 s of the 2 s video (15-45 frames at 30 fps)."""
    return 0.5 + 0.25 * (index % 5)


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


async def run_ours(base_url: str, jobs: int, media: Path, work: Path, *, forecast: bool, warmup: int) -> dict[str, Any]:
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
        poll_forecast=forecast,
        forecast_min_renders=WAVE,
    )
    async with await Services.open(settings) as services:

        async def batch(indices: range) -> list[JobRecord]:
            records = []
            for index in indices:
                request = JobRequest(
                    user_id=index,
                    guild_id=1,
                    video=InputSource(filename="face.mp4", path=media / "face.mp4"),
                    audio=InputSource(filename="voice.mp3", path=media / "voice.mp3"),
                    end=clip_end(index),
                )
                records.append(await services.engine.submit(request, JobHooks(sink=Quiet(), deliverer=Discard())))
            return list(await asyncio.gather(*(services.engine.wait(r.id) for r in records)))

        for first in range(0, warmup, WAVE):
            await batch(range(first, min(first + WAVE, warmup)))
        # Tell the parent the history is in place; it answers once it has reset its counters.
        print("WARM", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        meter = LagMeter()
        meter.start()
        started = time.perf_counter()
        polls_before = services.engine.poller.requests
        finals = await batch(range(warmup, warmup + jobs))
        polls = services.engine.poller.requests - polls_before
        elapsed = time.perf_counter() - started
    done = sum(1 for f in finals if f.state is JobState.DONE)
    return {"seconds": elapsed, "done": done, "client_polls": polls, **meter.stop()}


def sdk_job(media: Path, folder: Path, end: float) -> dict[str, Any]:
    """The same job as ours, in the SDK's words: upload both files, wait, download the result."""
    return {
        "assets": {
            "video_file_path": str(media / "face.mp4"),
            "audio_file_path": str(media / "voice.mp3"),
            "video_source": "file",
        },
        "start_seconds": 0.0,
        "end_seconds": end,
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
        result = await client.v1.lip_sync.generate(**sdk_job(media, folder, clip_end(index)))
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
        result = client.v1.lip_sync.generate(**sdk_job(media, folder, clip_end(index)))
        return bool(getattr(result, "downloaded_paths", None))

    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [loop.run_in_executor(pool, one, i) for i in range(jobs)]
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
    return summary(started, outcomes, meter)


Runner = Callable[[str, int, Path, Path, int], Coroutine[Any, Any, dict[str, Any]]]


async def _ours_before(base_url: str, jobs: int, media: Path, work: Path, warmup: int) -> dict[str, Any]:
    return await run_ours(base_url, jobs, media, work, forecast=False, warmup=warmup)


async def _ours_forecast(base_url: str, jobs: int, media: Path, work: Path, warmup: int) -> dict[str, Any]:
    return await run_ours(base_url, jobs, media, work, forecast=True, warmup=warmup)


async def _sdk_async(base_url: str, jobs: int, media: Path, work: Path, warmup: int) -> dict[str, Any]:
    return await run_sdk(base_url, jobs, media, work)


async def _sdk_threads(base_url: str, jobs: int, media: Path, work: Path, warmup: int) -> dict[str, Any]:
    return await run_sdk_threads(base_url, jobs, media, work)


SIDES: dict[str, Runner] = {
    "ours-before": _ours_before,
    "ours-forecast": _ours_forecast,
    "sdk-threads": _sdk_threads,
    "sdk-async": _sdk_async,
}
DEFAULT_SIDES = ("ours-before", "ours-forecast", "sdk-threads")


def child(side: str, base_url: str, jobs: int, media: Path, warmup: int) -> None:
    with tempfile.TemporaryDirectory(prefix=f"bench-{side}-") as tmp:
        runner = SIDES[side]
        figures = asyncio.run(runner(base_url, jobs, media, Path(tmp), warmup))
    figures["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(figures), flush=True)


def watch_completions(noticed: dict[str, float]) -> None:
    """Record when each render was first found complete: the status read that finalised it."""
    original = sandbox_jobs.finalise

    async def finalise(state: Any, project: Any) -> None:
        due = not project.is_finalised()
        await original(state, project)
        if due and project.id not in noticed:
            noticed[project.id] = time.monotonic()

    sandbox_jobs.finalise = finalise  # the benchmark's own probe


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


async def run_side(
    sandbox: Sandbox, side: str, jobs: int, media: Path, warmup: int, noticed: dict[str, float]
) -> dict[str, Any]:
    sandbox.state.render_rng.seed(sandbox.config.render_seed)  # every side draws the same noise
    sandbox.counters.reset()
    env = {**os.environ, "MAGIC_HOUR_POLL_INTERVAL": "0.5"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--child", side, "--base-url", sandbox.base_url,
        "--jobs", str(jobs), "--media", str(media), "--warmup", str(warmup if side.startswith("ours") else 0),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdin is not None
    if side.startswith("ours"):
        while (line := await proc.stdout.readline()) and line.strip() != b"WARM":
            pass
    measured_from = time.monotonic()
    gets_before = sandbox.counters.requests["get_project"]
    proc.stdin.write(b"go\n")
    await proc.stdin.drain()
    out = await proc.stdout.read()
    await proc.wait()
    figures: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    measured = [p for p in sandbox.projects.values() if p.created_mono >= measured_from]
    figures["status_requests_per_job"] = (sandbox.counters.requests["get_project"] - gets_before) / jobs
    figures["jobs_created"] = len(measured)
    late = [noticed[p.id] - (p.created_mono + p.queue_seconds + p.render_seconds) for p in measured if p.id in noticed]
    figures["notice_p50"] = percentile(late, 0.5)
    figures["notice_p95"] = percentile(late, 0.95)
    figures["notice_max"] = max(late, default=math.nan)
    figures["render_min"] = min((p.render_seconds for p in measured), default=math.nan)
    figures["render_max"] = max((p.render_seconds for p in measured), default=math.nan)
    return figures


async def parent(args: argparse.Namespace) -> None:
    noticed: dict[str, float] = {}
    watch_completions(noticed)
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        media = Path(tmp) / "media"
        media.mkdir()
        await make_video(media / "face.mp4", seconds=2.0, fps=30, size=(160, 120))
        await make_audio(media / "voice.mp3", seconds=1.5)
        config = SandboxConfig(
            api_key=KEY,
            render_seconds=args.render_seconds,
            render_seconds_per_frame=args.seconds_per_frame,
            render_overhead_seconds=args.overhead,
            render_noise=args.noise,
            render_seed=args.seed,
            max_concurrent_renders=4,
        )
        rows = []
        async with Sandbox(config, data_dir=Path(tmp) / "sandbox") as sandbox:
            for side in args.sides.split(","):
                rows.append((side, await run_side(sandbox, side, args.jobs, media, args.warmup, noticed)))
    python = sys.version.split()[0]
    if args.seconds_per_frame > 0:
        timing = f"{args.overhead:g} s + frames x {args.seconds_per_frame:g} s x (1 +- {args.noise:g})"
    else:
        timing = f"{args.render_seconds:g} s each"
    print(f"{args.jobs} jobs (15-45 frames), sandbox renders {timing}, warm-up {args.warmup} jobs (ours), "
          f"Python {python}, {os.cpu_count()} cores")  # fmt: skip
    columns = ("done", "seconds", "peak MiB", "lag p50", "lag p99", "lag max", "GET/job", "late p50", "p95", "max")
    print(f"{'side':13} " + " ".join(f"{c:>8}" for c in columns))
    for side, f in rows:
        print(
            f"{side:13} {f['done']:>8} {f['seconds']:>8.1f} {f['peak_rss_mib']:>8.1f} {f['lag_p50_ms']:>6.1f}ms "
            f"{f['lag_p99_ms']:>6.1f}ms {f['lag_max_ms']:>6.0f}ms {f['status_requests_per_job']:>8.2f} "
            f"{f['notice_p50']:>7.2f}s {f['notice_p95']:>7.2f}s {f['notice_max']:>7.2f}s"
        )
        for error in f.get("errors", []):
            print(f"    {side} failure: {error}")
    renders = [f for _, f in rows]
    print(f"render times {min(f['render_min'] for f in renders):.1f}-{max(f['render_max'] for f in renders):.1f} s; "
          "'late' = from a render's due moment to the status read that found it complete")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10, help="jobs the ours sides finish first (their history)")
    parser.add_argument("--render-seconds", type=float, default=30.0, help="each render, without --seconds-per-frame")
    parser.add_argument("--seconds-per-frame", type=float, default=0.6)
    parser.add_argument("--overhead", type=float, default=3.0)
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sides", default=",".join(DEFAULT_SIDES), help=f"comma-separated, of {', '.join(SIDES)}")
    parser.add_argument("--child", choices=list(SIDES))
    parser.add_argument("--base-url")
    parser.add_argument("--media", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.base_url, args.jobs, args.media, args.warmup)
    else:
        asyncio.run(parent(args))


if __name__ == "__main__":
    main()
