"""`lipsync-bot render` and `resume`: jobs from the terminal, through the same engine and store as the bot.

The terminal is one of the two front ends that make words: the catalogue's sentences are written
here in `TERMINAL` style (local times, `lipsync-bot` commands, quoted file names).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from bot import words
from bot.clock import Clock
from bot.config import Settings
from bot.errors import LipsyncError
from bot.jobs.models import Delivery, InputSource, JobHooks, JobRequest, JobUpdate, LinkProvider
from bot.services import Services
from bot.store import AlreadyReconciled, JobNotFound, JobRecord, JobState, NotReconcilable
from bot.testmedia import make_audio, make_video

log = logging.getLogger(__name__)

TERMINAL_USER_ID = 0  # jobs from the command line belong to "the operator at the terminal"

_STATE_WORDS = {
    JobState.RECEIVED: "Waiting",
    JobState.FETCHING: "Reading inputs",
    JobState.UPLOADING: "Uploading to Magic Hour",
    JobState.CREATING: "Starting the job at Magic Hour",
    JobState.SUBMITTED: "Queued at Magic Hour",
    JobState.RENDERING: "Rendering",
    JobState.DOWNLOADING: "Downloading the result",
    JobState.DELIVERING: "Saving",
    JobState.DONE: "Done",
    JobState.FAILED: "Failed",
    JobState.CANCELED: "Canceled",
}

_OPTIONS = {"youtube_url": "--youtube", "video": "VIDEO", "audio": "AUDIO", "name": "--name"}

_COMMANDS = {
    "lipsync": "lipsync-bot render",
    "cancel": "Ctrl+C in the terminal that runs it (then lipsync-bot resume finishes or ends it)",
    "resume": "lipsync-bot resume",
}


class TerminalStyle:
    """How the catalogue's sentences are written in a terminal."""

    def when(self, moment: dt.datetime) -> str:
        """The moment in the machine's local time."""
        return moment.astimezone().strftime("%Y-%m-%d %H:%M %Z")

    def command(self, name: str) -> str:
        """The terminal's way to do what the Discord command `name` does."""
        return _COMMANDS.get(name, f"lipsync-bot {name}")

    def quote(self, text: str) -> str:
        """A file name in quotes."""
        return f"'{text}'"

    def member(self, user_id: int) -> str:
        """The operator at the terminal, or a member by id."""
        return "you" if user_id == TERMINAL_USER_ID else f"member {user_id}"

    def option(self, name: str) -> str:
        """The `render` flag for a `/lipsync` option."""
        return _OPTIONS.get(name, f"--{name.replace('_', '-')}")


TERMINAL = TerminalStyle()


def describe(code: str, data: Mapping[str, object]) -> str:
    """The catalogue's sentence for `code`, written for the terminal (rich markup escaped)."""
    return escape(words.describe(code, data, TERMINAL))


@dataclass(frozen=True)
class RenderOptions:
    """What the `render` command was asked to do.

    `fields` are `JobRequest` fields passed through as they are (youtube_url, start, end, mode,
    max_fps, name); `video`/`audio` are local files, generated when missing with `demo`.
    """

    video: Path | None
    audio: Path | None
    fields: Mapping[str, object] = dataclasses.field(default_factory=dict)
    out: Path | None = None
    demo: bool = False


def request_from_paths(video: Path | None, audio: Path, fields: Mapping[str, object]) -> JobRequest:
    """A terminal job's request for local files."""
    return JobRequest(
        user_id=TERMINAL_USER_ID,
        audio=InputSource(filename=audio.name, path=audio, size=_size(audio)),
        video=InputSource(filename=video.name, path=video, size=_size(video)) if video is not None else None,
        **fields,  # type: ignore[arg-type]
    )


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
        text = _STATE_WORDS.get(job.state, job.state.value)
        if update.queue_position:
            text = f"Waiting for a free slot (#{update.queue_position} in line)"
        if update.activity:
            text = f"{text}: {describe(update.activity, update.activity_data)}"
        if job.estimated_credits is not None:
            text = f"{text}  [dim]up to {words.credits(job.estimated_credits)}[/dim]"
        done = job.state.terminal
        self._progress.update(self._task, description=text, total=1 if done else None, completed=1 if done else 0)


class SaveToFile:
    """Delivers by moving the result to the chosen output path (or printing a link to it)."""

    def __init__(self, out: Path | None, console: Console | None = None) -> None:
        self._out = out
        self._console = console
        self.saved: Path | None = None
        self.sandbox = False

    async def deliver(self, job: JobRecord, result: Path | None, *, sandbox: bool, link: LinkProvider) -> Delivery:
        """Move the result out of the job's temporary folder; with no file, print a fresh link."""
        self.sandbox = sandbox
        if result is None:
            url = await link()
            if self._console is not None:
                self._console.print(f"Job #{job.id}'s result couldn't be downloaded here; fetch it from: {url}")
            return Delivery(kind="link")
        target = self._out or Path.cwd() / result.name
        if target.is_dir():
            target = target / result.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(result), target)
        target.chmod(0o644)  # the download was a private temporary file; the result is the user's
        self.saved = target
        return Delivery(kind="local", detail=str(target))


@contextlib.asynccontextmanager
async def _inputs(options: RenderOptions) -> AsyncIterator[JobRequest | None]:
    """The request, with generated sample media for a first try with nothing of one's own."""
    with tempfile.TemporaryDirectory(prefix="lipsync-demo-") as tmp:
        video, audio = options.video, options.audio
        if options.demo and video is None and options.fields.get("youtube_url") is None:
            video = await make_video(Path(tmp) / "demo-face.mp4", seconds=3.0, size=(320, 240))
        if options.demo and audio is None:
            audio = await make_audio(Path(tmp) / "demo-voice.mp3", seconds=3.0, tone_hz=660)
        if audio is None or (video is None and options.fields.get("youtube_url") is None):
            yield None
        else:
            yield request_from_paths(video, audio, options.fields)


async def render(
    settings: Settings, options: RenderOptions, *, console: Console, clock: Clock | None = None, sandbox: bool = False
) -> int:
    """Run one job end to end; return a process exit code."""
    async with _inputs(options) as request:
        if request is None:
            console.print("[red]Give a VIDEO (or --youtube URL) and an AUDIO file, or use --demo.[/red]")
            return 2
        services = await Services.open(settings, clock=clock, sandbox=sandbox)
        async with services:
            if services.engine.sandbox:
                console.print("[yellow]Sandbox mode: a local stand-in renders the clip. No lip sync.[/]")
            waiting = await _unfinished(services)
            if waiting:
                console.print(
                    f"[yellow]{len(waiting)} earlier job(s) didn't finish; `lipsync-bot resume` finishes them.[/]"
                )
            saver = SaveToFile(options.out, console)
            columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
            try:
                await services.engine.precheck(request)
                with Progress(*columns, console=console, transient=False) as progress:
                    display = ProgressDisplay(progress)
                    record = await services.engine.submit(request, JobHooks(sink=display, deliverer=saver))
                    final = await services.engine.wait(record.id)
            except LipsyncError as exc:
                console.print(f"[red]{describe(exc.code, exc.data)}[/red]")
                return 2
            return _report(console, final, saver)


async def resume(
    settings: Settings, *, out: Path | None, console: Console, clock: Clock | None = None, sandbox: bool = False
) -> int:
    """Finish the terminal's unfinished jobs (after a crash or Ctrl+C); 0 if every one ended well."""
    services = await Services.open(settings, clock=clock, sandbox=sandbox)
    async with services:
        savers: dict[int, SaveToFile] = {}

        def hooks_for(record: JobRecord) -> JobHooks:
            savers[record.id] = SaveToFile(out, console)
            return JobHooks(sink=_Quiet(), deliverer=savers[record.id])

        records = await services.engine.resume(hooks_for, where=_is_terminal_job)
        if not records:
            console.print("No unfinished jobs from the terminal.")
            return 0
        console.print(f"Resuming {len(records)} job(s): " + ", ".join(f"#{r.id} ({r.state.value})" for r in records))
        codes = [_report(console, await services.engine.wait(r.id), savers[r.id]) for r in records]
        return max(codes)


class _Quiet:
    """A progress sink for resumed jobs: the summary at the end says what happened."""

    async def update(self, update: JobUpdate) -> None:
        """Nothing to show."""


def _is_terminal_job(record: JobRecord) -> bool:
    return record.guild_id is None and record.user_id == TERMINAL_USER_ID


async def _unfinished(services: Services) -> list[JobRecord]:
    return [r for r in await services.store.jobs.unfinished() if _is_terminal_job(r)]


def _size(path: Path) -> int | None:
    return path.stat().st_size if path.is_file() else None


def _report(console: Console, job: JobRecord, saver: SaveToFile) -> int:
    console.print(f"Job #{job.id}: {_STATE_WORDS.get(job.state, job.state.value)}")
    if job.estimated_credits is not None:
        console.print(f"Credits set aside: {words.number(job.estimated_credits)}")
    if job.charged_credits is not None:
        label = " (sandbox: charged to the local ledger; no Magic Hour credits spent)" if saver.sandbox else ""
        console.print(f"Credits charged: {words.number(job.charged_credits)}{label}")
    if job.state is JobState.DONE:
        if saver.saved is not None:
            console.print(f"Result: {saver.saved}")
        if saver.sandbox:
            console.print("[yellow]Sandbox render: the input trimmed, with the audio replaced; not lip-synced.[/]")
        return 0
    if job.state is JobState.FAILED:
        console.print(f"[red]{describe(job.error_code or 'error', job.error_data or {})}[/red]")
    if job.project_id:
        console.print(f"Magic Hour project: {job.project_id}")
    return 1


async def reconcile(settings: Settings, job_id: int, charged: int, *, console: Console) -> int:
    """Record what Magic Hour really charged for a job that ended unknown at Magic Hour.

    The operator looked the project up (by its name, `#<job> · …`) in the Magic Hour dashboard. The
    job counted what it had set aside; `QuotaLedger.reconcile` writes the difference to the real
    charge (giving credits back to the member, the server and the budget, or counting more) and the
    job's charge in one transaction, once: a second run is refused and changes nothing.
    """
    if charged < 0:
        console.print("[red]--charged must be 0 or more (what the Magic Hour dashboard shows).[/red]")
        return 2
    services = await Services.open(settings)
    async with services:
        try:
            done = await services.store.quota.reconcile(job_id, charged)
        except (JobNotFound, NotReconcilable):
            console.print(f"[red]Job #{job_id} isn't a job whose fate at Magic Hour was unknown.[/red]")
            return 2
        except AlreadyReconciled as exc:
            console.print(f"[red]Job #{job_id} was already reconciled at {words.credits(exc.charged)}.[/red]")
            return 2
        except LipsyncError as exc:  # a charge no job can cost (`bot.bounds.OutOfBounds`)
            console.print(f"[red]{describe(exc.code, exc.data)}[/red]")
            return 2
        change = done.given_back
        what = f"{words.credits(change)} given back" if change > 0 else f"{words.credits(-change)} more counted"
        console.print(f"Job #{job_id}: Magic Hour charged {words.credits(charged)}; {what if change else 'no change'}.")
        return 0
