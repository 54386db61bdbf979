"""`lipsync-bot render`: one job from the terminal, through the same engine and store as the bot."""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from bot.clock import Clock
from bot.config import GenerationMode, Settings
from bot.errors import LipsyncError
from bot.jobs.models import Delivery, InputSource, JobHooks, JobRequest, JobUpdate
from bot.services import Services
from bot.store import JobRecord, JobState
from bot.testmedia import make_audio, make_video

log = logging.getLogger(__name__)

TERMINAL_USER_ID = 0  # jobs from the command line belong to "the operator at the terminal"

_STATE_WORDS = {
    JobState.RECEIVED: "Waiting",
    JobState.FETCHING: "Reading inputs",
    JobState.UPLOADING: "Uploading to Magic Hour",
    JobState.SUBMITTED: "Queued at Magic Hour",
    JobState.RENDERING: "Rendering",
    JobState.DOWNLOADING: "Downloading the result",
    JobState.DELIVERING: "Saving",
    JobState.DONE: "Done",
    JobState.FAILED: "Failed",
    JobState.CANCELED: "Canceled",
}


@dataclass(frozen=True)
class RenderOptions:
    """What the `render` command was asked to do."""

    video: Path | None
    audio: Path | None
    youtube_url: str | None = None
    start: float = 0.0
    end: float | None = None
    mode: GenerationMode = GenerationMode.LITE
    max_fps: float | None = None
    name: str | None = None
    out: Path | None = None
    demo: bool = False


class ProgressDisplay:
    """A rich progress line that follows the job's state."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task = progress.add_task("Starting", total=None)
        self.last: JobUpdate | None = None

    async def update(self, update: JobUpdate) -> None:
        """Show the job's state, queue place and estimate."""
        self.last = update
        job = update.job
        words = _STATE_WORDS.get(job.state, job.state.value)
        if update.queue_position:
            words = f"Waiting for a free slot (#{update.queue_position} in line)"
        if update.note:
            words = f"{words}: {update.note}"
        if job.estimated_credits is not None:
            words = f"{words}  [dim]~{job.estimated_credits} credits[/dim]"
        done = job.state.terminal
        self._progress.update(self._task, description=words, total=1 if done else None, completed=1 if done else 0)


class SaveToFile:
    """Delivers by moving the result to the chosen output path."""

    def __init__(self, out: Path | None) -> None:
        self._out = out
        self.saved: Path | None = None

    async def deliver(self, job: JobRecord, result: Path, *, sandbox: bool) -> Delivery:
        """Move the result out of the job's temporary folder."""
        target = self._out or Path.cwd() / result.name
        if target.is_dir():
            target = target / result.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(result), target)
        target.chmod(0o644)  # the download was a private temporary file; the result is the user's
        self.saved = target
        return Delivery(kind="local", detail=str(target))


@contextlib.asynccontextmanager
async def _demo_inputs(options: RenderOptions) -> AsyncIterator[RenderOptions]:
    """Generated sample media for a first try with nothing of one's own."""
    if not options.demo:
        yield options
        return
    with tempfile.TemporaryDirectory(prefix="lipsync-demo-") as tmp:
        video = options.video
        if video is None and options.youtube_url is None:
            video = await make_video(Path(tmp) / "demo-face.mp4", seconds=3.0, size=(320, 240))
        audio = options.audio or await make_audio(Path(tmp) / "demo-voice.mp3", seconds=3.0, tone_hz=660)
        yield RenderOptions(**{**options.__dict__, "video": video, "audio": audio, "demo": False})


async def render(settings: Settings, options: RenderOptions, *, console: Console, clock: Clock | None = None) -> int:
    """Run one job end to end; return a process exit code."""
    async with _demo_inputs(options) as opts:
        if opts.audio is None or (opts.video is None and opts.youtube_url is None):
            console.print("[red]Give a VIDEO (or --youtube URL) and an AUDIO file, or use --demo.[/red]")
            return 2
        request = JobRequest(
            user_id=TERMINAL_USER_ID,
            audio=InputSource(filename=opts.audio.name, path=opts.audio, size=_size(opts.audio)),
            video=InputSource(filename=opts.video.name, path=opts.video, size=_size(opts.video))
            if opts.video
            else None,
            youtube_url=opts.youtube_url,
            start=opts.start,
            end=opts.end,
            mode=opts.mode,
            max_fps=opts.max_fps,
            name=opts.name,
        )
        services = await Services.open(settings, clock=clock)
        async with services:
            if services.engine.sandbox:
                console.print("[yellow]Sandbox mode: a local stand-in renders the clip. No lip sync, no credits.[/]")
            try:
                await services.engine.precheck(request)
            except LipsyncError as exc:
                console.print(f"[red]{exc.user_message}[/red]")
                return 2
            saver = SaveToFile(opts.out)
            columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
            with Progress(*columns, console=console, transient=False) as progress:
                display = ProgressDisplay(progress)
                try:
                    record = await services.engine.submit(request, JobHooks(sink=display, deliverer=saver))
                except LipsyncError as exc:
                    console.print(f"[red]{exc.user_message}[/red]")
                    return 2
                final = await services.engine.wait(record.id)
            return _report(console, final, saver, sandbox=services.engine.sandbox)


def _size(path: Path) -> int | None:
    return path.stat().st_size if path.is_file() else None


def _report(console: Console, job: JobRecord, saver: SaveToFile, *, sandbox: bool) -> int:
    console.print(f"Job #{job.id}: {job.state.value}")
    if job.estimated_credits is not None:
        console.print(f"Credits estimated: {job.estimated_credits}")
    if job.state is JobState.DONE:
        label = " (sandbox: not lip-synced, no credits spent)" if sandbox else ""
        console.print(f"Credits charged: {job.charged_credits}{label}")
        console.print(f"Result: {saver.saved}")
        return 0
    console.print(f"[red]{job.error_message or 'The job did not finish.'}[/red]")
    if job.project_id:
        console.print(f"Magic Hour project: {job.project_id}")
    return 1
