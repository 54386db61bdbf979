"""One job's run: its steps in order, from the member's files to a delivered, settled result.

fetch → plan → reserve → upload → create → reconcile → follow → deliver, each step persisted as
a state before the work it names, so a restart can tell how far a job got. `JobRun` owns the
job's record while it runs: it is the only writer of the job's state, and every state change
goes through `JobStore.transition`, which is also the one place credits close.

The rules for money and results (docs/design-notes.md):
- Credits are reserved after probing and before anything is sent; a create answer that charges
  more is topped up within the limits, or the render is stopped at once.
- A submitted job ends only on a successful read of its project: `complete` is delivered and
  settled to its charge, `error` or `canceled` end the job at what Magic Hour charged (it refunds
  them). A create whose outcome is unknown is never called free: it counts as spent.
- A completed render is settled before it is downloaded and is never refunded: download and
  delivery retry (`delivery.py`), then fall back to a link.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from bot.clock import Clock
from bot.errors import Datum, LipsyncError, json_data
from bot.jobs.admission import Admission, Admitted
from bot.jobs.config import EngineConfig
from bot.jobs.delivery import Courier
from bot.jobs.forecast import Expectation, RenderForecast
from bot.jobs.inputs import Plan, fetch_inputs, plan_job, plan_reuse
from bot.jobs.models import JobHooks, JobRequest, JobUpdate, ReusedFiles
from bot.jobs.poller import PollDeadlineExceeded, Poller
from bot.jobs.readback import stop_render
from bot.jobs.submit import create_project, lip_sync_body, project_name, upload_inputs
from bot.magichour import (
    CreatedJob,
    MagicHourClient,
    NotOnPlan,
    SubmissionUncertain,
    Unauthorized,
    VideoProject,
)
from bot.store import JobRecord, JobState, LedgerKind, Refusal, Store

log = logging.getLogger(__name__)

# How long a cancel (or a stop for going over budget) keeps trying to read a project it can't; a
# member waits on the answer.
_CANCEL_PATIENCE = 60.0


@dataclass(frozen=True)
class RunContext:
    """What every job's run shares, built once by the engine."""

    config: EngineConfig
    store: Store
    client: MagicHourClient
    poller: Poller
    admission: Admission
    fetch_http: httpx.AsyncClient
    clock: Clock
    transfers: asyncio.Semaphore
    queue_position: Callable[[int], int | None]
    forecast: RenderForecast


class JobRun:
    """One job's run. The engine creates it, gives it a slot, and calls one of the `run_*` methods."""

    def __init__(self, ctx: RunContext, record: JobRecord, hooks: JobHooks) -> None:
        self.ctx = ctx
        self.record = record
        self.hooks = hooks
        self.workdir = ctx.config.work_dir / f"job-{record.id}"
        self.cancel_requested = False
        self._created_id: str | None = None
        self._created_charge = 0  # what Magic Hour's create answer charged: the least the job costs
        self.sandbox = ctx.config.sandbox
        self._activity: tuple[str, dict[str, str]] | None = None
        self._remaining: int | None = None
        self._reserved = False
        self._resets_at: dt.datetime | None = None
        self._expect: Expectation | None = None  # the render's forecast and what polls saw of it
        self._courier = Courier(self)

    @property
    def job_id(self) -> int:
        """The job's number."""
        return self.record.id

    def know_limits(self, admitted: Admitted) -> None:
        """Show what the member has before this job, until its credits are reserved."""
        self._remaining, self._resets_at = admitted.limits.remaining, admitted.limits.resets_at

    # ------------------------------------------------------------------ the two ways to run

    async def run_new(self, request: JobRequest, admitted: Admitted) -> None:
        """A new job, from its inputs to a delivered result."""
        if request.reuse is not None:
            await self._run_reused(request, request.reuse, admitted)
            return
        await self.transition(JobState.FETCHING)
        self.workdir.mkdir(parents=True, exist_ok=True)
        video_path, audio_path = await fetch_inputs(self.ctx, self.workdir, request, admitted.rules, self.show)
        self._activity = None
        plan = await plan_job(self.ctx.config, request, admitted.rules, video_path, audio_path)
        await self._reserve(request, plan)
        await self.transition(JobState.UPLOADING)
        uploaded_at = self.ctx.clock.now()  # Magic Hour's week for the files counts from about here
        video_file, audio_file = await upload_inputs(self.ctx, plan, video_path, audio_path, self.show)
        self._activity = None
        # Recorded before the create, so a failed job can be retried from them too.
        files = {"video_file_path": video_file, "audio_file_path": audio_file, "files_uploaded_at": uploaded_at}
        self.record = await self.ctx.store.jobs.update(self.job_id, **files)
        await self._submit(request, plan, video_file, audio_file)

    async def _run_reused(self, request: JobRequest, files: ReusedFiles, admitted: Admitted) -> None:
        """A re-run: an earlier job's uploaded files, a fresh estimate and reservation, a new render."""
        plan = plan_reuse(self.ctx.config, request, admitted.rules, files, now=self.ctx.clock.now())
        self.record = await self.ctx.store.jobs.update(self.job_id, **files.job_fields())
        await self._reserve(request, plan)
        await self.transition(JobState.UPLOADING)  # nothing to send: the state a create follows
        await self.show("activity_reuse", job=str(files.from_job))
        self._activity = None
        await self._submit(request, plan, files.video_file_path, files.audio_file_path)

    async def _reserve(self, request: JobRequest, plan: Plan) -> None:
        """Record the window and what probing found, then set the estimate aside against every limit."""
        self.record = await self.ctx.store.jobs.update(self.job_id, **plan.job_fields())
        reservation = await self.ctx.admission.reserve(self.record, request.role_ids, plan.amount)
        self._remaining, self._resets_at, self._reserved = reservation.remaining, reservation.resets_at, True
        log.info("job %s: reserved %s credits", self.job_id, reservation.amount)

    async def _submit(self, request: JobRequest, plan: Plan, video_file: str | None, audio_file: str) -> None:
        created = await self._create(request, plan, video_file, audio_file)
        if await self._reconcile(created):
            await self._follow(created.id, poll_now=False)

    async def run_resumed(self) -> None:
        """A job found unfinished after a restart: carry on from the state it was in."""
        record, project_id = self.record, self.record.project_id
        if record.state in (JobState.SUBMITTED, JobState.RENDERING) and project_id:
            await self._follow(project_id, poll_now=True)
        elif record.state in (JobState.DOWNLOADING, JobState.DELIVERING) and project_id:
            await self._courier.deliver(None)
        elif record.state is JobState.CREATING:
            # The create call may have reached Magic Hour: never call it free, never send it again.
            log.error(
                "job %s: the bot stopped while creating it; its project (%s) may exist",
                record.id,
                project_name(record.id, record.name),
            )
            await self.end_unknown(reason="interrupted_while_creating")
        else:
            await self.end(JobState.FAILED, "interrupted")

    # ------------------------------------------------------------------ steps

    async def _create(self, request: JobRequest, plan: Plan, video_file: str | None, audio_file: str) -> CreatedJob:
        body = lip_sync_body(self.job_id, request, plan, video_file, audio_file)
        # Persisted first: if the process dies during the call, a restart knows a project may exist.
        await self.transition(JobState.CREATING)
        created, cancelled = await create_project(self.ctx, body, lambda: self.cancel_requested)
        self._created_id = created.id  # known here even if recording it fails
        self._created_charge = created.credits_charged
        self.sandbox = self.sandbox or created.sandbox
        await self.transition(JobState.SUBMITTED, project_id=created.id)
        if cancelled:
            raise asyncio.CancelledError
        return created

    async def _reconcile(self, created: CreatedJob) -> bool:
        """Hold what Magic Hour charged at create; if the limits can't, stop the render. True to go on."""
        held = await self.held()
        if created.credits_charged <= held:
            return True
        outcome = await self.ctx.admission.top_up(self.record, created.credits_charged)
        if not isinstance(outcome, Refusal):
            log.info("job %s: Magic Hour charged %s at create; reservation topped up", self.job_id, outcome.amount)
            return True
        log.warning(
            "job %s: Magic Hour charged %s at create but %s were reserved and the %s limit can't cover the rest; "
            "stopping project %s",
            self.job_id,
            created.credits_charged,
            held,
            outcome.limit.value,
            created.id,
        )
        project = await self._stop_soon(created.id, why="over budget")
        if project is None:
            # Stopped or not, nobody knows; Magic Hour's create answer is the least it charged.
            await self.end_unknown(reason="over_budget_unreadable", at_least=created.credits_charged)
            return False
        if project.is_complete:
            await self._courier.complete(project)  # already rendered and paid for: deliver it
            return False
        await self.end(
            JobState.FAILED,
            "over_budget_at_create",
            {"charged": created.credits_charged, "reserved": held},
            charged=project.credits_charged,
        )
        return False

    async def _follow(self, project_id: str, *, poll_now: bool) -> None:
        """Wait for the render to end at Magic Hour, then end the job on what it says."""
        since = await self._seconds_since_submission()
        expect = self._expect = await self.ctx.forecast.expect(self.record, elapsed=since)
        if expect.expected_at is not None:
            await self.emit()  # show the expected finish
        remaining = self.ctx.config.job_deadline_seconds - since
        try:
            project: VideoProject | None = await self.ctx.poller.wait(
                project_id, within=max(remaining, 0.0), listener=self._on_project, poll_now=poll_now, expect=expect
            )
            await self.ctx.forecast.record(expect, project)
        except PollDeadlineExceeded:
            project = await self._stop_at_deadline(project_id)
            if project is not None and project.status not in ("complete", "error"):
                # Stopped by us (canceled), or still going because the DELETE failed.
                minutes = self.ctx.config.job_deadline_seconds / 60
                await self.end(JobState.FAILED, "deadline", {"minutes": minutes}, charged=project.credits_charged)
                return
        except (Unauthorized, NotOnPlan) as exc:
            log.error(
                "job %s: Magic Hour refused the bot's key while following project %s: %s", self.job_id, project_id, exc
            )
            project = None
        if project is None:
            await self.end_unknown(reason="unreadable")
        else:
            await self.on_final(project)

    async def _stop_at_deadline(self, project_id: str) -> VideoProject | None:
        """Past the deadline: stop the render, but only on a successful read of it (see `_stop_when_read`)."""
        config = self.ctx.config
        return await self._stop_when_read(
            project_id,
            within=config.deadline_grace_seconds,
            every=config.deadline_grace_interval,
            why="past its deadline",
        )

    async def _stop_soon(self, project_id: str, *, why: str) -> VideoProject | None:
        """Stop a render nobody will wait for, trying to read it for `_CANCEL_PATIENCE` seconds at most."""
        config = self.ctx.config
        return await self._stop_when_read(
            project_id,
            within=min(_CANCEL_PATIENCE, config.deadline_grace_seconds),
            every=min(_CANCEL_PATIENCE / 6, config.deadline_grace_interval),
            why=why,
        )

    async def _stop_when_read(self, project_id: str, *, within: float, every: float, why: str) -> VideoProject | None:
        """Stop the render once a read shows it still going; the project as last read, None if never.

        If the project can't be read (a 5xx storm), nothing is deleted: keep asking, every `every`
        seconds for `within`, because the render may be complete and paid for.
        """
        clock = self.ctx.clock
        give_up_at = clock.monotonic() + within
        while True:
            project = await self.stop_render(project_id)
            if project is not None or clock.monotonic() + every > give_up_at:
                return project
            log.warning("job %s: %s and project %s can't be read; asking again", self.job_id, why, project_id)
            await clock.sleep(every)

    async def on_final(self, project: VideoProject) -> None:
        """End the job on a project Magic Hour reported as complete, errored or canceled."""
        self.sandbox = self.sandbox or project.sandbox
        if project.is_complete:
            await self._courier.complete(project)
        elif project.status == "error":
            code = project.error.code if project.error else None
            detail = project.error.message if project.error else None
            await self.end(
                JobState.FAILED, f"magic_hour_{code or 'error'}", {"detail": detail}, charged=project.credits_charged
            )
        else:
            await self.end(JobState.FAILED, "canceled_remotely", charged=project.credits_charged)

    async def _seconds_since_submission(self) -> float:
        # The deadline counts from submission: time spent queued or uploading isn't Magic Hour's.
        events = await self.ctx.store.jobs.events(self.job_id)
        submitted = [e.at for e in events if e.state is JobState.SUBMITTED]
        start = submitted[-1] if submitted else self.record.created_at
        return max(0.0, (self.ctx.clock.now() - start).total_seconds())

    async def _on_project(self, project: VideoProject) -> None:
        if project.status == "rendering" and self.record.state is JobState.SUBMITTED:
            await self.transition(JobState.RENDERING)

    async def stop_render(self, project_id: str) -> VideoProject | None:
        """Stop the job's render if it is still going (see `readback.stop_render`)."""
        return await stop_render(self.ctx.client, self.ctx.poller, project_id, job_id=self.job_id)

    # ------------------------------------------------------------------ ending

    async def canceled(self) -> None:
        """The owner canceled: stop the render if there is one, and charge what Magic Hour did.

        A render that had already finished is delivered instead: it is paid for. If Magic Hour
        can't be read for `_CANCEL_PATIENCE` seconds, the job ends unknown at Magic Hour (what it
        held counts as spent, and the operator can reconcile it), never canceled on a guess.
        """
        current = await self.ctx.store.jobs.get(self.job_id)
        if current is None or current.state.terminal:
            return
        self.record = current
        if current.project_id is None:
            await self.end(JobState.CANCELED)
            log.info("job %s: canceled by its owner", self.job_id)
            return
        project = await self._stop_soon(current.project_id, why="canceled")
        if project is None:
            # Nothing deleted blind, nothing refunded blind: the render may finish and be billed.
            await self.end_unknown(reason="canceled_unreadable")
            return
        if project.is_complete:
            log.info("job %s: cancel came after the render finished; delivering it", self.job_id)
            self._activity = ("activity_already_rendered", {})
            await self._courier.complete(project)
            return
        await self.end(JobState.CANCELED, charged=project.credits_charged)
        log.info("job %s: canceled by its owner, %s credits charged", self.job_id, project.credits_charged)

    async def failed(self, exc: BaseException) -> None:
        """End the job after an error; what it costs depends on how far it got."""
        if isinstance(exc, SubmissionUncertain):
            log.error("job %s: the create call's outcome is unknown; a Magic Hour job may exist", self.job_id)
            await self.end_unknown(reason="no_answer")
            return
        current = await self.ctx.store.jobs.get(self.job_id)
        if current is not None:
            if current.state.terminal:
                return
            self.record = current
        project_id = current.project_id if current is not None else None
        if current is not None and current.state is JobState.CREATING and self._created_id is not None:
            # Magic Hour made the project but recording it failed: record it now, or the job
            # could only end "unknown" (if this fails too, a restart says exactly that).
            log.error("job %s: recording project %s failed", self.job_id, self._created_id, exc_info=exc)
            await self.transition(JobState.SUBMITTED, project_id=self._created_id)
            project_id = self._created_id
        elif project_id is None and isinstance(exc, LipsyncError):
            await self.end(JobState.FAILED, exc.code, exc.data)
            return
        else:
            log.error("job %s: unexpected failure", self.job_id, exc_info=exc)
        if project_id is None:
            await self.end(JobState.FAILED, "internal_error")
            return
        # Submitted: the job still ends only on what Magic Hour says about it.
        project = await self.stop_render(project_id)
        if project is None:
            await self.end_unknown(reason="internal_error")
        elif project.is_complete:
            log.info("job %s: the render is complete and paid for; delivering it after the failure", self.job_id)
            await self._courier.complete(project)
        else:
            await self.end(JobState.FAILED, "internal_error", charged=project.credits_charged)

    async def end_unknown(self, *, reason: str, at_least: int = 0) -> None:
        """End a job whose fate at Magic Hour can't be known: what was set aside counts as spent.

        `at_least`: what Magic Hour is known to have charged, when that is more (its create answer).
        """
        counted = max(await self.held(), at_least, self._created_charge)
        await self.end(
            JobState.FAILED, "unknown_at_magic_hour", {"reserved": counted, "reason": reason}, charged=counted or None
        )

    async def end(
        self,
        state: JobState,
        code: str | None = None,
        data: dict[str, Datum] | None = None,
        *,
        charged: int | None = None,
    ) -> None:
        """Move the job to a final state (once): the store closes its credits in the same step."""
        current = await self.ctx.store.jobs.get(self.job_id)
        if current is None or current.state.terminal:
            return
        self.record = current
        if code is None:
            await self.transition(state, charged=charged)
        else:
            await self.transition(state, charged=charged, error_code=code, error_data=json_data(data or {}))
        log.info("job %s: %s%s", self.job_id, state.value, f" ({code})" if code else "")

    async def held(self) -> int:
        """Credits this job has set aside (its reservation and top-ups); 0 if none."""
        entries = await self.ctx.store.quota.entries(self.job_id)
        return -sum(e.amount for e in entries if e.kind in (LedgerKind.RESERVE, LedgerKind.TOPUP))

    async def cleanup(self) -> None:
        """Remove the job's temporary files."""
        await asyncio.to_thread(shutil.rmtree, self.workdir, ignore_errors=True)

    # ------------------------------------------------------------------ progress

    async def transition(self, state: JobState, *, charged: int | None = None, **fields: object) -> JobRecord:
        """Persist a state change (the store checks it and closes credits on the final ones), then show it."""
        self.record = await self.ctx.store.jobs.transition(self.job_id, state, charged=charged, detail=None, **fields)
        project = f" (project {self.record.project_id})" if self.record.project_id else ""
        log.info("job %s: %s%s", self.job_id, state.value, project)
        await self.emit()
        return self.record

    async def show(self, activity: str, **data: str) -> None:
        """Say what the job is doing within its state."""
        self._activity = (activity, data)
        await self.emit()

    async def emit(self) -> None:
        """Give the progress sink a snapshot; a display problem never fails the job."""
        activity, data = self._activity or (None, {})
        update = JobUpdate(
            job=self.record,
            elapsed=max(0.0, (self.ctx.clock.now() - self.record.created_at).total_seconds()),
            queue_position=self.ctx.queue_position(self.job_id),
            activity=activity,
            activity_data=data,
            expected_at=self._expect.expected_at if self._expect is not None else None,
            remaining_credits=self._remaining,
            credits_reserved=self._reserved,
            resets_at=self._resets_at,
            sandbox=self.sandbox,
        )
        try:
            await self.hooks.sink.update(update)
        except Exception:
            log.exception("job %s: progress display failed", self.job_id)


def swallow_cancel() -> None:
    """Mark the current task's cancellation as handled, so later awaits (httpx, anyio) run normally."""
    task = asyncio.current_task()
    if task is not None:
        with contextlib.suppress(RuntimeError):
            task.uncancel()
