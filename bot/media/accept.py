"""What the bot agrees to open: containers, codecs, stream counts and frame sizes, per slot.

Members write the files, and FFmpeg can read hundreds of formats, each a parser an attacker can
aim at. So only what Magic Hour takes and what phones, cameras and Discord clients really produce
is ever opened (FFmpeg's own `format_whitelist` and `codec_whitelist` enforce it, so no other
demuxer or decoder even runs), and every size is read from the headers before anything is decoded:

- **Video slot**: MP4/MOV (ISO BMFF) or WebM/Matroska; video in H.264, HEVC, VP8, VP9, AV1 or
  MPEG-4 Part 2; its sound (ignored) in the usual audio codecs.
- **Audio slot**: MP3, M4A/AAC, WAV, OGG/Opus, FLAC, AIFF, AMR or WebM; MP3, AAC, Opus, Vorbis,
  FLAC, ALAC, AMR or PCM. Cover art (a JPEG or PNG picture flagged `attached_pic`) may come along.

Limits. Magic Hour documents no largest frame (its free plan renders at most 576 px, higher plans
"HD and larger"), so the bot takes what a phone records: at most `MAX_FRAME_SIDE` (4096) pixels a
side, which covers 4K in either orientation. At most `MAX_STREAMS` streams in a file (a phone's MOV
carries a handful: video, sound, timecode and metadata tracks) and at most `MAX_VIDEO_STREAMS`
real video streams (cinematic modes add a depth track). A file past any of them is refused with a
message saying which limit, before anything is decoded. The catalogue's words tell the member
what each slot takes (`unsupported_format_video`, `unsupported_codec_audio`, ...).
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
    rules = rules_for(slot)
    if len(streams) > MAX_STREAMS:
        return HeaderRefusal("too_many_streams", {"streams": len(streams), "limit": MAX_STREAMS})
    videos = [s for s in streams if s.kind == "video" and not s.cover_art]
    if len(videos) > MAX_VIDEO_STREAMS:
        return HeaderRefusal("too_many_video_streams", {"streams": len(videos), "limit": MAX_VIDEO_STREAMS})
    for stream in streams:
        if stream.kind == "video":
            if max(stream.width, stream.height) > MAX_FRAME_SIDE:
                return HeaderRefusal(
                    "frame_too_large", {"width": stream.width, "height": stream.height, "limit": MAX_FRAME_SIDE}
                )
            if not stream.cover_art and stream.codec in _PICTURE_CODECS and stream.frames <= 1:
                return HeaderRefusal("still_image", {})
            allowed = COVER_ART_CODECS if stream.cover_art else rules.video_codecs
            # A real video in the audio slot is refused later, with its own message.
            if slot == "_audio" and not stream.cover_art:
                allowed = VIDEO_CODECS
        elif stream.kind == "audio":
            allowed = rules.audio_codecs
        else:
            continue  # timecode, metadata and subtitle tracks are never decoded
        if stream.codec not in allowed:
            return HeaderRefusal("unsupported_codec", {"codec": stream.codec or "unknown"})
    return None
