"""A lip-sync project as the sandbox keeps it, its billing, and how its status follows the clock.

Status is computed from the sandbox clock whenever someone looks: `queued` for the job's
`queue_seconds`, then `rendering` for its `render_seconds`, then due. A due job becomes
`complete` or `error` only when a handler finalises it (awaiting the render task), so nothing
runs on timers and a `FakeClock` decides every transition.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bot.clock import Clock
from bot.config import GenerationMode
from bot.sandbox.billing import ESTIMATE_FPS, capped, credits_per_frame
from bot.sandbox.errors import RenderError
from bot.sandbox.faults import JobErrorFault
from bot.sandbox.output import Output
from bot.sandbox.timefmt import iso


class Status(StrEnum):
    """Project statuses the sandbox reports."""

    QUEUED = "queued"
    RENDERING = "rendering"
    COMPLETE = "complete"
    ERROR = "error"
    CANCELED = "canceled"


TERMINAL = frozenset({Status.COMPLETE, Status.ERROR, Status.CANCELED})


@dataclass(frozen=True)
class ReadNote:
    """What a client was last told about a project (`Project.last_read`): its status, and when (sandbox clock)."""

    status: str
    at: float


@dataclass(frozen=True)
class DeleteNote:
    """One DELETE that reached a project (`Sandbox.deletes`), for tests to hold a client to.

    `found`: the project's status when the DELETE arrived (a render the clock says has finished
    counts as `complete`: the DELETE destroyed a paid result). `last_read`: what the client had
    last been told about it before sending the DELETE (None: it never read it).
    """

    project_id: str
    at: float
    found: str
    last_read: ReadNote | None


@dataclass
class Project:
    """One lip-sync job held by the sandbox (`sb.projects[id]`)."""

    id: str
    name: str
    start_seconds: float
    end_seconds: float
    max_fps_limit: float | None
    mode: GenerationMode
    video_source: str
    video_file_path: str | None
    youtube_url: str | None
    audio_file_path: str
    created_at: dt.datetime
    created_mono: float
    clock: Clock = field(repr=False)
    queue_seconds: float = 0.0
    render_seconds: float = 0.0
    estimate: int = 0
    credits_charged: int = 0
    job_error: JobErrorFault | None = None
    task: asyncio.Task[Output | RenderError] | None = None
    final_status: Status | None = None
    error: dict[str, str] | None = None
    result: Output | None = None
    enabled: bool = True
    last_read: ReadNote | None = None
    finalise_lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    def status_at(self, now_mono: float) -> Status:
        """The status at this clock reading; a due job reads `rendering` until it is finalised."""
        if self.final_status is not None:
            return self.final_status
        elapsed = now_mono - self.created_mono
        if elapsed < self.queue_seconds:
            return Status.QUEUED
        return Status.RENDERING

    def is_finalised(self) -> bool:
        """Whether the job has reached complete, error or canceled."""
        return self.final_status is not None

    def is_due(self, now_mono: float) -> bool:
        """Whether the clock says the job has finished but it has not been finalised yet."""
        return self.final_status is None and now_mono - self.created_mono >= self.queue_seconds + self.render_seconds

    @property
    def status(self) -> Status:
        """The status now, by the sandbox clock (a due job reads `rendering` until a GET finalises it)."""
        return self.status_at(self.clock.monotonic())

    @property
    def output_name(self) -> str:
        """The result file's name (what the SDK saves it as)."""
        return f"sandbox-{self.id}.mp4"

    def settled_credits(self, result: Output) -> int:
        """What a finished render costs: the frames actually rendered times the mode's rate."""
        return result.frames * credits_per_frame(self.mode)

    def to_json(self, now_mono: float, downloads: list[dict[str, str]]) -> dict[str, Any]:
        """The project as `GET /v1/video-projects/{id}` returns it."""
        status = self.status_at(now_mono)
        if self.result is not None and status is Status.COMPLETE:
            width, height, fps = self.result.width, self.result.height, self.result.fps
        else:
            # Not rendered yet: the estimate's fps and "ignore me" dimensions, as the API documents.
            width = height = -1
            fps = float(capped(ESTIMATE_FPS, self.max_fps_limit))
        return {
            "id": self.id,
            "name": self.name,
            "status": status.value,
            "type": "LIP_SYNC",
            "created_at": iso(self.created_at),
            "width": width,
            "height": height,
            "enabled": self.enabled,
            "start_seconds": self.start_seconds,
            "end_seconds": self.end_seconds,
            "fps": fps,
            "credits_charged": self.credits_charged,
            "total_frame_cost": self.credits_charged,
            "error": self.error,
            "downloads": downloads,
            "download": downloads[0] if downloads else None,
        }
