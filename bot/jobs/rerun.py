"""Running a job again from the files it already uploaded to Magic Hour.

A finished job can run again in pro or on another part of its video, and a failed one can be
retried, without fetching or uploading anything; otherwise a re-run is a new job like any other.
docs/design-notes.md, "Creators' features", says how a re-run is priced and how long it is offered.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import PurePosixPath

from bot.config import GenerationMode
from bot.errors import InvalidInput, NotAllowed
from bot.jobs.models import InputSource, JobRequest, ReusedFiles
from bot.store import JobRecord, JobState

FILES_KEPT = dt.timedelta(days=7)  # how long Magic Hour keeps an uploaded file (`file_path`)
REUSE_MARGIN = dt.timedelta(hours=1)
# Failures that say the uploaded files themselves are gone or unusable: retrying them can't help.
_FILES_GONE = frozenset({"magic_hour_invalid_video_path", "magic_hour_invalid_audio_path"})
# Failures caused by the member's own input: the same files fail the same way, so no Retry. The
# video's faults call for another video; the part's, for another part; a bad audio file, for a new job.
_VIDEO_FAULTS = frozenset(
    {
        "magic_hour_no_source_face",
        "magic_hour_invalid_video_file",
        "magic_hour_invalid_youtube_url",
        "magic_hour_file_too_large",
    }
)
_PART_FAULTS = frozenset({"magic_hour_processing_timeout", "magic_hour_invalid_parameters"})
_AUDIO_FAULTS = frozenset({"magic_hour_invalid_audio_file"})


class Again(StrEnum):
    """The ways to run a job again."""

    PRO = "pro"  # the same window, in pro mode
    WINDOW = "window"  # another part of the video, in the same mode
    RETRY = "retry"  # a failed job, exactly as it was
    VIDEO = "video"  # a failed job whose video was the problem: the member brings another one


def usable_until(uploaded_at: dt.datetime) -> dt.datetime:
    """When a re-run stops using files uploaded at `uploaded_at`."""
    return uploaded_at + FILES_KEPT - REUSE_MARGIN


def reused_files(job: JobRecord) -> ReusedFiles | None:
    """The files `job` uploaded and what its probe found; None if it never uploaded any."""
    if job.audio_file_path is None or job.files_uploaded_at is None:
        return None
    if job.video_file_path is None and job.youtube_url is None:
        return None
    return ReusedFiles(
        from_job=job.id,
        audio_file_path=job.audio_file_path,
        video_file_path=job.video_file_path,
        uploaded_at=job.files_uploaded_at,
        audio_seconds=job.audio_seconds,
        video_seconds=job.video_seconds,
        source_fps=job.source_fps,
    )


def check_fresh(files: ReusedFiles, now: dt.datetime) -> None:
    """Refuse files Magic Hour no longer keeps (or won't keep long enough for a render)."""
    until = usable_until(files.uploaded_at)
    if now >= until:
        raise InvalidInput("rerun_expired", job=files.from_job, expired_at=until)


def reusable(job: JobRecord, now: dt.datetime) -> ReusedFiles:
    """The files a run of `job` again would use; `InvalidInput` saying why there are none to use."""
    if not job.state.terminal:
        raise InvalidInput("rerun_not_ended", job=job.id)
    if job.fate_unknown:  # it may still exist at Magic Hour: running it again could pay twice
        raise InvalidInput("rerun_uncertain", job=job.id)
    if job.error_code in _FILES_GONE:
        raise InvalidInput("rerun_files_gone", job=job.id)
    files = reused_files(job)
    if files is None:
        raise InvalidInput("rerun_no_files", job=job.id)
    check_fresh(files, now)
    return files


def offers(job: JobRecord, now: dt.datetime) -> tuple[Again, ...]:
    """The ways a finished job's message offers to run it again (none once its files are unusable).

    Done: in pro (unless it was pro) and on another window. Failed: retry, unless the member's input
    was at fault (`_VIDEO_FAULTS` and the rest): then another video, another part, or nothing.
    Canceled: nothing (its member stopped it).
    """
    if job.state is JobState.FAILED and job.error_code in _VIDEO_FAULTS:
        return (Again.VIDEO,)  # needs none of the uploaded files
    try:
        reusable(job, now)
    except InvalidInput:
        return ()
    if job.state is JobState.DONE:
        return (Again.WINDOW,) if job.mode is GenerationMode.PRO else (Again.PRO, Again.WINDOW)
    if job.state is JobState.FAILED:
        if job.error_code in _PART_FAULTS:
            return (Again.WINDOW,)
        return () if job.error_code in _AUDIO_FAULTS else (Again.RETRY,)
    return ()


def rerun_request(
    job: JobRecord,
    how: Again,
    *,
    by_user_id: int,
    guild_id: int | None,
    now: dt.datetime,
    start: float | None = None,
    end: float | None = None,
) -> JobRequest:
    """The request that runs `job` again `how`, for its owner, from its uploaded files.

    `start`/`end` are the new window (`Again.WINDOW`; `end` None: to the end of the voice);
    otherwise the job's own. The caller fills in where it is asked from (channel, roles, locale).
    Raises `NotAllowed` for anyone but the owner and `InvalidInput` when the files can't be used.
    """
    if job.guild_id != guild_id:
        raise InvalidInput("no_such_job", job=job.id)
    if job.user_id != by_user_id:
        raise NotAllowed("rerun_not_owner", owner=job.user_id, job=job.id)
    if how is Again.RETRY and job.state is JobState.CANCELED:
        raise InvalidInput("rerun_canceled", job=job.id)
    files = reusable(job, now)
    if how is not Again.WINDOW:
        start, end = job.start_seconds, job.end_seconds
    audio_name = job.audio_filename or PurePosixPath(files.audio_file_path).name
    return JobRequest(
        user_id=job.user_id,
        audio=InputSource(filename=audio_name, size=job.audio_size),
        video=InputSource(filename=job.video_filename, size=job.video_size) if job.video_filename else None,
        youtube_url=job.youtube_url,
        start=start or 0.0,
        end=end,
        mode=GenerationMode.PRO if how is Again.PRO else job.mode,
        max_fps=job.max_fps,
        name=job.name,
        guild_id=job.guild_id,
        channel_id=job.channel_id,
        reuse=files,
    )
