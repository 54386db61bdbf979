"""The sandbox's output for a finished project: real media, no lip sync.

The video is trimmed to the window, its frame rate capped, its audio replaced by the given audio,
and the result is an H.264/AAC MP4 labelled as a sandbox result in its metadata; YouTube sources,
which the sandbox cannot fetch, become a generated test pattern. docs/design-notes.md, "The
sandbox", gives the output's length and timing rules.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from bot.ffmpeg import FfmpegError, run_ffmpeg
from bot.sandbox.billing import count_frames, exact, youtube_frames
from bot.sandbox.errors import RenderError
from bot.sandbox.media import picture_size, read_audio_seconds, read_video

__all__ = ["SANDBOX_LABEL", "Output", "RenderError", "output_from_file", "output_from_youtube"]

SANDBOX_LABEL = "Magic Hour SANDBOX result - not lip-synced"
YOUTUBE_SIZE = (640, 360)
# Magic Hour renders nothing shorter than a tenth of a second (`end_seconds >= 0.1`).
MIN_SECONDS = Fraction(1, 10)


def _check_long_enough(seconds: Fraction) -> None:
    if seconds < MIN_SECONDS:
        raise RenderError(
            "invalid_parameters",
            f"The output would last {float(seconds):.3f} s; at least {float(MIN_SECONDS):g} s is needed.",
        )


@dataclass(frozen=True)
class Output:
    """A finished project's output: where it is, its shape, and the frames billed for it."""

    path: Path
    width: int
    height: int
    fps: float
    seconds: float
    frames: int


async def _audio_seconds(path: Path) -> Fraction:
    return await asyncio.to_thread(read_audio_seconds, path)


def _label_args() -> list[str]:
    return ["-metadata", f"title={SANDBOX_LABEL}", "-metadata", f"comment={SANDBOX_LABEL}"]


def _encode_args(seconds: float) -> list[str]:
    return [
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "128k",
        # Both an explicit length and -shortest: -t makes the end exact, -shortest guards rounding.
        "-t",
        f"{seconds:.6f}",
        "-shortest",
        *_label_args(),
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
    ]


async def _finish(tmp: Path, out: Path, fps: Fraction, seconds: Fraction, frames: int) -> Output:
    await asyncio.to_thread(tmp.replace, out)
    width, height = await asyncio.to_thread(picture_size, out)
    return Output(path=out, width=width, height=height, fps=float(fps), seconds=float(seconds), frames=frames)


async def _ffmpeg(args: list[str], tmp: Path) -> None:
    """Run ffmpeg (killed on cancellation: DELETE, shutdown); never leave a partial output behind."""
    try:
        await run_ffmpeg(args)
    except FfmpegError as exc:
        await asyncio.to_thread(tmp.unlink, missing_ok=True)
        raise RenderError("unknown_error", f"Rendering failed (ffmpeg exit {exc.returncode}): {exc.tail}") from exc
    except asyncio.CancelledError:
        await asyncio.to_thread(tmp.unlink, missing_ok=True)
        raise


async def output_from_file(
    video: Path, audio: Path, out: Path, *, start: float, end: float, max_fps: float | None
) -> Output:
    """Trim `video` to [start, end], cap its fps, put `audio` under it, and write `out` (MP4)."""
    timeline = await asyncio.to_thread(read_video, video)
    audio_seconds = await _audio_seconds(audio)
    first, last = exact(start), min(exact(end), timeline.end)
    window = last - first
    if window <= 0:
        raise RenderError(
            "invalid_parameters",
            f"start_seconds ({start:g}) is at or past the end of the video ({float(timeline.end):.3f} s).",
        )
    seconds = min(window, audio_seconds)
    _check_long_enough(seconds)
    count = await asyncio.to_thread(count_frames, timeline, first, seconds, max_fps)
    cap = exact(max_fps) if max_fps is not None else None
    lowered = cap is not None and (count.peak is None or cap < count.peak)
    # libx264 with yuv420p needs even dimensions.
    filters = [f"fps={cap}"] if lowered else []
    filters.append("scale=trunc(iw/2)*2:trunc(ih/2)*2")
    timing = [] if lowered else ["-fps_mode", "passthrough"]
    tmp = out.with_name(out.name + ".part")
    args = [
        "-ss",
        f"{float(first):.6f}",
        "-t",
        f"{float(window):.6f}",
        "-i",
        str(video),
        "-i",
        str(audio),
        "-map",
        "0:v:0",
        "-map",
        "1:a:0",
        "-vf",
        ",".join(filters),
        *timing,
        *_encode_args(float(seconds)),
        str(tmp),
    ]
    await _ffmpeg(args, tmp)
    return await _finish(tmp, out, count.rate, seconds, count.frames)


async def output_from_youtube(
    audio: Path, out: Path, *, start: float, end: float, max_fps: float | None, source_fps: float = 30.0
) -> Output:
    """A test pattern of the window's length at min(source_fps, max_fps) fps with `audio`, written to `out`."""
    seconds = min(exact(end) - exact(start), await _audio_seconds(audio))
    _check_long_enough(seconds)
    frames, fps = youtube_frames(seconds, max_fps, source_fps)
    width, height = YOUTUBE_SIZE
    tmp = out.with_name(out.name + ".part")
    args = [
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={width}x{height}:rate={fps}:duration={float(seconds):.6f}",
        "-i",
        str(audio),
        "-map",
        "0:v:0",
        "-map",
        "1:a:0",
        *_encode_args(float(seconds)),
        str(tmp),
    ]
    await _ffmpeg(args, tmp)
    return await _finish(tmp, out, fps, seconds, frames)
