"""A job's inputs: fetch the member's files, check they are what they claim, and price the job.

What comes out is a `Plan`: the exact window and the credits to set aside. The price follows what
Magic Hour bills, counted so that a crafted file can't lower it (`bot.media.billing_fps`), and
never less than what Magic Hour holds when the job is queued (an estimate at 30 fps). The plan also
keeps what probing found (lengths, a constant frame rate), so a re-run from the uploaded files can be
priced without them (`plan_reuse`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot import media
from bot.errors import InvalidInput
from bot.jobs.config import EngineConfig
from bot.jobs.fetch import fetch_input
from bot.jobs.models import GuildRules, JobRequest, ReusedFiles
from bot.jobs.rerun import check_fresh
from bot.jobs.validation import check_clip_length, check_renderable, extension_of

if TYPE_CHECKING:
    from bot.jobs.context import RunContext

Show = Callable[..., Awaitable[None]]
"""Says what the job is doing: `show("activity_fetch", filename=...)`."""


@dataclass(frozen=True)
class Plan:
    """What probing decided: the exact window and what to set aside."""

    start: float
    end: float
    amount: int
    video_ext: str | None
    audio_ext: str
    # What probing found, kept with the job for re-runs (`plan_reuse`).
    video_seconds: float | None = None
    audio_seconds: float | None = None
    source_fps: float | None = None  # the video's rate, only when the probe found it constant

    def job_fields(self) -> dict[str, object]:
        """The window and what probing found, as the job records them."""
        return {
            "start_seconds": self.start,
            "end_seconds": self.end,
            "video_seconds": self.video_seconds,
            "audio_seconds": self.audio_seconds,
            "source_fps": self.source_fps,
        }


async def fetch_inputs(
    ctx: RunContext, workdir: Path, request: JobRequest, rules: GuildRules, show: Show
) -> tuple[Path | None, Path]:
    """The request's files on local disk (fetched into `workdir`, or where they already are)."""
    limit = rules.max_input_bytes
    policy = ctx.config.fetch_policy
    async with ctx.transfers:
        video_path = None
        if request.video is not None:
            await show("activity_fetch", filename=request.video.filename)
            dest = workdir / f"video.{extension_of(request.video.filename)}"
            video_path = await fetch_input(ctx.fetch_http, request.video, dest, max_bytes=limit, policy=policy)
        await show("activity_fetch", filename=request.audio.filename)
        dest = workdir / f"audio.{extension_of(request.audio.filename)}"
        audio_path = await fetch_input(ctx.fetch_http, request.audio, dest, max_bytes=limit, policy=policy)
    return video_path, audio_path


async def plan_job(
    config: EngineConfig, request: JobRequest, rules: GuildRules, video_path: Path | None, audio_path: Path
) -> Plan:
    """Check the files are what they claim, settle the window, and price the job."""
    if request.video is not None and video_path is not None:
        await _check_name_tells_truth(video_path, request.video.filename)
    await _check_name_tells_truth(audio_path, request.audio.filename)
    limits = config.probe_limits
    audio_info = await media.probe_audio(audio_path, filename=request.audio.filename, limits=limits)
    start = request.start
    video_info = None
    if request.video is not None and video_path is not None:
        video_info = await media.probe_video(video_path, filename=request.video.filename, limits=limits)
        if start >= video_info.duration:
            raise InvalidInput(
                "start_past_end", start=start, filename=request.video.filename, duration=video_info.duration
            )
        end = request.end if request.end is not None else start + audio_info.duration
        end = min(end, video_info.duration)
    else:
        assert request.end is not None  # validation requires `end` with a YouTube link
        end = request.end
    length = end - start
    check_clip_length(start, end, rules)
    check_renderable(audio_info.duration)  # the voice drives the output: it can't be shorter either
    fps = media.billing_fps(video_info, request.max_fps, config.default_max_fps)
    estimate = media.estimate_credits(length, fps, request.mode)
    hold = media.queue_hold_credits(length, request.max_fps, request.mode)
    video_ext = extension_of(request.video.filename) if request.video is not None else None
    return Plan(
        start,
        end,
        max(estimate, hold),
        video_ext,
        extension_of(request.audio.filename),
        video_seconds=video_info.duration if video_info is not None else None,
        audio_seconds=audio_info.duration,
        source_fps=video_info.constant_fps if video_info is not None and video_info.rate_consistent else None,
    )


def plan_reuse(
    config: EngineConfig, request: JobRequest, rules: GuildRules, files: ReusedFiles, *, now: dt.datetime
) -> Plan:
    """Settle the window and price a re-run from an earlier job's uploaded files, without the files.

    The files must still be at Magic Hour (`bot.jobs.rerun.check_fresh`): the job may have waited in
    line past their week.

    The same rules as `plan_job`, on what the earlier probe found: the window ends at the voice's
    end unless set, never past the video's; the rate is the video's own when that probe found it
    constant (never above the cap), else the cap, and a YouTube source's is what a new YouTube job
    gets; and never less than Magic Hour's hold at create.
    """
    check_fresh(files, now)
    start = request.start
    filename = request.video.filename if request.video is not None else ""
    if files.video_seconds is not None and start >= files.video_seconds:
        raise InvalidInput("start_past_end", start=start, filename=filename, duration=files.video_seconds)
    if request.end is not None:
        end = request.end
    elif files.audio_seconds is not None:
        end = start + files.audio_seconds
    else:
        raise InvalidInput("youtube_needs_end")  # only a YouTube source lacks a length; validation asks first
    if files.video_seconds is not None:
        end = min(end, files.video_seconds)
    length = end - start
    check_clip_length(start, end, rules)
    if files.audio_seconds is not None:
        check_renderable(files.audio_seconds)
    if files.video_file_path is None:
        fps = media.billing_fps(None, request.max_fps, config.default_max_fps)  # YouTube, as a new job
    else:
        cap = media.frame_cap(request.max_fps, config.default_max_fps)
        fps = min(files.source_fps, cap) if files.source_fps else cap
    estimate = media.estimate_credits(length, fps, request.mode)
    hold = media.queue_hold_credits(length, request.max_fps, request.mode)
    return Plan(
        start,
        end,
        max(estimate, hold),
        extension_of(filename) if files.video_file_path is not None else None,
        extension_of(request.audio.filename),
        video_seconds=files.video_seconds,
        audio_seconds=files.audio_seconds,
        source_fps=files.source_fps,
    )


async def _check_name_tells_truth(path: Path, filename: str) -> None:
    """Refuse a file whose first bytes say it is something its name doesn't claim."""
    kind = await asyncio.to_thread(media.sniff_kind, path)
    if kind is None or media.extension_matches(kind, extension_of(filename)):
        return  # unknown content is left to the probe
    raise InvalidInput("name_mismatch", filename=filename, ext=extension_of(filename), kind=kind)
