"""Forecasting when a render ends, from the bot's own finished renders, so polls go where the finish is.

For each mode, `fit` learns `seconds = overhead + frames × per_frame` (a robust, weighted fit) from
recent renders; `predict` turns it into an expected finish with a window; `plan` spaces polls by
how likely the render is to end in the next second. `RenderForecast` is shared by every job's run
(`expect` at submission, `record` at completion) and never fails a job. docs/design-notes.md, "The
engine, continued", gives the estimators and the poll plan's trade-off.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bot.clock import Clock
from bot.config import GenerationMode
from bot.magichour import VideoProject
from bot.store import JobRecord
from bot.store.renders import RenderHistory, RenderSample

log = logging.getLogger(__name__)

_MAD_TO_SD = 1.4826  # a normal distribution's standard deviation per median absolute deviation
_SHARP = 0.15  # a render placed within ±15 % of its length is precise enough to measure scatter with
_MIN_SHARP = 4  # ... given at least this many of them


@dataclass(frozen=True)
class ForecastPolicy:
    """How much history a forecast needs, how wide its window is, and how polls are spread."""

    enabled: bool = True
    min_samples: int = 5  # renders of a mode before its forecast replaces the usual schedule
    history: int = 50  # the newest renders of a mode that the fit uses
    z: float = 2.0  # window half-width, in (small-sample widened) robust standard deviations
    min_relative_spread: float = 0.05  # a prior: renders vary by at least ±5 % (one sd), whatever few samples say
    min_half_window: float = 1.0  # seconds: the narrowest half window
    # The trade-off: the plan minimises the mean squared lateness plus this many seconds,
    # squared, per status request (chosen on the simulator, `bench/bench_polling.py`: less late
    # than backoff or fixed polling on the same number of requests).
    seconds_per_request: float = 2.0
    min_gap: float = 1.0  # seconds between planned polls, at least
    max_quiet: float = 120.0  # and at most (before the render could be done, too)
    stall_share: float = 0.05  # the plan's prior: this share of renders stall ...
    stall_span: float = 5.0  # ... and end anywhere up to this many times their forecast
    webhooks: bool = False  # Magic Hour's webhooks say when a render ends: the plan is a safety net
    reload_seconds: float = 600.0  # re-read a mode's history this often (other processes learn too)


@dataclass(frozen=True)
class RenderModel:
    """One mode's fitted render time: `overhead + frames × per_frame`, and how far renders stray from it."""

    mode: GenerationMode
    overhead: float
    per_frame: float
    bias: float  # the typical relative residual (near 0)
    spread: float  # a relative standard deviation, small-sample widened
    samples: int

    def seconds(self, frames: int) -> float:
        """The fitted render time of `frames` frames, bias included."""
        return max(0.0, (self.overhead + self.per_frame * frames) * (1 + self.bias))


@dataclass(frozen=True)
class Prediction:
    """When a render should end, in seconds after its submission: most likely, earliest and latest.

    `spread` is the relative standard deviation renders show around `expected` (0: unknown).
    """

    expected: float
    early: float
    late: float
    spread: float = 0.0


def weighted_median(values: Sequence[float], weights: Sequence[float]) -> float:
    """The value at which half the total weight lies on either side (the lower one on a tie)."""
    if not values or len(values) != len(weights):
        raise ValueError("weighted_median needs as many weights as values, and at least one")
    pairs = sorted(zip(values, weights, strict=True))
    half = sum(w for _, w in pairs) / 2
    total = 0.0
    for value, weight in pairs:
        total += weight
        if total >= half:
            return value
    return pairs[-1][0]


def _relative_spread(sample: RenderSample) -> float:
    return min(sample.spread / max(sample.seconds, 1e-9), 1.0)


def _weight(sample: RenderSample) -> float:
    # Tempered: a render placed within ±3 % weighs about 6× one placed within ±30 %, so precise
    # renders lead but no single one can outvote the rest.
    return 1.0 / (_relative_spread(sample) + 0.15) ** 2


def _pair_slopes(xs: Sequence[float], ys: Sequence[float], ws: Sequence[float]) -> tuple[list[float], list[float]]:
    """The slope between every pair of renders and its weight; none unless frame counts vary enough."""
    slopes: list[float] = []
    pair_weights: list[float] = []
    if max(xs) < 1.2 * min(xs):  # too alike to tell the overhead from the rate
        return slopes, pair_weights
    for i in range(len(xs)):
        for j in range(i + 1, len(xs)):
            dx = xs[j] - xs[i]
            if dx != 0:
                slopes.append((ys[j] - ys[i]) / dx)
                pair_weights.append(ws[i] * ws[j] * abs(dx))
    return slopes, pair_weights


def _line(xs: Sequence[float], ys: Sequence[float], ws: Sequence[float]) -> tuple[float, float]:
    """`(overhead, per_frame)`: a weighted Theil–Sen line, or a proportional fit when it can't place the overhead."""
    slopes, pair_weights = _pair_slopes(xs, ys, ws)
    if slopes:
        per_frame = max(0.0, weighted_median(slopes, pair_weights))
        overhead = weighted_median([y - per_frame * x for x, y in zip(xs, ys, strict=True)], ws)
        if overhead >= 0:
            return overhead, per_frame
    return 0.0, weighted_median([y / x for x, y in zip(xs, ys, strict=True)], ws)


def _scatter(
    residuals: Sequence[float], samples: Sequence[RenderSample], bias: float, ws: Sequence[float]
) -> tuple[float, int]:
    """The residuals' median absolute deviation, and how many renders it rests on."""
    # From the renders placed precisely when there are enough of them: a vague one's residual is
    # mostly not knowing where in its interval it ended.
    sharp = [r for r, s in zip(residuals, samples, strict=True) if _relative_spread(s) <= _SHARP]
    if len(sharp) >= _MIN_SHARP:
        centre = statistics.median(sharp)
        return statistics.median([abs(r - centre) for r in sharp]), len(sharp)
    return weighted_median([abs(r - bias) for r in residuals], ws), len(residuals)


def fit(samples: Sequence[RenderSample], policy: ForecastPolicy) -> RenderModel | None:
    """A mode's model from its finished renders; None with fewer than `policy.min_samples`."""
    if len(samples) < max(policy.min_samples, 2):
        return None
    xs = [float(s.frames) for s in samples]
    ys = [s.seconds for s in samples]
    ws = [_weight(s) for s in samples]
    overhead, per_frame = _line(xs, ys, ws)
    fitted = [overhead + per_frame * x for x in xs]
    if min(fitted) <= 0:
        return None
    residuals = [y / f - 1 for y, f in zip(ys, fitted, strict=True)]
    bias = weighted_median(residuals, ws)
    mad, used = _scatter(residuals, samples, bias, ws)
    spread = max(_MAD_TO_SD * mad, policy.min_relative_spread) * (1 + 1 / math.sqrt(used))
    return RenderModel(samples[0].mode, overhead, per_frame, bias, spread, len(samples))


def predict(model: RenderModel, frames: int, policy: ForecastPolicy) -> Prediction:
    """Where `frames` frames of this mode should end, with the window the poll plan covers."""
    base = max(0.0, model.overhead + model.per_frame * frames)
    expected = base * (1 + model.bias)
    half = max(base * policy.z * model.spread, policy.min_half_window)
    return Prediction(expected=expected, early=max(0.0, expected - half), late=expected + half, spread=model.spread)


def plan(prediction: Prediction, policy: ForecastPolicy) -> list[float]:
    """Poll times, in seconds after submission, for a render with this forecast (ascending).

    Polls are spaced by the hazard of the render's end (`EndModel`): `(1.5 × seconds_per_request² /
    hazard)^(1/3)` apart, within `min_gap`..`max_quiet`, up to the model's horizon. With webhooks,
    one poll at the window's end (a safety net for a lost event).
    """
    median = prediction.expected
    if median <= 0:
        return [prediction.late] if prediction.late > 0 else []
    if policy.webhooks:
        return [max(prediction.late, median + policy.min_gap)]
    model = EndModel(median, max(prediction.spread, policy.min_relative_spread), policy)
    weight = 1.5 * max(policy.seconds_per_request, 1e-3) ** 2
    end = model.horizon
    step = end / _PLAN_STEPS
    moments: list[float] = []
    last = 0.0
    owed = 0.0  # polls the density has called for since the last one
    for index in range(_PLAN_STEPS):
        start = index * step
        density = (model.hazard(start + step / 2) / weight) ** (1 / 3)
        gained = density * step
        if owed + gained >= 1.0:
            # The poll falls inside this step, where the running total reaches one.
            moment = max(start + (1.0 - owed) / density, last + policy.min_gap)
            if moment <= start + step:
                moments.append(moment)
                last, owed = moment, (start + step - moment) * density
                continue
        owed += gained
        while start + step - last >= policy.max_quiet:
            last += policy.max_quiet
            moments.append(last)
            owed = 0.0
    if end - last >= policy.min_gap:
        moments.append(end)
    return moments


WEBHOOK_SLACK = 5.0  # seconds a webhook may take from a render's end to the bot (Magic Hour sends it at once)
_PLAN_STEPS = 600  # integration steps over a plan
_SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True)
class EndModel:
    """When a render ends, as the plan sees it: log-normal around the forecast (median `median`,
    log-spread `sigma`), except a share `policy.stall_share` of renders that stall and end anywhere
    up to `policy.stall_span` times the median (log-uniformly). The stalls keep the plan polling,
    sparsely, for renders that outlast the log-normal part, whose tail is too thin to trust."""

    median: float
    sigma: float
    policy: ForecastPolicy

    @property
    def horizon(self) -> float:
        """Where the plan ends, shortly before the longest a stall runs (then the poller's backoff)."""
        return 0.9 * self.median * self.policy.stall_span

    def hazard(self, t: float) -> float:
        """How likely the render is to end in the next second, given it hasn't by `t` (per second)."""
        if t <= 0:
            return 0.0
        share, span = self.policy.stall_share, self.policy.stall_span
        x = math.log(t / self.median) / self.sigma
        survival = (1 - share) * 0.5 * math.erfc(x / _SQRT2)
        density = (1 - share) * math.exp(-0.5 * x * x) / (math.sqrt(2 * math.pi) * self.sigma * t)
        if self.median <= t < self.median * span:
            survival += share * math.log(self.median * span / t) / math.log(span)
            density += share / (t * math.log(span))
        elif t < self.median:
            survival += share
        if survival <= 1e-12:
            return 1.0 / max(self.policy.min_gap, 1e-3)  # nothing left: poll as closely as allowed
        return density / survival


def frames_of(record: JobRecord) -> int | None:
    """The job's frame count as estimated before submission (what a forecast has to go on)."""
    if not record.estimated_credits:
        return None
    return max(1, record.estimated_credits // record.mode.credits_per_frame)


@dataclass
class Expectation:
    """One job's render as the poller follows it: its forecast, and what status reads saw of it.

    Times are on the clock's monotonic scale. `running_at` is when the last read that found the
    render unfinished was sent; `ended_at` when the read that found it ended came back: the
    render ended between the two.
    """

    job_id: int
    mode: GenerationMode
    frames: int | None
    submitted: float  # monotonic
    submitted_at: dt.datetime  # wall clock, UTC
    prediction: Prediction | None
    followed_from_start: bool  # watched since submission (not resumed long after it)
    polls: list[float] = field(default_factory=list)  # planned poll times, monotonic
    running_at: float | None = None
    ended_at: float | None = None
    heard_at: float | None = None  # when a verified webhook said the render ended, monotonic

    @property
    def expected_at(self) -> dt.datetime | None:
        """When the render should end (UTC), or None without a forecast."""
        if self.prediction is None:
            return None
        return self.submitted_at + dt.timedelta(seconds=self.prediction.expected)

    def saw(self, sent: float, received: float, *, ended: bool) -> None:
        """A status read sent at `sent` came back at `received`: still running, or ended."""
        if ended:
            if self.ended_at is None:
                self.ended_at = received
        else:
            self.running_at = sent if self.running_at is None else max(self.running_at, sent)

    def heard(self, at: float) -> None:
        """A verified webhook said, at `at`, that the render ended (Magic Hour sends it as it ends)."""
        if self.heard_at is None:
            self.heard_at = at

    def sample(self) -> RenderSample | None:
        """What this render teaches, once it ended; None when it can't be placed in time."""
        if self.ended_at is None or self.frames is None:
            return None
        if self.running_at is None and not self.followed_from_start:
            return None  # resumed and already done: it ended at some unknown time while the bot was away
        high = max(0.0, self.ended_at - self.submitted)
        low = 0.0 if self.running_at is None else min(high, max(0.0, self.running_at - self.submitted))
        if self.heard_at is not None and self.heard_at <= self.ended_at:
            # With webhooks nothing reads the render while it runs, so the read alone would place
            # its end anywhere since submission (and teach the forecast half its length). The event
            # left as the render ended: it ended at most `WEBHOOK_SLACK` before the event came.
            low = min(high, max(low, self.heard_at - WEBHOOK_SLACK - self.submitted))
        if high <= 0:
            return None
        return RenderSample(mode=self.mode, frames=self.frames, low=low, high=high, job_id=self.job_id)


Listener = Callable[[RenderSample], None]


class RenderForecast:
    """Learns render times per mode from finished renders and forecasts new ones; a store error while learning is
    logged, and the forecast carries on with what it had."""

    def __init__(
        self,
        history: RenderHistory | None,
        clock: Clock,
        policy: ForecastPolicy | None = None,
        *,
        on_sample: Listener | None = None,
    ) -> None:
        self._history = history
        self._clock = clock
        self.policy = policy or ForecastPolicy()
        self._samples: dict[GenerationMode, list[RenderSample]] = {}
        self._models: dict[GenerationMode, RenderModel | None] = {}
        self._loaded_at: dict[GenerationMode, float] = {}
        self._lock = asyncio.Lock()
        self._on_sample = on_sample

    def typical_seconds(self) -> float | None:
        """The median length of the renders known here (any mode); None before any is known."""
        known = sorted((sample.low + sample.high) / 2 for samples in self._samples.values() for sample in samples)
        if not known:
            return None
        middle = len(known) // 2
        return known[middle] if len(known) % 2 else (known[middle - 1] + known[middle]) / 2

    def model(self, mode: GenerationMode) -> RenderModel | None:
        """The mode's current model (None until it has enough history, or before it was loaded)."""
        return self._models.get(mode)

    async def expect(self, record: JobRecord, *, elapsed: float = 0.0) -> Expectation:
        """Start following a submitted job's render; `elapsed`: seconds since it was submitted."""
        now, wall = self._clock.monotonic(), self._clock.now()
        frames = frames_of(record)
        prediction: Prediction | None = None
        if self.policy.enabled and frames is not None:
            model = await self._model_for(record.mode)
            if model is not None:
                prediction = predict(model, frames, self.policy)
        submitted = now - elapsed
        expectation = Expectation(
            job_id=record.id,
            mode=record.mode,
            frames=frames,
            submitted=submitted,
            submitted_at=wall - dt.timedelta(seconds=elapsed),
            prediction=prediction,
            followed_from_start=elapsed < 60.0,
        )
        if prediction is not None:
            expectation.polls = [submitted + t for t in plan(prediction, self.policy)]
        return expectation

    async def record(self, expectation: Expectation | None, project: VideoProject | None) -> RenderSample | None:
        """Learn from a render that completed (a no-op for any other ending, or one that can't be placed in time)."""
        if expectation is None or project is None or not project.is_complete:
            return None
        sample = expectation.sample()
        if sample is None:
            return None
        if self._on_sample is not None:
            self._on_sample(sample)
        async with self._lock:
            known = self._samples.setdefault(sample.mode, [])
            known.append(sample)
            del known[: -self.policy.history]
            self._models[sample.mode] = fit(known, self.policy)
        if self._history is not None:
            try:
                await self._history.record(sample)
            except Exception:
                log.exception("job %s: could not record its render time", sample.job_id)
        return sample

    async def _model_for(self, mode: GenerationMode) -> RenderModel | None:
        async with self._lock:
            loaded = self._loaded_at.get(mode)
            stale = loaded is None or self._clock.monotonic() - loaded > self.policy.reload_seconds
            if stale and self._history is not None:
                try:
                    self._samples[mode] = await self._history.recent(mode, self.policy.history)
                    self._models[mode] = fit(self._samples[mode], self.policy)
                except Exception:
                    log.exception("could not read the %s render history; forecasting from what is known", mode.value)
                self._loaded_at[mode] = self._clock.monotonic()
            elif loaded is None:
                self._loaded_at[mode] = self._clock.monotonic()
            return self._models.get(mode)
