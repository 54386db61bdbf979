"""Read what is really inside a media file with PyAV, and refuse what a slot cannot use.

Decision on the audio slot: Magic Hour's `audio_file_path` takes an audio file, so the audio slot
accepts a file with an audio stream and no real video. A video stream flagged as cover art
(`attached_pic`, as in an MP3 with album art) is not real video and is fine; a video with sound is
refused with a message saying to send the audio on its own. (Accepting it would upload the whole
video for its sound, and the API may refuse it.)

Messages name the file by the label the caller gives (the member's filename), never by its path:
paths are in the bot's temporary directory and mean nothing to a member.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error
from av.stream import Disposition

from bot.errors import InvalidInput

# Demuxers for still pictures (png_pipe, jpeg_pipe, webp_pipe, ... and the image2 sequence reader).
_IMAGE_FORMATS = frozenset({"image2", "gif", "apng"})
_IMAGE_CODECS = frozenset({"png", "mjpeg", "jpegls", "bmp", "gif", "webp", "tiff", "apng", "jpeg2000"})
# A "video" no longer than this made of one picture codec is a still image, not a clip.
_STILL_MAX_SECONDS = 0.1
# Guessed rates above this are time-base artefacts (cover art reports 90000), not frame rates.
_MAX_PLAUSIBLE_FPS = 1000.0


class MediaError(InvalidInput):
    """A file is not the media its slot needs; its data names the file (`filename`).

    Codes: `empty_file`, `not_media[_video|_audio]`, `still_image[_video|_audio]`, `no_duration`
    (from `probe`), `not_a_video` (from `probe_video`), `no_sound` and `audio_has_video` (from
    `probe_audio`).
    """


@dataclass(frozen=True)
class MediaInfo:
    """What a probe found in a media file.

    `has_video` means real video: a cover-art picture (`attached_pic`) sets `has_cover_art`
    instead and leaves the video fields empty. `duration` is in seconds (the video stream's if
    there is one, else the audio's, else the container's); `fps` is the average frame rate.
    """

    format_name: str
    duration: float
    has_video: bool
    has_audio: bool
    video_codec: str | None
    audio_codec: str | None
    width: int | None
    height: int | None
    fps: float | None
    frame_count: int | None
    size_bytes: int
    has_cover_art: bool = False
    is_still_image: bool = False


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or time_base is None or value <= 0:
        return None
    return float(value * time_base)


def _frame_rate(stream: av.video.stream.VideoStream) -> float | None:
    for rate in (stream.average_rate, stream.guessed_rate):
        if rate and 0 < float(rate) <= _MAX_PLAUSIBLE_FPS:
            return float(rate)
    return None


def _read(path: Path, size: int) -> MediaInfo | None:
    """Open the file with PyAV (blocking; run in a thread). None if it is not media at all."""
    try:
        container = av.open(str(path), mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError):
        return None
    with container:
        videos = [s for s in container.streams.video if not s.disposition & Disposition.attached_pic]
        covers = [s for s in container.streams.video if s.disposition & Disposition.attached_pic]
        audio = container.streams.audio[0] if container.streams.audio else None
        video = videos[0] if videos else None
        container_seconds = float(container.duration) / av.time_base if container.duration else None
        audio_seconds = _seconds(audio.duration, audio.time_base) if audio is not None else None
        video_seconds = _seconds(video.duration, video.time_base) if video is not None else None
        duration = video_seconds or audio_seconds or container_seconds or 0.0
        still = False
        if video is not None:
            codec = video.codec_context.name
            single_picture = codec in _IMAGE_CODECS and video.frames <= 1 and duration <= _STILL_MAX_SECONDS
            still = container.format.name.endswith("_pipe") or container.format.name in _IMAGE_FORMATS
            still = still or single_picture
        return MediaInfo(
            format_name=container.format.name,
            duration=duration,
            has_video=video is not None,
            has_audio=audio is not None,
            video_codec=video.codec_context.name if video is not None else None,
            audio_codec=audio.codec_context.name if audio is not None else None,
            width=video.codec_context.width or None if video is not None else None,
            height=video.codec_context.height or None if video is not None else None,
            fps=_frame_rate(video) if video is not None else None,
            frame_count=(video.frames or None) if video is not None else None,
            size_bytes=size,
            has_cover_art=bool(covers),
            is_still_image=still,
        )


async def _probe(path: Path, label: str, slot: str) -> MediaInfo:
    """Probe and refuse what no slot can use; `slot` ("", "_video", "_audio") picks the wording."""
    size = (await asyncio.to_thread(path.stat)).st_size
    if size == 0:
        raise MediaError("empty_file", filename=label)
    info = await asyncio.to_thread(_read, path, size)
    if info is None or not (info.has_video or info.has_audio):
        raise MediaError(f"not_media{slot}", filename=label)
    if info.is_still_image:
        raise MediaError(f"still_image{slot}", filename=label)
    if info.duration <= 0:
        raise MediaError("no_duration", filename=label)
    return info


async def probe(path: Path, *, label: str = "file") -> MediaInfo:
    """Probe a media file in a worker thread; raise `MediaError` if it isn't usable media.

    Refuses an empty file (`empty_file`), a file that is not audio or video at all (`not_media`),
    a still image (`still_image`) and media with no duration (`no_duration`). `label` names the
    file in the error's data (the member's file name, never the temporary path).
    """
    return await _probe(path, label, "")


async def probe_video(path: Path, *, filename: str) -> MediaInfo:
    """Probe the video slot's file: it must hold real video with a duration (`not_a_video`)."""
    info = await _probe(path, filename, "_video")
    if not info.has_video:
        raise MediaError("not_a_video", filename=filename)
    return info


async def probe_audio(path: Path, *, filename: str) -> MediaInfo:
    """Probe the audio slot's file: an audio stream (`no_sound`) and no video but cover art
    (`audio_has_video`)."""
    info = await _probe(path, filename, "_audio")
    if not info.has_audio:
        raise MediaError("no_sound", filename=filename)
    if info.has_video:
        raise MediaError("audio_has_video", filename=filename)
    return info
