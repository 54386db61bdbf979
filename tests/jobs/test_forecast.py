"""The render-time forecast: what it learns, how it plans polls, and the poller following the plan."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import math
import random
import statistics
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.clock import FakeClock
from bot.config import GenerationMode
from bot.jobs.forecast import (
    Expectation,
    ForecastPolicy,
    Prediction,
    RenderForecast,
    fit,
    plan,
    predict,
    weighted_median,
)
from bot.jobs.poller import Poller, PollPolicy
from bot.magichour import MagicHourClient, RetryPolicy
from bot.sandbox import Sandbox, SandboxConfig
from bot.store import JobState, NewJob, QuotaPolicy, Store
from bot.store.renders import RenderSample
from tests.jobs.test_poller import create_job, drive

LITE = GenerationMode.LITE
POLICY = ForecastPolicy()
NO_JITTER = PollPolicy(initial=5.0, maximum=20.0, growth=1.5, jitter=0.0, error_maximum=120.0)
KEY = "forecast-key"


def samples(
    count: int, *, overhead: float = 3.0, per_frame: float = 0.6, noise: float = 0.1, spread: float = 0.5, seed: int = 1
) -> list[RenderSample]:
    """Renders of 15-45 frames timed like the sandbox's per-frame mode, each placed within ±`spread` s."""
    rng = random.Random(seed)
    out = []
    for index in range(count):
        frames = 15 + 7 * (index % 5)
        seconds = overhead + frames * per_frame * (1 + rng.uniform(-noise, noise))
        out.append(RenderSample(LITE, frames, seconds - spread, seconds + spread))
    return out


def test_weighted_median() -> None:
    """Half the weight on either side; heavy values pull it their way."""
    assert weighted_median([1, 2, 3], [1, 1, 1]) == 2
    assert weighted_median([1, 2, 3], [1, 1, 10]) == 3
    assert weighted_median([5], [0.1]) == 5
    with pytest.raises(ValueError):
        weighted_median([], [])


def test_too_little_history_gives_no_model() -> None:
    """Below `min_samples` renders of a mode there is no forecast: the usual schedule applies."""
    assert fit(samples(4), POLICY) is None
    assert fit(samples(5), POLICY) is not None


def test_learns_overhead_and_seconds_per_frame() -> None:
    """From 10 noisy renders it finds the sandbox's 3 s + 0.6 s/frame closely, and a spread near the noise."""
    model = fit(samples(10), POLICY)
    assert model is not None
    assert model.per_frame == pytest.approx(0.6, rel=0.15)
    assert model.seconds(45) == pytest.approx(3 + 45 * 0.6, rel=0.05)
    assert 0.03 < model.spread < 0.2  # uniform ±10 % noise: sd about 6 %, widened for 10 samples


def test_outliers_do_not_move_it() -> None:
    """A quarter of the renders stalled (3-10× longer): the fit barely moves."""
    clean = samples(40)
    wild = [
        RenderSample(s.mode, s.frames, s.low * factor, s.high * factor, job_id=s.job_id)
        for s, factor in zip(clean[::4], [3, 10, 5, 8, 4, 6, 7, 9, 3, 10], strict=True)
    ]
    model = fit(clean[1::4] + clean[2::4] + clean[3::4] + wild, POLICY)
    assert model is not None
    assert model.seconds(45) == pytest.approx(30.0, rel=0.06)
    assert model.seconds(15) == pytest.approx(12.0, rel=0.1)


def test_precise_renders_outweigh_vague_ones() -> None:
    """Renders placed within ±0.5 s dominate those only known within ±8 s (today's backoff)."""
    precise = samples(10, spread=0.5)
    vague = [RenderSample(LITE, s.frames, s.seconds + 2, s.seconds + 18) for s in samples(10, seed=2)]  # all late
    model = fit(precise + vague, POLICY)
    assert model is not None
    assert model.seconds(45) == pytest.approx(30.0, rel=0.06)


def test_one_frame_count_fits_proportionally() -> None:
    """Renders that all have 45 frames can't separate overhead from rate: seconds per frame it is."""
    same = [RenderSample(LITE, 45, 29.5, 30.5) for _ in range(6)]
    model = fit(same, POLICY)
    assert model is not None
    assert model.overhead == 0
    assert model.seconds(45) == pytest.approx(30.0, rel=0.01)


def scattered(median: float, count: int = 400, sigma: float = 0.25) -> list[float]:
    """Render times spread log-normally around `median` (evenly spaced quantiles: no RNG)."""
    normal = statistics.NormalDist()
    return [median * math.exp(sigma * normal.inv_cdf((i + 0.5) / count)) for i in range(count)]


def backoff_after(start: float, until: float, policy: PollPolicy = NO_JITTER) -> list[float]:
    """The poller's usual schedule (no jitter) from `start`, until past `until`."""
    moments, moment, gap = [], start, policy.initial
    while moment < until:
        moment += gap
        moments.append(moment)
        gap = min(gap * policy.growth, policy.maximum)
    return moments


def followed(moments: list[float], end: float) -> tuple[int, float]:
    """Status requests and lateness for a render ending at `end`, polled at `moments` then backoff."""
    last = moments[-1] if moments else 0.0
    for count, moment in enumerate(moments + backoff_after(last, end), start=1):
        if moment >= end:
            return count, moment - end
    raise AssertionError("unreachable: the backoff runs past the end")


def costs(schedule: Callable[[float], list[float]], ends: list[float]) -> tuple[float, float, float]:
    """Mean requests per render, and the median and 95th percentile of lateness."""
    results = [followed(schedule(end), end) for end in ends]
    late = sorted(lateness for _, lateness in results)
    return statistics.fmean(n for n, _ in results), late[len(late) // 2], late[int(0.95 * len(late))]


@pytest.mark.parametrize("median", [30.0, 240.0])
def test_plan_beats_backoff_and_fixed_polling_on_scattered_renders(median: float) -> None:
    """Log-normal renders (sigma 0.25), short and long: the plan asks about as often as the
    backoff and is noticed less than half as late; fixed polling on the same number of requests is
    later too."""
    spread = 0.25 * 1.2  # as a history of such renders fits it (small-sample widened)
    prediction = Prediction(expected=median, early=median * 0.4, late=median * 1.6, spread=spread)
    moments = plan(prediction, POLICY)
    ends = scattered(median)
    requests, p50, p95 = costs(lambda _: moments, ends)
    b_requests, b_p50, b_p95 = costs(lambda end: backoff_after(0.0, end), ends)
    assert requests <= 1.05 * b_requests, (requests, b_requests)
    assert p50 < b_p50 / 2 and p95 < b_p95 / 2, ((p50, p95), (b_p50, b_p95))
    every = median / requests  # fixed polling that spends the plan's budget on the typical render
    f_requests, f_p50, f_p95 = costs(lambda end: [every * k for k in range(1, math.ceil(end / every) + 1)], ends)
    assert f_requests >= requests - 0.5
    assert p50 < f_p50 and p95 < f_p95, ((p50, p95), (f_p50, f_p95))


def test_plan_is_sparse_before_the_likely_finish_and_close_around_it() -> None:
    """Gaps shrink towards the forecast, stay within min_gap..max_quiet, and widen after it."""
    prediction = Prediction(expected=240.0, early=120.0, late=360.0, spread=0.25)
    moments = plan(prediction, POLICY)
    gaps = [b - a for a, b in itertools.pairwise([0.0, *moments])]
    assert moments == sorted(moments)
    assert min(gaps) >= POLICY.min_gap - 1e-9 and max(gaps) <= POLICY.max_quiet + 1e-9
    assert sum(1 for t in moments if t < 120.0) <= 2  # hardly a render is done by half its forecast
    near = [b - a for a, b in itertools.pairwise(moments) if 200.0 <= a <= 280.0]
    early = [b - a for a, b in itertools.pairwise(moments) if a < 150.0]
    late = [b - a for a, b in itertools.pairwise(moments[:-1]) if a > 500.0]  # the last is the horizon
    assert near and early and late
    assert max(near) < min(early) and max(near) < min(late)
    assert moments[-1] >= 2 * prediction.expected  # a stalled render is still asked about


def test_a_cheaper_request_buys_closer_polls() -> None:
    """seconds_per_request is the trade-off's one knob: lower, more polls and less lateness."""
    prediction = Prediction(expected=60.0, early=30.0, late=90.0, spread=0.25)
    ends = scattered(60.0)
    eager, frugal = (dataclasses.replace(POLICY, seconds_per_request=v) for v in (0.5, 4.0))
    eager_cost = costs(lambda _: plan(prediction, eager), ends)
    frugal_cost = costs(lambda _: plan(prediction, frugal), ends)
    assert eager_cost[0] > frugal_cost[0] and eager_cost[1] < frugal_cost[1]


def test_with_webhooks_nothing_is_asked_before_the_expected_finish() -> None:
    """The event says when a render ends: one safety poll, at the window's end."""
    prediction = Prediction(expected=240.0, early=120.0, late=360.0, spread=0.25)
    assert plan(prediction, dataclasses.replace(POLICY, webhooks=True)) == [360.0]
    narrow = Prediction(expected=10.0, early=10.0, late=10.0, spread=0.0)
    assert plan(narrow, dataclasses.replace(POLICY, webhooks=True)) == [10.0 + POLICY.min_gap]


def test_window_is_never_narrower_than_a_second_each_side() -> None:
    """A very steady history still leaves room for a poll's own timing."""
    steady = [RenderSample(LITE, 15 + 10 * (i % 3), 6 + 2 * (i % 3), 6 + 2 * (i % 3)) for i in range(20)]
    model = fit(steady, POLICY)
    assert model is not None
    prediction = predict(model, 25, POLICY)
    assert prediction.late - prediction.early >= 2 * POLICY.min_half_window - 1e-9


def test_a_render_is_placed_between_the_last_running_read_and_the_first_complete_one() -> None:
    """What a finished wait teaches: the interval its end lies in, from submission."""
    clock = FakeClock()
    expectation = Expectation(
        job_id=1,
        mode=LITE,
        frames=45,
        submitted=100.0,
        submitted_at=clock.now(),
        prediction=None,
        followed_from_start=True,
    )
    expectation.saw(105.0, 105.2, ended=False)
    expectation.saw(125.0, 125.3, ended=False)
    expectation.saw(131.0, 131.4, ended=True)
    sample = expectation.sample()
    assert sample is not None
    assert (sample.low, sample.high) == pytest.approx((25.0, 31.4))
    # A resumed job already complete at its first read can't be placed: it ended while the bot was away.
    resumed = Expectation(1, LITE, 45, 100.0, clock.now(), None, followed_from_start=False)
    resumed.saw(5000.0, 5000.1, ended=True)
    assert resumed.sample() is None


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "db.sqlite3", clock=FakeClock(), policy=QuotaPolicy())
    yield opened
    await opened.close()


async def job_record(store: Store, *, credits: int, mode: GenerationMode = LITE):
    record = await store.jobs.create(NewJob(user_id=1, guild_id=1, mode=mode, audio_filename="a.mp3"))
    return await store.jobs.update(record.id, estimated_credits=credits)


async def test_history_is_kept_in_the_database_and_read_back(store: Store) -> None:
    """A new process (a new forecast on the same store) forecasts from what the last one learnt."""
    clock = FakeClock()
    for sample in samples(8):
        await store.renders.record(sample)
    forecast = RenderForecast(store.renders, clock)
    record = await job_record(store, credits=45)
    expectation = await forecast.expect(record, elapsed=0.0)
    assert expectation.prediction is not None
    assert expectation.prediction.expected == pytest.approx(30.0, rel=0.06)
    assert expectation.expected_at is not None
    assert (expectation.expected_at - clock.now()).total_seconds() == pytest.approx(30.0, rel=0.06)
    assert expectation.polls and expectation.polls[0] > clock.monotonic() + 20
    # pro renders have no history of their own yet: no forecast for them.
    pro = await job_record(store, credits=90, mode=GenerationMode.PRO)
    assert (await forecast.expect(pro)).prediction is None


async def test_recording_a_completed_render_teaches_the_next_forecast(store: Store) -> None:
    """Each completed render is stored and refits the mode's model at once; errors teach nothing."""
    clock = FakeClock()
    seen: list[RenderSample] = []
    forecast = RenderForecast(store.renders, clock, ForecastPolicy(min_samples=3), on_sample=seen.append)
    record = await job_record(store, credits=30)
    assert (await forecast.expect(record)).prediction is None
    for _ in range(3):
        expectation = await forecast.expect(record)
        expectation.saw(clock.monotonic() + 19.0, clock.monotonic() + 19.1, ended=False)
        expectation.saw(clock.monotonic() + 21.0, clock.monotonic() + 21.2, ended=True)
        await forecast.record(expectation, _project("complete"))
    failed = await forecast.expect(record)
    failed.saw(clock.monotonic() + 2.0, clock.monotonic() + 2.1, ended=True)
    assert await forecast.record(failed, _project("error")) is None
    assert len(seen) == 3 and len(await store.renders.recent(LITE, 10)) == 3
    prediction = (await forecast.expect(record)).prediction
    assert prediction is not None and prediction.expected == pytest.approx(20.1, abs=0.2)


def _project(status: str):
    from bot.magichour import VideoProject

    return VideoProject.model_validate({"id": "p", "status": status})


async def test_forecast_off_means_todays_schedule(store: Store) -> None:
    """POLL_FORECAST=false: no prediction whatever the history."""
    for sample in samples(8):
        await store.renders.record(sample)
    forecast = RenderForecast(store.renders, FakeClock(), ForecastPolicy(enabled=False))
    expectation = await forecast.expect(await job_record(store, credits=45))
    assert expectation.prediction is None and expectation.polls == []


# ---------------------------------------------------------------------------- the poller follows the plan


@pytest.fixture
async def rig(tmp_path: Path, media_dir: Path):
    clock = FakeClock()
    config = SandboxConfig(api_key=KEY, render_seconds_per_frame=0.6, render_overhead_seconds=3.0, render_noise=0.1)
    async with (
        Sandbox(config, data_dir=tmp_path / "sb", clock=clock) as sandbox,
        MagicHourClient(SecretStr(KEY), sandbox.base_url, clock=clock, retry=RetryPolicy.none()) as client,
    ):
        yield sandbox, client, clock, media_dir


async def test_poller_follows_the_plan_then_backs_off(rig) -> None:
    """Polls at the plan's moments; a render that outlasts them gets today's backoff from 5 s."""
    sandbox, client, clock, media = rig
    sandbox.config.render_seconds_per_frame = 0.0
    sandbox.config.render_seconds = 40.0
    project_id = await create_job(client, media)
    expectation = Expectation(1, LITE, 45, clock.monotonic(), clock.now(), None, followed_from_start=True)
    expectation.polls = [clock.monotonic() + t for t in (20.0, 22.0, 24.0, 26.0)]
    poller = Poller(client, clock, NO_JITTER)
    task = asyncio.ensure_future(poller.wait(project_id, within=3600, expect=expectation))
    woke = await drive(clock, task, poller)
    assert task.result().status == "complete"
    assert woke == pytest.approx([20.0, 22.0, 24.0, 26.0, 31.0, 38.5, 49.75])
    assert sandbox.counters.status_reads == 7
    sample = expectation.sample()
    assert sample is not None and (sample.low, sample.high) == pytest.approx((38.5, 49.75))
    await poller.aclose()


async def test_after_ten_renders_completion_is_noticed_within_seconds_in_few_polls(rig, tmp_path: Path) -> None:
    """Sandbox renders of 15-45 frames (3 s + 0.6 s/frame ± 10 %): ten jobs of history, then ten more.

    With no history a job is polled on today's backoff; after ten, each later job takes at most 6
    status requests and is noticed within a few seconds of finishing (all on the fake clock).
    """
    sandbox, client, clock, media = rig
    store = await Store.open(tmp_path / "db.sqlite3", clock=clock, policy=QuotaPolicy())
    forecast = RenderForecast(store.renders, clock, ForecastPolicy(min_samples=5))
    poller = Poller(client, clock, NO_JITTER)
    late: list[float] = []
    polls: list[int] = []
    try:
        for index in range(20):
            project_id = await create_job(client, media, end=0.5 + 0.25 * (index % 5))  # 15-45 frames
            project = sandbox.projects[project_id]
            record = await job_record(store, credits=project.estimate)
            expectation = await forecast.expect(record)
            task = asyncio.ensure_future(poller.wait(project_id, within=3600, expect=expectation))
            await drive(clock, task, poller)
            await forecast.record(expectation, task.result())
            due = project.created_mono + project.queue_seconds + project.render_seconds
            assert expectation.ended_at is not None
            if index >= 10:
                late.append(expectation.ended_at - due)
                polls.append(sandbox.counters.status_reads)
            sandbox.counters.reset()
    finally:
        await poller.aclose()
        await store.close()
    assert max(polls) <= 6, polls
    assert sorted(late)[len(late) // 2] <= 5.0, late
    assert max(late) <= 15.0, late


async def test_a_webhook_still_ends_the_wait_at_once(rig) -> None:
    """A verified webhook's poke asks at once, however far away the forecast's first poll is."""
    sandbox, client, clock, media = rig
    sandbox.config.render_seconds_per_frame = 0.0
    sandbox.config.render_seconds = 10.0
    project_id = await create_job(client, media)
    expectation = Expectation(1, LITE, 45, clock.monotonic(), clock.now(), None, followed_from_start=True)
    expectation.polls = [clock.monotonic() + t for t in (100.0, 105.0)]
    poller = Poller(client, clock, NO_JITTER)
    task = asyncio.ensure_future(poller.wait(project_id, within=3600, expect=expectation))
    while poller.watching == 0:
        await asyncio.sleep(0)
    await clock.advance(12.0)
    assert poller.poke(project_id)
    while not task.done():
        await asyncio.sleep(0.01)
    assert task.result().status == "complete"
    assert sandbox.counters.status_reads == 1
    await poller.aclose()


async def test_members_see_the_expected_finish(tmp_path: Path, sandbox: Sandbox, media_dir: Path) -> None:
    """With history, a submitted job's updates carry `expected_at` (submission + the forecast), and
    its completed render joins the history."""
    from bot.jobs.models import InputSource, JobHooks, JobRequest
    from bot.services import Services
    from tests.conftest import KeepFile, RecordingSink, make_settings

    async with await Services.open(make_settings(tmp_path, sandbox.base_url)) as services:
        for sample in samples(8):  # 3 s + 0.6 s/frame: 45 frames take about 30 s
            await services.store.renders.record(sample)
        request = JobRequest(
            user_id=42,
            guild_id=1,
            video=InputSource(filename="face.mp4", path=media_dir / "face.mp4"),
            audio=InputSource(filename="voice.mp3", path=media_dir / "voice.mp3"),
        )
        sink = RecordingSink()
        record = await services.engine.submit(request, JobHooks(sink=sink, deliverer=KeepFile(tmp_path / "out")))
        # The sandbox renders at once, but the forecast says about 30 s: end the wait with a webhook's poke.
        while not any(u.expected_at is not None for u in sink.updates):
            await asyncio.sleep(0.01)
        job = await services.store.jobs.get(record.id)
        assert job is not None and job.project_id is not None
        services.engine.poller.poke(job.project_id)
        final = await services.engine.wait(record.id)
        assert final.state is JobState.DONE
        before = [u for u in sink.updates if u.job.state in (JobState.RECEIVED, JobState.UPLOADING)]
        assert all(u.expected_at is None for u in before)
        shown = [u for u in sink.updates if u.expected_at is not None]
        submitted = next(e.at for e in await services.store.jobs.events(record.id) if e.state is JobState.SUBMITTED)
        assert shown and shown[0].job.state is JobState.SUBMITTED
        expected_at = shown[0].expected_at
        assert expected_at is not None
        assert (expected_at - submitted).total_seconds() == pytest.approx(30.0, rel=0.08)
        history = await services.store.renders.recent(LITE, 20)
        assert len(history) == 9 and history[-1].job_id == record.id and history[-1].frames == 45


async def test_a_typical_render_time_estimates_a_queued_jobs_wait(store: Store) -> None:
    """The median of the renders known here: what a queued job's estimated start counts per round."""
    forecast = RenderForecast(store.renders, FakeClock())
    assert forecast.typical_seconds() is None  # nothing known yet: no estimate is shown
    for sample in (
        RenderSample(LITE, 10, 9.0, 11.0),
        RenderSample(LITE, 20, 19.0, 21.0),
        RenderSample(LITE, 90, 99, 101),
    ):
        await store.renders.record(sample)
    await forecast.expect(await job_record(store, credits=45))  # reads the mode's history
    assert forecast.typical_seconds() == 20.0
