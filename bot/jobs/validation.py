"""Cheap checks of a request, before anything is fetched, reserved or spent.

Everything here is pure: no I/O. Each failure is an `InvalidInput` whose message tells the
member exactly what to fix.
"""

from __future__ import annotations

import math
import re
from pathlib import PurePosixPath
from urllib.parse import parse_qs, urlsplit

from bot.errors import InvalidInput
from bot.jobs.models import GuildRules, InputSource, JobRequest

# The extensions Magic Hour accepts for each slot (API reference, "Extensions").
VIDEO_EXTENSIONS = frozenset({"mp4", "m4v", "mov", "webm"})
AUDIO_EXTENSIONS = frozenset({"mp3", "wav", "aac", "flac", "webm", "weba", "m4a", "opus", "ogg", "oga", "aiff", "amr"})
YOUTUBE_HOSTS = frozenset(
    {"youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com", "youtu.be", "www.youtu.be"}
)
_YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
MAX_NAME_LENGTH = 100
MAX_FPS_LIMIT = 60.0


def extension_of(filename: str) -> str:
    """The lower-case extension without its dot ("" when there is none)."""
    return PurePosixPath(filename).suffix.lower().lstrip(".")


def human_size(size: int) -> str:
    """Bytes as a short human-readable size."""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"  # pragma: no cover - the loop always returns


def check_video_source(source: InputSource, rules: GuildRules) -> str:
    """Check the video slot's name, type and size; return its extension."""
    ext = extension_of(source.filename)
    if ext in AUDIO_EXTENSIONS - VIDEO_EXTENSIONS or (source.content_type or "").startswith("audio/"):
        raise InvalidInput(
            f"`{source.filename}` is an audio file, but the `video` option needs a video of a face "
            f"({', '.join(sorted(VIDEO_EXTENSIONS))}). Put the audio in the `audio` option.",
            code="video_is_audio",
        )
    if ext not in VIDEO_EXTENSIONS:
        raise InvalidInput(
            f"`{source.filename}` isn't a video Magic Hour can use. "
            f"Send one of: {', '.join(sorted(VIDEO_EXTENSIONS))}.",
            code="bad_video_type",
        )
    _check_content_type(source, ("video/",), "video")
    _check_size(source, rules)
    return ext


def check_audio_source(source: InputSource, rules: GuildRules) -> str:
    """Check the audio slot's name, type and size; return its extension."""
    ext = extension_of(source.filename)
    if ext in VIDEO_EXTENSIONS - AUDIO_EXTENSIONS or (source.content_type or "").startswith("image/"):
        raise InvalidInput(
            f"`{source.filename}` isn't an audio file: the `audio` option needs the voice to sync to "
            f"({', '.join(sorted(AUDIO_EXTENSIONS))}).",
            code="audio_is_video",
        )
    if ext not in AUDIO_EXTENSIONS:
        raise InvalidInput(
            f"`{source.filename}` isn't an audio file Magic Hour can use. "
            f"Send one of: {', '.join(sorted(AUDIO_EXTENSIONS))}.",
            code="bad_audio_type",
        )
    # webm and ogg containers are often labelled video/...; only a clearly wrong family is refused.
    _check_content_type(source, ("audio/", "video/webm", "video/ogg", "application/ogg"), "audio")
    _check_size(source, rules)
    return ext


def _check_content_type(source: InputSource, allowed_prefixes: tuple[str, ...], slot: str) -> None:
    content_type = (source.content_type or "").split(";")[0].strip().lower()
    if not content_type or content_type == "application/octet-stream":
        return  # unknown: the probe after fetching decides
    if not content_type.startswith(allowed_prefixes):
        raise InvalidInput(
            f"`{source.filename}` is named like {slot} but Discord says it is `{content_type}`. "
            f"Please send a real {slot} file.",
            code=f"{slot}_content_type",
        )


def _check_size(source: InputSource, rules: GuildRules) -> None:
    if source.size is None:
        return
    if source.size == 0:
        raise InvalidInput(f"`{source.filename}` is empty.", code="empty_file")
    if source.size > rules.max_input_bytes:
        raise InvalidInput(
            f"`{source.filename}` is {human_size(source.size)}; the largest file this bot accepts is "
            f"{human_size(rules.max_input_bytes)}. Trim or compress it and try again.",
            code="file_too_large",
        )


def check_youtube_url(url: str) -> str:
    """Check a YouTube link's shape and host; return it normalised (stripped)."""
    url = url.strip()
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or host not in YOUTUBE_HOSTS:
        raise InvalidInput(
            "That link isn't a YouTube link. Use a `youtube.com/watch?v=…`, `youtube.com/shorts/…` or "
            "`youtu.be/…` link, or attach the video file instead.",
            code="youtube_host",
        )
    video_id = _youtube_id(host, parts.path, parts.query)
    if video_id is None or not _YOUTUBE_ID.match(video_id):
        raise InvalidInput(
            "That YouTube link doesn't point at a video. Copy the link from the video's Share button.",
            code="youtube_shape",
        )
    return url


def _youtube_id(host: str, path: str, query: str) -> str | None:
    segments = [s for s in path.split("/") if s]
    if host.endswith("youtu.be"):
        return segments[0] if segments else None
    if segments[:1] == ["watch"]:
        values = parse_qs(query).get("v")
        return values[0] if values else None
    if len(segments) >= 2 and segments[0] in ("shorts", "embed", "live", "v"):
        return segments[1]
    return None


def check_window(request: JobRequest, rules: GuildRules) -> None:
    """Check start/end and the clip length against the server's longest clip."""
    start, end = request.start, request.end
    if not math.isfinite(start) or start < 0:
        raise InvalidInput("`start` must be 0 seconds or later.", code="bad_start")
    if end is not None:
        if not math.isfinite(end) or end <= start:
            raise InvalidInput(
                f"`end` ({end:g} s) must be after `start` ({start:g} s).",
                code="end_before_start",
            )
        if end < 0.1:
            raise InvalidInput("`end` must be at least 0.1 seconds.", code="bad_end")
        length = end - start
        if length > rules.max_clip_seconds + 1e-9:
            raise InvalidInput(
                f"That clip is {length:g} s long; the longest clip allowed here is "
                f"{rules.max_clip_seconds:g} s. Choose a shorter `start`–`end` window.",
                code="clip_too_long",
            )
    elif request.youtube_url is not None:
        raise InvalidInput(
            "With a YouTube link, set `end` (and optionally `start`) to choose the part to lip-sync.",
            code="youtube_needs_end",
        )


def check_request(request: JobRequest, rules: GuildRules) -> None:
    """Every cheap check, in the order a member would want to hear about them."""
    if (request.video is None) == (request.youtube_url is None):
        raise InvalidInput(
            "Give either a `video` attachment or a `youtube_url`, not both and not neither.",
            code="video_xor_youtube",
        )
    if request.video is not None:
        check_video_source(request.video, rules)
    if request.youtube_url is not None:
        check_youtube_url(request.youtube_url)
    check_audio_source(request.audio, rules)
    check_window(request, rules)
    if request.mode not in rules.allowed_modes:
        allowed = ", ".join(m.value for m in rules.allowed_modes) or "none"
        raise InvalidInput(
            f"The `{request.mode.value}` mode isn't enabled on this server. Allowed here: {allowed}.",
            code="mode_not_allowed",
        )
    if request.max_fps is not None and not (1 <= request.max_fps <= MAX_FPS_LIMIT):
        raise InvalidInput(
            f"`max_fps` must be between 1 and {MAX_FPS_LIMIT:g}.",
            code="bad_max_fps",
        )
    if request.name is not None and len(request.name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"`name` can be at most {MAX_NAME_LENGTH} characters.", code="name_too_long")
