"""A member's cancel, wherever the job runs: here, in another process, or nowhere any more.

A job running here is canceled by cancelling its task (`JobRun.canceled`, as `endings` decides);
the member gets an answer within a minute, how the job ended or that Magic Hour hasn't confirmed
the stop yet. A job another process runs is canceled there: the request is recorded with the job
(`JobStore.request_cancel`), read by that process with its heartbeat, and announced at once on
PostgreSQL (`CANCEL_CHANNEL`); the asker waits for the job to end. If that process is gone (found
dead), or the job only waited in a queue, the asker takes the job (`Takeover.one`) and cancels it
here.
"""

from __future__ import annotations

import asyncio
import logging

from bot.clock import Clock
from bot.errors import InvalidInput, JobFailed, NotAllowed
from bot.jobs.models import HooksFactory
from bot.jobs.run import JobRun
from bot.jobs.runner import Runs
from bot.jobs.takeover import Takeover
from bot.store import JobRecord, JobState, Store

log = logging.getLogger(__name__)

CANCEL_CHANNEL = "lipsync_cancel"  # payload "<job id>:<member id>": cancel it, whoever runs it
# How long a member waits for the answer to a cancel, here or in another process; a render Magic
# Hour hasn't confirmed stopped by then goes on being followed, and the job's message says how it ended.
CANCEL_ANSWER_SECONDS = 60.0
_LOOK_AGAIN_SECONDS = 0.25  # how often a cancel passed to another process reads the job


async def _ended(task: asyncio.Task[None], clock: Clock, within: float) -> None:
    """Wait for a job's task to end, however it ends (its own callbacks log and rescue failures),
    for at most `within` seconds on `clock`."""
    timer = asyncio.ensure_future(clock.sleep(within))
    try:
        await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)  # never cancels `task`
    finally:
        timer.cancel()


def _check_cancellable(record: JobRecord, by_user_id: int) -> None:
    """Refuse a cancel by anyone but the job's owner, or of a job that ended or is being delivered."""
    if record.user_id != by_user_id:
        raise NotAllowed("not_owner", job=record.id)
    if record.state.terminal:
        raise InvalidInput("already_ended", job=record.id)
    if record.state in (JobState.DOWNLOADING, JobState.DELIVERING):
        raise InvalidInput("too_late", job=record.id)


class Cancels:
    """One engine's cancels: its own jobs', and those it passes to (or takes from) other processes."""

    def __init__(self, *, store: Store, runs: Runs, takeover: Takeover, clock: Clock) -> None:
        self._store = store
        self._runs = runs
        self._takeover = takeover
        self._clock = clock
        # Set once the engine takes jobs over (`JobEngine.start_leases`): a cancel may then take a
        # dead process's job at once, with these hooks.
        self.hooks_for: HooksFactory | None = None
        self.listening = False  # cancels from other processes are heard (`on_notice`)
        self._cancelling: set[int] = set()  # jobs a cancel passed on from another process is ending
        self._passed_on: set[asyncio.Task[None]] = set()

    async def _job(self, job_id: int) -> JobRecord:
        record = await self._store.jobs.get(job_id)
        if record is None:
            raise InvalidInput("no_such_job", job=job_id)
        return record

    async def cancel(self, job_id: int, *, by_user_id: int) -> JobRecord:
        """Cancel a job for its owner: free before submission; after it, what Magic Hour charged.

        Returns the job as it is after at most about a minute: ended, or (not ended) still being
        stopped at Magic Hour.
        """
        record = await self._job(job_id)
        _check_cancellable(record, by_user_id)
        run = self._runs.runs.get(job_id)
        task = self._runs.tasks.get(job_id)
        if run is None or task is None:
            if self.hooks_for is None and not self.listening:
                raise JobFailed("not_running", job=job_id)
            return await self._elsewhere(record, by_user_id)
        if record.claimed_by != self._store.owner:
            # Waiting in this process's queue, unclaimed: claim it first, unless another process has.
            claimed = await self._store.jobs.claim([job_id])
            if not claimed:
                return await self._elsewhere(await self._job(job_id), by_user_id)
            run.record = claimed[0]
        if not run.cancel_requested:  # a second press waits for the first cancel, not a second one
            run.cancel_requested = True
            task.cancel()
        return await self._answer(job_id, run, task)

    async def _answer(self, job_id: int, run: JobRun, task: asyncio.Task[None]) -> JobRecord:
        """The job a cancel was sent to, once it ended or its minute is up."""
        clock = self._clock
        answer_by = clock.monotonic() + CANCEL_ANSWER_SECONDS
        await _ended(task, clock, CANCEL_ANSWER_SECONDS)
        successor = self._runs.tasks.get(job_id)
        if task.done() and successor is not None and successor is not task:  # its rescue ends it
            await _ended(successor, clock, max(0.0, answer_by - clock.monotonic()))
        record = await self._job(job_id)
        if record.state.terminal:
            return record
        current = self._runs.tasks.get(job_id)
        if current is not None and not current.done():
            return record  # still stopping at Magic Hour: the job goes on being followed until it says
        if record.project_id is not None:
            raise JobFailed("not_running", job=job_id)  # left unfinished: a resume carries it on
        await run.canceled()  # cancelled before its task ever ran: nothing at Magic Hour
        await run.cleanup()
        return await self._job(job_id)

    async def _elsewhere(self, record: JobRecord, by_user_id: int) -> JobRecord:
        log.info("job %s: runs in %s; asking it to cancel", record.id, record.claimed_by or "no process")
        await self._store.jobs.request_cancel(record.id, by_user_id)
        await self._store.notify(CANCEL_CHANNEL, f"{record.id}:{by_user_id}")  # at once; heartbeats carry it too
        clock = self._clock
        give_up_at = clock.monotonic() + CANCEL_ANSWER_SECONDS
        current = record
        while clock.monotonic() < give_up_at:
            current = await self._job(record.id)
            if current.state.terminal:
                return current
            if record.id in self._runs.tasks:
                return await self.cancel(record.id, by_user_id=by_user_id)
            if self.hooks_for is not None and await self._nobody_runs(current):
                # Its process is gone (or it only waited in a queue): take it and cancel it here,
                # rather than wait for a takeover round.
                try:
                    await self._takeover.one(current.id, self.hooks_for)
                except Exception:
                    log.exception("job %s: could not take it over to cancel it", record.id)
                if record.id in self._runs.tasks:
                    continue
            await clock.sleep(_LOOK_AGAIN_SECONDS)
        if current.project_id is not None and not await self._nobody_runs(current):
            # At Magic Hour, and a live process follows it with the cancel recorded: it is being
            # stopped there, as a cancel here would still be after its minute.
            return current
        raise JobFailed("not_running", job=record.id)

    async def _nobody_runs(self, record: JobRecord) -> bool:
        """True when no process runs the job: unclaimed, this process's own (not running here), or its process gone."""
        holder = record.claimed_by
        if holder is None or holder == self._store.owner:
            return True
        stale = record.lease_until is None or record.lease_until <= self._clock.now()
        return stale and not await self._store.instances.registered(holder)

    def on_notice(self, payload: str) -> None:
        """A cancel announced on `CANCEL_CHANNEL` by another process."""
        try:
            job_id, user_id = (int(part) for part in payload.split(":", 1))
        except ValueError:
            log.warning("ignored a malformed cancel notice")
            return
        self.on_request(job_id, user_id)

    def on_request(self, job_id: int, user_id: int) -> None:
        """A member asked another process to cancel a job running here (a notice, or seen by the heartbeat)."""
        run = self._runs.runs.get(job_id)
        if job_id not in self._runs.tasks or run is None or run.cancel_requested or job_id in self._cancelling:
            return  # not running here (the process that runs it acts), or already being canceled
        if run.record.state in (JobState.DOWNLOADING, JobState.DELIVERING):
            return  # too late: the result is on its way (the asker was told so, or sees it delivered)
        self._cancelling.add(job_id)

        async def cancel() -> None:
            try:
                await self.cancel(job_id, by_user_id=user_id)
            except (InvalidInput, JobFailed) as exc:
                log.info("job %s: a cancel passed on from another process was refused (%s)", job_id, exc)
            except Exception:
                log.exception("job %s: a cancel passed on from another process failed", job_id)
            finally:
                self._cancelling.discard(job_id)

        task = asyncio.get_running_loop().create_task(cancel(), name=f"job-{job_id}-cancel")
        self._passed_on.add(task)
        task.add_done_callback(self._passed_on.discard)
