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
from typing import TYPE_CHECKING, NoReturn

from bot import media
from bot.errors import InvalidInput
from bot.jobs import fixes
from bot.jobs.config import EngineConfig
from bot.jobs.fetch import fetch_input
from bot.jobs.fixes import Fix, FixKind
from bot.jobs.models import GuildRules, JobRequest, ReusedFiles
from bot.jobs.quote import Pricing, Quote
from bot.jobs.rerun import check_fresh
from bot.jobs.validation import check_clip_length, check_renderable, extension_of

if TYPE_CHECKING:
    from bot.jobs.context import RunContext

# How much longer than its files an asked part may be before the difference is announced rather
# than taken up: containers pad their streams by a frame or two, which no member would miss.
CUT_TOLERANCE = 0.1

Show = Callable[..., Awaitable[None]]
"""Says what the job is doing: `show("activity_fetch", filename=...)`."""


@dataclass(frozen=True)
class Plan:
    """What probing decided: the exact window, and its price (what to set aside is the quote's hold)."""

    start: float
    end: float
    pricing: Pricing
    video_ext: str | None
    audio_ext: str
    # What probing found, kept with the job for re-runs (`plan_reuse`).
    video_seconds: float | None = None
    audio_seconds: float | None = None
    source_fps: float | None = None  # the video's rate, only when the probe found it constant
    # A first-frame JPEG of the member's video, for its card; only of a file the bot fetched itself.
    thumbnail: bytes | None = None

    @property
    def quote(self) -> Quote:
        """The job's likely cost and what is held until it ends."""
        return self.pricing.quote()

    @property
    def amount(self) -> int:
        """What to set aside: the quote's hold."""
        return self.quote.hold

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
    video_info = None
    if request.video is not None and video_path is not None:
        video_info = await media.probe_video(video_path, filename=request.video.filename, limits=limits)
    source_fps = video_info.constant_fps if video_info is not None and video_info.rate_consistent else None

    def pricing(seconds: float) -> Pricing:
        return Pricing(seconds, request.mode, source_fps, request.max_fps, config.default_max_fps)

    filename = request.video.filename if request.video is not None else ""
    video_seconds = video_info.duration if video_info is not None else None
    start, end = settle_window(request, filename, video_seconds, audio_info.duration, rules, pricing)
    video_ext = extension_of(request.video.filename) if request.video is not None else None
    # After every check: a refused job never costs the extra read. A failure only leaves it out.
    thumbnail = None
    if video_info is not None and video_path is not None:
        thumbnail = await media.first_frame(video_path, limits=limits)
    return Plan(
        start,
        end,
        pricing(end - start),
        video_ext,
        extension_of(request.audio.filename),
        video_seconds=video_seconds,
        audio_seconds=audio_info.duration,
        source_fps=source_fps,
        thumbnail=thumbnail,
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
    filename = request.video.filename if request.video is not None else ""
    # A YouTube source's rate is what a new YouTube job gets: the cap (no rate of its own).
    source_fps = files.source_fps if files.video_file_path is not None else None

    def pricing(seconds: float) -> Pricing:
        return Pricing(seconds, request.mode, source_fps, request.max_fps, config.default_max_fps)

    start, end = settle_window(request, filename, files.video_seconds, files.audio_seconds, rules, pricing)
    return Plan(
        start,
        end,
        pricing(end - start),
        extension_of(filename) if files.video_file_path is not None else None,
        extension_of(request.audio.filename),
        video_seconds=files.video_seconds,
        audio_seconds=files.audio_seconds,
        source_fps=files.source_fps,
    )


def settle_window(
    request: JobRequest,
    filename: str,
    video_seconds: float | None,
    audio_seconds: float | None,
    rules: GuildRules,
    pricing: Callable[[float], Pricing],
) -> tuple[float, float]:
    """The part to render, from the request and what the files hold; never cut without a word.

    The part ends at the voice's end unless the member set an end. When it would run past the
    video (the voice is longer, or the asked end is past it) or past the voice (which drives the
    output), nothing is cut: the job is refused for free, saying what would render and offering
    that part (`fixes`, priced by `pricing`), before anything is held. A difference under
    `CUT_TOLERANCE` (containers' padding) is taken up quietly.
    """
    start = request.start
    if video_seconds is not None and start >= video_seconds:
        raise InvalidInput("start_past_end", start=start, filename=filename, duration=video_seconds)
    if request.end is not None:
        end = request.end
    elif audio_seconds is not None:
        end = start + audio_seconds
    else:
        raise InvalidInput("youtube_needs_end")  # only a YouTube source lacks a length; validation asks first
    fits = end
    if video_seconds is not None:
        fits = min(fits, video_seconds)
    if request.end is not None and audio_seconds is not None:
        fits = min(fits, start + audio_seconds)
    check_clip_length(start, fits, rules)
    if audio_seconds is not None:
        check_renderable(audio_seconds)  # the voice drives the output: it can't be shorter either
    if end - fits > CUT_TOLERANCE:
        _announce_cut(request, filename, (start, end, fits), (video_seconds, audio_seconds), pricing)
    return start, fits


def _announce_cut(
    request: JobRequest,
    filename: str,
    window: tuple[float, float, float],
    lengths: tuple[float | None, float | None],
    pricing: Callable[[float], Pricing],
) -> NoReturn:
    start, end, fits = window
    video_seconds, audio_seconds = lengths
    if request.end is None:
        code = "voice_past_video"  # no end asked: the voice runs on past the video
    elif video_seconds is not None and fits >= video_seconds - CUT_TOLERANCE:
        code = "part_past_video"
    else:
        code = "part_past_voice"
    fix = Fix(FixKind.END, fits, pricing(fits - start).quote())
    raise InvalidInput(
        code,
        filename=filename,
        start=start,
        end=end,
        render_end=fits,
        video_seconds=video_seconds,
        audio_seconds=audio_seconds,
        **fixes.as_data([fix]),
    )


async def _check_name_tells_truth(path: Path, filename: str) -> None:
    """Refuse a file whose first bytes say it is something its name doesn't claim."""
    kind = await asyncio.to_thread(media.sniff_kind, path)
    if kind is None or media.extension_matches(kind, extension_of(filename)):
        return  # unknown content is left to the probe
    raise InvalidInput("name_mismatch", filename=filename, ext=extension_of(filename), kind=kind)
