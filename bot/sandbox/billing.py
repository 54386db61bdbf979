"""What a lip-sync job costs in the sandbox: the estimate charged at create, and the frames a
finished render settles to, counted from the source's own frames.

Both are exact (fractions, no float rounding); times the client sends are taken as the decimals
it wrote, so `end_seconds: 1.1` is 11/10. Nothing here comes from the bot (`bot.media`), so the
sandbox can tell when the bot's estimate is wrong.

**At create** (what Magic Hour documents): `ceil((end - start) × min(30, max_fps_limit)) × rate`,
rate 1 credit per frame for lite and standard, 2 for pro.

**At completion** (file sources): the output covers the window `[start, start + L)` with
`L = min(min(end, video_end) - start, audio_seconds)` (the audio drives the length and cannot
stretch the video). The output frame rate is `R = min(max_fps_limit, peak)`, where `peak` is
1 / the shortest gap between consecutive source frames on screen in the window (the source's
fastest real rate there; no cap means just `peak`). The frames charged are the *distinct* source
frames a sample-and-hold render at `R` shows: sample at `start + k/R` for `k = 0 .. ceil(L·R) - 1`
and count the different frames on screen at those instants. So:

- a constant-frame-rate source is charged exactly `ceil(L × min(fps, max_fps_limit))`, the
  documented rule (60 fps × 10 s = 600 frames, 240 with `max_fps_limit: 24`);
- a sparse file (3 frames over 60 s) is charged 3, since only 3 pictures ever render, and a
  still picture with a long sound is charged 1;
- a variable-frame-rate file is charged its real frames in the window, less those a cap drops
  (frames closer together than 1/max_fps_limit cannot all be shown);
- a file whose header claims a frame rate its frames do not have is charged by its frames;
- never more than the frames on screen in the window, nor than `ceil(L·R)`.

A job with a single frame on screen and no cap is charged 1. YouTube sources (never fetched) are
charged `ceil(min(end - start, audio_seconds) × min(source, max_fps_limit))`, where the source's
rate is the sandbox's `youtube_fps` setting (30 unless a test says otherwise: Magic Hour renders a
YouTube video at its own rate, up to 60, while its create estimate stays at 30).
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
