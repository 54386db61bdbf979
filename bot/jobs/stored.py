"""A queued job's request, kept in the database so that whichever process has a free slot can run it.

Only what the job needs to start is kept: its inputs (a Discord attachment's link and what Discord
said about it, or a local file for a command-line job), its options, the member's roles, and where
its status message is. The process that runs it fetches the links under the rules every fetch
follows (`bot.jobs.fetch`: https on Discord's CDN only, each redirect checked again), and the store
drops the stored copy when the job leaves the queue (`JobStore.transition`).

A local path is taken back only for a command-line job (no server): a server's job read from the
database may name links only, so no row can make the bot read a file from its own disk. The
member and server are the job row's, never the stored copy's.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from bot.config import GenerationMode
from bot.jobs.models import InputSource, JobRequest, ReusedFiles
from bot.store import JobRecord

_VERSION = 1


class BadStoredRequest(ValueError):
    """A stored request that can't be run as it is (another version's, or one that breaks the rules above)."""


def dump_request(request: JobRequest) -> str:
    """The request as the store keeps it (JSON)."""
    reuse = request.reuse
    return json.dumps(
        {
            "version": _VERSION,
            "audio": _source(request.audio),
            "video": _source(request.video) if request.video is not None else None,
            "youtube_url": request.youtube_url,
            "start": request.start,
            "end": request.end,
            "mode": request.mode.value,
            "max_fps": request.max_fps,
            "name": request.name,
            "channel_id": request.channel_id,
            "role_ids": list(request.role_ids),
            "status_channel_id": request.status_channel_id,
            "status_message_id": request.status_message_id,
            "locale": request.locale,
            "reuse": None
            if reuse is None
            else {
                "from_job": reuse.from_job,
                "audio_file_path": reuse.audio_file_path,
                "video_file_path": reuse.video_file_path,
                "uploaded_at": reuse.uploaded_at.isoformat(),
                "audio_seconds": reuse.audio_seconds,
                "video_seconds": reuse.video_seconds,
                "source_fps": reuse.source_fps,
            },
        },
        separators=(",", ":"),
    )


def load_request(text: str, record: JobRecord) -> JobRequest:
    """The stored request of `record`'s job, checked; `BadStoredRequest` if it can't be run."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("version") != _VERSION:
            raise BadStoredRequest("a stored request of another version")
        local_files = record.guild_id is None
        video = data["video"]
        reuse = data["reuse"]
        return JobRequest(
            user_id=record.user_id,
            guild_id=record.guild_id,
            audio=_input(data["audio"], local_files),
            video=None if video is None else _input(video, local_files),
            youtube_url=_optional(data["youtube_url"], str),
            start=float(data["start"]),
            end=None if data["end"] is None else float(data["end"]),
            mode=GenerationMode(data["mode"]),
            max_fps=None if data["max_fps"] is None else float(data["max_fps"]),
            name=_optional(data["name"], str),
            channel_id=_optional(data["channel_id"], int),
            role_ids=tuple(int(role) for role in data["role_ids"]),
            status_channel_id=_optional(data["status_channel_id"], int),
            status_message_id=_optional(data["status_message_id"], int),
            locale=_optional(data["locale"], str),
            reuse=None if reuse is None else _reuse(reuse),
        )
    except BadStoredRequest:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise BadStoredRequest(f"a stored request that doesn't parse ({type(exc).__name__})") from exc


def _source(source: InputSource) -> dict[str, object]:
    return {
        "filename": source.filename,
        "size": source.size,
        "content_type": source.content_type,
        "url": source.url,
        "path": None if source.path is None else str(source.path),
    }


def _input(data: dict[str, Any], local_files: bool) -> InputSource:
    path = data["path"]
    if path is not None and not local_files:
        raise BadStoredRequest("a server's job may not name a local file")
    url = _optional(data["url"], str)
    if (url is None) == (path is None):
        raise BadStoredRequest("an input needs exactly one of a link and a local file")
    return InputSource(
        filename=str(data["filename"]),
        size=_optional(data["size"], int),
        content_type=_optional(data["content_type"], str),
        url=url,
        path=None if path is None else Path(str(path)),
    )


def _reuse(data: dict[str, Any]) -> ReusedFiles:
    uploaded_at = dt.datetime.fromisoformat(str(data["uploaded_at"]))
    if uploaded_at.tzinfo is None:
        raise BadStoredRequest("an upload time without its time zone")
    return ReusedFiles(
        from_job=int(data["from_job"]),
        audio_file_path=str(data["audio_file_path"]),
        video_file_path=_optional(data["video_file_path"], str),
        uploaded_at=uploaded_at,
        audio_seconds=None if data["audio_seconds"] is None else float(data["audio_seconds"]),
        video_seconds=None if data["video_seconds"] is None else float(data["video_seconds"]),
        source_fps=None if data["source_fps"] is None else float(data["source_fps"]),
    )


def _optional(value: object, kind: type[Any]) -> Any:  # noqa: ANN401 - the kind asked for, or None
    if value is None:
        return None
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise BadStoredRequest(f"expected a whole number, got {type(value).__name__}")
    if kind is str and not isinstance(value, str):
        raise BadStoredRequest(f"expected text, got {type(value).__name__}")
    return value
