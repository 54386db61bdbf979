"""Request-body validation with the statuses and `{"message": ...}` texts the sandbox answers.

Schema problems (missing body or fields, wrong types, unknown enum values, out-of-range numbers)
are 400s; an extension not allowed for its asset type is a 422 naming it and the valid ones, as
the real upload-urls endpoint does.
"""

from __future__ import annotations

import json
import math
from typing import Any, NamedTuple

from bot.config import GenerationMode
from bot.sandbox.jobs import JobRequest

# What the real API accepts per asset type (OpenAPI / SDK 0.90 upload-urls docstring).
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "video": ("mp4", "m4v", "mov", "webm"),
    "audio": ("mp3", "wav", "aac", "flac", "webm", "weba", "m4a", "opus", "ogg", "oga", "aiff", "amr"),
    "image": ("png", "jpg", "jpeg", "jfif", "heic", "heif", "webp", "avif", "jp2", "tiff", "tif", "bmp"),
    "gif": ("gif", "webp", "webm"),
}
VIDEO_SOURCES = ("file", "youtube")
_REQUIRED_FIELDS = ("start_seconds", "end_seconds", "assets")
# The asset fields, in the order their types are checked; and the field each video source needs.
_ASSET_FIELDS = ("audio_file_path", "video_source", "video_file_path", "youtube_url")
_SOURCE_FIELD = {"file": "video_file_path", "youtube": "youtube_url"}
MAX_FRAMES = 120_000


class ApiError(Exception):
    """A request the API refuses: the HTTP status and the `message` to send."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_body(text: str) -> dict[str, Any]:
    """The JSON object in a request body, or a 400."""
    if not text.strip():
        raise ApiError(400, "Missing request body")
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise ApiError(400, "Invalid request body: not valid JSON") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "Invalid request body: expected a JSON object")
    return body


def _is_number(value: object) -> bool:
    # bool is an int subclass but not a JSON number; NaN/inf cannot come from strict JSON but guard anyway.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _number(body: dict[str, Any], key: str, where: str = "") -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if not _is_number(value):
        raise ApiError(400, f"Invalid type for {where}{key}: expected a number")
    return float(value)


def _string(body: dict[str, Any], key: str, where: str = "") -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"Invalid type for {where}{key}: expected a string")
    return value


def _object(body: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ApiError(400, f"Invalid type for {key}: expected an object")
    return value


def _enum(value: str, field: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ApiError(400, f"Invalid value for {field}: '{value}'. Expected one of: {', '.join(allowed)}")
    return value


def parse_upload_items(body: dict[str, Any]) -> list[tuple[str, str]]:
    """`(type, extension)` for each item of a `POST /v1/files/upload-urls` body, in order."""
    items = body.get("items")
    if items is None:
        raise ApiError(400, "Missing required field: items")
    if not isinstance(items, list):
        raise ApiError(400, "Invalid type for items: expected an array")
    if not items:
        raise ApiError(400, "items must contain at least 1 item")
    parsed: list[tuple[str, str]] = []
    for index, item in enumerate(items):
        where = f"items[{index}]."
        if not isinstance(item, dict):
            raise ApiError(400, f"Invalid type for items[{index}]: expected an object")
        kind = _string(item, "type", where)
        extension = _string(item, "extension", where)
        if kind is None:
            raise ApiError(400, f"Missing required field: {where}type")
        if extension is None:
            raise ApiError(400, f"Missing required field: {where}extension")
        _enum(kind, f"{where}type", tuple(EXTENSIONS))
        valid = EXTENSIONS[kind]
        if extension not in valid:
            raise ApiError(
                422,
                f"Invalid extension '{extension}' for {kind} file. Valid extensions are: {', '.join(valid)}",
            )
        parsed.append((kind, extension))
    return parsed


class _Assets(NamedTuple):
    """The files of a lip-sync request: the voice, and the video from one source."""

    audio: str
    source: str
    video_file_path: str | None
    youtube_url: str | None


def _parse_assets(assets: dict[str, Any]) -> _Assets:
    """The request's `assets`, with the field its video source needs, or the 400 the API gives."""
    fields = {key: _string(assets, key, "assets.") for key in _ASSET_FIELDS}
    audio, source = fields["audio_file_path"], fields["video_source"]
    if not audio:
        raise ApiError(400, "Missing required field: assets.audio_file_path")
    if source is None:
        raise ApiError(400, "Missing required field: assets.video_source")
    needed = _SOURCE_FIELD[_enum(source, "assets.video_source", VIDEO_SOURCES)]
    if not fields[needed]:
        raise ApiError(400, f"assets.{needed} is required when assets.video_source is '{source}'")
    # Only the chosen source's field is kept: the other may be sent, and is ignored.
    video, youtube = fields["video_file_path"], fields["youtube_url"]
    return _Assets(audio, source, video if source == "file" else None, youtube if source == "youtube" else None)


def _parse_mode(style: dict[str, Any]) -> GenerationMode:
    """The request's `style.generation_mode`, lite when absent."""
    text = _string(style, "generation_mode", "style.") or GenerationMode.LITE.value
    return GenerationMode(_enum(text, "style.generation_mode", tuple(m.value for m in GenerationMode)))


def _check_window(start: float, end: float, max_fps: float | None) -> None:
    """The 400 for the first number out of its range, in the order the API checks them."""
    ranges = (
        (start < 0, "start_seconds must be greater than or equal to 0"),
        (end < 0.1, "end_seconds must be greater than or equal to 0.1"),
        (end <= start, "end_seconds must be greater than start_seconds"),
        (max_fps is not None and max_fps < 1, "max_fps_limit must be greater than or equal to 1"),
    )
    for broken, message in ranges:
        if broken:
            raise ApiError(400, message)


def parse_lip_sync(body: dict[str, Any]) -> JobRequest:
    """A `JobRequest` from a `POST /v1/lip-sync` body, or the 400 the API gives.

    Checked in the API's order: required fields, types, the assets, the mode, then the ranges.
    """
    for key in _REQUIRED_FIELDS:
        if body.get(key) is None:
            raise ApiError(400, f"Missing required field: {key}")
    start, end = _number(body, "start_seconds"), _number(body, "end_seconds")
    assert start is not None and end is not None  # checked present just above
    max_fps = _number(body, "max_fps_limit")
    name = _string(body, "name")
    assets = _object(body, "assets")
    assert assets is not None
    style = _object(body, "style") or {}
    files = _parse_assets(assets)
    mode = _parse_mode(style)
    _check_window(start, end, max_fps)
    return JobRequest(
        name=name,
        start_seconds=start,
        end_seconds=end,
        max_fps_limit=max_fps,
        mode=mode,
        video_source=files.source,
        video_file_path=files.video_file_path,
        youtube_url=files.youtube_url,
        audio_file_path=files.audio,
    )
