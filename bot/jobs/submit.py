"""Sending a job to Magic Hour: upload its files, then the one create call that may cost money.

The create call has no idempotency key, so it is never repeated once it may have reached Magic
Hour, and never abandoned half-way: a cancel while it is in flight waits for its answer, so a
project Magic Hour made is recorded (and then stopped), never forgotten. A 429 means no project
was made, so after the client's own retries the call is tried again in a few rounds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bot.jobs.inputs import Plan, Show
from bot.jobs.models import JobRequest
from bot.magichour import CreatedJob, LipSyncAssets, LipSyncRequest, LipSyncStyle, RateLimited, UploadItem

if TYPE_CHECKING:
    from bot.jobs.context import RunContext

# Project names carry the job's number first, so the operator can match a project in the Magic
# Hour dashboard to its job even when the bot never learnt the project's id.
_NAME_LIMIT = 100
# Rounds of create attempts after 429s (each round is the client's own retries), and the pause
# that grows between rounds. A server's Retry-After may lengthen a pause up to the cap, never
# beyond: a member's job holds a slot and a reservation while it waits, and a cancel between
# rounds is free, so a day-long Retry-After must not hold them for a day.
_CREATE_ROUNDS = 5
_CREATE_ROUND_PAUSE = 10.0
_CREATE_ROUND_MAX_PAUSE = 60.0


def project_name(job_id: int, member_name: str | None) -> str:
    """The name a job's project gets at Magic Hour: `#123 · <member's name>` or `#123 · lipsync-bot`."""
    return f"#{job_id} · {member_name or 'lipsync-bot'}"[:_NAME_LIMIT]


def lip_sync_body(
    job_id: int, request: JobRequest, plan: Plan, video_file: str | None, audio_file: str
) -> LipSyncRequest:
    """The create call's body for a job whose files are uploaded (or whose video is a YouTube link)."""
    assets = (
        LipSyncAssets(video_source="file", video_file_path=video_file, audio_file_path=audio_file)
        if video_file is not None
        else LipSyncAssets(video_source="youtube", youtube_url=request.youtube_url, audio_file_path=audio_file)
    )
    return LipSyncRequest(
        name=project_name(job_id, request.name),
        start_seconds=plan.start,
        end_seconds=plan.end,
        max_fps_limit=request.max_fps,
        assets=assets,
        style=LipSyncStyle(generation_mode=request.mode),
    )


async def upload_inputs(
    ctx: RunContext, plan: Plan, video: Path | None, audio: Path, show: Show
) -> tuple[str | None, str]:
    """Upload the job's files to Magic Hour's storage; their `file_path`s (video, audio)."""
    items = [UploadItem(type="audio", extension=plan.audio_ext)]
    if video is not None and plan.video_ext is not None:
        items.insert(0, UploadItem(type="video", extension=plan.video_ext))
    urls = await ctx.client.create_upload_urls(items)
    async with ctx.transfers:
        video_file = None
        if video is not None:
            await show("activity_upload_video")
            await ctx.client.upload_file(urls[0].upload_url, video)
            video_file = urls[0].file_path
        await show("activity_upload_audio")
        await ctx.client.upload_file(urls[-1].upload_url, audio)
    return video_file, urls[-1].file_path


async def create_project(
    ctx: RunContext, body: LipSyncRequest, cancel_requested: Callable[[], bool]
) -> tuple[CreatedJob, bool]:
    """Make the project at Magic Hour; also whether a cancel came while the call was in flight."""
    round_ = 0
    while True:
        try:
            return await _create_once(ctx, body)
        except RateLimited as exc:
            # A 429 means no job was made: wait and ask again (the job keeps its slot), rather
            # than fail a member's job for a busy minute.
            round_ += 1
            task = asyncio.current_task()
            if cancel_requested() or (task is not None and task.cancelling()):
                # nothing was made: the cancel (or a shutdown, or a lost lease) goes on, free
                raise asyncio.CancelledError from exc
            if round_ >= _CREATE_ROUNDS:
                raise
            await ctx.clock.sleep(create_round_pause(round_, exc.retry_after))


def create_round_pause(round_: int, retry_after: float | None) -> float:
    """How long to wait before the next round of create attempts (see `_CREATE_ROUND_MAX_PAUSE`)."""
    return min(max(retry_after or 0.0, _CREATE_ROUND_PAUSE * round_), _CREATE_ROUND_MAX_PAUSE)


async def _create_once(ctx: RunContext, body: LipSyncRequest) -> tuple[CreatedJob, bool]:
    create = asyncio.ensure_future(ctx.client.create_lip_sync(body))
    cancelled = False
    while True:
        try:
            return await asyncio.shield(create), cancelled
        except asyncio.CancelledError:
            cancelled = True
            if create.done():
                # The cancel came in the turn the create finished: its outcome still counts (a
                # project made is a project paid for), and so does the cancel.
                return create.result(), cancelled
