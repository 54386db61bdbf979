"""The first-frame thumbnail a job's card shows: read in the probe's bounded child, or nothing."""

from __future__ import annotations

from pathlib import Path

from bot.media import first_frame
from bot.media.bounded import ProbeLimits
from bot.testmedia import make_video


async def test_the_first_frame_is_a_small_jpeg(tmp_path: Path) -> None:
    """A 640x480 video gives a JPEG of at most 320 pixels a side (its size in its frame header)."""
    video = await make_video(tmp_path / "face.mp4", seconds=1.0, size=(640, 480))
    jpeg = await first_frame(video, limits=ProbeLimits())
    assert jpeg is not None and jpeg.startswith(b"\xff\xd8\xff") and len(jpeg) <= 40_000
    start = jpeg.index(b"\xff\xc0")  # baseline frame header: length (2), precision (1), height (2), width (2)
    height, width = int.from_bytes(jpeg[start + 5 : start + 7]), int.from_bytes(jpeg[start + 7 : start + 9])
    assert (width, height) == (320, 240)


async def test_no_thumbnail_for_what_is_not_a_video_or_past_the_limits(tmp_path: Path) -> None:
    """Text, an audio file, or a reading stopped at its wall time: None, never an error."""
    text = tmp_path / "liar.mp4"
    text.write_text("not a video")
    assert await first_frame(text, limits=ProbeLimits()) is None
    voice = await make_video(tmp_path / "tone.mp4", seconds=0.5)
    assert await first_frame(voice, limits=ProbeLimits(wall_seconds=0)) is None
