"""What a lip-sync job costs in the sandbox: the estimate charged at create, and the frames a
finished render settles to, counted from the source's own frames.

Both are exact (fractions; times are taken as the decimals the client wrote), and nothing here
comes from the bot's `bot.media`, so the sandbox can tell when the bot's estimate is wrong.
docs/design-notes.md, "The sandbox", gives the rules and their reasons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from bot.config import GenerationMode
from bot.sandbox.media import VideoTimeline

ESTIMATE_FPS = Fraction(30)
YOUTUBE_FPS = Fraction(30)
# The sandbox's own tables, not the bot's (so they check it): credits per rendered frame by
# generation mode, and the modes Magic Hour refuses on its Free plan.
CREDITS_PER_FRAME = {"lite": 1, "standard": 1, "pro": 2}
PAID_PLAN_MODES = frozenset({"standard", "pro"})


def exact(value: float) -> Fraction:
    """A JSON number as the decimal it was written as: `exact(0.1) == Fraction(1, 10)`."""
    return Fraction(repr(float(value)))


def credits_per_frame(mode: GenerationMode) -> int:
    """Credits per rendered frame in this mode."""
    return CREDITS_PER_FRAME[mode.value]


def capped(rate: Fraction, max_fps: float | None) -> Fraction:
    """`rate`, lowered to `max_fps_limit` if one is given."""
    return rate if max_fps is None else min(rate, exact(max_fps))


def estimate_frames(start: float, end: float, max_fps: float | None) -> int:
    """Frames charged at create: the window at 30 fps, or at `max_fps_limit` if lower."""
    return max(0, math.ceil((exact(end) - exact(start)) * capped(ESTIMATE_FPS, max_fps)))


def estimate_credits(start: float, end: float, max_fps: float | None, mode: GenerationMode) -> int:
    """Credits charged at create."""
    return estimate_frames(start, end, max_fps) * credits_per_frame(mode)


def youtube_frames(
    seconds: Fraction, max_fps: float | None, source_fps: float | Fraction = YOUTUBE_FPS
) -> tuple[int, Fraction]:
    """Frames and rate of a YouTube job's output of `seconds`, from a source at `source_fps`."""
    source = source_fps if isinstance(source_fps, Fraction) else exact(source_fps)
    rate = capped(source, max_fps)
    return max(0, math.ceil(seconds * rate)), rate


@dataclass(frozen=True)
class FrameCount:
    """What a file-source render is charged: `frames`, shown at up to `rate` frames per second."""

    frames: int
    rate: Fraction  # R; the average rate frames / L where there is no R (one frame, no cap)
    peak: Fraction | None  # the source's fastest rate in the window; None with one frame on screen


def count_frames(timeline: VideoTimeline, start: Fraction, seconds: Fraction, max_fps: float | None) -> FrameCount:
    """The distinct frames a sample-and-hold render of `[start, start + seconds)` shows (see the module)."""
    on_screen = timeline.visible(start, start + seconds)
    if seconds <= 0 or not on_screen:
        return FrameCount(frames=0, rate=Fraction(0), peak=None)
    gap = timeline.min_gap(on_screen)
    peak = 1 / gap if gap else None
    if peak is None and max_fps is None:
        return FrameCount(frames=len(on_screen), rate=len(on_screen) / seconds, peak=None)
    rate = capped(peak, max_fps) if peak is not None else exact(max_fps or 0)
    samples = math.ceil(seconds * rate)
    # Sample k is at start + k/rate. A frame on screen over ticks [shown, hidden) is sampled when
    # the first sample at or after max(shown, start) comes before `hidden` (and is one of the
    # `samples`). In integers: with g(t) = (t*sd - sn*scale) * rn and den = scale*sd*rd, that
    # first sample is max(0, ceil(g(shown) / den)) and it is in time when first * den < g(hidden).
    sn, sd = start.numerator, start.denominator
    rn, rd = rate.numerator, rate.denominator
    scale = timeline.scale
    den = scale * sd * rd
    origin = sn * scale
    frames = 0
    for index in on_screen:
        first = max(0, -(-((timeline.ticks[index] * sd - origin) * rn) // den))
        if first < samples and first * den < (timeline.hidden_tick(index) * sd - origin) * rn:
            frames += 1
    return FrameCount(frames=frames, rate=rate, peak=peak)
