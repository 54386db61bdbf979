"""Cheap checks of a request, before anything is fetched, reserved or spent.

Everything here is pure: no I/O. Each failure is an `InvalidInput` whose message tells the
member exactly what to fix.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import PurePosixPath

from bot.errors import InvalidInput
from bot.jobs.models import GuildRules, InputSource, JobRequest
from bot.jobs.youtube import canonical_youtube_url

# The extensions Magic Hour accepts for each slot (API reference, "Extensions").
VIDEO_EXTENSIONS = frozenset({"mp4", "m4v", "mov", "webm"})
AUDIO_EXTENSIONS = frozenset({"mp3", "wav", "aac", "flac", "webm", "weba", "m4a", "opus", "ogg", "oga", "aiff", "amr"})
MAX_NAME_LENGTH = 100
MAX_FPS_LIMIT = 60.0
# Magic Hour renders nothing shorter (its API reference: `end_seconds >= 0.1`); a shorter clip
# would be uploaded and then fail at Magic Hour, so it is refused before anything is sent.
MIN_CLIP_SECONDS = 0.1
_MIN_CLIP = Fraction(1, 10)


def extension_of(filename: str) -> str:
    """The lower-case extension without its dot ("" when there is none)."""
    return PurePosixPath(filename).suffix.lower().lstrip(".")


def check_video_source(source: InputSource, rules: GuildRules) -> str:
    """Check the video slot's name, type and size; return its extension."""
    ext = extension_of(source.filename)
    if ext in AUDIO_EXTENSIONS - VIDEO_EXTENSIONS or (source.content_type or "").startswith("audio/"):
        raise InvalidInput("video_is_audio", filename=source.filename, allowed=", ".join(sorted(VIDEO_EXTENSIONS)))
    if ext not in VIDEO_EXTENSIONS:
        raise InvalidInput("bad_video_type", filename=source.filename, allowed=", ".join(sorted(VIDEO_EXTENSIONS)))
    _check_content_type(source, ("video/",), "video")
    _check_size(source, rules)
    return ext


def check_audio_source(source: InputSource, rules: GuildRules) -> str:
    """Check the audio slot's name, type and size; return its extension."""
    ext = extension_of(source.filename)
    if ext in VIDEO_EXTENSIONS - AUDIO_EXTENSIONS or (source.content_type or "").startswith("image/"):
        raise InvalidInput("audio_is_video", filename=source.filename, allowed=", ".join(sorted(AUDIO_EXTENSIONS)))
    if ext not in AUDIO_EXTENSIONS:
        raise InvalidInput("bad_audio_type", filename=source.filename, allowed=", ".join(sorted(AUDIO_EXTENSIONS)))
    # webm and ogg containers are often labelled video/...; only a clearly wrong family is refused.
    _check_content_type(source, ("audio/", "video/webm", "video/ogg", "application/ogg"), "audio")
    _check_size(source, rules)
    return ext


def _check_content_type(source: InputSource, allowed_prefixes: tuple[str, ...], slot: str) -> None:
    content_type = (source.content_type or "").split(";")[0].strip().lower()
    if not content_type or content_type == "application/octet-stream":
        return  # unknown: the probe after fetching decides
    if not content_type.startswith(allowed_prefixes):
        raise InvalidInput(f"{slot}_content_type", filename=source.filename, content_type=content_type)


def _check_size(source: InputSource, rules: GuildRules) -> None:
    if source.path is not None and not source.path.is_file():
        # A local file (the terminal) that isn't there: refused before any job exists, like an empty one.
        raise InvalidInput("missing_file", filename=source.filename)
    if source.size is None:
        return
    if source.size == 0:
        raise InvalidInput("empty_file", filename=source.filename)
    if source.size > rules.max_input_bytes:
        raise InvalidInput("file_too_large", filename=source.filename, size=source.size, limit=rules.max_input_bytes)


def _as_sent(seconds: float) -> Fraction:
    # The decimal Magic Hour reads: JSON writes a float's shortest repr, and it is that number
    # (not the binary float) whose difference must reach 0.1 s.
    return Fraction(repr(seconds))


def check_clip_length(start: float, end: float, rules: GuildRules) -> None:
    """The one rule on a clip's length, applied to the asked window and again to the probed one:
    at most the server's longest clip, and at least what Magic Hour renders (to the digit sent)."""
    length = end - start
    if length > rules.max_clip_seconds + 1e-6:
        raise InvalidInput("clip_too_long", length=length, limit=rules.max_clip_seconds)
    if _as_sent(end) - _as_sent(start) < _MIN_CLIP:
        raise InvalidInput("clip_too_short", length=length, minimum=MIN_CLIP_SECONDS)


def check_renderable(seconds: float) -> None:
    """Refuse a voice Magic Hour can't render: under `MIN_CLIP_SECONDS` (it drives the output)."""
    if _as_sent(seconds) < _MIN_CLIP:
        raise InvalidInput("clip_too_short", length=seconds, minimum=MIN_CLIP_SECONDS)


def check_window(request: JobRequest, rules: GuildRules) -> None:
    """Check start/end and the clip length against the server's longest clip."""
    start, end = request.start, request.end
    if not math.isfinite(start) or start < 0:
        raise InvalidInput("bad_start")
    if end is not None:
        if not math.isfinite(end) or end <= start:
            raise InvalidInput("end_before_start", start=start, end=end)
        if end < 0.1:
            raise InvalidInput("bad_end")
        check_clip_length(start, end, rules)
    elif request.youtube_url is not None:
        raise InvalidInput("youtube_needs_end")


def check_request(request: JobRequest, rules: GuildRules) -> None:
    """Every cheap check, in the order a member would want to hear about them."""
    if request.video is not None and request.youtube_url is not None:
        raise InvalidInput("video_and_youtube")
    if request.video is None and request.youtube_url is None:
        raise InvalidInput("no_video")
    if request.video is not None:
        check_video_source(request.video, rules)
    if request.youtube_url is not None:
        canonical_youtube_url(request.youtube_url)
    check_audio_source(request.audio, rules)
    check_window(request, rules)
    if request.mode not in rules.allowed_modes:
        allowed = ", ".join(m.value for m in rules.allowed_modes) or "none"
        raise InvalidInput("mode_not_allowed", mode=request.mode.value, allowed=allowed)
    if request.max_fps is not None and not (1 <= request.max_fps <= MAX_FPS_LIMIT):
        raise InvalidInput("bad_max_fps", limit=MAX_FPS_LIMIT)
    if request.name is not None and len(request.name) > MAX_NAME_LENGTH:
        raise InvalidInput("name_too_long", limit=MAX_NAME_LENGTH)
