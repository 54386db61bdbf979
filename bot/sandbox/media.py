"""What the sandbox reads from media files, with PyAV and on its own.

Deliberately separate from the bot's probe (`bot.media`): the sandbox charges by what it reads
here, so a mistake in the bot's estimate shows up as a difference instead of being copied.

A video is read as its timeline: the presentation time of every frame, from the packets'
timestamps (demuxing only, fast even for long files) or, where a container leaves packets without
timestamps, from decoded frames. Times count from the file's start (the container's start time),
as ffmpeg's `-ss` does, and are exact: integer ticks of a common fraction of a second.
"""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.stream import Disposition
from av.video.stream import VideoStream

from bot.sandbox.errors import RenderError

# Demuxers of still pictures: a picture is not a video.
_PICTURE_FORMATS = frozenset({"image2", "gif", "apng"})


@dataclass(frozen=True)
class VideoTimeline:
    """The frames of a video stream, in integer ticks of `1/scale` seconds from the file's start.

    `ticks[i]` is when frame i starts showing (sorted, distinct); the last frame shows until
    `end_tick`. Integers keep counting a long file's frames fast and exact.
    """

    ticks: tuple[int, ...]
    end_tick: int
    scale: int
    width: int
    height: int

    @property
    def times(self) -> tuple[Fraction, ...]:
        """When each frame starts showing, in seconds."""
        return tuple(Fraction(tick, self.scale) for tick in self.ticks)

    @property
    def end(self) -> Fraction:
        """When the last frame stops showing, in seconds: where the video ends."""
        return Fraction(self.end_tick, self.scale)

    def visible(self, start: Fraction, stop: Fraction) -> range:
        """Indices of the frames on screen at some moment of `[start, stop)` (seconds)."""
        first = max(0, bisect.bisect_right(self.ticks, start * self.scale) - 1)
        last = bisect.bisect_left(self.ticks, stop * self.scale)
        if first < last and self.hidden_tick(first) <= start * self.scale:
            first += 1  # only when `start` is at or past the end of the last frame
        return range(first, last)

    def hidden_tick(self, index: int) -> int:
        """When frame `index` stops showing (the next frame's tick, or `end_tick`)."""
        return self.ticks[index + 1] if index + 1 < len(self.ticks) else self.end_tick

    def min_gap(self, indices: range) -> Fraction | None:
        """The shortest time between consecutive frames among `indices`, in seconds (None for fewer than two)."""
        ticks = self.ticks
        gaps = [ticks[i + 1] - ticks[i] for i in indices[:-1]]
        return Fraction(min(gaps), self.scale) if gaps else None


def _open(path: Path, code: str, what: str) -> InputContainer:
    try:
        return av.open(str(path), mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError, OSError) as exc:
        raise RenderError(code, f"The {what} file could not be read ({type(exc).__name__}).") from exc


def _video_stream(container: InputContainer) -> VideoStream:
    streams = [s for s in container.streams.video if not s.disposition & Disposition.attached_pic]
    if not streams:
        raise RenderError("invalid_video_file", "The video file has no video stream.")
    name = container.format.name
    if name.endswith("_pipe") or name in _PICTURE_FORMATS:
        raise RenderError("invalid_video_file", "The video file is a picture, not a video.")
    return streams[0]


def _packet_times(container: InputContainer, stream: VideoStream) -> tuple[set[int], int | None] | None:
    """Frame timestamps and the latest `pts + duration` from demuxing; None if a packet has no pts."""
    stamps: set[int] = set()
    end: int | None = None
    for packet in container.demux(stream):
        if packet.size == 0 or packet.is_discard:
            continue  # the demuxer's final empty packet; frames an edit list cuts away
        if packet.pts is None:
            return None
        stamps.add(packet.pts)
        if packet.duration:
            stop = packet.pts + packet.duration
            end = stop if end is None else max(end, stop)
    return stamps, end


def _decoded_times(path: Path) -> set[int]:
    with _open(path, "invalid_video_file", "video") as container:
        stream = _video_stream(container)
        stamps: set[int] = set()
        for frame in container.decode(stream):
            if frame.pts is None:
                raise RenderError("invalid_video_file", "The video file's frames have no timestamps.")
            stamps.add(frame.pts)
        return stamps


def read_video(path: Path) -> VideoTimeline:
    """The timeline of the first real video stream (cover art is not video). Blocking: run in a thread.

    `end`: the latest `pts + duration` of a frame; else the stream's own duration; else the last
    frame lasts as long as the shortest gap between frames.
    """
    with _open(path, "invalid_video_file", "video") as container:
        stream = _video_stream(container)
        base = stream.time_base
        if base is None:
            raise RenderError("invalid_video_file", "The video file's stream has no time base.")
        width, height = stream.codec_context.width, stream.codec_context.height
        start_time: int | None = container.start_time  # None when the container does not say
        origin = Fraction(start_time, av.time_base) if start_time is not None else None
        stream_end = (stream.start_time or 0) + stream.duration if stream.duration else None
        try:
            found = _packet_times(container, stream)
        except av.error.FFmpegError as exc:
            raise RenderError(
                "invalid_video_file", f"The video file could not be read ({type(exc).__name__})."
            ) from exc
    stamps, end_pts = found if found is not None else (_decoded_times(path), None)
    if not stamps:
        raise RenderError("invalid_video_file", "The video file has no frames.")
    ordered = sorted(stamps)
    if origin is None:
        origin = ordered[0] * base
    # seconds = pts * base - origin = tick / scale, all integers.
    scale = math.lcm(base.denominator, origin.denominator)
    per_pts, offset = base.numerator * (scale // base.denominator), origin.numerator * (scale // origin.denominator)
    ticks = tuple(pts * per_pts - offset for pts in ordered)
    ends = [pts * per_pts - offset for pts in (end_pts, stream_end) if pts is not None]
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    end_tick = max(ends) if ends else ticks[-1] + (min(gaps) if gaps else 0)
    return VideoTimeline(ticks=ticks, end_tick=max(end_tick, ticks[-1]), scale=scale, width=width, height=height)


def read_audio_seconds(path: Path) -> Fraction:
    """How long the first audio stream lasts. Blocking: run in a thread.

    The stream's duration, else the container's, else the end of its last packet.
    """
    with _open(path, "invalid_audio_file", "audio") as container:
        if not container.streams.audio:
            raise RenderError("invalid_audio_file", "The audio file has no audio stream.")
        stream = container.streams.audio[0]
        stated = _stated_seconds(container, stream)
        return stated if stated is not None else _packet_seconds(container, stream)


def _stated_seconds(container: InputContainer, stream: AudioStream) -> Fraction | None:
    """The length the stream states, else the one the container states; None when neither does."""
    if stream.duration and stream.time_base is not None:
        return Fraction(stream.duration) * stream.time_base
    if container.duration:
        return Fraction(container.duration, av.time_base)
    return None


def _packet_seconds(container: InputContainer, stream: AudioStream) -> Fraction:
    """From the first packet's start to the last packet's end, demuxing the whole stream."""
    try:
        span = _packet_span(container, stream)
    except av.error.FFmpegError as exc:
        raise RenderError("invalid_audio_file", f"The audio file could not be read ({type(exc).__name__}).") from exc
    if span is None or stream.time_base is None:
        raise RenderError("invalid_audio_file", "The audio file has no length that can be read.")
    first, last = span
    return (last - first) * stream.time_base


def _packet_span(container: InputContainer, stream: AudioStream) -> tuple[int, int] | None:
    """The earliest pts and the latest `pts + duration` of the stream's packets; None for no length."""
    first: int | None = None
    last: int | None = None
    for packet in container.demux(stream):
        if packet.pts is None or packet.size == 0:
            continue
        stop = packet.pts + (packet.duration or 0)
        first = packet.pts if first is None else min(first, packet.pts)
        last = stop if last is None else max(last, stop)
    if first is None or last is None or last <= first:
        return None
    return first, last


def picture_size(path: Path) -> tuple[int, int]:
    """Width and height of a file's first video stream (0, 0 without one). Blocking: run in a thread."""
    with av.open(str(path), mode="r") as container:
        if not container.streams.video:
            return 0, 0
        context = container.streams.video[0].codec_context
        return context.width, context.height
