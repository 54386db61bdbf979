"""Request-body validation with the statuses and `{"message": ...}` texts the sandbox answers.

Schema problems (missing body or fields, wrong types, unknown enum values, out-of-range numbers)
are 400s; an extension not allowed for its asset type is a 422 naming it and the valid ones, as
the real upload-urls endpoint does.
"""

from __future__ import annotations

import json
import math
from typing import Any

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


def parse_lip_sync(body: dict[str, Any]) -> JobRequest:
    """A `JobRequest` from a `POST /v1/lip-sync` body, or the 400 the API gives."""
    for key in ("start_seconds", "end_seconds", "assets"):
        if body.get(key) is None:
            raise ApiError(400, f"Missing required field: {key}")
    start = _number(body, "start_seconds")
    end = _number(body, "end_seconds")
    assert start is not None and end is not None  # checked present just above
    max_fps = _number(body, "max_fps_limit")
    name = _string(body, "name")
    assets = _object(body, "assets")
    assert assets is not None
    style = _object(body, "style") or {}

    audio = _string(assets, "audio_file_path", "assets.")
    source = _string(assets, "video_source", "assets.")
    video = _string(assets, "video_file_path", "assets.")
    youtube = _string(assets, "youtube_url", "assets.")
    if not audio:
        raise ApiError(400, "Missing required field: assets.audio_file_path")
    if source is None:
        raise ApiError(400, "Missing required field: assets.video_source")
    _enum(source, "assets.video_source", VIDEO_SOURCES)
    if source == "file" and not video:
        raise ApiError(400, "assets.video_file_path is required when assets.video_source is 'file'")
    if source == "youtube" and not youtube:
        raise ApiError(400, "assets.youtube_url is required when assets.video_source is 'youtube'")

    mode_text = _string(style, "generation_mode", "style.") or GenerationMode.LITE.value
    _enum(mode_text, "style.generation_mode", tuple(m.value for m in GenerationMode))

    if start < 0:
        raise ApiError(400, "start_seconds must be greater than or equal to 0")
    if end < 0.1:
        raise ApiError(400, "end_seconds must be greater than or equal to 0.1")
    if end <= start:
        raise ApiError(400, "end_seconds must be greater than start_seconds")
    if max_fps is not None and max_fps < 1:
        raise ApiError(400, "max_fps_limit must be greater than or equal to 1")

    return JobRequest(
        name=name,
        start_seconds=start,
        end_seconds=end,
        max_fps_limit=max_fps,
        mode=GenerationMode(mode_text),
        video_source=source,
        video_file_path=video if source == "file" else None,
        youtube_url=youtube if source == "youtube" else None,
        audio_file_path=audio,
    )
