"""Shrink a finished video to fit an upload limit (Discord: 10 MiB by default) with ffmpeg.

Two-pass H.264 at a bitrate computed from the target size: the total budget, less a container
margin, spread over the duration, less a fixed AAC audio budget. When that leaves too few bits per
pixel the picture is scaled down (long side 854, then 640, then 480 px), since a smaller sharp
video beats a large blocky one. The output is checked against the target and re-encoded once at a
lower bitrate if the encoder overshot. Global metadata is kept, so a sandbox label survives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

from bot.ffmpeg import run_ffmpeg
from bot.media.probe import MediaError, MediaInfo, probe

log = logging.getLogger(__name__)

AUDIO_BITRATE = 64_000  # bit/s of AAC: plenty for a voice
CONTAINER_MARGIN = 0.05  # share of the target kept for MP4 headers, index and rate-control slack
MIN_VIDEO_BITRATE = 100_000  # bit/s; below this the result isn't worth watching
MIN_BITS_PER_PIXEL = 0.06  # per frame; below this H.264 turns to mush, so scale down first
LONG_SIDES = (854, 640, 480)
RETRY_SAFETY = 0.92  # the retry aims this far under the size the first try overshot by
PRESET = "veryfast"
FALLBACK_FPS = 30.0


def _even(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def _scale_filter(info: MediaInfo, video_bitrate: int) -> str:
    """The largest size (original, else a smaller long side) that gets enough bits per pixel."""
    width, height = info.width or 0, info.height or 0
    fps = info.fps or FALLBACK_FPS
    # libx264 with yuv420p needs even dimensions, so even "no scaling" rounds down to even.
    keep = "scale=trunc(iw/2)*2:trunc(ih/2)*2"
    if width <= 0 or height <= 0:
        return keep
    long_side = max(width, height)
    choice = keep
    for side in (long_side, *LONG_SIDES):
        if side > long_side:
            continue
        factor = side / long_side
        w, h = _even(width * factor), _even(height * factor)
        choice = keep if side == long_side else f"scale={w}:{h}"
        if video_bitrate / (w * h * fps) >= MIN_BITS_PER_PIXEL:
            break
    return choice


def _remove(*paths: Path) -> None:
    # A few small files: unlinking inline keeps cleanup working even while a cancellation unwinds.
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _passlog_files(prefix: Path) -> list[Path]:
    return [
        prefix.with_name(prefix.name + suffix)
        for suffix in ("-0.log", "-0.log.temp", "-0.log.mbtree", "-0.log.mbtree.temp")
    ]


async def _encode(src: Path, out: Path, info: MediaInfo, video_bitrate: int, passlog: Path) -> None:
    rate = str(video_bitrate)
    video = [
        "-map",
        "0:v:0",
        "-vf",
        _scale_filter(info, video_bitrate),
        "-c:v",
        "libx264",
        "-preset",
        PRESET,
        "-b:v",
        rate,
    ]
    video += ["-pix_fmt", "yuv420p", "-passlogfile", str(passlog)]
    await run_ffmpeg(["-i", str(src), *video, "-pass", "1", "-an", "-f", "null", os.devnull])
    audio = ["-map", "0:a:0", "-c:a", "aac", "-b:a", str(AUDIO_BITRATE)] if info.has_audio else ["-an"]
    await run_ffmpeg(
        [
            "-i",
            str(src),
            *video,
            "-pass",
            "2",
            *audio,
            "-map_metadata",
            "0",
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
            str(out),
        ]
    )


async def compress_to_fit(src: Path, dest: Path, target_bytes: int, *, duration: float | None = None) -> Path | None:
    """Re-encode video `src` into MP4 `dest` no larger than `target_bytes`; `dest`, or None if it can't.

    None when the target leaves under 100 kbit/s of video, when even the retry overshoots, or
    when `src` can't be read or encoded; `dest` is then absent. `duration` (seconds) overrides the
    probed one. Runs ffmpeg as a subprocess; if the task is cancelled ffmpeg is killed and
    partial output removed. An existing `dest` is replaced only on success.
    """
    try:
        info = await probe(src, label=src.name)
    except MediaError as exc:
        log.warning("cannot compress %s: %s", src.name, exc.user_message)
        return None
    seconds = duration if duration is not None and duration > 0 else info.duration
    if not info.has_video or seconds <= 0:
        return None
    audio_bitrate = AUDIO_BITRATE if info.has_audio else 0
    video_bitrate = int(target_bytes * 8 * (1 - CONTAINER_MARGIN) / seconds) - audio_bitrate
    part = dest.with_name(dest.name + ".part")
    passlog = dest.with_name(dest.name + ".pass")
    try:
        for attempt in (1, 2):
            if video_bitrate < MIN_VIDEO_BITRATE:
                log.info(
                    "%s cannot fit %d bytes: %d bit/s of video is too little", src.name, target_bytes, video_bitrate
                )
                return None
            await _encode(src, part, info, video_bitrate, passlog)
            size = await asyncio.to_thread(os.path.getsize, part)
            if size <= target_bytes:
                await asyncio.to_thread(part.replace, dest)
                return dest
            log.info("compress attempt %d of %s: %d bytes > target %d", attempt, src.name, size, target_bytes)
            # Cut the video's share by the overshoot, with some room to spare.
            overshoot_bits = (size - target_bytes) * 8 / seconds
            video_bitrate = int((video_bitrate - overshoot_bits) * RETRY_SAFETY)
        return None
    except RuntimeError as exc:
        log.warning("compressing %s failed: %s", src.name, exc)
        return None
    finally:
        _remove(part, *_passlog_files(passlog))
