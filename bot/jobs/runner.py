"""The jobs running in this process: each one's run, its task and its slot, a crashed run's rescue, the clean stop.

`Runs` is the engine's supervisor of tasks. It starts a job's task in a slot of the FIFO queue
(claiming a job that waited unclaimed first, unless another process ran it meanwhile), turns
every way a task can end into a final state, ends a job whose runner crashed as one of this
process's jobs, stops a task whose job another process took, and winds every task down on a clean
stop (`wind_down`). Every task's store calls ride out a database restart (`patient`): nobody waits
on a job's steps, so they may wait for the database as long as `store_patience`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bot.jobs.config import EngineConfig
from bot.jobs.context import RunContext
from bot.jobs.models import JobHooks
from bot.jobs.observe import EngineObserver, current_job
from bot.jobs.queue import SlotQueue
from bot.jobs.run import JobRun, swallow_cancel
from bot.jobs.stopping import Watched, may_stop_now, wait_for_any
from bot.store import JobRecord, LeaseLost, Store
from bot.store.db import patient

log = logging.getLogger(__name__)

_ABANDON_SECONDS = 5.0  # after the stop deadline, how long stopped tasks get to wind up


class Runs:
    """Every job running here: `runs` and `tasks` by job id (a job is "running here" while it has a task)."""

    def __init__(
        self, context: RunContext, queue: SlotQueue, observer: EngineObserver, store: Store, config: EngineConfig
    ) -> None:
        self._context = context
        self._queue = queue
        self._observer = observer
        self._store = store
        self._config = config
        self.runs: dict[int, JobRun] = {}
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.held: set[int] = set()  # jobs this process ran (their claims are released on a clean stop)
        self.changed = asyncio.Event()  # a job here changed state (a clean stop waits on it)

    def new_run(self, record: JobRecord, hooks: JobHooks) -> JobRun:
        """A run for `record`, known here from now on; its progress also tells `changed`."""
        watched = self._observer.hooks(hooks)
        sink = Watched(watched.sink, self.changed)
        run = JobRun(self._context, record, JobHooks(sink=sink, deliverer=watched.deliverer))
        self.runs[record.id] = run
        return run

    def spawn(self, run: JobRun, work: Callable[[], Awaitable[None]], *, front: bool = False) -> None:
        """Run `work` for the job in a task of its own, in a slot (`front`: ahead of the queue)."""
        job_id = run.job_id
        self.held.add(job_id)
        task = asyncio.get_running_loop().create_task(self._drive(run, work, front=front), name=f"job-{job_id}")
        self.tasks[job_id] = task

        def _done(done: asyncio.Task[None]) -> None:
            self.tasks.pop(job_id, None)
            self.runs.pop(job_id, None)
            # A task cancelled before it first ran never entered its `slot()`: free its place.
            self._queue.discard(job_id)
            if not done.cancelled() and (exc := done.exception()) is not None:
                if isinstance(exc, LeaseLost):
                    log.warning("job %s: %s; this process lets it go", job_id, exc)
                    return
                log.error("job %s: its runner crashed", job_id, exc_info=exc)
                self._rescue(run, exc)

        task.add_done_callback(_done)

    def lost(self, job_id: int) -> None:
        """Another process claimed the job: stop its task here without ending the job."""
        task = self.tasks.get(job_id)
        if task is None:
            return
        if self._queue.position(job_id) is not None:
            log.info("job %s: another process with a free slot runs it", job_id)
        else:
            log.warning("job %s: another process has taken it over; stopping here", job_id)
        task.cancel()

    def _rescue(self, run: JobRun, exc: BaseException) -> None:
        """End a job whose runner crashed (`JobRun.failed`), as one of this process's running jobs.

        It stays in `tasks` meanwhile: its claim holds, a takeover or resume leaves it alone (it
        may be delivering a paid render: a second runner would deliver it twice), and a cancel or
        shutdown reaches it. If ending it fails too, the job stays unfinished for a later resume.
        """
        job_id = run.job_id

        async def rescue() -> None:
            current_job.set(job_id)
            with patient(self._config.store_patience):
                try:
                    try:
                        await run.failed(exc)
                    except asyncio.CancelledError:
                        if not run.cancel_requested:
                            raise  # shutdown or a lost claim: left for the next owner
                        swallow_cancel()
                        await run.canceled()  # still one of this engine's jobs while it ends
                except LeaseLost as lost:
                    log.warning("job %s: %s; this process lets it go", job_id, lost)
                except Exception:
                    log.exception("job %s: could not be ended after its runner crashed; it is resumed later", job_id)
                finally:
                    await run.cleanup()

        task = asyncio.get_running_loop().create_task(rescue(), name=f"job-{job_id}-rescue")
        self.tasks[job_id], self.runs[job_id] = task, run

        def _done(done: asyncio.Task[None]) -> None:
            if self.tasks.get(job_id) is done:
                del self.tasks[job_id]
                self.runs.pop(job_id, None)

        task.add_done_callback(_done)

    async def _drive(self, run: JobRun, work: Callable[[], Awaitable[None]], *, front: bool) -> None:
        """Run a job's work in its slot; turn every way it can end into a final state."""
        current_job.set(run.job_id)  # this task's log lines carry the job's number
        with patient(self._config.store_patience):  # nobody waits on a job's steps: ride out a database restart
            await self._in_slot(run, work, front=front)

    async def _in_slot(self, run: JobRun, work: Callable[[], Awaitable[None]], *, front: bool) -> None:
        clock = self._context.clock
        queued_at = clock.monotonic()
        try:
            await run.emit()
            async with self._queue.slot(run.job_id, front=front):
                self._observer.queue_waited(clock.monotonic() - queued_at)
                await self._claim_for_run(run)
                await work()
        except asyncio.CancelledError:
            if not run.cancel_requested:
                # A shutdown or a lost claim: `endings` leaves the job as it is, for its next owner.
                raise
            swallow_cancel()
            await run.canceled()
        except LeaseLost:
            raise  # another process has taken the job over: nothing here may end it
        except Exception as exc:
            self._observer.job_error(exc)
            if run.cancel_requested:
                swallow_cancel()
            await run.failed(exc)
        finally:
            await run.cleanup()

    async def _claim_for_run(self, run: JobRun) -> None:
        """A job that waited unclaimed is claimed when its slot comes, unless another process ran it first."""
        if run.record.claimed_by == self._store.owner:
            return
        claimed = await self._store.jobs.claim([run.job_id])
        if not claimed:
            current = await self._store.jobs.get(run.job_id)
            raise LeaseLost(run.job_id, (current.claimed_by if current else None) or "another process")
        run.record = claimed[0]

    async def wind_down(self, grace: float) -> None:
        """Stop every task for a clean stop: waiting ones at once, the others once they can be, within `grace`."""
        clock = self._context.clock
        give_up_at = clock.monotonic() + grace
        stopped: set[asyncio.Task[None]] = set()
        while self.tasks:
            for job_id, task in list(self.tasks.items()):
                run = self.runs.get(job_id)
                if task not in stopped and (run is None or may_stop_now(run, self._queue.position(job_id))):
                    stopped.add(task)
                    task.cancel()
            remaining = give_up_at - clock.monotonic()
            if remaining <= 0:
                break
            self.changed.clear()
            await wait_for_any(list(self.tasks.values()), self.changed, clock, remaining)
        if self.tasks:
            log.warning("stopping with %d job(s) still under way; another process takes them", len(self.tasks))
            tasks = list(self.tasks.values())
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=_ABANDON_SECONDS)
