"""The job engine: a supervisor for every job's run.

It admits requests (`admission.py`), records them, and runs each job (`run.py`) in a slot of a
FIFO queue; it cancels a job for its owner, resumes unfinished jobs after a restart, and shuts
down without ending jobs (a new engine resumes them). Front ends talk only to this class, through
the protocols in `models.py`; the engine never imports Discord.

Several processes may share one database: each job is claimed by the process that runs it, and
the claims are kept and dead processes' jobs taken over as `leases.py` describes. A taken-over
job carries on from the state it was in, as after a restart; a job another process took is let
go without being ended (the store fences every transition: `LeaseLost`). A job that waits for a
slot is left unclaimed, with its request in the store, so whichever process has a free slot runs
it (`stored.py`). A cancel for a job running elsewhere is recorded with the job, read by the
process that runs it with its heartbeat (PostgreSQL's NOTIFY makes that immediate). A clean stop
(`aclose`) lets jobs that have started reach Magic Hour or finish delivering, within
`stop_grace_seconds`, while its heartbeat keeps them here; jobs that only wait go at once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable

import httpx

from bot.clock import Clock
from bot.errors import InvalidInput, JobFailed, NotAllowed
from bot.jobs.admission import Admission, Admitted
from bot.jobs.config import EngineConfig
from bot.jobs.delivery import fresh_link
from bot.jobs.forecast import RenderForecast
from bot.jobs.leases import Leases
from bot.jobs.models import HooksFactory, JobHooks, JobRequest, QueueSnapshot
from bot.jobs.observe import NO_OBSERVER, EngineObserver, current_job
from bot.jobs.poller import Poller
from bot.jobs.queue import SlotQueue
from bot.jobs.run import JobRun, RunContext, swallow_cancel
from bot.jobs.stopping import Watched, may_stop_now, wait_for_any
from bot.jobs.stored import BadStoredRequest, dump_request, load_request
from bot.jobs.youtube import canonical_youtube_url
from bot.magichour import MagicHourClient
from bot.store import JobRecord, JobState, LeaseLost, Store
from bot.store.db import patient

log = logging.getLogger(__name__)

CANCEL_CHANNEL = "lipsync_cancel"  # payload "<job id>:<member id>": cancel it, whoever runs it
_REMOTE_CANCEL_SECONDS = 60.0  # how long a cancel waits for the process that runs the job
_ABANDON_SECONDS = 5.0  # after the stop deadline, how long stopped tasks get to wind up


async def _ended(task: asyncio.Task[None]) -> None:
    """Wait for a job's task to end, however it ends (its own callbacks log and rescue failures)."""
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.shield(task)


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
        forecast: RenderForecast | None = None,
        observer: EngineObserver | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self._client = client
        self._observer = observer or NO_OBSERVER
        self._poller = poller or Poller(client.without_retries(), clock, config.poll, on_wait_end=self._observer.polls)
        self._forecast = forecast or RenderForecast(store.renders, clock, config.forecast)
        self._queue = SlotQueue(config.max_jobs_in_flight, on_position=self._on_queue_position)
        self.admission = Admission(store, config.default_rules)
        self._context = RunContext(
            config=config,
            store=store,
            client=client,
            poller=self._poller,
            admission=self.admission,
            fetch_http=fetch_http,
            clock=clock,
            transfers=asyncio.Semaphore(config.max_concurrent_transfers),
            queue_position=self._queue.position,
            forecast=self._forecast,
        )
        self._runs: dict[int, JobRun] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._rescues: set[asyncio.Task[None]] = set()
        self._links_made: dict[int, float] = {}  # job id -> when its last fresh link was made
        self._claiming = asyncio.Lock()  # one resume/takeover at a time
        self._leases = Leases(store, clock, config.lease_seconds, patience=config.lease_seconds)
        self._leases.watch(lambda: list(self._tasks), self._lost, self._on_cancel_request)
        self._listening = False
        self._stopping = False  # a clean stop has begun: no new work here
        self._changed = asyncio.Event()  # a job here changed state (a clean stop waits on it)
        self._held: set[int] = set()  # jobs this process ran (their claims are released on a clean stop)
        # What `start_leases` was given, so a cancel can take over a dead process's job at once.
        self._takeover: tuple[HooksFactory, Callable[[JobRecord], bool] | None] | None = None
        self._cancelling: set[int] = set()  # jobs a cancel passed on from another process is ending

    @property
    def sandbox(self) -> bool:
        """True when the operator runs against the sandbox (`--sandbox`)."""
        return self.config.sandbox

    @property
    def poller(self) -> Poller:
        """The shared status poller (for webhooks, diagnostics and benchmarks)."""
        return self._poller

    @property
    def forecast(self) -> RenderForecast:
        """The render-time forecast every job's polling follows."""
        return self._forecast

    def states(self) -> dict[str, int]:
        """How many of the jobs running here are in each state (metrics)."""
        return dict(collections.Counter(run.record.state.value for run in self._runs.values()))

    # ----------------------------------------------------------------- starting jobs

    def _with_defaults(self, request: JobRequest) -> JobRequest:
        """The request as it will run: a canonical YouTube link, and the operator's frame-rate cap."""
        if request.youtube_url is not None:
            # Only the parsed video id goes on to Magic Hour, never the member's raw string.
            request = dataclasses.replace(request, youtube_url=canonical_youtube_url(request.youtube_url))
        if request.max_fps is None and self.config.default_max_fps is not None:
            # The operator's DEFAULT_MAX_FPS caps what the member didn't choose (fewer frames, fewer credits).
            request = dataclasses.replace(request, max_fps=self.config.default_max_fps)
        return request

    async def precheck(self, request: JobRequest) -> Admitted:
        """Every check that costs nothing: raises `InvalidInput` or `QuotaExceeded`, spends nothing."""
        return await self.admission.check(self._with_defaults(request))

    async def submit(self, request: JobRequest, hooks: JobHooks) -> JobRecord:
        """Check the request, record the job and run it in the background.

        With no free slot here the job waits in this process's queue unclaimed, so a process with
        a free slot may take it first; during a clean stop it is left for another process entirely.
        """
        request = self._with_defaults(request)
        admitted = await self.admission.check(request)
        await self._leases.start()
        here = not self._stopping and self._free_slots() > 0
        record = await self.store.jobs.create(request.new_job(), claimed=here, request=dump_request(request))
        log.info("job %s: received from user %s in guild %s", record.id, record.user_id, record.guild_id)
        if self._stopping:
            log.info("job %s: this process is stopping; another one (or the next start) runs it", record.id)
            return record
        run = self._new_run(record, hooks)
        run.know_limits(admitted)
        self._queue.enqueue(record.id)
        self._spawn(run, lambda: run.run_new(request, admitted))
        return record

    def _free_slots(self) -> int:
        return max(0, self._queue.capacity - self._queue.in_flight - self._queue.waiting)

    async def resume(
        self, hooks_for: HooksFactory, *, where: Callable[[JobRecord], bool] | None = None, settle: bool = False
    ) -> list[JobRecord]:
        """After a restart: carry every unfinished job on from where it was (those `where` accepts).

        Queued jobs run (as many as there are free slots here; the rest wait for one, here or in
        another process), submitted ones are followed, rendered ones delivered, jobs that had
        started but not reached Magic Hour end with a refund, and a job caught creating ends as
        unknown at Magic Hour. Only jobs this process can claim are taken: unclaimed ones, its
        own, and those of a process found dead; each is claimed before it runs.

        `settle`: first wait until each process holding one of those jobs has either beaten (it
        is alive: its jobs stay its own) or been found dead, at most a lease and a few heartbeats:
        a command run after a crash finishes the crashed run's jobs rather than find them held.
        """
        if settle:
            await self._settle(where)
        async with self._claiming:
            return await self._resume(hooks_for, where)

    async def _settle(self, where: Callable[[JobRecord], bool] | None) -> None:
        me = self.store.owner
        holders = {
            record.claimed_by
            for record in await self.store.jobs.unfinished()
            if record.claimed_by not in (None, me) and (where is None or where(record))
        }
        if not holders:
            return
        await self._leases.start()
        clock = self._context.clock
        give_up_at = clock.monotonic() + self._leases.seconds + 4 * self._leases.interval
        while holders and clock.monotonic() < give_up_at:
            await self._leases.beat()
            holders = {
                holder
                for holder in holders
                if holder is not None
                and not self._leases.alive(holder)
                and await self.store.instances.registered(holder)
            }
            if holders:
                await clock.sleep(self._leases.interval)

    async def _resume(self, hooks_for: HooksFactory, where: Callable[[JobRecord], bool] | None) -> list[JobRecord]:
        if self._stopping:
            return []
        await self._leases.start()
        found = [
            record
            for record in await self.store.jobs.claimable()
            if record.id not in self._tasks and (where is None or where(record))
        ]
        # Jobs under way are taken whatever this process's load (they are being paid for); queued
        # ones only into free slots, oldest first.
        queued = [record.id for record in found if record.state is JobState.RECEIVED]
        wanted = [record.id for record in found if record.state is not JobState.RECEIVED]
        wanted += queued[: self._free_slots()]
        resumed: list[JobRecord] = []
        for record in await self.store.jobs.claim(wanted):
            if record.id not in self._tasks and await self._carry_on(record, hooks_for):
                resumed.append(record)
        return resumed

    async def _carry_on(self, record: JobRecord, hooks_for: HooksFactory) -> bool:
        """Run a job this process has just claimed from the state it is in; False if it can't be."""
        try:
            run = self._new_run(record, hooks_for(record))
        except Exception:
            # One bad record must not keep the others from resuming.
            log.exception("job %s: could not be resumed", record.id)
            return False
        log.info("job %s: resuming from %s", record.id, record.state.value)
        if record.state is JobState.RECEIVED and await self._start_queued(run):
            return True
        if record.project_id is None:
            # Nothing at Magic Hour to follow: it ends now, without waiting for a slot.
            with patient(self.config.store_patience):
                try:
                    await run.run_resumed()
                except Exception as exc:
                    try:
                        await run.failed(exc)
                    except Exception:
                        log.exception("job %s: could not be ended; it is resumed later", record.id)
                finally:
                    self._runs.pop(record.id, None)
                    await run.cleanup()
            return True
        # A resumed job that is already rendering (and being paid for) goes to the front.
        self._spawn(run, run.run_resumed, front=True)
        return True

    async def _start_queued(self, run: JobRun) -> bool:
        """Run a queued job from its stored request, as the process that accepted it would have."""
        try:
            text = await self.store.jobs.stored_request(run.job_id)
            request = None if text is None else load_request(text, run.record)
            if request is None:
                return False  # from before requests were stored: it ends as interrupted
            admitted = await self.admission.read(request.guild_id, request.user_id, request.role_ids)
        except BadStoredRequest as exc:
            log.warning("job %s: its stored request can't be run (%s); it ends as interrupted", run.job_id, exc)
            return False
        except Exception:
            log.exception("job %s: could not start it here; it is tried again later", run.job_id)
            self._runs.pop(run.job_id, None)
            raise
        run.know_limits(admitted)
        self._queue.enqueue(run.job_id)
        self._spawn(run, lambda: run.run_new(request, admitted))
        return True

    # ----------------------------------------------------------------- queries

    async def job(self, job_id: int) -> JobRecord:
        """The job's current record; `InvalidInput` if there is no such job."""
        record = await self.store.jobs.get(job_id)
        if record is None:
            raise InvalidInput("no_such_job", job=job_id)
        return record

    async def wait(self, job_id: int) -> JobRecord:
        """Wait for a job started here to end (or to be left for a later resume); return its record."""
        task = self._tasks.get(job_id)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)
        return await self.job(job_id)

    def queue_position(self, job_id: int) -> int | None:
        """1-based place in the queue, or None when the job isn't waiting."""
        return self._queue.position(job_id)

    def queue_snapshot(self) -> QueueSnapshot:
        """Slots in use and jobs waiting, for a `/queue` view."""
        return QueueSnapshot(self._queue.in_flight, self._queue.capacity, self._queue.waiting)

    async def allow_link(self, job_id: int, *, by_user_id: int, manager_of: int | None = None) -> JobRecord:
        """Check that this member may have a fresh link to the job's result now; return the job.

        Its owner may, and a manager of the job's server (`manager_of`: the server where they
        have Manage Server). Each link costs a Magic Hour request, so one job gets at most one
        per `config.link_cooldown_seconds`; this call counts as that one.
        """
        record = await self.job(job_id)
        if record.user_id != by_user_id and (manager_of is None or manager_of != record.guild_id):
            raise NotAllowed("not_owner", job=job_id)
        now = self._context.clock.monotonic()
        last = self._links_made.get(job_id)
        if last is not None and now - last < self.config.link_cooldown_seconds:
            raise NotAllowed("link_cooldown", job=job_id, wait=self.config.link_cooldown_seconds - (now - last))
        # Forget links older than the cooldown, so the map stays as small as the recent clicks.
        cooldown = self.config.link_cooldown_seconds
        self._links_made = {j: at for j, at in self._links_made.items() if now - at < cooldown}
        self._links_made[job_id] = now
        return record

    async def fresh_download_url(self, record: JobRecord) -> str:
        """A newly signed link to a finished job's result (old ones expire); see `allow_link`."""
        return await fresh_link(self._client, record)

    async def status_moved(self, job_id: int, channel_id: int, message_id: int) -> None:
        """Remember where a job's status message now is, so a restart edits the one members see."""
        await self.store.jobs.update(job_id, status_channel_id=channel_id, status_message_id=message_id)

    # ----------------------------------------------------------------- cancel and shutdown

    async def cancel(self, job_id: int, *, by_user_id: int) -> JobRecord:
        """Cancel a job for its owner: free before submission; after it, what Magic Hour charged.

        A job another process runs is canceled there: the request is recorded with the job (and
        announced), and this call waits (up to a minute) for the job to end. If that process is
        gone (found dead), or the job was only waiting in a queue, it is taken and canceled here.
        """
        record = await self.job(job_id)
        if record.user_id != by_user_id:
            raise NotAllowed("not_owner", job=job_id)
        if record.state.terminal:
            raise InvalidInput("already_ended", job=job_id)
        if record.state in (JobState.DOWNLOADING, JobState.DELIVERING):
            raise InvalidInput("too_late", job=job_id)
        run = self._runs.get(job_id)
        task = self._tasks.get(job_id)
        if run is None or task is None:
            if self._takeover is None and not self._listening:
                raise JobFailed("not_running", job=job_id)
            return await self._cancel_elsewhere(record, by_user_id)
        if record.claimed_by != self.store.owner:
            # Waiting in this process's queue, unclaimed: claim it first, unless another process has.
            claimed = await self.store.jobs.claim([job_id])
            if not claimed:
                return await self._cancel_elsewhere(await self.job(job_id), by_user_id)
            run.record = claimed[0]
        if not run.cancel_requested:  # a second press waits for the first cancel, not a second one
            run.cancel_requested = True
            task.cancel()
        await _ended(task)
        successor = self._tasks.get(job_id)
        if successor is not None and successor is not task:  # ending it crashed: its rescue ends it
            await _ended(successor)
        record = await self.job(job_id)
        if not record.state.terminal:
            if record.project_id is not None or job_id in self._tasks:
                raise JobFailed("not_running", job=job_id)  # left unfinished: a resume carries it on
            await run.canceled()  # cancelled before its task ever ran: nothing at Magic Hour
            await run.cleanup()
            record = await self.job(job_id)
        return record

    async def _cancel_elsewhere(self, record: JobRecord, by_user_id: int) -> JobRecord:
        log.info("job %s: runs in %s; asking it to cancel", record.id, record.claimed_by or "no process")
        await self.store.jobs.request_cancel(record.id, by_user_id)
        await self.store.notify(CANCEL_CHANNEL, f"{record.id}:{by_user_id}")  # at once; heartbeats carry it too
        clock = self._context.clock
        give_up_at = clock.monotonic() + _REMOTE_CANCEL_SECONDS
        while clock.monotonic() < give_up_at:
            current = await self.job(record.id)
            if current.state.terminal:
                return current
            if record.id in self._tasks:
                return await self.cancel(record.id, by_user_id=by_user_id)
            if self._takeover is not None and await self._nobody_runs(current):
                # Its process is gone (or it only waited in a queue): take it and cancel it here,
                # rather than wait for a takeover round.
                try:
                    await self._adopt(current.id)
                except Exception:
                    log.exception("job %s: could not take it over to cancel it", record.id)
                if record.id in self._tasks:
                    continue
            await clock.sleep(0.25)
        raise JobFailed("not_running", job=record.id)

    async def _nobody_runs(self, record: JobRecord) -> bool:
        """True when the job's claim is void: unclaimed, or its process is no longer registered."""
        holder = record.claimed_by
        if holder is None:
            return True
        if holder == self.store.owner:
            return False
        stale = record.lease_until is None or record.lease_until <= self._context.clock.now()
        return stale and not await self.store.instances.registered(holder)

    async def _adopt(self, job_id: int) -> None:
        assert self._takeover is not None
        hooks_for = self._takeover[0]
        async with self._claiming:
            for record in await self.store.jobs.claim([job_id]):
                if record.id not in self._tasks:
                    await self._carry_on(record, hooks_for)

    def _on_cancel_notice(self, payload: str) -> None:
        try:
            job_id, user_id = (int(part) for part in payload.split(":", 1))
        except ValueError:
            log.warning("ignored a malformed cancel notice")
            return
        self._on_cancel_request(job_id, user_id)

    def _on_cancel_request(self, job_id: int, user_id: int) -> None:
        """A member asked another process to cancel a job running here (a notice, or seen by the heartbeat)."""
        run = self._runs.get(job_id)
        if job_id not in self._tasks or run is None or run.cancel_requested or job_id in self._cancelling:
            return  # not running here (the process that runs it acts), or already being canceled
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

        rescue = asyncio.get_running_loop().create_task(cancel())
        self._rescues.add(rescue)
        rescue.add_done_callback(self._rescues.discard)

    # ----------------------------------------------------------------- leases and takeover

    async def start_leases(
        self, hooks_for: HooksFactory, *, where: Callable[[JobRecord], bool] | None = None
    ) -> list[JobRecord]:
        """Resume what can be claimed now, then keep beating and take over what this process may run.

        Every heartbeat interval (`lease_seconds / 5`), in a loop of its own, claim and run the
        jobs `where` accepts that nobody runs: those of a process found dead, and queued ones while
        this process has a free slot. Also listens for cancels meant for jobs running here.
        """
        if not self._listening:
            await self.store.listen(CANCEL_CHANNEL, self._on_cancel_notice)
            self._listening = True
        self._takeover = (hooks_for, where)
        resumed = await self.resume(hooks_for, where=where)
        self._leases.keep_taking_over(lambda: self._take_over(hooks_for, where))
        return resumed

    async def _take_over(self, hooks_for: HooksFactory, where: Callable[[JobRecord], bool] | None) -> None:
        taken = await self.resume(hooks_for, where=where)
        if taken:
            log.info("took over %d job(s): %s", len(taken), ", ".join(f"#{job.id}" for job in taken))

    async def heartbeat(self) -> None:
        """One heartbeat now (the loop beats on its own): let go of jobs others took, act on cancels, judge others."""
        await self._leases.start()
        await self._leases.beat()

    def _lost(self, job_id: int) -> None:
        task = self._tasks.get(job_id)
        if task is None:
            return
        if self._queue.position(job_id) is not None:
            log.info("job %s: another process with a free slot runs it", job_id)
        else:
            log.warning("job %s: another process has taken it over; stopping here", job_id)
        task.cancel()

    async def aclose(self) -> None:
        """A clean stop: hand every job over without ending it, once the ones that started can be.

        No new work starts here. Jobs that only wait (queued, or rendering at Magic Hour) are
        stopped at once; jobs that are being fetched, uploaded, created or delivered go on until
        they reach Magic Hour (or are delivered), for at most `stop_grace_seconds`, while the
        heartbeat keeps them here: a create in flight is never abandoned to another process.
        Then the claims are released and this process unregistered: another engine takes them.
        """
        self._stopping = True
        await self._leases.stop_taking_over()
        await self._wind_down()
        await self._poller.aclose()
        await self._leases.release(sorted(self._held))
        await self._leases.aclose()

    async def _wind_down(self) -> None:
        clock = self._context.clock
        give_up_at = clock.monotonic() + self.config.stop_grace_seconds
        stopped: set[asyncio.Task[None]] = set()
        while self._tasks:
            for job_id, task in list(self._tasks.items()):
                run = self._runs.get(job_id)
                if task not in stopped and (run is None or may_stop_now(run, self._queue.position(job_id))):
                    stopped.add(task)
                    task.cancel()
            remaining = give_up_at - clock.monotonic()
            if remaining <= 0:
                break
            self._changed.clear()
            await wait_for_any(list(self._tasks.values()), self._changed, clock, remaining)
        if self._tasks:
            log.warning("stopping with %d job(s) still under way; another process takes them", len(self._tasks))
            tasks = list(self._tasks.values())
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=_ABANDON_SECONDS)

    # ----------------------------------------------------------------- running

    def _new_run(self, record: JobRecord, hooks: JobHooks) -> JobRun:
        watched = self._observer.hooks(hooks)
        run = JobRun(
            self._context, record, JobHooks(sink=Watched(watched.sink, self._changed), deliverer=watched.deliverer)
        )
        self._runs[record.id] = run
        return run

    def _spawn(self, run: JobRun, work: Callable[[], Awaitable[None]], *, front: bool = False) -> None:
        job_id = run.job_id
        self._held.add(job_id)
        task = asyncio.get_running_loop().create_task(self._drive(run, work, front=front), name=f"job-{job_id}")
        self._tasks[job_id] = task

        def _done(done: asyncio.Task[None]) -> None:
            self._tasks.pop(job_id, None)
            self._runs.pop(job_id, None)
            # A task cancelled before it first ran never entered its `slot()`: free its place.
            self._queue.discard(job_id)
            if not done.cancelled() and (exc := done.exception()) is not None:
                if isinstance(exc, LeaseLost):
                    log.warning("job %s: %s; this process lets it go", job_id, exc)
                    return
                log.error("job %s: its runner crashed", job_id, exc_info=exc)
                self._rescue(run, exc)

        task.add_done_callback(_done)

    def _rescue(self, run: JobRun, exc: BaseException) -> None:
        """End a job whose runner crashed (`JobRun.failed`), as one of this process's running jobs.

        It stays in `_tasks` meanwhile: its lease is renewed, a takeover or resume leaves it alone
        (it may be delivering a paid render: a second runner would deliver it twice), and a cancel
        or shutdown reaches it. If ending it fails too, the job stays unfinished for a later resume.
        """
        job_id = run.job_id

        async def rescue() -> None:
            current_job.set(job_id)
            with patient(self.config.store_patience):
                await rescue_it()

        async def rescue_it() -> None:
            try:
                try:
                    await run.failed(exc)
                except asyncio.CancelledError:
                    if not run.cancel_requested:
                        raise  # shutdown or a lost lease: left for the next owner
                    swallow_cancel()
                    await run.canceled()  # still one of this engine's jobs while it ends
            except LeaseLost as lost:
                log.warning("job %s: %s; this process lets it go", job_id, lost)
            except Exception:
                log.exception("job %s: could not be ended after its runner crashed; it is resumed later", job_id)
            finally:
                await run.cleanup()

        task = asyncio.get_running_loop().create_task(rescue(), name=f"job-{job_id}-rescue")
        self._tasks[job_id], self._runs[job_id] = task, run

        def _done(done: asyncio.Task[None]) -> None:
            if self._tasks.get(job_id) is done:
                del self._tasks[job_id]
                self._runs.pop(job_id, None)

        task.add_done_callback(_done)

    async def _drive(self, run: JobRun, work: Callable[[], Awaitable[None]], *, front: bool) -> None:
        """Run a job's work in its slot; turn every way it can end into a final state."""
        with patient(self.config.store_patience):  # nobody waits on a job's steps: ride out a database restart
            await self._run_in_slot(run, work, front=front)

    async def _claimed_for_run(self, run: JobRun) -> None:
        """A job that waited unclaimed is claimed when its slot comes, unless another process ran it first."""
        if run.record.claimed_by == self.store.owner:
            return
        claimed = await self.store.jobs.claim([run.job_id])
        if not claimed:
            current = await self.store.jobs.get(run.job_id)
            raise LeaseLost(run.job_id, (current.claimed_by if current else None) or "another process")
        run.record = claimed[0]

    async def _run_in_slot(self, run: JobRun, work: Callable[[], Awaitable[None]], *, front: bool) -> None:
        current_job.set(run.job_id)  # this task's log lines carry the job's number
        queued_at = self._context.clock.monotonic()
        try:
            await run.emit()
            async with self._queue.slot(run.job_id, front=front):
                self._observer.queue_waited(self._context.clock.monotonic() - queued_at)
                await self._claimed_for_run(run)
                await work()
        except asyncio.CancelledError:
            if not run.cancel_requested:
                raise  # engine shutdown or a lost lease: the job stays unfinished for its next owner
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

    async def _on_queue_position(self, job_id: int, position: int) -> None:
        run = self._runs.get(job_id)
        if run is not None:
            await run.emit()
