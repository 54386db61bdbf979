"""Polling on realistic render lengths: status requests per job against how late completion is noticed.

    .venv/bin/python -m bench.bench_polling [--jobs 300] [--seed 1] [--chart docs/polling-tradeoff.png]

A simulator on a fake clock (nothing sleeps) drives the bot's real `Poller` and `RenderForecast`
against an in-memory Magic Hour, on three workloads (`short`, `long`, `outliers`) and several
policies (`fixed N s`, `backoff ..M s`, `forecast λ`, the `window plan (before)`, `webhooks`, with
and without lost events), the same seeded renders for every policy. The first 30 jobs of each run
are history, not measured. "Late" is from a render's end to the read that found it complete.
docs/benchmarks.md, "Polling on real render lengths", describes the workloads and policies.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import math
import os
import platform
import random
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.clock import FakeClock
from bot.config import GenerationMode
from bot.jobs.forecast import Expectation, ForecastPolicy, Prediction, RenderForecast
from bot.jobs.poller import Poller, PollPolicy
from bot.magichour import VideoProject
from bot.store import JobRecord

MODE = GenerationMode.LITE
WARM_UP = 30
SIGMA = 0.25
WEBHOOK_DELAY = 0.25  # seconds from a render's end to its webhook reaching the bot


# --- workloads -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Render:
    """One job's render: its frame count (what the forecast knows) and how long it really takes."""

    frames: int
    seconds: float


def _short(rng: random.Random) -> Render:
    frames = rng.randint(30, 60)
    return Render(frames, (3.0 + 0.6 * frames) * rng.lognormvariate(0.0, SIGMA))


def _long(rng: random.Random) -> Render:
    frames = rng.randint(300, 450)
    return Render(frames, (10.0 + 0.6 * frames) * rng.lognormvariate(0.0, SIGMA))


def _outliers(rng: random.Random) -> Render:
    render = _short(rng) if rng.random() < 0.5 else _long(rng)
    if rng.random() < 0.1:
        return Render(render.frames, render.seconds * rng.uniform(2.0, 5.0))
    return render


WORKLOADS: dict[str, Callable[[random.Random], Render]] = {"short": _short, "long": _long, "outliers": _outliers}


def renders(workload: str, count: int, seed: int) -> list[Render]:
    """The same `count` renders for every policy of a workload."""
    rng = random.Random(f"{workload}:{seed}")
    return [WORKLOADS[workload](rng) for _ in range(count)]


# --- policies ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """One way to follow renders."""

    label: str
    family: str  # fixed, backoff, forecast, before, webhooks
    poll: PollPolicy
    forecast: ForecastPolicy
    webhooks: bool = False
    webhook_loss: float = 0.0
    window_plan: bool = False


NO_FORECAST = ForecastPolicy(enabled=False)
DEFAULT_FORECAST = ForecastPolicy()


def policies() -> list[Policy]:
    """Every policy the simulator compares."""
    out: list[Policy] = []
    for every in (2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 30.0):
        poll = PollPolicy(initial=every, maximum=every, growth=1.0, jitter=0.0)
        out.append(Policy(f"fixed {every:g} s", "fixed", poll, NO_FORECAST))
    for maximum in (7.5, 10.0, 20.0, 30.0, 45.0, 60.0):
        out.append(Policy(f"backoff ..{maximum:g} s", "backoff", PollPolicy(maximum=maximum), NO_FORECAST))
    for worth in (0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0):
        forecast = dataclasses.replace(DEFAULT_FORECAST, seconds_per_request=worth)
        mark = " (default)" if worth == DEFAULT_FORECAST.seconds_per_request else ""
        out.append(Policy(f"forecast λ={worth:g}{mark}", "forecast", PollPolicy(), forecast))
    out.append(Policy("window plan (before)", "before", PollPolicy(), DEFAULT_FORECAST, window_plan=True))
    hooked = dataclasses.replace(DEFAULT_FORECAST, webhooks=True)
    out.append(Policy("webhooks", "webhooks", PollPolicy(webhooks=True), hooked, webhooks=True))
    out.append(
        Policy("webhooks, 10 % lost", "webhooks", PollPolicy(webhooks=True), hooked, webhooks=True, webhook_loss=0.1)
    )
    return out


def window_plan(prediction: Prediction) -> list[float]:
    """The forecast's earlier plan (before the hazard-spaced one), for comparison."""
    close_polls, min_gap, max_gap, max_quiet = 4, 1.0, 10.0, 120.0
    width = prediction.late - prediction.early
    count = close_polls
    gap = width / (count - 1)
    if gap < min_gap:
        count = max(1, math.floor(width / min_gap) + 1)
        gap = min_gap
    elif gap > max_gap:
        count = math.ceil(width / max_gap) + 1
        gap = width / (count - 1)
    window = [prediction.early + k * gap for k in range(count)]
    lead = prediction.early - max(width / 2, min_gap)
    ahead = [lead] if lead > min_gap else []
    first = ahead[0] if ahead else prediction.early
    quiet: list[float] = []
    moment = max_quiet
    while moment < first - min_gap:
        quiet.append(moment)
        moment += max_quiet
    return quiet + ahead + window


# --- the simulated Magic Hour --------------------------------------------------------------------


class SimulatedMagicHour:
    """Projects that render until their end time on the fake clock; counts every status read."""

    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock
        self._ends: dict[str, float] = {}
        self.reads: dict[str, int] = {}
        self.found_at: dict[str, float] = {}
        self._running: dict[str, VideoProject] = {}
        self._done: dict[str, VideoProject] = {}

    def submit(self, project_id: str, seconds: float) -> float:
        """Start a render that ends `seconds` from now; return when."""
        end = self._clock.monotonic() + seconds
        self._ends[project_id] = end
        self.reads[project_id] = 0
        self._running[project_id] = VideoProject.model_validate({"id": project_id, "status": "rendering"})
        self._done[project_id] = VideoProject.model_validate(
            {"id": project_id, "status": "complete", "credits_charged": 1}
        )
        return end

    async def get_video_project(self, project_id: str) -> VideoProject:
        """The status by the clock, as `GET /v1/video-projects/{id}` would say."""
        self.reads[project_id] += 1
        now = self._clock.monotonic()
        if now >= self._ends[project_id]:
            self.found_at.setdefault(project_id, now)
            return self._done[project_id]
        return self._running[project_id]


# --- one run -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one policy did on one workload (measured jobs only)."""

    workload: str
    policy: Policy
    requests: list[int]
    late: list[float]

    @property
    def requests_per_job(self) -> float:
        """Mean status reads per job."""
        return statistics.fmean(self.requests)

    def late_at(self, quantile: float) -> float:
        """Lateness at this quantile (seconds)."""
        ordered = sorted(self.late)
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


async def simulate(workload: str, policy: Policy, jobs: list[Render], seed: int) -> Outcome:
    """Follow every job of `jobs` with `policy` on a fresh fake clock."""
    clock = FakeClock()
    magic_hour = SimulatedMagicHour(clock)
    forecast = RenderForecast(None, clock, policy.forecast)
    poller = Poller(magic_hour, clock, policy.poll, rng=random.Random(seed))
    rng = random.Random(f"arrivals:{workload}:{seed}")
    spacing = statistics.median(job.seconds for job in jobs) / 4
    ends: dict[str, float] = {}
    pending: set[asyncio.Task[None]] = set()

    async def deliver_webhook(project_id: str, end: float) -> None:
        await clock.sleep(end + WEBHOOK_DELAY - clock.monotonic())
        poller.poke(project_id)

    async def follow(index: int, job: Render) -> None:
        project_id = f"p{index}"
        credits = job.frames * MODE.credits_per_frame
        record = JobRecord.model_construct(id=index, mode=MODE, estimated_credits=credits)
        expectation: Expectation = await forecast.expect(record)
        if policy.window_plan and expectation.prediction is not None:
            expectation.polls = [expectation.submitted + t for t in window_plan(expectation.prediction)]
        ends[project_id] = magic_hour.submit(project_id, job.seconds)
        if policy.webhooks and rng.random() >= policy.webhook_loss:
            task = asyncio.ensure_future(deliver_webhook(project_id, ends[project_id]))
            pending.add(task)
            task.add_done_callback(pending.discard)
        project = await poller.wait(project_id, within=10 * 3600, expect=expectation)
        await forecast.record(expectation, project)

    async def submit_all() -> None:
        for index, job in enumerate(jobs):
            runners.add(asyncio.ensure_future(follow(index, job)))
            await clock.sleep(rng.expovariate(1 / spacing))

    runners: set[asyncio.Future[None]] = set()
    submitter = asyncio.ensure_future(submit_all())
    while not (submitter.done() and all(r.done() for r in runners)):
        await settle(clock, poller)
        deadline = clock.next_deadline()
        if deadline is None:
            continue
        await clock.advance(max(0.0, deadline - clock.monotonic()))
    for runner in runners:
        runner.result()  # re-raise a failure
    await poller.aclose()
    for task in pending:
        task.cancel()
    measured = [f"p{index}" for index in range(WARM_UP, len(jobs))]
    return Outcome(
        workload,
        policy,
        requests=[magic_hour.reads[p] for p in measured],
        late=[magic_hour.found_at[p] - ends[p] for p in measured],
    )


async def settle(clock: FakeClock, poller: Poller) -> None:
    """Let every task woken by the last step run until nothing changes (answers are instant), so
    time never moves past a poll the poller has yet to schedule."""
    quiet = 0
    seen: tuple[object, ...] = ()
    while quiet < 8:
        await asyncio.sleep(0)
        now = (clock.sleepers, clock.next_deadline(), poller.polling)
        quiet = quiet + 1 if now == seen and not poller.polling else 0
        seen = now


# --- comparing and reporting ---------------------------------------------------------------------


def interpolate(points: list[tuple[float, float]], x: float) -> float | None:
    """The curve through `points` (x ascending after sorting) at `x`; None outside its range."""
    ordered = sorted(points)
    for (x0, y0), (x1, y1) in itertools.pairwise(ordered):
        if x0 <= x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return None


def same_budget(outcomes: list[Outcome], chosen: Outcome) -> list[str]:
    """Lines comparing `chosen` with the fixed and backoff curves at its own requests per job."""
    lines = []
    budget = chosen.requests_per_job
    for family in ("fixed", "backoff"):
        curve = [o for o in outcomes if o.policy.family == family and o.workload == chosen.workload]
        for quantile, name in ((0.5, "p50"), (0.95, "p95")):
            theirs = interpolate([(o.requests_per_job, o.late_at(quantile)) for o in curve], budget)
            mine = chosen.late_at(quantile)
            if theirs is None:
                verdict = "outside their range"
                span = sorted(o.requests_per_job for o in curve)
                detail = f"{family} spans {span[0]:.1f}-{span[-1]:.1f} requests"
            else:
                verdict = "beats" if mine < theirs else "LOSES TO"
                detail = f"{mine:.2f} s against {theirs:.2f} s"
            lines.append(f"  {chosen.workload}: at {budget:.1f} requests, {name} {verdict} {family} ({detail})")
    return lines


def on_their_budget(outcomes: list[Outcome], workload: str) -> list[str]:
    """Lines comparing the forecast's curve with fixed 2 s polling and the default backoff, each at
    the comparator's own requests per job."""
    mine = [(o.requests_per_job, o) for o in outcomes if o.workload == workload and o.policy.family == "forecast"]
    lines = []
    for label in ("fixed 2 s", "backoff ..20 s"):
        theirs = next(o for o in outcomes if o.workload == workload and o.policy.label == label)
        budget = theirs.requests_per_job
        parts = []
        for quantile, name in ((0.5, "p50"), (0.95, "p95")):
            curve = interpolate([(x, o.late_at(quantile)) for x, o in mine], budget)
            if curve is None:
                cheapest = min((o for _, o in mine), key=lambda o: o.late_at(quantile))
                parts.append(
                    f"{name}: outside the curve ({cheapest.policy.label}: {cheapest.requests_per_job:.1f} "
                    f"requests, {cheapest.late_at(quantile):.2f} s against {theirs.late_at(quantile):.2f} s)"
                )
            else:
                verdict = "beats" if curve < theirs.late_at(quantile) else "LOSES TO"
                parts.append(f"{name} {curve:.2f} s {verdict} {theirs.late_at(quantile):.2f} s")
        lines.append(f"  {workload}: the curve at {label}'s {budget:.1f} requests: " + "; ".join(parts))
    return lines


def print_table(outcomes: list[Outcome]) -> None:
    """Every outcome as Markdown rows, one table per workload."""
    for workload in WORKLOADS:
        print(f"\n**{workload}**\n")
        print("| Policy | Requests/job | Late p50 (s) | Late p95 (s) | Late max (s) |")
        print("|---|---:|---:|---:|---:|")
        for o in (o for o in outcomes if o.workload == workload):
            print(
                f"| {o.policy.label} | {o.requests_per_job:.1f} | {o.late_at(0.5):.2f} | "
                f"{o.late_at(0.95):.2f} | {max(o.late):.2f} |"
            )


def draw(outcomes: list[Outcome], path: Path) -> bool:
    """The trade-off curves, one panel per workload (PNG); False when matplotlib isn't installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    styles = {"fixed": ("tab:gray", "s"), "backoff": ("tab:orange", "^"), "forecast": ("tab:blue", "o")}
    figure, axes = plt.subplots(1, len(WORKLOADS), figsize=(15, 4.8))
    for axis, workload in zip(axes, WORKLOADS, strict=True):
        mine = [o for o in outcomes if o.workload == workload]
        for family, (colour, marker) in styles.items():
            curve = sorted((o for o in mine if o.policy.family == family), key=lambda o: o.requests_per_job)
            xs = [o.requests_per_job for o in curve]
            axis.plot(xs, [o.late_at(0.5) for o in curve], color=colour, marker=marker, label=f"{family} p50")
            axis.plot(xs, [o.late_at(0.95) for o in curve], color=colour, marker=marker, ls="--", alpha=0.6)
        for o in mine:
            if o.policy.family in ("before", "webhooks") or "default" in o.policy.label:
                axis.annotate(
                    o.policy.label,
                    (o.requests_per_job, o.late_at(0.5)),
                    fontsize=7,
                    xytext=(4, 4),
                    textcoords="offset points",
                )
                axis.plot(o.requests_per_job, o.late_at(0.5), "k*" if "default" in o.policy.label else "kx")
        axis.set_xscale("log")
        axis.set_yscale("symlog", linthresh=1.0)
        axis.set_title(f"{workload} renders")
        axis.set_xlabel("status requests per job")
        axis.set_ylabel("late (s): p50 solid, p95 dashed")
        axis.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.suptitle("Polling: requests per job against lateness (log-normal scatter, sigma 0.25)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


async def run_all(count: int, seed: int) -> list[Outcome]:
    """Every policy on every workload."""
    outcomes = []
    for workload in WORKLOADS:
        jobs = renders(workload, count + WARM_UP, seed)
        for policy in policies():
            outcomes.append(await simulate(workload, policy, jobs, seed))
            print(f"  {workload}: {policy.label}", file=sys.stderr)
    return outcomes


def main() -> int:
    """Simulate, print the tables and the same-budget comparison, draw the chart."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=300, help="measured jobs per run (default 300)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--chart", type=Path, default=Path("docs/polling-tradeoff.png"))
    args = parser.parse_args()
    outcomes = asyncio.run(run_all(args.jobs, args.seed))
    print(
        f"\nPolling simulator: {args.jobs} measured jobs per run after {WARM_UP} of history, seed {args.seed}, "
        f"Python {platform.python_version()}, {os.cpu_count()} cores (a fake clock: the machine doesn't matter)"
    )
    print_table(outcomes)
    print("\nThe default against fixed polling and backoff on the same request budget:")
    for o in outcomes:
        if "default" in o.policy.label:
            print("\n".join(same_budget(outcomes, o)))
    print("\nThe curve against fixed 2 s polling and the default backoff, each on its own request budget:")
    for workload in WORKLOADS:
        print("\n".join(on_their_budget(outcomes, workload)))
    if draw(outcomes, args.chart):
        print(f"\nChart: {args.chart}")
    else:
        print("\n(no chart: install the bench extra, `pip install -e '.[bench]'`)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
