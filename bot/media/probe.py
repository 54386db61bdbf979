"""Read what is really inside a media file with PyAV, and refuse what a slot cannot use.

The reading runs in a bounded child process (`bot.media.bounded`); this module holds what it
finds (`MediaInfo`, `describe`), the frame-rate judgement billing relies on (`judge_rate`: a rate
is believed only when the file's claims and its counted frames agree), and the async `probe*`
functions the bot calls. docs/design-notes.md, "Media", gives the reasons.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import av
import av.error
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.stream import Discard, Disposition
from av.video.stream import VideoStream

from bot.errors import InvalidInput
from bot.media.accept import Slot
from bot.media.bounded import ProbeLimits, run_bounded

if TYPE_CHECKING:
    from pydantic import TypeAdapter

DEFAULT_LIMITS = ProbeLimits()

# Demuxers for still pictures (png_pipe, jpeg_pipe, webp_pipe, ... and the image2 sequence reader).
_IMAGE_FORMATS = frozenset({"image2", "gif", "apng"})
_IMAGE_CODECS = frozenset({"png", "mjpeg", "jpegls", "bmp", "gif", "webp", "tiff", "apng", "jpeg2000"})
# A "video" no longer than this made of one picture codec is a still image, not a clip.
_STILL_MAX_SECONDS = 0.1
# Guessed rates above this are time-base artefacts (cover art reports 90000), not frame rates.
_MAX_REPORTED_FPS = 1000.0

# When a frame rate may be believed: every figure within these bounds and within RATE_TOLERANCE of the others.
MIN_PLAUSIBLE_FPS = 1.0
MAX_PLAUSIBLE_FPS = 240.0
RATE_TOLERANCE = 0.02
# Bounds on counting a video's packets; past either the rate is unknown ("uncounted").
MAX_COUNTED_FRAMES = 200_000
MAX_COUNT_SECONDS = 5.0
_CLOCK_EVERY = 256  # packets between looks at the clock

RateVerdict = Literal[
    "constant",  # consistent: `constant_fps` is the rate
    "no_video",  # no video stream (audio, cover art only)
    "uncounted",  # counting stopped at a bound, or was never done
    "unreadable",  # the demuxer failed part way
    "no_timestamps",  # frames without timestamps, or all at one instant
    "too_few_frames",  # fewer than two frames
    "implausible",  # a figure below 1 fps or above 240 fps
    "disagree",  # the claims and the frames disagree by more than the tolerance
    "uneven",  # the frames are not evenly spaced (variable frame rate)
]


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
    there is one, else the audio's, else the container's); `fps` is the average frame rate as the
    file claims it (for sizing, never for billing); `frame_count` is the frame count the header
    claims.

    The rate fields are what billing may use (`judge_rate`): the file's claims
    (`average_rate`, `nominal_rate` = `r_frame_rate`, `guessed_rate`, and `codec_rate`, the
    codec's own timing where it has one), the frames counted from
    packets and their real duration (None when not counted), and `constant_fps`, set only when
    `rate_verdict` is `"constant"`.
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
    average_rate: float | None = None
    nominal_rate: float | None = None
    guessed_rate: float | None = None
    codec_rate: float | None = None
    counted_frames: int | None = None
    counted_seconds: float | None = None
    constant_fps: float | None = None
    rate_verdict: RateVerdict = "uncounted"

    @property
    def rate_consistent(self) -> bool:
        """Whether the frame rate is constant and believable, so billing may use `constant_fps`."""
        return self.rate_verdict == "constant" and self.constant_fps is not None


@dataclass(frozen=True)
class FrameTiming:
    """When a video's frames are, from their packets' timestamps (`frame_timing`)."""

    frames: int
    seconds: float | None  # first timestamp to the end of the last frame; None if unknown
    grid_fps: float | None  # (frames - 1) / (last timestamp - first), None if unknown
    even: bool  # every frame on the even grid from first to last (within tolerance)


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or time_base is None or value <= 0:
        return None
    return float(value * time_base)


def _rate(value: Fraction | None) -> float | None:
    return float(value) if value else None


def _frame_rate(stream: VideoStream) -> float | None:
    for rate in (stream.average_rate, stream.guessed_rate):
        if rate and 0 < float(rate) <= _MAX_REPORTED_FPS:
            return float(rate)
    return None


def frame_timing(stamps: list[int | None], last_duration: int, tick: float) -> FrameTiming:
    """Judge frame timestamps (in ticks of `tick` seconds, any order); pure, for the probe and tests.

    `last_duration` is the latest frame's own duration in ticks (0 if unknown: one grid step is
    assumed). The grid check allows each timestamp one tick of rounding plus `RATE_TOLERANCE` of a
    frame interval; a time base too coarse to resolve half an interval passes only if every
    interval is the same number of ticks.
    """
    frames = len(stamps)
    known = sorted(s for s in stamps if s is not None)
    if frames < 2 or len(known) < frames or known[-1] <= known[0] or not tick > 0:
        return FrameTiming(frames, None, None, even=False)
    first, span = known[0], known[-1] - known[0]
    step = span / (frames - 1)
    if len({b - a for a, b in pairwise(known)}) == 1:
        even = True
    else:
        drift = max(abs(stamp - first - i * step) for i, stamp in enumerate(known))
        even = step >= 2 and drift <= 1 + RATE_TOLERANCE * step
    end = known[-1] + (last_duration if last_duration > 0 else step)
    return FrameTiming(frames, (end - first) * tick, 1 / (step * tick), even)


def count_frames(
    container: InputContainer,
    stream: VideoStream,
    *,
    max_frames: int = MAX_COUNTED_FRAMES,
    max_seconds: float = MAX_COUNT_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> FrameTiming | Literal["uncounted", "unreadable"]:
    """Demux (never decode) `stream`'s packets and time its frames; other streams are skipped.

    "uncounted" past `max_frames` packets or `max_seconds` of `clock`; "unreadable" if the
    demuxer fails. Reads the container to the end: use a freshly opened one.
    """
    for other in container.streams:
        if other.index != stream.index:
            other.discard = Discard.all
    time_base = stream.time_base
    deadline = clock() + max_seconds
    stamps: list[int | None] = []
    latest: int | None = None
    latest_duration = 0
    try:
        for packet in container.demux(stream):
            if not packet.size:
                continue  # the demuxer's closing empty packet
            if len(stamps) >= max_frames or (len(stamps) % _CLOCK_EVERY == 0 and clock() > deadline):
                return "uncounted"
            stamp = packet.pts if packet.pts is not None else packet.dts
            stamps.append(stamp)
            if stamp is not None and (latest is None or stamp >= latest):
                latest, latest_duration = stamp, packet.duration or 0
    except av.error.FFmpegError:
        return "unreadable"
    return frame_timing(stamps, latest_duration, float(time_base) if time_base else 0.0)


@dataclass(frozen=True)
class RateClaims:
    """The frame rates a video stream declares about itself (None where it declares none)."""

    average: float | None = None  # the stream's `average_rate`
    nominal: float | None = None  # `r_frame_rate`
    guessed: float | None = None  # FFmpeg's `guessed_rate`
    codec: float | None = None  # the codec's own timing (H.264's VUI, say)

    @classmethod
    def of(cls, video: VideoStream) -> RateClaims:
        """The claims `video`'s headers make."""
        return cls(
            _rate(video.average_rate),
            _rate(video.base_rate),
            _rate(video.guessed_rate),
            _rate(video.codec_context.framerate),
        )

    def declared(self) -> list[float]:
        """The claims that were made (non-zero), in a fixed order."""
        return [c for c in (self.average, self.nominal, self.guessed, self.codec) if c]


def judge_rate(claims: Sequence[float | None], timing: FrameTiming) -> tuple[float | None, RateVerdict]:
    """The constant frame rate and "constant", or None and why not (docs/design-notes.md, frame rates).

    `claims` are the file's declared rates (None or 0 where absent). The rate given is the highest
    claim (they agree within the tolerance), so a 24, 25, 29.97 or 30 fps file keeps its exact rate.
    """
    if timing.frames < 2:
        return None, "too_few_frames"
    if timing.seconds is None or timing.grid_fps is None or timing.seconds <= 0:
        return None, "no_timestamps"
    declared = [c for c in claims if c]
    figures = [*declared, timing.frames / timing.seconds, timing.grid_fps]
    if not all(math.isfinite(f) and MIN_PLAUSIBLE_FPS <= f <= MAX_PLAUSIBLE_FPS for f in figures):
        return None, "implausible"
    if max(figures) > min(figures) * (1 + RATE_TOLERANCE):
        return None, "disagree"
    if not timing.even:
        return None, "uneven"
    return max(declared or figures), "constant"


@dataclass(frozen=True)
class _VideoReading:
    """What the first real video stream holds, once its packets were counted."""

    present: bool = False  # a real video stream with frames
    codec: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    header_frames: int | None = None
    claims: RateClaims = RateClaims()
    counted: FrameTiming | None = None
    constant_fps: float | None = None
    verdict: RateVerdict = "no_video"
    still: bool = False


def _read_video(
    container: InputContainer, video: VideoStream, duration: float, *, max_frames: int, max_seconds: float
) -> _VideoReading:
    """Count and judge `video`'s frames. A stream without a single frame is no video."""
    timing = count_frames(container, video, max_frames=max_frames, max_seconds=max_seconds)
    codec = video.codec_context.name
    single_picture = codec in _IMAGE_CODECS and video.frames <= 1 and duration <= _STILL_MAX_SECONDS
    image_format = container.format.name.endswith("_pipe") or container.format.name in _IMAGE_FORMATS
    one_frame = isinstance(timing, FrameTiming) and timing.frames == 1
    still = image_format or single_picture or one_frame
    if isinstance(timing, FrameTiming) and timing.frames == 0:
        return _VideoReading(still=still)
    claims = RateClaims.of(video)
    constant_fps: float | None = None
    verdict: RateVerdict
    if isinstance(timing, FrameTiming):
        constant_fps, verdict = judge_rate(claims.declared(), timing)
    else:
        verdict = timing  # the count stopped at a bound, or the demuxer failed
    return _VideoReading(
        present=True,
        codec=codec,
        width=video.codec_context.width or None,
        height=video.codec_context.height or None,
        fps=_frame_rate(video),
        header_frames=video.frames or None,
        claims=claims,
        counted=timing if isinstance(timing, FrameTiming) else None,
        constant_fps=constant_fps,
        verdict=verdict,
        still=still,
    )


def _duration(container: InputContainer, video: VideoStream | None, audio: AudioStream | None) -> float:
    """The video stream's length if it has one, else the audio's, else the container's (0 if none)."""
    container_seconds = float(container.duration) / av.time_base if container.duration else None
    audio_seconds = _seconds(audio.duration, audio.time_base) if audio is not None else None
    video_seconds = _seconds(video.duration, video.time_base) if video is not None else None
    return video_seconds or audio_seconds or container_seconds or 0.0


def describe(container: InputContainer, size: int, *, max_frames: int, max_seconds: float) -> MediaInfo:
    """What an opened container holds (its first real video and first audio stream)."""
    videos = [s for s in container.streams.video if not s.disposition & Disposition.attached_pic]
    has_covers = any(s.disposition & Disposition.attached_pic for s in container.streams.video)
    audio = container.streams.audio[0] if container.streams.audio else None
    video = videos[0] if videos else None
    duration = _duration(container, video, audio)
    reading = _VideoReading()
    if video is not None:
        reading = _read_video(container, video, duration, max_frames=max_frames, max_seconds=max_seconds)
    counted = reading.counted
    return MediaInfo(
        format_name=container.format.name,
        duration=duration,
        has_video=reading.present,
        has_audio=audio is not None,
        video_codec=reading.codec,
        audio_codec=audio.codec_context.name if audio is not None else None,
        width=reading.width,
        height=reading.height,
        fps=reading.fps,
        frame_count=reading.header_frames,
        size_bytes=size,
        has_cover_art=has_covers,
        is_still_image=reading.still,
        average_rate=reading.claims.average,
        nominal_rate=reading.claims.nominal,
        guessed_rate=reading.claims.guessed,
        codec_rate=reading.claims.codec,
        counted_frames=counted.frames if counted is not None else None,
        counted_seconds=counted.seconds if counted is not None else None,
        constant_fps=reading.constant_fps,
        rate_verdict=reading.verdict,
    )


# Refusal codes worded per slot ("not_media" becomes "not_media_video" for the video slot).
_SLOT_WORDED = frozenset({"not_media", "still_image", "unsupported_format", "unsupported_codec"})


@functools.cache
def _answers() -> TypeAdapter[MediaInfo]:
    # pydantic is imported by the bot only: the probe's child starts faster without it.
    from pydantic import TypeAdapter

    return TypeAdapter(MediaInfo)


async def _probe(path: Path, label: str, slot: Slot, limits: ProbeLimits) -> MediaInfo:
    """Probe in a bounded child and refuse what no slot can use; `slot` picks the wording."""
    size = (await asyncio.to_thread(path.stat)).st_size
    if size == 0:
        raise MediaError("empty_file", filename=label)
    request = {"path": str(path), "slot": slot, "max_frames": MAX_COUNTED_FRAMES, "max_seconds": MAX_COUNT_SECONDS}
    answer = await run_bounded(request, limits)
    if answer is not None and "refused" in answer:
        code, data = str(answer["refused"]), answer.get("data")
        data = {k: v for k, v in data.items() if isinstance(v, str | int)} if isinstance(data, dict) else {}
        raise MediaError(f"{code}{slot}" if code in _SLOT_WORDED else code, filename=label, **data)
    try:
        info = _answers().validate_python(answer["info"]) if answer is not None else None
    except (KeyError, ValueError):  # pydantic's ValidationError is a ValueError
        info = None
    if info is None:  # killed at a limit, crashed, or an answer that makes no sense
        raise MediaError("media_too_complex", filename=label)
    if not (info.has_video or info.has_audio):
        raise MediaError(f"not_media{slot}", filename=label)
    if info.is_still_image:
        raise MediaError(f"still_image{slot}", filename=label)
    if info.duration <= 0:
        raise MediaError("no_duration", filename=label)
    return info


async def probe(path: Path, *, label: str = "file", limits: ProbeLimits = DEFAULT_LIMITS) -> MediaInfo:
    """Probe a media file in a bounded child process; raise `MediaError` if it isn't usable media.

    Refuses an empty file (`empty_file`), a file that is not audio or video at all (`not_media`),
    a container or codec neither slot accepts (`unsupported_format`, `unsupported_codec`), a file
    past the stream or frame-size limits (`too_many_streams`, `frame_too_large`), one whose
    reading went past the child's limits (`media_too_complex`), a still image (`still_image`) and
    media with no duration (`no_duration`). `label` names the file in the error's data (the
    member's file name, never the temporary path).
    """
    return await _probe(path, label, "", limits)


async def probe_video(path: Path, *, filename: str, limits: ProbeLimits = DEFAULT_LIMITS) -> MediaInfo:
    """Probe the video slot's file: it must hold real video with a duration (`not_a_video`)."""
    info = await _probe(path, filename, "_video", limits)
    if not info.has_video:
        raise MediaError("not_a_video", filename=filename)
    return info


async def probe_audio(path: Path, *, filename: str, limits: ProbeLimits = DEFAULT_LIMITS) -> MediaInfo:
    """Probe the audio slot's file: an audio stream (`no_sound`) and no video but cover art
    (`audio_has_video`)."""
    info = await _probe(path, filename, "_audio", limits)
    if not info.has_audio:
        raise MediaError("no_sound", filename=filename)
    if info.has_video:
        raise MediaError("audio_has_video", filename=filename)
    return info
