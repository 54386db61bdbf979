"""A sandbox that outlives its process: its account, uploads and projects kept in its data folder.

A terminal trial (`render --sandbox`) runs its sandbox inside the command, so without this a job
left running by Ctrl+C would point at a project no later sandbox knows: `resume --sandbox` could
only wait for a deadline. With a journal, the next sandbox on the same folder reads the projects
back and they carry on by the clock as if it had never stopped (a render whose time has passed
is rendered again from the kept uploads when it is next read: the sandbox's render is
deterministic, so the result is the same file).

The journal is one JSON file, rewritten after every change (an upload, a create, a project that
ends or is deleted): small, and a killed process loses at most the change it was making. Projects
older than `KEEP_SECONDS` are dropped when it is read, with their files.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
from pathlib import Path
from typing import Any

from bot.config import GenerationMode
from bot.sandbox.output import Output
from bot.sandbox.projects import Project, Status
from bot.sandbox.state import SandboxState

log = logging.getLogger(__name__)

JOURNAL_NAME = "sandbox.json"
KEEP_SECONDS = 7 * 24 * 3600.0  # as long as Magic Hour keeps uploaded files
_VERSION = 1


def journal_path(data_dir: Path) -> Path:
    """Where a sandbox on `data_dir` keeps its journal."""
    return data_dir / JOURNAL_NAME


def _project_json(project: Project) -> dict[str, Any]:
    result = project.result
    return {
        "id": project.id,
        "name": project.name,
        "start_seconds": project.start_seconds,
        "end_seconds": project.end_seconds,
        "max_fps_limit": project.max_fps_limit,
        "mode": project.mode.value,
        "video_source": project.video_source,
        "video_file_path": project.video_file_path,
        "youtube_url": project.youtube_url,
        "audio_file_path": project.audio_file_path,
        "created_at": project.created_at.isoformat(),
        "queue_seconds": project.queue_seconds,
        "render_seconds": project.render_seconds,
        "estimate": project.estimate,
        "credits_charged": project.credits_charged,
        "final_status": None if project.final_status is None else project.final_status.value,
        "error": project.error,
        "enabled": project.enabled,
        "result": None
        if result is None
        else {
            "path": result.path.name,
            "width": result.width,
            "height": result.height,
            "fps": result.fps,
            "seconds": result.seconds,
            "frames": result.frames,
        },
    }


def save(state: SandboxState) -> None:
    """Write the journal (atomically: a reader sees the old file or the new one, never half)."""
    data = {
        "version": _VERSION,
        "account_id": state.account_id,
        "credits": state.config.credits,
        "uploads": sorted(state.uploads),  # each is stored at uploads_dir / file_path
        "projects": [_project_json(project) for project in state.projects.values()],
    }
    target = journal_path(state.data_dir)
    part = target.with_suffix(".part")
    part.write_text(json.dumps(data, indent=1))
    os.replace(part, target)


def _project(state: SandboxState, raw: dict[str, Any]) -> Project:
    now_wall, now_mono = state.clock.now(), state.clock.monotonic()
    created_at = dt.datetime.fromisoformat(raw["created_at"])
    result = raw["result"]
    return Project(
        id=raw["id"],
        name=raw["name"],
        start_seconds=raw["start_seconds"],
        end_seconds=raw["end_seconds"],
        max_fps_limit=raw["max_fps_limit"],
        mode=GenerationMode(raw["mode"]),
        video_source=raw["video_source"],
        video_file_path=raw["video_file_path"],
        youtube_url=raw["youtube_url"],
        audio_file_path=raw["audio_file_path"],
        created_at=created_at,
        # Its age by the wall clock, on this process's monotonic clock.
        created_mono=now_mono - (now_wall - created_at).total_seconds(),
        clock=state.clock,
        queue_seconds=raw["queue_seconds"],
        render_seconds=raw["render_seconds"],
        estimate=raw["estimate"],
        credits_charged=raw["credits_charged"],
        final_status=None if raw["final_status"] is None else Status(raw["final_status"]),
        error=raw["error"],
        enabled=raw["enabled"],
        result=None if result is None else Output(**{**result, "path": state.outputs_dir / result["path"]}),
    )


def load(state: SandboxState) -> list[Project]:
    """Read the journal into `state`, if there is one; return the projects still to render."""
    path = journal_path(state.data_dir)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        log.warning("sandbox: ignoring an unreadable journal %s (%s)", path, exc)
        return []
    if data.get("version") != _VERSION:
        return []
    state.account_id = data["account_id"]
    state.config.credits = data["credits"]
    state.uploads.update({file_path: (state.uploads_dir / file_path).resolve() for file_path in data["uploads"]})
    oldest = state.clock.now() - dt.timedelta(seconds=KEEP_SECONDS)
    to_render: list[Project] = []
    for raw in data["projects"]:
        project = _project(state, raw)
        if project.created_at < oldest:
            _forget(state, project)
            continue
        state.projects[project.id] = project
        if project.final_status is None:
            to_render.append(project)
    return to_render


def _forget(state: SandboxState, project: Project) -> None:
    for file_path in (project.video_file_path, project.audio_file_path):
        stored = state.uploads.pop(file_path or "", None)
        if stored is not None:
            with contextlib.suppress(OSError):
                stored.unlink()
    if project.result is not None:
        with contextlib.suppress(OSError):
            project.result.path.unlink()
