"""The Magic Hour lip-sync credit rules, applied before anything is spent.

Magic Hour holds an estimate at 30 fps at create (`queue_hold_credits`) and settles to the frames it
rendered (`estimate_credits` at `billing_fps`); the engine reserves the larger. `billing_fps` takes a
file's own rate only when the probe found it constant, and every estimate is at least one frame.
docs/design-notes.md, "Media", gives the reasons.
"""

from __future__ import annotations

import math

from bot.config import GenerationMode
from bot.media.probe import MediaInfo

# What Magic Hour holds at create.
DEFAULT_FPS = 30.0
# The fastest rate a source can render at for a job with no cap at all: a YouTube video's highest,
# and the highest cap a member may choose. A source the bot can't see is priced at the cap.
HIGHEST_FPS = 60.0


def _positive(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) and value > 0 else None


def frame_cap(max_fps: float | None, default_max_fps: float | None) -> float:
    """The job's output-rate cap: `max_fps`, else `default_max_fps`, else the highest rate a source
    can render at, 60 (unusable values skipped)."""
    return _positive(max_fps) or _positive(default_max_fps) or HIGHEST_FPS


def billing_fps(info: MediaInfo | None, max_fps: float | None, default_max_fps: float | None) -> float:
    """The frame rate Magic Hour will bill the render at, as far as we can tell before sending it.

    `info` is the probed video (None for a YouTube source); `max_fps` the job's `max_fps_limit`,
    `default_max_fps` the bot's default for it. A constant source rate gives `min(rate, cap)`; an
    unknown, variable or inconsistent one gives the cap; so does YouTube: the bot never sees the
    video, and Magic Hour renders it at its own rate (up to 60) under the cap.
    """
    cap = frame_cap(max_fps, default_max_fps)
    if info is None:
        return cap
    source = _positive(info.constant_fps) if info.rate_consistent else None
    return min(source, cap) if source is not None else cap


def _frames(seconds: float, fps: float) -> int:
    """`ceil(seconds × fps)`, at least 1; the product is rounded to 6 decimals before `ceil` so
    float noise (2.0 s × 30 fps = 60.000000001) does not bill an extra frame. A NaN, zero or
    negative product counts as the one-frame floor; an infinite one is a `ValueError`."""
    product = seconds * fps
    if math.isinf(product) and product > 0:
        raise ValueError(f"no finite estimate for {seconds!r} s at {fps!r} fps")
    if not product > 0:  # also NaN
        return 1
    return max(1, math.ceil(round(product, 6)))


def estimate_credits(seconds: float, fps: float, mode: GenerationMode) -> int:
    """Credits Magic Hour bills for `seconds` rendered at `fps` (from `billing_fps`) in `mode`:
    `ceil(seconds × fps)` frames, at least one, × `mode.credits_per_frame`."""
    return _frames(seconds, fps) * mode.credits_per_frame


def queue_hold_credits(seconds: float, max_fps: float | None, mode: GenerationMode) -> int:
    """What Magic Hour holds when the job is created: `ceil(seconds × min(30, max_fps or 30))`
    frames, at least one, × `mode.credits_per_frame` (its docs: the create estimate is at 30 fps)."""
    cap = _positive(max_fps)
    rate = min(DEFAULT_FPS, cap) if cap is not None else DEFAULT_FPS
    return _frames(seconds, rate) * mode.credits_per_frame
