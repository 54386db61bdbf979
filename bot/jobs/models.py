"""What goes into the engine and what comes out of it, and the two protocols it talks through.

The engine never imports Discord. A front end (the Discord cogs, or the `render` command) gives it
a `JobRequest`, a `ProgressSink` that shows progress, and a `Deliverer` that hands over the
result, and later rebuilds both for resumed jobs through a `HooksFactory`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bot.config import GenerationMode
from bot.store import JobRecord, NewJob, ResultPlace


@dataclass(frozen=True)
class InputSource:
    """One input file: what the member called it and where to read it.

    Exactly one of `url` (fetched at once, e.g. a Discord attachment whose URL expires) and
    `path` (a local file, e.g. from the command line) is set.
    """

    filename: str
    size: int | None = None
    content_type: str | None = None
    url: str | None = None
    path: Path | None = None


@dataclass(frozen=True)
class ReusedFiles:
    """Files an earlier job uploaded to Magic Hour, and what probing them found: a re-run's inputs.

    Magic Hour keeps uploaded files 7 days from `uploaded_at` (`bot.jobs.rerun`), so a re-run
    skips fetching and uploading. Files can't be probed again from here, so the earlier probe's
    facts price it: `source_fps` is the video's rate when that probe found it constant (None bills
    at the cap), and the lengths bound the window.
    """

    from_job: int
    audio_file_path: str
    video_file_path: str | None  # None for a YouTube source
    uploaded_at: dt.datetime
    audio_seconds: float | None = None
    video_seconds: float | None = None  # None for a YouTube source
    source_fps: float | None = None

    def job_fields(self) -> dict[str, object]:
        """What a re-run records about the files it reuses (so it can be run again in turn)."""
        return {
            "rerun_of": self.from_job,
            "video_file_path": self.video_file_path,
            "audio_file_path": self.audio_file_path,
            "files_uploaded_at": self.uploaded_at,
        }


@dataclass(frozen=True)
class JobRequest:
    """A member's request for one lip-sync render, before anything is checked."""

    user_id: int
    audio: InputSource
    video: InputSource | None = None
    youtube_url: str | None = None
    start: float = 0.0
    end: float | None = None
    mode: GenerationMode = GenerationMode.LITE
    max_fps: float | None = None
    name: str | None = None
    guild_id: int | None = None
    channel_id: int | None = None
    role_ids: tuple[int, ...] = ()
    # Where the front end shows the job's status, recorded with the job so a restart finds it.
    status_channel_id: int | None = None
    status_message_id: int | None = None
    # The Discord locale of the member who asks ("es-ES"): the job's messages are worded in it.
    locale: str | None = None
    # Set for a re-run: the files an earlier job uploaded, used instead of fetching and uploading
    # `video`/`audio` (which then carry only their names and sizes).
    reuse: ReusedFiles | None = None
    # Where the result goes and whether it pings the member (their settings); None: the channel, with a ping.
    deliver_to: ResultPlace | None = None
    ping_owner: bool | None = None

    def new_job(self) -> NewJob:
        """What the store records of this request when the job is accepted."""
        video = self.video
        return NewJob(
            guild_id=self.guild_id,
            channel_id=self.channel_id,
            user_id=self.user_id,
            video_filename=video.filename if video else None,
            video_size=video.size if video else None,
            audio_filename=self.audio.filename,
            audio_size=self.audio.size,
            youtube_url=self.youtube_url,
            start_seconds=self.start,
            end_seconds=self.end,
            mode=self.mode,
            max_fps=self.max_fps,
            name=self.name,
            status_channel_id=self.status_channel_id,
            status_message_id=self.status_message_id,
            locale=self.locale,
            deliver_to=self.deliver_to,
            ping_owner=self.ping_owner,
        )


@dataclass(frozen=True)
class JobUpdate:
    """A snapshot of one job for a progress display."""

    job: JobRecord
    elapsed: float
    queue_position: int | None = None
    # What the job is doing within its state, as a catalogue code and its data
    # (e.g. "fetch_video" with the file's name), for the front end to word.
    activity: str | None = None
    activity_data: Mapping[str, str] = field(default_factory=dict)
    # When the render is expected to finish at Magic Hour (from the bot's own history of render
    # times); None when there is no estimate yet.
    expected_at: dt.datetime | None = None
    # When a queued job should get a slot (from the jobs ahead of it and the bot's history of render
    # times), and when its render was submitted (the start of the expected finish's span); None
    # when there is no estimate yet.
    expected_start: dt.datetime | None = None
    render_started_at: dt.datetime | None = None
    # A first-frame JPEG of the member's video (a file the bot fetched), for the job's card; None: none.
    thumbnail: bytes | None = None
    remaining_credits: int | None = None  # the member's credits left in this window
    credits_reserved: bool = False  # whether `remaining_credits` already counts this job's estimate
    resets_at: dt.datetime | None = None  # when the member's allowance resets
    sandbox: bool = False


@dataclass(frozen=True)
class Delivery:
    """How a result reached its owner."""

    kind: str  # "file", "compressed", "link", "dm", "thread", "local"
    message_id: int | None = None
    detail: str | None = None


class ProgressSink(Protocol):
    """Shows a job's progress; called on every change (state, queue position, note)."""

    async def update(self, update: JobUpdate) -> None:
        """Show this snapshot. Must not raise for display problems; log them instead."""
        ...


LinkProvider = Callable[[], Awaitable[str]]
"""Gives a freshly signed download link to a finished result (they expire)."""


class Deliverer(Protocol):
    """Hands a finished result to its owner."""

    async def deliver(self, job: JobRecord, result: Path | None, *, sandbox: bool, link: LinkProvider) -> Delivery:
        """Deliver `result` (a local MP4) for `job`, or only a link to it when `result` is None.

        `link` gives a fresh download link, for a result too large to attach. Raise if the result
        could not reach its owner at all; the engine retries, then falls back to a link.
        """
        ...


@dataclass(frozen=True)
class JobHooks:
    """The progress sink and deliverer for one job."""

    sink: ProgressSink
    deliverer: Deliverer


HooksFactory = Callable[[JobRecord], JobHooks]


@dataclass(frozen=True)
class QueueSnapshot:
    """How busy the engine is: slots in use out of how many, and how many jobs wait in line."""

    in_flight: int
    capacity: int
    waiting: int


@dataclass(frozen=True)
class GuildRules:
    """What a server allows, after its own settings are applied over the bot's defaults."""

    allowed_modes: tuple[GenerationMode, ...]
    max_clip_seconds: float
    max_input_bytes: int
