"""A first-frame thumbnail of a member's video, for its job card: a small JPEG, or nothing.

The frame is read in the same bounded child as the probe (`bot.media.bounded`, running
`bot.media.opening.first_frame_jpeg`), after the probe accepted the file: memory, CPU and wall time
capped, the slot's demuxers and one decoder only. Whatever goes wrong there (a limit, a crash, an
answer that isn't a JPEG) means no thumbnail: the card is shown without one, and the job goes on.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from bot.media.bounded import ProbeLimits, run_bounded

JPEG_START = b"\xff\xd8\xff"  # every JPEG begins with its start-of-image marker


async def first_frame(path: Path, *, limits: ProbeLimits) -> bytes | None:
    """The first frame of the video at `path` as a small JPEG (at most 320 pixels a side); None if none."""
    answer = await run_bounded({"path": str(path), "thumbnail": True}, limits)
    encoded = answer.get("thumbnail") if answer is not None else None
    if not isinstance(encoded, str):
        return None
    try:
        jpeg = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None
    return jpeg if jpeg.startswith(JPEG_START) else None
