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

import av

from bot.ffmpeg import FfmpegError, run_ffmpeg

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
class MediaInfo:
    """What a probe found in a media file."""

    has_video: bool
    has_audio: bool
    duration: float
    fps: float
    width: int
    height: int


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


def probe(path: Path) -> MediaInfo:
    """Read a file's streams with PyAV; raise `ValueError` if it is not a media file at all."""
    try:
        container = av.open(str(path))
    except Exception as exc:  # PyAV raises many FFmpegError subclasses for junk input.
        raise ValueError(f"not a readable media file: {exc}") from exc
    with container:
        container_seconds = float(container.duration) / 1_000_000 if container.duration else 0.0
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        duration = container_seconds
        fps = 0.0
        width = height = 0
        if video is not None:
            if video.duration is not None and video.time_base is not None:
                duration = float(video.duration * video.time_base)
            rate = video.average_rate or video.guessed_rate
            fps = float(rate) if rate else 0.0
            width, height = video.codec_context.width, video.codec_context.height
        elif audio is not None and audio.duration is not None and audio.time_base is not None:
            duration = float(audio.duration * audio.time_base)
        return MediaInfo(
            has_video=video is not None,
            has_audio=audio is not None,
            duration=duration,
            fps=fps,
            width=width,
            height=height,
        )


async def _probe_video(path: Path) -> MediaInfo:
    try:
        info = await asyncio.to_thread(probe, path)
    except ValueError as exc:
        raise RenderError("invalid_video_file", f"The video file could not be read ({exc}).") from exc
    if not info.has_video or info.fps <= 0 or info.duration <= 0:
        raise RenderError("invalid_video_file", "The video file has no video stream.")
    return info


async def _probe_audio(path: Path) -> MediaInfo:
    try:
        info = await asyncio.to_thread(probe, path)
    except ValueError as exc:
        raise RenderError("invalid_audio_file", f"The audio file could not be read ({exc}).") from exc
    if not info.has_audio or info.duration <= 0:
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
    info = await asyncio.to_thread(probe, out)
    return RenderResult(
        path=out,
        width=info.width,
        height=info.height,
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
    capped = max_fps is not None and video_info.fps > max_fps
    fps = float(max_fps) if capped and max_fps is not None else video_info.fps
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
