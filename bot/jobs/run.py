"""One job's run: its steps in order, from the member's files to a delivered, settled result.

fetch → plan → reserve → upload → create → reconcile → follow → deliver, each step persisted as
a state before the work it names, so a restart can tell how far a job got. `JobRun` owns the
job's record while it runs: it is the only writer of the job's state, and every state change
goes through `JobStore.transition`, which is also the one place credits close. How a job ends
(its final state, its charge, whether its project is still followed) is decided in one place,
`bot.jobs.endings`, and carried out by `closing.Closer`; delivery is `delivery.Courier`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import shutil
from collections.abc import Mapping

from bot.errors import Datum, LipsyncError, QuotaExceeded
from bot.jobs import fixes
from bot.jobs.admission import Admitted
from bot.jobs.closing import Closer
from bot.jobs.context import RunContext
from bot.jobs.delivery import Courier
from bot.jobs.endings import Why
from bot.jobs.forecast import Expectation
from bot.jobs.inputs import Plan, fetch_inputs, plan_job, plan_reuse
from bot.jobs.models import GuildRules, JobHooks, JobRequest, JobUpdate, ReusedFiles
from bot.jobs.poller import PollDeadlineExceeded
from bot.jobs.submit import create_project, lip_sync_body, project_name, upload_inputs
from bot.magichour import CreatedJob, MagicHourError, SubmissionUncertain, VideoProject
from bot.store import (
    InvalidTransition,
    JobNotFound,
    JobRecord,
    JobState,
    LeaseLost,
    LedgerKind,
    Refusal,
)

log = logging.getLogger(__name__)

# Recording a project id Magic Hour gave back is retried on database errors, with these pauses.
_RECORD_FIRST_DELAY = 1.0
_RECORD_MAX_DELAY = 30.0


class JobRun:
    """One job's run. The engine creates it, gives it a slot, and calls one of the `run_*` methods."""

    def __init__(self, ctx: RunContext, record: JobRecord, hooks: JobHooks) -> None:
        self.ctx = ctx
        self.record = record
        self.hooks = hooks
        self.workdir = ctx.config.work_dir / f"job-{record.id}"
        self.cancel_requested = False
        self.created_id: str | None = None  # the project the create made, known before it is recorded
        self.created_charge = 0  # what Magic Hour's create answer charged: the least the job costs
        self.create_refused = False  # the create was answered with a refusal: no project was made
        self.sandbox = ctx.config.sandbox
        self._activity: tuple[str, dict[str, str]] | None = None
        self._remaining: int | None = None
        self._thumbnail: bytes | None = None  # the card's first-frame picture, once probed
        self._reserved = False
        # Known in memory while this process runs the job, so its steps need not read them back.
        self._held: int | None = None  # what the job holds (reservation and top-ups)
        self._submitted_at: dt.datetime | None = None  # when the job entered `submitted`
        self._resets_at: dt.datetime | None = None
        self._expect: Expectation | None = None  # the render's forecast and what polls saw of it
        self.courier = Courier(self)
        self._closer = Closer(self)

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
        self._thumbnail = plan.thumbnail
        await self._reserve(request, plan, admitted.rules)
        await self.transition(JobState.UPLOADING)
        uploaded_at = self.ctx.clock.now()  # Magic Hour's week for the files counts from about here
        video_file, audio_file = await upload_inputs(self.ctx, plan, video_path, audio_path, self.show)
        self._activity = None
        # Recorded before the create, so a failed job can be retried from them too.
        # Recorded with the move to `creating`, before the create is sent.
        files = {"video_file_path": video_file, "audio_file_path": audio_file, "files_uploaded_at": uploaded_at}
        await self._submit(request, plan, video_file, audio_file, files=files)

    async def _run_reused(self, request: JobRequest, files: ReusedFiles, admitted: Admitted) -> None:
        """A re-run: an earlier job's uploaded files, a fresh estimate and reservation, a new render."""
        plan = plan_reuse(self.ctx.config, request, admitted.rules, files, now=self.ctx.clock.now())
        self.record = await self.ctx.store.jobs.update(self.job_id, **files.job_fields())
        await self._reserve(request, plan, admitted.rules)
        await self.transition(JobState.UPLOADING)  # nothing to send: the state a create follows
        await self.show("activity_reuse", job=str(files.from_job))
        self._activity = None
        await self._submit(request, plan, files.video_file_path, files.audio_file_path)

    async def _reserve(self, request: JobRequest, plan: Plan, rules: GuildRules) -> None:
        """Record the window and what probing found, then set the quote's hold aside against every limit.

        A refusal for credits offers the changes that would fit (`bot.jobs.fixes`), each priced.
        """
        self.record = await self.ctx.store.jobs.update(self.job_id, **plan.job_fields())
        try:
            reservation = await self.ctx.admission.reserve(self.record, request.role_ids, plan.quote)
        except QuotaExceeded as exc:
            available = exc.data.get("available")
            if isinstance(available, int) and not isinstance(available, bool):
                exc.data.update(fixes.as_data(fixes.fixes_for(plan.pricing, plan.start, rules, available)))
            raise
        self._remaining, self._resets_at, self._reserved = reservation.remaining, reservation.resets_at, True
        self._held = reservation.amount
        log.info("job %s: reserved %s credits", self.job_id, reservation.amount)

    async def _submit(
        self,
        request: JobRequest,
        plan: Plan,
        video_file: str | None,
        audio_file: str,
        *,
        files: Mapping[str, object] | None = None,
    ) -> None:
        created = await self._create(request, plan, video_file, audio_file, files=files or {})
        if await self._reconcile(created):
            await self._follow(created.id, poll_now=False)

    async def run_resumed(self) -> None:
        """A job found unfinished after a restart: carry on from the state it was in."""
        record, project_id = self.record, self.record.project_id
        if record.state in (JobState.SUBMITTED, JobState.RENDERING) and project_id:
            await self._follow(project_id, poll_now=True)
            return
        if record.state is JobState.CREATING:
            # The create call may have reached Magic Hour: never call it free, never send it again.
            log.error(
                "job %s: the bot stopped while creating it; its project (%s) may exist",
                record.id,
                project_name(record.id, record.name),
            )
        await self.close(Why.INTERRUPTED)  # delivered if rendered; else unknown, or free if nothing was sent

    # ------------------------------------------------------------------ steps

    async def _create(
        self, request: JobRequest, plan: Plan, video_file: str | None, audio_file: str, *, files: Mapping[str, object]
    ) -> CreatedJob:
        body = lip_sync_body(self.job_id, request, plan, video_file, audio_file)
        # Persisted first: if the process dies during the call, a restart knows a project may exist.
        # `files` (the uploads) are recorded with it, so a failed job can be retried from them too.
        await self.transition(JobState.CREATING, fields=files)
        try:
            created, cancelled = await create_project(self.ctx, body, lambda: self.cancel_requested)
        except (MagicHourError, asyncio.CancelledError) as exc:
            # Only `SubmissionUncertain` may hide a project; anything else raised here means none
            # was made: a refusal, or a 429 and then a cancel or a shutdown between rounds.
            self.create_refused = not isinstance(exc, SubmissionUncertain)
            raise
        self.created_id = created.id  # known here even if recording it fails
        self.created_charge = created.credits_charged or 0
        self.sandbox = self.sandbox or created.sandbox
        await self.record_project(created.id)
        if cancelled:
            raise asyncio.CancelledError
        return created

    async def _reconcile(self, created: CreatedJob) -> bool:
        """Hold what Magic Hour charged at create; if the limits can't, stop the render. True to go on."""
        held = await self.held()
        if created.credits_charged is None or created.credits_charged <= held:
            # Missing, the answer says nothing to top up to: the reservation already covers Magic
            # Hour's hold, and the job settles to what a read of the project says.
            return True
        outcome = await self.ctx.admission.top_up(self.record, created.credits_charged)
        if not isinstance(outcome, Refusal):
            self._held = outcome.amount
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
        await self.close(Why.OVER_BUDGET)
        return False

    async def _follow(self, project_id: str, *, poll_now: bool) -> None:
        """Wait for the render to end at Magic Hour, then end the job on what it says."""
        since = await self._seconds_since_submission()
        expect = self._expect = await self.ctx.forecast.expect(self.record, elapsed=since)
        if expect.expected_at is not None:
            await self.emit()  # show the expected finish
        remaining = self.ctx.config.job_deadline_seconds - since
        try:
            project = await self.ctx.poller.wait(
                project_id, within=max(remaining, 0.0), listener=self._on_project, poll_now=poll_now, expect=expect
            )
        except PollDeadlineExceeded:
            await self.close(Why.DEADLINE)
            return
        await self.ctx.forecast.record(expect, project)
        self.sandbox = self.sandbox or project.sandbox
        await self.close(Why.FINISHED, project=project)

    async def _seconds_since_submission(self) -> float:
        # The deadline counts from submission: time spent queued or uploading isn't Magic Hour's.
        if self._submitted_at is not None:
            return max(0.0, (self.ctx.clock.now() - self._submitted_at).total_seconds())
        events = await self.ctx.store.jobs.events(self.job_id)
        submitted = [e.at for e in events if e.state is JobState.SUBMITTED]
        start = submitted[-1] if submitted else self.record.created_at
        return max(0.0, (self.ctx.clock.now() - start).total_seconds())

    async def last_moment(self) -> dt.datetime:
        """When waiting for Magic Hour to say how the render ended stops: its deadline, and a grace after."""
        config = self.ctx.config
        wait = config.job_deadline_seconds + config.deadline_grace_seconds
        return self.ctx.clock.now() + dt.timedelta(seconds=wait - await self._seconds_since_submission())

    async def _on_project(self, project: VideoProject) -> None:
        if project.status == "rendering" and self.record.state is JobState.SUBMITTED:
            await self.transition(JobState.RENDERING)

    # ------------------------------------------------------------------ ending (`endings.decide`)

    async def close(
        self,
        why: Why,
        *,
        project: VideoProject | None = None,
        code: str | None = None,
        data: Mapping[str, Datum] | None = None,
    ) -> None:
        """End the job for `why`, as `bot.jobs.endings` decides (see `Closer.close`)."""
        await self._closer.close(why, project=project, code=code, data=data)

    async def canceled(self) -> None:
        """The owner canceled: free before submission; after it, stop the render and charge what
        Magic Hour did (a render already finished is delivered: it is paid for)."""
        await self.close(Why.CANCEL)

    async def failed(self, exc: BaseException) -> None:
        """End the job after an error: a refusal before anything was sent is free; after the
        create, the job still ends only on what Magic Hour says about its project."""
        if isinstance(exc, SubmissionUncertain):
            log.error("job %s: the create call's outcome is unknown; a Magic Hour job may exist", self.job_id)
            await self.close(Why.UNCERTAIN)
        elif isinstance(exc, LipsyncError):
            await self.close(Why.FAILURE, code=exc.code, data=exc.data)
        else:
            log.error("job %s: unexpected failure", self.job_id, exc_info=exc)
            await self.close(Why.FAILURE)

    async def record_project(self, project_id: str) -> None:
        """Record a project id known only in memory, retrying until it is recorded or the job is lost.

        Without it, a restart could only call the job unknown though its project is known.
        """
        delay = _RECORD_FIRST_DELAY
        while True:
            try:
                await self.transition(JobState.SUBMITTED, project_id=project_id)
                self._submitted_at = self.record.updated_at  # the time its event records
                return
            except (LeaseLost, JobNotFound):
                raise  # not this process's job any more (a takeover records it from its own read)
            except InvalidTransition:
                current = await self.ctx.store.jobs.get(self.job_id)
                if current is None or current.project_id != project_id:
                    raise
                self.record = current  # an earlier attempt was written; only its answer was lost
                return
            except Exception as exc:  # a locked file, a dropped connection: the id must not be lost
                log.error("job %s: recording project %s failed (%s); trying again", self.job_id, project_id, exc)
            await self.ctx.clock.sleep(delay)
            delay = min(delay * 2, _RECORD_MAX_DELAY)

    async def held(self) -> int:
        """Credits this job has set aside (its reservation and top-ups); 0 if none."""
        if self._held is not None:
            return self._held  # reserved (and topped up) by this run: the ledger holds just this
        entries = await self.ctx.store.quota.entries(self.job_id)
        return -sum(e.amount for e in entries if e.kind in (LedgerKind.RESERVE, LedgerKind.TOPUP))

    async def cleanup(self) -> None:
        """Remove the job's temporary files."""
        await asyncio.to_thread(shutil.rmtree, self.workdir, ignore_errors=True)

    # ------------------------------------------------------------------ progress

    async def transition(
        self,
        state: JobState,
        *,
        charged: int | None = None,
        fields: Mapping[str, object] | None = None,
        **more: object,
    ) -> JobRecord:
        """Persist a state change (the store checks it and closes credits on the final ones), then show it.

        `fields` and `more`: job fields written with it (the names `JobStore.update` accepts).
        """
        values = {**(fields or {}), **more}
        self.record = await self.ctx.store.jobs.transition(self.job_id, state, charged=charged, detail=None, **values)
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
        wait = self.ctx.expected_wait(self.job_id)
        now = self.ctx.clock.now()
        update = JobUpdate(
            job=self.record,
            elapsed=max(0.0, (self.ctx.clock.now() - self.record.created_at).total_seconds()),
            queue_position=self.ctx.queue_position(self.job_id),
            activity=activity,
            activity_data=data,
            expected_at=self._expect.expected_at if self._expect is not None else None,
            expected_start=now + dt.timedelta(seconds=wait) if wait is not None else None,
            render_started_at=self._expect.submitted_at if self._expect is not None else None,
            remaining_credits=self._remaining,
            credits_reserved=self._reserved,
            resets_at=self._resets_at,
            sandbox=self.sandbox,
            thumbnail=self._thumbnail,
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
