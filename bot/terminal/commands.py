"""`lipsync-bot render`, `resume` and `reconcile`: terminal jobs, through the same engine and store as the bot."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from bot import bounds, words
from bot.bounds import OutOfBounds
from bot.clock import Clock
from bot.config import Settings
from bot.errors import LipsyncError
from bot.jobs.models import InputSource, JobHooks, JobRequest
from bot.jobs.quote import quote_of
from bot.services import Services
from bot.store import AlreadyReconciled, JobNotFound, JobRecord, JobState, NotReconcilable, StoreUnavailable
from bot.terminal.interrupt import Answers, CtrlC, Interrupts, StdinAnswers
from bot.terminal.output import Output, SaveToFile
from bot.terminal.progress import ProgressDisplay, progress_bar
from bot.terminal.style import (
    TERMINAL,
    TERMINAL_USER_ID,
    TRIAL,
    TerminalStyle,
    describe,
    env_file,
    setting_to_raise,
    state_words,
)
from bot.testmedia import make_audio, make_video

EXIT_INTERRUPTED = 130  # the shell's code for a program stopped by Ctrl+C
# Before these a job has nothing at Magic Hour: Ctrl+C cancels it for free, no question asked.
_NOT_AT_MAGIC_HOUR = frozenset({JobState.RECEIVED, JobState.FETCHING, JobState.UPLOADING})


@dataclass(frozen=True)
class RenderOptions:
    """What the `render` command was asked to do.

    `fields` are `JobRequest` fields passed through as they are (youtube_url, start, end, mode,
    max_fps, name); `video`/`audio` are local files, generated when missing with `demo`.
    """

    video: Path | None
    audio: Path | None
    fields: Mapping[str, object] = dataclasses.field(default_factory=dict)
    out: Output = dataclasses.field(default_factory=lambda: Output.parse(None))
    demo: bool = False


def request_from_paths(video: Path | None, audio: Path, fields: Mapping[str, object]) -> JobRequest:
    """A terminal job's request for local files."""
    return JobRequest(
        user_id=TERMINAL_USER_ID,
        audio=InputSource(filename=audio.name, path=audio, size=_size(audio)),
        video=InputSource(filename=video.name, path=video, size=_size(video)) if video is not None else None,
        **fields,  # type: ignore[arg-type]
    )


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


def _refusal(console: Console, code: str, data: Mapping[str, object], style: TerminalStyle) -> None:
    """A refusal, and the setting that would have let it through (the terminal's user is the operator)."""
    console.print(f"[red]{describe(code, data, style)}[/red]")
    setting = setting_to_raise(code, trial=style.sandbox)
    if setting is not None:
        console.print(describe("terminal_raise_setting", {"setting": setting, "env_file": str(env_file())}, style))


async def render(
    settings: Settings,
    options: RenderOptions,
    *,
    console: Console,
    clock: Clock | None = None,
    sandbox: bool = False,
    interrupts: Interrupts | None = None,
    answers: Answers | None = None,
) -> int:
    """Run one job end to end; return a process exit code.

    Ctrl+C while it runs asks what to do with the job (`_follow`); `interrupts` and `answers`
    replace the keyboard in tests.
    """
    style = TRIAL if sandbox else TERMINAL
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
                console.print(f"[yellow]{describe('terminal_unfinished', {'count': len(waiting)}, style)}[/]")
            saver = SaveToFile(options.out, console)
            try:
                await services.engine.precheck(request)
                with contextlib.ExitStack() as stack:
                    ctrl_c = interrupts if interrupts is not None else stack.enter_context(CtrlC())
                    keyboard = answers if answers is not None else StdinAnswers(ctrl_c)
                    with progress_bar(console) as progress:
                        display = ProgressDisplay(progress)
                        record = await services.engine.submit(request, JobHooks(sink=display, deliverer=saver))
                        final = await _follow(services, record.id, _Asking(console, progress, ctrl_c, keyboard, style))
            except LipsyncError as exc:
                _refusal(console, exc.code, exc.data, style)
                return 2
            except StoreUnavailable:
                console.print(f"[red]{describe('database_unavailable', {}, style)}[/red]")
                return 1
            if final is None:
                console.print(describe("terminal_left", {"job": record.id}, style))
                return EXIT_INTERRUPTED
            return _report(console, final, saver, style, sandbox=services.engine.sandbox)


@dataclass(frozen=True)
class _Asking:
    """What `_follow` needs to ask about a job after Ctrl+C."""

    console: Console
    progress: Progress  # stopped while the question is on screen
    interrupts: Interrupts
    answers: Answers
    style: TerminalStyle


async def _follow(services: Services, job_id: int, asking: _Asking) -> JobRecord | None:
    """Wait for the job to end; on Ctrl+C, cancel it, leave it running (None), or wait on."""
    engine = services.engine
    ended = asyncio.ensure_future(engine.wait(job_id))
    try:
        while True:
            pressed = asyncio.ensure_future(asking.interrupts.pressed.wait())
            await asyncio.wait({ended, pressed}, return_when=asyncio.FIRST_COMPLETED)
            pressed.cancel()
            if ended.done():
                return ended.result()
            asking.interrupts.pressed.clear()
            job = await engine.job(job_id)
            if job.state.terminal:
                continue  # it ended as the key was pressed: report that
            if job.project_id is None and job.state in _NOT_AT_MAGIC_HOUR:
                asking.console.print(describe("terminal_canceled_early", {"job": job_id}, asking.style))
                return await engine.cancel(job_id, by_user_id=TERMINAL_USER_ID)
            choice = await _ask(asking, job)
            if choice == "c":
                try:
                    return await engine.cancel(job_id, by_user_id=TERMINAL_USER_ID)
                except LipsyncError as exc:  # already rendered: it is being saved, so wait for it
                    asking.console.print(describe(exc.code, exc.data, asking.style))
            elif choice != "w":
                return None
    finally:
        if not ended.done():
            ended.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ended


async def _ask(asking: _Asking, job: JobRecord) -> str:
    """The operator's choice for a running job: "c" cancel, "l" leave it (the default), "w" wait."""
    progress = asking.progress
    progress.stop()  # the question must not be drawn over
    data = {"job": job.id, "state": state_words(job.state)}
    question = f"{describe('terminal_interrupted', data, asking.style)} {describe('terminal_ask', data, asking.style)}"
    asking.console.print(question, end=" ")
    answer = (await asking.answers.ask(question) or "").strip().lower()[:1]
    if answer not in ("c", "w"):
        answer = "l"
    if answer == "w":
        asking.console.print(describe("terminal_waiting_on", data, asking.style))
        progress.start()
    return answer


async def resume(
    settings: Settings, *, out: Output, console: Console, clock: Clock | None = None, sandbox: bool = False
) -> int:
    """Finish the terminal's unfinished jobs (after a crash or Ctrl+C); 0 if every one ended well."""
    style = TRIAL if sandbox else TERMINAL
    services = await Services.open(settings, clock=clock, sandbox=sandbox)
    async with services:
        savers: dict[int, SaveToFile] = {}
        with progress_bar(console) as progress:

            def hooks_for(record: JobRecord) -> JobHooks:
                savers[record.id] = SaveToFile(out, console)
                return JobHooks(sink=ProgressDisplay(progress, f"#{record.id} "), deliverer=savers[record.id])

            # A crashed run's jobs are held until its heartbeat is found stopped: wait for that first.
            records = await services.engine.resume(hooks_for, where=_is_terminal_job, settle=True)
            if records:
                listed = ", ".join(f"#{r.id} ({r.state.value})" for r in records)
                console.print(f"Resuming {len(records)} job(s): {listed}")
            finals = [await services.engine.wait(r.id) for r in records]
        if not records:
            console.print("No unfinished jobs from the terminal.")
            return 0
        return max(_report(console, f, savers[f.id], style, sandbox=services.engine.sandbox) for f in finals)


def _is_terminal_job(record: JobRecord) -> bool:
    return record.guild_id is None and record.user_id == TERMINAL_USER_ID


async def _unfinished(services: Services) -> list[JobRecord]:
    return [r for r in await services.store.jobs.unfinished() if _is_terminal_job(r)]


def _size(path: Path) -> int | None:
    return path.stat().st_size if path.is_file() else None


def _report(console: Console, job: JobRecord, saver: SaveToFile, style: TerminalStyle, *, sandbox: bool) -> int:
    console.print(f"Job #{job.id}: {state_words(job.state)}")
    quote = quote_of(job)
    if quote is not None:
        console.print(describe(*quote.sentence(), style))
    if job.charged_credits is not None:
        label = " (sandbox: charged to the local ledger; no Magic Hour credits spent)" if sandbox else ""
        console.print(f"Credits charged: {words.number(job.charged_credits)}{label}")
    if job.state is JobState.DONE:
        if saver.saved is not None:
            console.print(f"Result: {saver.saved}")
        if saver.sandbox:
            console.print("[yellow]Sandbox render: the input trimmed, with the audio replaced; not lip-synced.[/]")
        return 0
    if job.state is JobState.FAILED:
        _refusal(console, job.error_code or "error", job.error_data or {}, style)
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
    try:  # refused before anything opens: a charge no job can cost, or a job number none can have
        bounds.JOB_ID.check(job_id)
        bounds.JOB_CHARGE.check(charged)
    except OutOfBounds as exc:
        console.print(f"[red]{describe(exc.code, exc.data)}[/red]")
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
        except LipsyncError as exc:  # any other refusal the store words (`bot.bounds.OutOfBounds`)
            console.print(f"[red]{describe(exc.code, exc.data)}[/red]")
            return 2
        change = done.given_back
        what = f"{words.credits(change)} given back" if change > 0 else f"{words.credits(-change)} more counted"
        console.print(f"Job #{job_id}: Magic Hour charged {words.credits(charged)}; {what if change else 'no change'}.")
        return 0
