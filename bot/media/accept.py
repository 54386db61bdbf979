"""What the bot agrees to open: containers, codecs, stream counts and frame sizes, per slot.

Only what Magic Hour takes and what phones, cameras and Discord clients produce is ever opened
(FFmpeg's `format_whitelist` and `codec_whitelist` enforce it), and every size is judged from the
headers (`judge_headers`) before anything is decoded. docs/design-notes.md, "Media", says what each
slot takes and why the limits are where they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Slot = Literal["", "_video", "_audio"]
"""Which slot a file is for: "" (any media: the bot's own results), "_video" or "_audio"."""

MAX_FRAME_SIDE = 4096
MAX_STREAMS = 16
MAX_VIDEO_STREAMS = 3
# A guard far above MAX_STREAMS: a header listing thousands of tracks never gets them built.
DEMUXER_MAX_STREAMS = 64

# FFmpeg demuxer names (a demuxer's name lists its aliases: "mov,mp4,m4a,3gp,3g2,mj2").
_VIDEO_FORMATS = ("mov", "matroska")
_AUDIO_FORMATS = ("mp3", "mov", "aac", "wav", "ogg", "flac", "aiff", "amr", "matroska")

VIDEO_CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "av1", "mpeg4"})
_PCM = frozenset(
    f"pcm_{kind}"
    for kind in ("s16le", "s16be", "s24le", "s24be", "s32le", "s32be", "f32le", "f32be", "f64le", "u8", "mulaw", "alaw")
)
VOICE_CODECS = frozenset({"mp3", "aac", "opus", "vorbis", "flac", "alac", "amr_nb", "amr_wb"}) | _PCM
# The sound of a video is not used, but its decoder still runs on the file: the usual ones only.
SOUND_IN_VIDEO_CODECS = VOICE_CODECS | {"ac3", "eac3"}
COVER_ART_CODECS = frozenset({"mjpeg", "png"})
# Picture codecs: one such frame muxed into a video file is a still image, told as one.
_PICTURE_CODECS = frozenset({"mjpeg", "png", "bmp", "gif", "webp", "tiff", "jpeg2000", "jpegls", "apng"})


@dataclass(frozen=True)
class SlotRules:
    """The containers and codecs one slot accepts (`rules_for`)."""

    formats: tuple[str, ...]
    video_codecs: frozenset[str]
    audio_codecs: frozenset[str]

    @property
    def format_whitelist(self) -> str:
        """The demuxers FFmpeg may use on this slot's files, as its `format_whitelist` option."""
        return ",".join(self.formats)


_RULES: dict[str, SlotRules] = {
    "_video": SlotRules(_VIDEO_FORMATS, VIDEO_CODECS, SOUND_IN_VIDEO_CODECS),
    "_audio": SlotRules(_AUDIO_FORMATS, frozenset(), VOICE_CODECS),
    # Any media: what either slot takes (the bot's own results come back as H.264/AAC MP4).
    "": SlotRules(tuple(dict.fromkeys((*_VIDEO_FORMATS, *_AUDIO_FORMATS))), VIDEO_CODECS, SOUND_IN_VIDEO_CODECS),
}


def rules_for(slot: Slot) -> SlotRules:
    """The allow-lists for `slot`."""
    return _RULES[slot]


@dataclass(frozen=True)
class StreamHeader:
    """One stream as its container's headers describe it, before any decoding."""

    kind: str  # "video", "audio", "data", "subtitle", "attachment"
    codec: str | None  # FFmpeg's canonical codec name ("h264"), None when FFmpeg has no decoder
    width: int = 0
    height: int = 0
    cover_art: bool = False
    frames: int = 0  # the frame count the container's index claims (0: unknown)


@dataclass(frozen=True)
class HeaderRefusal:
    """Why a file's headers are refused: a catalogue code (without the slot suffix) and its data."""

    code: str
    data: dict[str, str | int]


def judge_headers(streams: list[StreamHeader], slot: Slot) -> HeaderRefusal | None:
    """The first limit or allow-list the headers break, or None when the file may be decoded."""
    counted = _count_refusal(streams)
    if counted is not None:
        return counted
    for stream in streams:
        refusal = _picture_refusal(stream) or _codec_refusal(stream, slot)
        if refusal is not None:
            return refusal
    return None


def _count_refusal(streams: list[StreamHeader]) -> HeaderRefusal | None:
    """Too many streams, or too many real video streams."""
    if len(streams) > MAX_STREAMS:
        return HeaderRefusal("too_many_streams", {"streams": len(streams), "limit": MAX_STREAMS})
    videos = [s for s in streams if s.kind == "video" and not s.cover_art]
    if len(videos) > MAX_VIDEO_STREAMS:
        return HeaderRefusal("too_many_video_streams", {"streams": len(videos), "limit": MAX_VIDEO_STREAMS})
    return None


def _picture_refusal(stream: StreamHeader) -> HeaderRefusal | None:
    """A video stream's frames too large, or a still picture posing as a video."""
    if stream.kind != "video":
        return None
    if max(stream.width, stream.height) > MAX_FRAME_SIDE:
        return HeaderRefusal(
            "frame_too_large", {"width": stream.width, "height": stream.height, "limit": MAX_FRAME_SIDE}
        )
    if not stream.cover_art and stream.codec in _PICTURE_CODECS and stream.frames <= 1:
        return HeaderRefusal("still_image", {})
    return None


def _codec_refusal(stream: StreamHeader, slot: Slot) -> HeaderRefusal | None:
    """A stream whose codec the slot doesn't decode."""
    allowed = _allowed_codecs(stream, slot)
    if allowed is None or stream.codec in allowed:
        return None
    return HeaderRefusal("unsupported_codec", {"codec": stream.codec or "unknown"})


def _allowed_codecs(stream: StreamHeader, slot: Slot) -> frozenset[str] | None:
    """The codecs a stream of this kind may have in this slot; None for a stream never decoded."""
    if stream.kind == "audio":
        return rules_for(slot).audio_codecs
    if stream.kind != "video":
        return None  # timecode, metadata and subtitle tracks
    if stream.cover_art:
        return COVER_ART_CODECS
    # A real video in the audio slot is refused later, with its own message.
    return VIDEO_CODECS if slot == "_audio" else rules_for(slot).video_codecs
