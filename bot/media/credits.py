"""The Magic Hour lip-sync credit rule, applied before anything is spent."""

from __future__ import annotations

import math

from bot.config import GenerationMode

# The API bills frames at 30 fps when it does not know the source's rate (YouTube sources).
DEFAULT_FPS = 30.0


def estimate_credits(seconds: float, fps: float | None, max_fps: float | None, mode: GenerationMode) -> int:
    """Credits a job will cost: `ceil(seconds × min(fps or 30, max_fps or ∞)) × mode.credits_per_frame`.

    `fps` is the source's frame rate (None, or not positive, means unknown: 30 is used, as for
    YouTube sources); `max_fps` is the job's `max_fps_limit`. The product is rounded to 6 decimals
    before `ceil` so float noise (2.0 s × 30 fps = 60.000000001) does not bill an extra frame.
    """
    rate = fps if fps is not None and fps > 0 else DEFAULT_FPS
    if max_fps is not None and max_fps > 0:
        rate = min(rate, max_fps)
    frames = max(0, math.ceil(round(max(seconds, 0.0) * rate, 6)))
    return frames * mode.credits_per_frame
