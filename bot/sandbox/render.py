"""The sandbox's "render": real media, no lip sync.

The video is trimmed to the window, its frame rate capped, its audio replaced by the given audio,
and the result is an H.264/AAC MP4 labelled as a sandbox result in its metadata. YouTube sources,
which the sandbox cannot fetch, become a generated test pattern of the window's length.

Output length rule (also what credits settle to): the window clipped to the video,
`min(end_seconds, video_duration) - start_seconds`, then cut to the audio's length if the audio is
shorter (the audio starts at 0 and drives the output, as in a real lip sync). For YouTube the
window is `end_seconds - start_seconds`, cut the same way by the audio.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from pathlib import Path

from bot.ffmpeg import FfmpegError, run_ffmpeg
from bot.media import MediaError, MediaInfo, probe

SANDBOX_LABEL = "Magic Hour SANDBOX result - not lip-synced"
YOUTUBE_FPS = 30.0
YOUTUBE_SIZE = (640, 360)


class RenderError(Exception):
    """A job failure, with the Magic Hour job error code it maps to."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class RenderResult:
    """A finished render: where it is, its shape, and the frames billed for it."""

    path: Path
    width: int
    height: int
    fps: float
    seconds: float
    frames: int


def frames_for(seconds: float, fps: float) -> int:
    """Frames in `seconds` at `fps`, rounded up; tiny float noise is ignored so 2.0 s at 30 fps is 60."""
    return max(0, math.ceil(round(seconds * fps, 6)))


async def _probe_video(path: Path) -> MediaInfo:
    try:
        info = await probe(path, label="video")
    except MediaError as exc:
        raise RenderError("invalid_video_file", f"The video file could not be read ({exc.code}).") from exc
    if not info.has_video or not info.fps:
        raise RenderError("invalid_video_file", "The video file has no video stream.")
    return info


async def _probe_audio(path: Path) -> MediaInfo:
    try:
        info = await probe(path, label="audio")
    except MediaError as exc:
        raise RenderError("invalid_audio_file", f"The audio file could not be read ({exc.code}).") from exc
    if not info.has_audio:
        raise RenderError("invalid_audio_file", "The audio file has no audio stream.")
    return info


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


async def _finish(tmp: Path, out: Path, fps: float, seconds: float) -> RenderResult:
    await asyncio.to_thread(tmp.replace, out)
    info = await probe(out, label="result")
    return RenderResult(
        path=out,
        width=info.width or 0,
        height=info.height or 0,
        fps=fps,
        seconds=seconds,
        frames=frames_for(seconds, fps),
    )


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


async def render_file_source(
    video: Path, audio: Path, out: Path, *, start: float, end: float, max_fps: float | None
) -> RenderResult:
    """Trim `video` to [start, end], cap its fps, put `audio` under it, and write `out` (MP4)."""
    video_info = await _probe_video(video)
    audio_info = await _probe_audio(audio)
    window = min(end, video_info.duration) - start
    if window <= 0:
        raise RenderError(
            "invalid_parameters",
            f"start_seconds ({start:g}) is at or past the end of the video ({video_info.duration:.3f} s).",
        )
    seconds = float(min(window, audio_info.duration))
    source_fps = float(video_info.fps or 0.0)  # `_probe_video` refuses a video without a frame rate
    capped = max_fps is not None and source_fps > max_fps
    fps = float(max_fps) if capped and max_fps is not None else source_fps
    filters = [f"fps={fps:g}"] if capped else []
    # libx264 with yuv420p needs even dimensions.
    filters.append("scale=trunc(iw/2)*2:trunc(ih/2)*2")
    tmp = out.with_name(out.name + ".part")
    args = [
        "-ss",
        f"{start:.6f}",
        "-t",
        f"{window:.6f}",
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
        *_encode_args(seconds),
        str(tmp),
    ]
    await _ffmpeg(args, tmp)
    return await _finish(tmp, out, fps, seconds)


async def render_youtube_source(
    audio: Path, out: Path, *, start: float, end: float, max_fps: float | None
) -> RenderResult:
    """A test pattern of the window's length at min(30, max_fps) fps with `audio`, written to `out`."""
    audio_info = await _probe_audio(audio)
    seconds = float(min(end - start, audio_info.duration))
    fps = min(YOUTUBE_FPS, max_fps) if max_fps is not None else YOUTUBE_FPS
    width, height = YOUTUBE_SIZE
    tmp = out.with_name(out.name + ".part")
    args = [
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={width}x{height}:rate={fps:g}:duration={seconds:.6f}",
        "-i",
        str(audio),
        "-map",
        "0:v:0",
        "-map",
        "1:a:0",
        *_encode_args(seconds),
        str(tmp),
    ]
    await _ffmpeg(args, tmp)
    return await _finish(tmp, out, fps, seconds)
