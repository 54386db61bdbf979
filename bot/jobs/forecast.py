"""Forecasting when a render ends, from the bot's own finished renders, so polls go where the finish is.

Magic Hour renders in time roughly proportional to the frames it renders. For each mode the bot
keeps its recent finished renders (`store.renders`) and fits `seconds = overhead + frames ×
per_frame` with robust, weighted estimators:

- **Slope and intercept**: a weighted Theil–Sen fit. The slope is the weighted median of the
  slopes between every pair of renders with different frame counts (a pair weighs more the more
  its frame counts differ), the overhead the weighted median of what the slope leaves. A third
  of the renders can be wild (a stalled render, a restart mid-job) without moving either. With
  one frame count only, the overhead can't be told apart: the fit is proportional.
- **Spread**: the median absolute deviation of the relative residuals of the precisely placed
  renders (within ±15 %; all of them, weighted, while fewer than 4 are), as a standard deviation
  (× 1.4826), widened for small histories (× (1 + 1/√n)).
- **Weights**: a render's end is only known to lie between two status reads (the last that said
  "rendering" and the first that said "complete"); the middle of that interval is the sample, and
  a sample weighs `1 / (relative half-width + 0.15)²`. Renders followed by today's backoff (end
  known within 5-20 s) count, but those the forecast followed closely (within a second or two)
  soon lead.

A forecast (`Prediction`) is the expected duration and a window around it (`z` spreads each
side). The poll plan (`plan`): one poll half a window before the window (so a render that ends
early is still placed precisely), then `close_polls` polls spread evenly from the window's start
to its end (never closer than `min_gap`, never further apart than `max_gap`), and a poll at least
every `max_quiet` seconds before all that, so a failed render is not noticed unreasonably late.
After the plan the poller's usual backoff takes over (a render that runs late). With fewer than
`min_samples` renders of a mode there is no forecast: the poller's usual schedule applies. The
spread has a floor (`min_relative_spread`, ±5 %): a prior, because a few renders that happen to
agree closely say little about the next one.

`RenderForecast` is shared by every job's run: `expect` when a job is submitted (or resumed),
`record` when its render completed. It never fails a job: a store error while learning is logged
and the forecast carries on with what it had.
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
    """How much history a forecast needs, how wide its window is, and how polls cover it."""

    enabled: bool = True
    min_samples: int = 5  # renders of a mode before its forecast replaces the usual schedule
    history: int = 50  # the newest renders of a mode that the fit uses
    z: float = 2.0  # window half-width, in (small-sample widened) robust standard deviations
    min_relative_spread: float = 0.05  # a prior: renders vary by at least ±5 % (one sd), whatever few samples say
    min_half_window: float = 1.0  # seconds: the narrowest half window
    close_polls: int = 4  # polls spread over the window, its start and end included
    min_gap: float = 1.0  # seconds between close polls, at least
    max_gap: float = 10.0  # and at most (a wide window gets more polls instead)
    max_quiet: float = 120.0  # before the window, a poll at least this often
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
    """When a render should end, in seconds after its submission: most likely, earliest and latest."""

    expected: float
    early: float
    late: float


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


def fit(samples: Sequence[RenderSample], policy: ForecastPolicy) -> RenderModel | None:
    """A mode's model from its finished renders; None with fewer than `policy.min_samples`."""
    if len(samples) < max(policy.min_samples, 2):
        return None
    mode = samples[0].mode
    xs = [float(s.frames) for s in samples]
    ys = [s.seconds for s in samples]
    ws = [_weight(s) for s in samples]
    slopes: list[float] = []
    pair_weights: list[float] = []
    if max(xs) >= 1.2 * min(xs):  # frame counts vary enough to tell the overhead from the rate
        for i in range(len(xs)):
            for j in range(i + 1, len(xs)):
                dx = xs[j] - xs[i]
                if dx != 0:
                    slopes.append((ys[j] - ys[i]) / dx)
                    pair_weights.append(ws[i] * ws[j] * abs(dx))
    if slopes:
        per_frame = max(0.0, weighted_median(slopes, pair_weights))
        overhead = weighted_median([y - per_frame * x for x, y in zip(xs, ys, strict=True)], ws)
    else:
        overhead = -1.0
    if not slopes or overhead < 0:
        per_frame = weighted_median([y / x for x, y in zip(xs, ys, strict=True)], ws)
        overhead = 0.0
    fitted = [overhead + per_frame * x for x in xs]
    if min(fitted) <= 0:
        return None
    residuals = [y / f - 1 for y, f in zip(ys, fitted, strict=True)]
    bias = weighted_median(residuals, ws)
    # The scatter, from the renders placed precisely when there are enough of them: a vague one's
    # residual is mostly not knowing where in its interval it ended.
    sharp = [r for r, s in zip(residuals, samples, strict=True) if _relative_spread(s) <= _SHARP]
    if len(sharp) >= _MIN_SHARP:
        centre = statistics.median(sharp)
        mad, used = statistics.median([abs(r - centre) for r in sharp]), len(sharp)
    else:
        mad, used = weighted_median([abs(r - bias) for r in residuals], ws), len(residuals)
    spread = max(_MAD_TO_SD * mad, policy.min_relative_spread) * (1 + 1 / math.sqrt(used))
    return RenderModel(mode, overhead, per_frame, bias, spread, len(samples))


def predict(model: RenderModel, frames: int, policy: ForecastPolicy) -> Prediction:
    """Where `frames` frames of this mode should end, with the window the poll plan covers."""
    base = max(0.0, model.overhead + model.per_frame * frames)
    expected = base * (1 + model.bias)
    half = max(base * policy.z * model.spread, policy.min_half_window)
    return Prediction(expected=expected, early=max(0.0, expected - half), late=expected + half)


def plan(prediction: Prediction, policy: ForecastPolicy) -> list[float]:
    """Poll times, in seconds after submission, for a render with this forecast (ascending).

    One poll half a window before the window (a render that ends early is then still placed within
    half a window, so the history stays sharp), then `close_polls` over the window, and before
    all that a poll at least every `max_quiet` seconds.
    """
    width = prediction.late - prediction.early
    count = max(policy.close_polls, 1)
    gap = width / (count - 1) if count > 1 else 0.0
    if count > 1 and gap < policy.min_gap:
        count = max(1, math.floor(width / policy.min_gap) + 1)
        gap = policy.min_gap
    elif gap > policy.max_gap:
        count = math.ceil(width / policy.max_gap) + 1
        gap = width / (count - 1)
    window = [prediction.early + k * gap for k in range(count)]
    lead = prediction.early - max(width / 2, policy.min_gap)
    ahead = [lead] if lead > policy.min_gap else []
    first = ahead[0] if ahead else prediction.early
    quiet = [t for t in _range(policy.max_quiet, first, policy.max_quiet) if t < first - policy.min_gap]
    return quiet + ahead + window


def _range(start: float, stop: float, step: float) -> list[float]:
    out: list[float] = []
    moment = start
    while moment < stop and step > 0:
        out.append(moment)
        moment += step
    return out


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

    def sample(self) -> RenderSample | None:
        """What this render teaches, once it ended; None when it can't be placed in time."""
        if self.ended_at is None or self.frames is None:
            return None
        if self.running_at is None and not self.followed_from_start:
            return None  # resumed and already done: it ended at some unknown time while the bot was away
        high = max(0.0, self.ended_at - self.submitted)
        low = 0.0 if self.running_at is None else min(high, max(0.0, self.running_at - self.submitted))
        if high <= 0:
            return None
        return RenderSample(mode=self.mode, frames=self.frames, low=low, high=high, job_id=self.job_id)


Listener = Callable[[RenderSample], None]


class RenderForecast:
    """Learns render times per mode from finished renders and forecasts new ones (see the module docstring)."""

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
