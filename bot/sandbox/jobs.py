"""Creating, rendering, finalising and cancelling lip-sync jobs, with the account's credits.

Billing: the estimate is debited at create. When a due job is finalised it settles to the frames
actually rendered (the account is credited or debited the difference); a job that ends in error,
or is canceled by DELETE while queued or rendering, is refunded in full and shows 0 credits.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from bot.config import GenerationMode
from bot.sandbox.billing import credits_per_frame, estimate_frames
from bot.sandbox.errors import RenderError
from bot.sandbox.output import Output, output_from_file, output_from_youtube
from bot.sandbox.projects import Project, Status
from bot.sandbox.state import SandboxState
from bot.sandbox.timefmt import iso, new_id

log = logging.getLogger(__name__)

_YOUTUBE_HOSTS = frozenset({"youtube.com", "www.youtube.com", "m.youtube.com", "youtu.be", "music.youtube.com"})


@dataclass(frozen=True)
class JobRequest:
    """A validated `POST /v1/lip-sync` body."""

    name: str | None
    start_seconds: float
    end_seconds: float
    max_fps_limit: float | None
    mode: GenerationMode
    video_source: str
    video_file_path: str | None
    youtube_url: str | None
    audio_file_path: str

    @property
    def estimate_frames(self) -> int:
        """Frames charged at create: the window at min(30, max_fps_limit) fps."""
        return estimate_frames(self.start_seconds, self.end_seconds, self.max_fps_limit)

    @property
    def estimate(self) -> int:
        """Credits debited at create."""
        return self.estimate_frames * credits_per_frame(self.mode)


def _is_url(value: str) -> bool:
    parsed = urlparse(value)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def _resolve(state: SandboxState, path: str, kind: str) -> Path:
    """The uploaded file behind `path`, or the job error the real API gives for a bad path."""
    stored = state.uploads.get(path)
    if stored is not None and stored.exists():
        return stored
    if _is_url(path):
        # The sandbox never fetches the internet, so a URL behaves like one that cannot be read.
        raise RenderError(f"invalid_{kind}_path", f"The {kind} URL could not be downloaded: {path}")
    raise RenderError(f"invalid_{kind}_path", f"The {kind} file was not found: {path}")


async def _render(state: SandboxState, project: Project) -> Output:
    audio = _resolve(state, project.audio_file_path, "audio")
    out = state.outputs_dir / project.output_name
    if project.video_source == "youtube":
        host = (urlparse(project.youtube_url or "").hostname or "").lower()
        if host not in _YOUTUBE_HOSTS:
            raise RenderError("invalid_youtube_url", f"Not a YouTube URL: {project.youtube_url}")
        return await output_from_youtube(
            audio,
            out,
            start=project.start_seconds,
            end=project.end_seconds,
            max_fps=project.max_fps_limit,
            source_fps=state.config.youtube_fps,
        )
    video = _resolve(state, project.video_file_path or "", "video")
    return await output_from_file(
        video, audio, out, start=project.start_seconds, end=project.end_seconds, max_fps=project.max_fps_limit
    )


async def _run(state: SandboxState, project: Project) -> Output | RenderError:
    """Render, turning every failure into a `RenderError` so no task exception goes unretrieved."""
    if project.job_error is not None:
        return RenderError(project.job_error.code, project.job_error.message)
    slots = state.render_slots
    try:
        if slots is None:
            return await _render(state, project)
        async with slots:
            return await _render(state, project)
    except RenderError as exc:
        return exc
    except Exception as exc:
        log.exception("sandbox render of %s failed", project.id)
        return RenderError("unknown_error", f"Rendering failed: {exc}")


def render_seconds(state: SandboxState, frames: int) -> float:
    """How long a job of `frames` (estimated) renders, by the config's timing settings."""
    config = state.config
    if config.render_seconds_per_frame <= 0:
        return config.render_seconds
    factor = 1.0
    if config.render_noise > 0:
        factor += state.render_rng.uniform(-config.render_noise, config.render_noise)
    return config.render_overhead_seconds + frames * config.render_seconds_per_frame * factor


def create_project(state: SandboxState, request: JobRequest) -> Project:
    """Debit the estimate, record the project and start its render; the caller has checked credits."""
    created_at = state.clock.now()
    estimate = math.ceil(request.estimate * state.config.create_surcharge)
    project = Project(
        id=new_id(),
        name=request.name if request.name is not None else f"Lip Sync - {iso(created_at)}",
        start_seconds=request.start_seconds,
        end_seconds=request.end_seconds,
        max_fps_limit=request.max_fps_limit,
        mode=request.mode,
        video_source=request.video_source,
        video_file_path=request.video_file_path,
        youtube_url=request.youtube_url,
        audio_file_path=request.audio_file_path,
        created_at=created_at,
        created_mono=state.clock.monotonic(),
        clock=state.clock,
        queue_seconds=state.config.queue_seconds,
        render_seconds=render_seconds(state, request.estimate_frames),
        estimate=estimate,
        credits_charged=estimate,
        job_error=state.faults.take_job_error(),
    )
    state.config.credits -= estimate
    state.projects[project.id] = project
    state.counters.jobs_created += 1
    start_render(state, project)
    state.changed()
    return project


def start_render(state: SandboxState, project: Project) -> None:
    """Render the project in the background (its status still follows the clock, not the task)."""
    task: asyncio.Task[Output | RenderError] = asyncio.create_task(_run(state, project))
    project.task = task
    state.tasks.add(task)
    task.add_done_callback(state.tasks.discard)


def _refund(state: SandboxState, project: Project) -> None:
    state.config.credits += project.credits_charged
    project.credits_charged = 0


async def finalise(state: SandboxState, project: Project) -> None:
    """Settle a due job: wait for its render, then mark it complete (settled) or error (refunded)."""
    async with project.finalise_lock:
        task = project.task
        if project.final_status is not None or task is None:
            return
        try:
            # Shielded: a GET cancelled by its client's disconnect must not cancel the render.
            outcome = await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and project.is_finalised() and not (current and current.cancelling()):
                return  # the job was canceled (DELETE, shutdown) while we waited; report that
            raise
        if project.is_finalised():  # canceled while we waited
            return
        if isinstance(outcome, RenderError):
            _refund(state, project)
            project.error = {"code": outcome.code, "message": outcome.message}
            project.final_status = Status.ERROR
        else:
            settled = project.settled_credits(outcome)
            state.config.credits -= settled - project.credits_charged
            project.credits_charged = settled
            project.result = outcome
            project.final_status = Status.COMPLETE
        state.changed()


def cancel(state: SandboxState, project: Project) -> None:
    """Cancel a queued or rendering job: stop its render and refund it in full."""
    if project.final_status is not None:
        return
    if project.task is not None:
        project.task.cancel()
    _refund(state, project)
    project.final_status = Status.CANCELED
    state.changed()


def delete(state: SandboxState, project: Project) -> None:
    """`DELETE`: cancel it if still running, disable it and remove its result file."""
    cancel(state, project)
    project.enabled = False
    if project.result is not None:
        project.result.path.unlink(missing_ok=True)
    state.changed()
