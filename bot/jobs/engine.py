"""The job engine: one job's whole life, from a request to a delivered, settled result.

received → fetching → uploading → submitted → rendering → downloading → delivering → done,
ending early in failed or canceled. Every transition is persisted before the work it names, so
a restart can tell how far a job got. Credits are reserved after probing (when the estimate is
known) and before anything is sent to Magic Hour; every failure after that refunds them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import shutil
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bot import media
from bot.clock import Clock
from bot.config import Settings
from bot.errors import InvalidInput, JobFailed, LipsyncError, NotAllowed, QuotaExceeded
from bot.jobs.fetch import fetch_input
from bot.jobs.messages import explain_job_error
from bot.jobs.models import GuildRules, JobHooks, JobRequest, JobUpdate, QueueSnapshot
from bot.jobs.poller import PollDeadlineExceeded, Poller, PollPolicy
from bot.jobs.queue import SlotQueue
from bot.jobs.validation import check_request, extension_of
from bot.magichour import (
    DownloadExpired,
    LipSyncAssets,
    LipSyncRequest,
    LipSyncStyle,
    MagicHourClient,
    MagicHourError,
    SubmissionUncertain,
    UploadItem,
    VideoProject,
)
from bot.store import Balance, JobRecord, JobState, NewJob, Refusal, Store, discord_timestamp

log = logging.getLogger(__name__)

# States after which the job exists at Magic Hour and can be resumed by polling.
_REMOTE_STATES = frozenset({JobState.SUBMITTED, JobState.RENDERING, JobState.DOWNLOADING, JobState.DELIVERING})


@dataclass(frozen=True)
class EngineConfig:
    """The engine's limits, taken from `Settings`."""

    work_dir: Path
    default_rules: GuildRules
    max_jobs_in_flight: int = 4
    max_concurrent_transfers: int = 4
    max_active_jobs_per_member: int = 1
    default_max_fps: float | None = None
    job_deadline_seconds: float = 3600.0
    poll: PollPolicy = field(default_factory=PollPolicy)
    sandbox: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, *, sandbox: bool) -> EngineConfig:
        """The engine's slice of the settings."""
        return cls(
            work_dir=settings.work_dir,
            default_rules=GuildRules(
                allowed_modes=tuple(settings.allowed_modes),
                max_clip_seconds=settings.max_clip_seconds,
                max_input_bytes=settings.max_input_bytes,
            ),
            max_jobs_in_flight=settings.max_jobs_in_flight,
            max_concurrent_transfers=settings.max_concurrent_transfers,
            max_active_jobs_per_member=settings.max_active_jobs_per_member,
            default_max_fps=settings.default_max_fps,
            job_deadline_seconds=settings.job_deadline_minutes * 60,
            poll=PollPolicy(initial=settings.poll_initial_seconds, maximum=settings.poll_max_seconds),
            sandbox=sandbox,
        )


@dataclass(frozen=True)
class _Plan:
    """What probing decided: the exact window and the credit estimate."""

    start: float
    end: float
    estimate: int
    video_ext: str | None
    audio_ext: str


@dataclass
class _Run:
    """One running job's mutable context."""

    record: JobRecord
    hooks: JobHooks
    workdir: Path
    cancel_requested: bool = False
    remaining_credits: int | None = None
    credits_reserved: bool = False
    resets_at: dt.datetime | None = None
    note: str | None = None


class JobEngine:
    """Runs lip-sync jobs against Magic Hour; the front ends only talk to this class."""

    def __init__(
        self,
        *,
        config: EngineConfig,
        store: Store,
        client: MagicHourClient,
        fetch_http: httpx.AsyncClient,
        clock: Clock,
        poller: Poller | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self._client = client
        self._fetch_http = fetch_http
        self._clock = clock
        self._poller = poller or Poller(client, clock, config.poll)
        self._queue = SlotQueue(config.max_jobs_in_flight, on_position=self._on_queue_position)
        self._transfers = asyncio.Semaphore(config.max_concurrent_transfers)
        self._runs: dict[int, _Run] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._rescues: set[asyncio.Task[None]] = set()

    @property
    def sandbox(self) -> bool:
        """True when results are sandbox renders, not real lip sync."""
        return self.config.sandbox

    @property
    def poller(self) -> Poller:
        """The shared status poller (for diagnostics and benchmarks)."""
        return self._poller

    # ----------------------------------------------------------------- public API

    async def rules_for(self, guild_id: int | None) -> GuildRules:
        """The bot's defaults with this server's own settings applied over them."""
        return (await self._rules_and_job_limit(guild_id))[0]

    async def _rules_and_job_limit(self, guild_id: int | None) -> tuple[GuildRules, int]:
        base, limit = self.config.default_rules, self.config.max_active_jobs_per_member
        if guild_id is None:
            return base, limit
        own = await self.store.limits.guild_settings(guild_id)
        rules = GuildRules(
            allowed_modes=own.allowed_modes if own.allowed_modes is not None else base.allowed_modes,
            max_clip_seconds=own.max_clip_seconds if own.max_clip_seconds is not None else base.max_clip_seconds,
            max_input_bytes=base.max_input_bytes,
        )
        return rules, own.max_active_jobs if own.max_active_jobs is not None else limit

    async def precheck(self, request: JobRequest) -> GuildRules:
        """Every check that costs nothing: raises `InvalidInput` or `QuotaExceeded`, spends nothing."""
        return (await self._precheck(request))[0]

    async def _precheck(self, request: JobRequest) -> tuple[GuildRules, Balance]:
        rules, limit = await self._rules_and_job_limit(request.guild_id)
        check_request(request, rules)
        active = await self.store.jobs.active_count(request.guild_id, request.user_id)
        if active >= limit:
            noun = "job" if limit == 1 else "jobs"
            raise QuotaExceeded(
                f"You can have {limit} {noun} running at a time and you have {active}. "
                "Wait for it to finish, or cancel it with `/cancel`.",
                code="active_jobs",
            )
        return rules, await self._check_credits_left(request)

    async def _check_credits_left(self, request: JobRequest) -> Balance:
        """Refuse at once when a limit has nothing left, before any file is fetched.

        The exact check (against the estimate) happens atomically at reservation; this one only
        spares a member whose allowance is already spent the wait for a download and a probe.
        """
        balance = await self.store.quota.balance(request.guild_id, request.user_id, request.role_ids)
        reset = discord_timestamp(balance.resets_at)
        if balance.remaining <= 0:
            raise QuotaExceeded(
                f"You've used all {balance.allowance + balance.granted} credits of your allowance. It resets {reset}.",
                code=f"quota_{balance.limit_kind.value}",
            )
        if balance.server_pool_remaining is not None and balance.server_pool_remaining <= 0:
            raise QuotaExceeded(
                f"This server has used all its credits for now. They reset {reset}.", code="quota_server_pool"
            )
        if balance.bot_budget_remaining is not None and balance.bot_budget_remaining <= 0:
            raise QuotaExceeded(
                f"The bot has used its whole credit budget for now. It resets {reset}.", code="quota_bot_budget"
            )
        return balance

    async def submit(self, request: JobRequest, hooks: JobHooks) -> JobRecord:
        """Check the request, record the job and run it in the background."""
        if request.max_fps is None and self.config.default_max_fps is not None:
            # The operator's DEFAULT_MAX_FPS caps what the member didn't choose (fewer frames, fewer credits).
            request = dataclasses.replace(request, max_fps=self.config.default_max_fps)
        _, balance = await self._precheck(request)
        video = request.video
        record = await self.store.jobs.create(
            NewJob(
                guild_id=request.guild_id,
                channel_id=request.channel_id,
                user_id=request.user_id,
                video_filename=video.filename if video else None,
                video_size=video.size if video else None,
                audio_filename=request.audio.filename,
                audio_size=request.audio.size,
                youtube_url=request.youtube_url,
                start_seconds=request.start,
                end_seconds=request.end,
                mode=request.mode,
                max_fps=request.max_fps,
                name=request.name,
                status_channel_id=request.status_channel_id,
                status_message_id=request.status_message_id,
            )
        )
        log.info("job %s: received from user %s in guild %s", record.id, record.user_id, record.guild_id)
        run = self._new_run(record, hooks)
        # What the member has before this job, for the status message until credits are reserved.
        run.remaining_credits, run.resets_at = balance.remaining, balance.resets_at
        self._queue.enqueue(record.id)
        self._spawn(run, self._run_new(run, request))
        return record

    async def job(self, job_id: int) -> JobRecord:
        """The job's current record; `InvalidInput` if there is no such job."""
        record = await self.store.jobs.get(job_id)
        if record is None:
            raise InvalidInput(f"There is no job #{job_id}.", code="no_such_job")
        return record

    async def wait(self, job_id: int) -> JobRecord:
        """Wait for a job started here to end; return its final record."""
        task = self._tasks.get(job_id)
        if task is not None:
            await asyncio.shield(task)
        return await self.job(job_id)

    def queue_position(self, job_id: int) -> int | None:
        """1-based place in the queue, or None when the job isn't waiting."""
        return self._queue.position(job_id)

    def queue_snapshot(self) -> QueueSnapshot:
        """Slots in use and jobs waiting, for a `/queue` view."""
        return QueueSnapshot(self._queue.in_flight, self._queue.capacity, self._queue.waiting)

    async def cancel(self, job_id: int, *, by_user_id: int) -> JobRecord:
        """Cancel a job for its owner: free before submission; after it, settle to what the API reports."""
        record = await self.job(job_id)
        if record.user_id != by_user_id:
            raise NotAllowed("Only the member who started this job can cancel it.", code="not_owner")
        if record.state.terminal:
            raise InvalidInput(f"Job #{job_id} has already ended ({record.state.value}).", code="already_ended")
        if record.state in (JobState.DOWNLOADING, JobState.DELIVERING):
            raise InvalidInput(
                f"Job #{job_id} has already rendered and is being delivered: it's too late to cancel.",
                code="too_late",
            )
        run = self._runs.get(job_id)
        task = self._tasks.get(job_id)
        if run is None or task is None:
            raise JobFailed(f"Job #{job_id} isn't running in this bot right now.", code="not_running")
        if not run.cancel_requested:  # a second press waits for the first cancel, not a second one
            run.cancel_requested = True
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(task)
        record = await self.job(job_id)
        if not record.state.terminal:  # cancelled before its task ever ran
            await self._cancelled(run)
            await self._cleanup(run)
            record = await self.job(job_id)
        return record

    async def resume(self, hooks_for: Callable[[JobRecord], JobHooks]) -> list[JobRecord]:
        """After a restart: resume every submitted job, fail (with a refund) every job that wasn't."""
        resumed: list[JobRecord] = []
        for record in await self.store.jobs.unfinished():
            if record.id in self._tasks:
                continue
            try:
                await self._resume_one(record, hooks_for)
            except Exception:
                # One bad record must not keep the others from resuming.
                log.exception("job %s: could not be resumed", record.id)
                continue
            resumed.append(record)
        return resumed

    async def _resume_one(self, record: JobRecord, hooks_for: Callable[[JobRecord], JobHooks]) -> None:
        run = self._new_run(record, hooks_for(record))
        if record.state in _REMOTE_STATES and record.project_id:
            log.info("job %s: resuming (%s, project %s)", record.id, record.state.value, record.project_id)
            self._spawn(run, self._run_resumed(run))
            return
        if record.state is JobState.UPLOADING:
            log.error(
                "job %s: the bot stopped while uploading; if it was creating the job, a Magic Hour project "
                "may exist that this bot doesn't know. Not resubmitting.",
                record.id,
            )
        try:
            await self._fail(
                run,
                "interrupted",
                "The bot restarted before your job reached Magic Hour, so it was stopped. "
                "Nothing was charged: please run `/lipsync` again.",
            )
        finally:
            self._runs.pop(record.id, None)
            await self._cleanup(run)

    async def fresh_download_url(self, job_id: int) -> str:
        """A newly signed link to a finished job's result (old ones expire)."""
        record = await self.job(job_id)
        if not record.project_id:
            raise JobFailed(f"Job #{job_id} has no result.", code="no_result")
        project = await self._client.get_video_project(record.project_id)
        if not project.downloads:
            raise JobFailed(f"Job #{job_id}'s result isn't available any more.", code="no_result")
        return project.downloads[0].url

    async def aclose(self) -> None:
        """Stop every job's task without ending the job: a new engine resumes them."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._poller.aclose()

    # ----------------------------------------------------------------- running a job

    def _new_run(self, record: JobRecord, hooks: JobHooks) -> _Run:
        workdir = self.config.work_dir / f"job-{record.id}"
        run = _Run(record=record, hooks=hooks, workdir=workdir)
        self._runs[record.id] = run
        return run

    def _spawn(self, run: _Run, coro: Coroutine[object, object, None]) -> None:
        job_id = run.record.id
        task = asyncio.get_running_loop().create_task(coro, name=f"job-{job_id}")
        self._tasks[job_id] = task

        def _done(done: asyncio.Task[None]) -> None:
            self._tasks.pop(job_id, None)
            self._runs.pop(job_id, None)
            # A task cancelled before it first ran never entered its `slot()`: free its place.
            self._queue.discard(job_id)
            if not done.cancelled() and (exc := done.exception()) is not None:
                log.error("job %s: its runner crashed", job_id, exc_info=exc)
                rescue = asyncio.get_running_loop().create_task(self._last_resort(job_id))
                self._rescues.add(rescue)
                rescue.add_done_callback(self._rescues.discard)

        task.add_done_callback(_done)

    async def _last_resort(self, job_id: int) -> None:
        """End a job whose runner crashed, so it holds no credits and doesn't block its owner."""
        try:
            record = await self.job(job_id)
            if not record.state.terminal:
                # Ending the job closes its reservation in the same transaction (a refund).
                await self.store.jobs.transition(
                    job_id,
                    JobState.FAILED,
                    error_code="internal_error",
                    error_message="Something went wrong on the bot's side. Nothing was charged.",
                )
        except Exception:
            log.exception("job %s: could not be ended after its runner crashed", job_id)

    async def _run_new(self, run: _Run, request: JobRequest) -> None:
        async def work() -> None:
            await self._transition(run, JobState.FETCHING)
            run.workdir.mkdir(parents=True, exist_ok=True)
            video_path, audio_path = await self._fetch(run, request)
            plan = await self._plan(run, request, video_path, audio_path)
            await self._reserve(run, request, plan)
            await self._transition(run, JobState.UPLOADING)
            video_file, audio_file = await self._upload(run, plan, video_path, audio_path)
            project_id = await self._create(run, request, plan, video_file, audio_file)
            await self._follow(run, project_id, poll_now=False)

        await self._run_guarded(run, work)

    async def _run_resumed(self, run: _Run) -> None:
        project_id = run.record.project_id
        assert project_id is not None
        # A resumed job is already rendering (and being paid for): it goes to the front of the line.
        await self._run_guarded(run, lambda: self._follow(run, project_id, poll_now=True), front=True)

    async def _run_guarded(self, run: _Run, work: Callable[[], Awaitable[None]], *, front: bool = False) -> None:
        """Run a job's work in its slot; turn every way it can end into a final state."""
        try:
            await self._emit(run)
            async with self._queue.slot(run.record.id, front=front):
                await work()
        except asyncio.CancelledError:
            if not run.cancel_requested:
                raise  # engine shutdown: the job stays unfinished and a new engine resumes it
            _swallow_cancel()
            await self._cancelled(run)
        except Exception as exc:
            await self._fail_from(run, exc)
        finally:
            await self._cleanup(run)

    async def _fetch(self, run: _Run, request: JobRequest) -> tuple[Path | None, Path]:
        limit = self.config.default_rules.max_input_bytes
        async with self._transfers:
            video_path = None
            if request.video is not None:
                run.note = f"Fetching {request.video.filename}"
                await self._emit(run)
                dest = run.workdir / f"video.{extension_of(request.video.filename)}"
                video_path = await fetch_input(self._fetch_http, request.video, dest, max_bytes=limit)
            run.note = f"Fetching {request.audio.filename}"
            await self._emit(run)
            dest = run.workdir / f"audio.{extension_of(request.audio.filename)}"
            audio_path = await fetch_input(self._fetch_http, request.audio, dest, max_bytes=limit)
        run.note = None
        return video_path, audio_path

    async def _plan(self, run: _Run, request: JobRequest, video_path: Path | None, audio_path: Path) -> _Plan:
        rules = await self.rules_for(request.guild_id)
        if request.video is not None and video_path is not None:
            await _check_name_tells_truth(video_path, request.video.filename)
        await _check_name_tells_truth(audio_path, request.audio.filename)
        audio_info = await media.probe_audio(audio_path, filename=request.audio.filename)
        start = request.start
        fps: float | None
        if request.video is not None and video_path is not None:
            video_info = await media.probe_video(video_path, filename=request.video.filename)
            if start >= video_info.duration:
                raise InvalidInput(
                    f"`start` ({start:g} s) is past the end of `{request.video.filename}` "
                    f"({video_info.duration:.1f} s long).",
                    code="start_past_end",
                )
            end = request.end if request.end is not None else start + audio_info.duration
            end = min(end, video_info.duration)
            fps = video_info.fps
        else:
            assert request.end is not None  # validation requires `end` with a YouTube link
            end = request.end
            fps = None  # Magic Hour estimates YouTube sources at 30 fps
        length = end - start
        if length > rules.max_clip_seconds + 1e-6:
            raise InvalidInput(
                f"That clip would be {length:.1f} s long; the longest clip allowed here is "
                f"{rules.max_clip_seconds:g} s. Set `start` and `end` to choose a shorter part.",
                code="clip_too_long",
            )
        estimate = media.estimate_credits(length, fps, request.max_fps, request.mode)
        run.record = await self.store.jobs.update(
            run.record.id, start_seconds=start, end_seconds=end, estimated_credits=estimate
        )
        video_ext = extension_of(request.video.filename) if request.video is not None else None
        return _Plan(start, end, estimate, video_ext, extension_of(request.audio.filename))

    async def _reserve(self, run: _Run, request: JobRequest, plan: _Plan) -> None:
        outcome = await self.store.quota.reserve(
            run.record.id,
            guild_id=request.guild_id,
            user_id=request.user_id,
            role_ids=request.role_ids,
            amount=plan.estimate,
        )
        if isinstance(outcome, Refusal):
            raise outcome.as_error()
        run.remaining_credits, run.resets_at, run.credits_reserved = outcome.remaining, outcome.resets_at, True
        log.info("job %s: reserved %s credits", run.record.id, plan.estimate)

    async def _upload(self, run: _Run, plan: _Plan, video: Path | None, audio: Path) -> tuple[str | None, str]:
        items = [UploadItem(type="audio", extension=plan.audio_ext)]
        if video is not None and plan.video_ext is not None:
            items.insert(0, UploadItem(type="video", extension=plan.video_ext))
        urls = await self._client.create_upload_urls(items)
        audio_url = urls[-1]
        async with self._transfers:
            video_file = None
            if video is not None:
                run.note = "Uploading video"
                await self._emit(run)
                await self._client.upload_file(urls[0].upload_url, video)
                video_file = urls[0].file_path
            run.note = "Uploading audio"
            await self._emit(run)
            await self._client.upload_file(audio_url.upload_url, audio)
        run.note = None
        return video_file, audio_url.file_path

    async def _create(
        self, run: _Run, request: JobRequest, plan: _Plan, video_file: str | None, audio_file: str
    ) -> str:
        assets = (
            LipSyncAssets(video_source="file", video_file_path=video_file, audio_file_path=audio_file)
            if video_file is not None
            else LipSyncAssets(video_source="youtube", youtube_url=request.youtube_url, audio_file_path=audio_file)
        )
        body = LipSyncRequest(
            name=request.name or f"lipsync-bot job {run.record.id}",
            start_seconds=plan.start,
            end_seconds=plan.end,
            max_fps_limit=request.max_fps,
            assets=assets,
            style=LipSyncStyle(generation_mode=request.mode),
        )
        # The create must not be abandoned half-way: a cancel while it is in flight waits for its
        # answer, so that a job Magic Hour made is recorded (and then deleted), never forgotten.
        create = asyncio.ensure_future(self._client.create_lip_sync(body))
        cancelled = False
        while True:
            try:
                created = await asyncio.shield(create)
                break
            except asyncio.CancelledError:
                cancelled = True
                if create.done():
                    raise
        run.record = await self._transition(
            run, JobState.SUBMITTED, project_id=created.id, estimated_credits=created.credits_charged
        )
        if cancelled:
            raise asyncio.CancelledError
        return created.id

    async def _follow(self, run: _Run, project_id: str, *, poll_now: bool) -> None:
        """Wait for the render, then download, deliver and settle."""
        # The deadline counts from submission: time spent queued or uploading isn't Magic Hour's.
        remaining = self.config.job_deadline_seconds - await self._seconds_since_submission(run.record)
        try:
            project = await self._poller.wait(
                project_id,
                within=max(remaining, 0.0),
                listener=lambda p: self._on_project(run, p),
                poll_now=poll_now,
            )
        except PollDeadlineExceeded:
            last = await self._stop_render(run, project_id)
            if last is None or not last.is_complete:
                raise JobFailed(
                    f"Magic Hour didn't finish this job within {self.config.job_deadline_seconds / 60:g} minutes, "
                    f"so the bot stopped it. Nothing was charged to you. (Magic Hour project `{project_id}`.)",
                    code="deadline",
                ) from None
            project = last
        if project.status == "error":
            code = project.error.code if project.error else None
            message = project.error.message if project.error else None
            raise JobFailed(explain_job_error(code, message), code=f"magic_hour_{code or 'error'}")
        if project.status == "canceled":
            raise JobFailed("The job was canceled at Magic Hour. Nothing was charged.", code="canceled_remotely")
        await self._deliver(run, project)

    async def _seconds_since_submission(self, record: JobRecord) -> float:
        submitted = [e.at for e in await self.store.jobs.events(record.id) if e.state is JobState.SUBMITTED]
        start = submitted[-1] if submitted else record.created_at
        return max(0.0, (self._clock.now() - start).total_seconds())

    async def _stop_render(self, run: _Run, project_id: str) -> VideoProject | None:
        """Stop a render nobody will wait for (so it stops costing), unless it has just finished.

        Returns the project as Magic Hour last reported it, or None if it couldn't be read.
        """
        self._poller.forget(project_id)
        project = await self._read_project(project_id)
        if project is not None and project.is_complete:
            return project  # rendered and paid for: deliver it rather than throw it away
        with contextlib.suppress(MagicHourError):
            await self._client.delete_video_project(project_id)
        log.warning("job %s: stopped Magic Hour project %s", run.record.id, project_id)
        return await self._read_project(project_id)

    async def _read_project(self, project_id: str) -> VideoProject | None:
        try:
            return await self._client.get_video_project(project_id)
        except MagicHourError as exc:
            log.warning("couldn't read project %s: %s", project_id, exc)
            return None

    async def _on_project(self, run: _Run, project: VideoProject) -> None:
        if project.status == "rendering" and run.record.state is JobState.SUBMITTED:
            await self._transition(run, JobState.RENDERING)

    async def _deliver(self, run: _Run, project: VideoProject) -> None:
        charged = project.credits_charged
        if run.record.state in (JobState.SUBMITTED, JobState.RENDERING):
            await self._transition(run, JobState.DOWNLOADING, charged_credits=charged)
        run.workdir.mkdir(parents=True, exist_ok=True)
        prefix = "sandbox-lipsync" if self.sandbox else "lipsync"
        result = run.workdir / f"{prefix}-{run.record.id}.mp4"
        async with self._transfers:
            try:
                await self._client.download(project.downloads[0].url, result)
            except DownloadExpired:
                fresh = await self._client.get_video_project(project.id)
                await self._client.download(fresh.downloads[0].url, result)
        if run.record.state is not JobState.DELIVERING:  # a resumed job may be there already
            await self._transition(run, JobState.DELIVERING)
        delivery = await run.hooks.deliverer.deliver(run.record, result, sandbox=self.sandbox)
        await self.store.quota.settle(run.record.id, charged)
        await self._transition(run, JobState.DONE, delivery_kind=delivery.kind, delivery_message_id=delivery.message_id)
        log.info("job %s: done, %s credits, delivered as %s", run.record.id, charged, delivery.kind)

    async def _cancelled(self, run: _Run) -> None:
        """The owner canceled: stop the render if there is one; nothing is charged for it.

        A render that had already finished is delivered instead: it is paid for, and throwing it
        away would charge the member for nothing.
        """
        record = await self.job(run.record.id)
        run.record = record
        if record.state.terminal:
            return
        if record.project_id:
            project = await self._stop_render(run, record.project_id)
            if project is not None and project.is_complete:
                log.info("job %s: cancel came after the render finished; delivering it", record.id)
                run.note = "It had already rendered, so here it is"
                await self._deliver(run, project)
                return
        await self.store.quota.refund(record.id)
        await self._transition(run, JobState.CANCELED, charged_credits=0)
        log.info("job %s: canceled by its owner", record.id)

    async def _fail_from(self, run: _Run, exc: BaseException) -> None:
        if isinstance(exc, SubmissionUncertain):
            log.error(
                "job %s: the create call's outcome is unknown; a Magic Hour job may exist. Not resubmitting.",
                run.record.id,
            )
            await self._fail(run, "submission_uncertain", exc.user_message)
        elif isinstance(exc, LipsyncError):  # our own errors and every Magic Hour client error
            await self._fail(run, exc.code, exc.user_message)
        else:
            log.error("job %s: unexpected failure", run.record.id, exc_info=exc)
            await self._fail(run, "internal_error", "Something went wrong on the bot's side. Nothing was charged.")

    async def _fail(self, run: _Run, code: str, message: str) -> None:
        await self.store.quota.refund(run.record.id)
        current = await self.job(run.record.id)
        run.record = current
        if current.state.terminal:
            return
        await self._transition(run, JobState.FAILED, error_code=code, error_message=message)
        log.info("job %s: failed (%s)", run.record.id, code)

    async def _cleanup(self, run: _Run) -> None:
        await asyncio.to_thread(shutil.rmtree, run.workdir, ignore_errors=True)

    # ----------------------------------------------------------------- progress

    async def _transition(self, run: _Run, state: JobState, **fields: object) -> JobRecord:
        run.record = await self.store.jobs.transition(run.record.id, state, detail=None, **fields)
        log.info(
            "job %s: %s%s",
            run.record.id,
            state.value,
            f" (project {run.record.project_id})" if run.record.project_id else "",
        )
        await self._emit(run)
        return run.record

    def _age(self, record: JobRecord) -> float:
        return max(0.0, (self._clock.now() - record.created_at).total_seconds())

    async def _emit(self, run: _Run) -> None:
        update = JobUpdate(
            job=run.record,
            elapsed=self._age(run.record),
            queue_position=self._queue.position(run.record.id),
            note=run.note,
            remaining_credits=run.remaining_credits,
            credits_reserved=run.credits_reserved,
            resets_at=run.resets_at,
            sandbox=self.sandbox,
        )
        try:
            await run.hooks.sink.update(update)
        except Exception:
            log.exception("job %s: progress display failed", run.record.id)

    async def _on_queue_position(self, job_id: int, position: int) -> None:
        run = self._runs.get(job_id)
        if run is not None:
            await self._emit(run)


_KIND_WORDS = {
    "text": "a text file",
    "png": "a PNG image",
    "jpeg": "a JPEG image",
    "gif": "a GIF image",
    "webp": "a WebP image",
    "empty": "empty",
}


async def _check_name_tells_truth(path: Path, filename: str) -> None:
    """Refuse a file whose first bytes say it is something its name doesn't claim."""
    kind = await asyncio.to_thread(media.sniff_kind, path)
    if kind is None or media.extension_matches(kind, extension_of(filename)):
        return  # unknown content is left to the probe
    what = _KIND_WORDS.get(kind, f"a {kind} file")
    raise InvalidInput(
        f"`{filename}` is named like a .{extension_of(filename)} file, but it's really {what}. "
        "Please send the real media file.",
        code="name_mismatch",
    )


def _swallow_cancel() -> None:
    """Mark the current task's cancellation as handled, so later awaits (httpx, anyio) run normally."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
