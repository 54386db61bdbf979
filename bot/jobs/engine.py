"""The job engine: a supervisor for every job's run.

It admits requests (`admission.py`), records them, and runs each job (`run.py`) in a slot of a
FIFO queue; it cancels a job for its owner, resumes unfinished jobs after a restart, and shuts
down without ending jobs (a new engine resumes them). Front ends talk only to this class, through
the protocols in `models.py`; the engine never imports Discord.

Several processes may share one database: each job is claimed by the process that runs it, and
the claims are kept and dead processes' jobs taken over as `leases.py` describes. A taken-over
job carries on from the state it was in, as after a restart; a job another process took is let
go without being ended (the store fences every transition: `LeaseLost`). A cancel for a job
running elsewhere is passed on through the store's notifications (PostgreSQL's NOTIFY).
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
from bot.jobs.context import RunContext
from bot.jobs.delivery import fresh_link
from bot.jobs.forecast import RenderForecast
from bot.jobs.leases import Leases
from bot.jobs.models import HooksFactory, JobHooks, JobRequest, QueueSnapshot
from bot.jobs.observe import NO_OBSERVER, EngineObserver, current_job
from bot.jobs.poller import Poller
from bot.jobs.queue import SlotQueue
from bot.jobs.run import JobRun, swallow_cancel
from bot.jobs.youtube import canonical_youtube_url
from bot.magichour import MagicHourClient
from bot.store import JobRecord, JobState, LeaseLost, Store
from bot.store.store import is_dead_here

log = logging.getLogger(__name__)

CANCEL_CHANNEL = "lipsync_cancel"  # payload "<job id>:<member id>": cancel it, whoever runs it
_REMOTE_CANCEL_SECONDS = 60.0  # how long a cancel waits for the process that runs the job
# How long a member waits for the answer to a cancel; a render Magic Hour hasn't confirmed stopped
# by then goes on being followed, and the job's own message says how it ended.
_CANCEL_ANSWER_SECONDS = 60.0


async def _ended(task: asyncio.Task[None], clock: Clock, within: float) -> None:
    """Wait for a job's task to end, however it ends (its own callbacks log and rescue failures),
    for at most `within` seconds on `clock`."""
    timer = asyncio.ensure_future(clock.sleep(within))
    try:
        await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)  # never cancels `task`
    finally:
        timer.cancel()


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
        self._poller = poller or Poller(
            client.without_retries(),
            clock,
            config.poll,
            on_wait_end=self._observer.polls,
            on_key_refused=self._observer.key_refused,
        )
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
        self._leases = Leases(store, clock, config.lease_seconds)
        self._listening = False
        # What `start_leases` was given, so a cancel can take over a dead process's job at once.
        self._takeover: tuple[HooksFactory, Callable[[JobRecord], bool] | None] | None = None

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
        """Check the request, record the job and run it in the background."""
        request = self._with_defaults(request)
        admitted = await self.admission.check(request)
        record = await self.admission.record(request, admitted, lease_seconds=self.config.lease_seconds)
        log.info("job %s: received from user %s in guild %s", record.id, record.user_id, record.guild_id)
        run = self._new_run(record, hooks)
        run.know_limits(admitted)
        self._queue.enqueue(record.id)
        self._spawn(run, lambda: run.run_new(request, admitted))
        return record

    async def resume(
        self, hooks_for: HooksFactory, *, where: Callable[[JobRecord], bool] | None = None
    ) -> list[JobRecord]:
        """After a restart: carry every unfinished job on from where it was (those `where` accepts).

        Submitted jobs are followed, rendered ones delivered, jobs that hadn't reached Magic Hour
        end with a refund, and a job caught creating ends as unknown at Magic Hour. Only jobs this
        process can claim are taken: unclaimed ones, its own, and those of a process that died
        (lease expired, or gone from this host); each is claimed before it runs.
        """
        async with self._claiming:
            return await self._resume(hooks_for, where)

    async def _resume(self, hooks_for: HooksFactory, where: Callable[[JobRecord], bool] | None) -> list[JobRecord]:
        holders = await self.store.jobs.holders()
        dead = [name for name in holders if name != self.store.owner and is_dead_here(name)]
        candidates = [
            record.id
            for record in await self.store.jobs.claimable(also_from=dead)
            if record.id not in self._tasks and (where is None or where(record))
        ]
        resumed: list[JobRecord] = []
        for record in await self.store.jobs.claim(candidates, self.config.lease_seconds, also_from=dead):
            if record.id in self._tasks:
                continue
            try:
                run = self._new_run(record, hooks_for(record))
            except Exception:
                # One bad record must not keep the others from resuming.
                log.exception("job %s: could not be resumed", record.id)
                continue
            log.info("job %s: resuming from %s", record.id, record.state.value)
            resumed.append(record)
            if record.project_id is None:
                # Nothing at Magic Hour to follow: it ends now, without waiting for a slot.
                try:
                    await run.run_resumed()
                except Exception as exc:
                    await run.failed(exc)
                finally:
                    self._runs.pop(record.id, None)
                    await run.cleanup()
                continue
            # A resumed job that is already rendering (and being paid for) goes to the front.
            self._spawn(run, run.run_resumed, front=True)
        return resumed

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

        A job another process runs is canceled there: the request goes through the store's
        notifications, and this call waits (up to a minute) for the job to end. If that process
        is gone (dead on this host, or its lease ran out), the job is taken over and canceled here.
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
            if record.claimed_by not in (None, self.store.owner) and self._listening:
                return await self._cancel_elsewhere(record, by_user_id)
            raise JobFailed("not_running", job=job_id)
        if not run.cancel_requested:  # a second press waits for the first cancel, not a second one
            run.cancel_requested = True
            task.cancel()
        clock = self._context.clock
        answer_by = clock.monotonic() + _CANCEL_ANSWER_SECONDS
        await _ended(task, clock, _CANCEL_ANSWER_SECONDS)
        successor = self._tasks.get(job_id)
        if task.done() and successor is not None and successor is not task:  # its rescue ends it
            await _ended(successor, clock, max(0.0, answer_by - clock.monotonic()))
        record = await self.job(job_id)
        if record.state.terminal:
            return record
        current = self._tasks.get(job_id)
        if current is not None and not current.done():
            return record  # still stopping at Magic Hour: the job goes on being followed until it says
        if record.project_id is not None:
            raise JobFailed("not_running", job=job_id)  # left unfinished: a resume carries it on
        await run.canceled()  # cancelled before its task ever ran: nothing at Magic Hour
        await run.cleanup()
        return await self.job(job_id)

    async def _cancel_elsewhere(self, record: JobRecord, by_user_id: int) -> JobRecord:
        log.info("job %s: runs in %s; asking it to cancel", record.id, record.claimed_by)
        await self.store.notify(CANCEL_CHANNEL, f"{record.id}:{by_user_id}")
        clock = self._context.clock
        give_up_at = clock.monotonic() + _REMOTE_CANCEL_SECONDS
        tried: tuple[str | None, object] | None = None  # the claim a takeover was last tried for
        while clock.monotonic() < give_up_at:
            current = await self.job(record.id)
            if current.state.terminal:
                return current
            claim = (current.claimed_by, current.lease_until)
            if record.id not in self._tasks and claim != tried and self._holder_gone(current) and self._takeover:
                # Its process died and can't hear the cancel: take the job over, as the takeover
                # loop would a little later, and cancel it here (once per claim seen, not per read).
                tried = claim
                try:
                    await self._take_over(*self._takeover)
                except Exception:
                    log.exception("job %s: could not take it over to cancel it", record.id)
            if record.id in self._tasks:
                return await self.cancel(record.id, by_user_id=by_user_id)
            await clock.sleep(0.25)
        raise JobFailed("not_running", job=record.id)

    def _holder_gone(self, record: JobRecord) -> bool:
        """True when the process holding the job's claim is gone: dead on this host, or its lease ran out."""
        holder, until = record.claimed_by, record.lease_until
        if holder is None or holder == self.store.owner:
            return False
        return is_dead_here(holder) or (until is not None and until <= self._context.clock.now())

    def _on_cancel_notice(self, payload: str) -> None:
        try:
            job_id, user_id = (int(part) for part in payload.split(":", 1))
        except ValueError:
            log.warning("ignored a malformed cancel notice")
            return
        if job_id not in self._tasks:
            return  # not running here: the process that runs it acts on the same notice

        async def cancel() -> None:
            try:
                await self.cancel(job_id, by_user_id=user_id)
            except Exception:
                log.exception("job %s: a cancel passed on from another process failed", job_id)

        rescue = asyncio.get_running_loop().create_task(cancel())
        self._rescues.add(rescue)
        rescue.add_done_callback(self._rescues.discard)

    # ----------------------------------------------------------------- leases and takeover

    async def start_leases(
        self, hooks_for: HooksFactory, *, where: Callable[[JobRecord], bool] | None = None
    ) -> list[JobRecord]:
        """Resume what can be claimed now, then keep leases and take over dead processes' jobs.

        Every `lease_seconds / 3` on the engine's clock, in a loop of its own (so that a slow
        takeover never delays a renewal), claim and resume the jobs `where` accepts whose process
        died. Also listens for cancels meant for jobs running here.
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

    async def renew_leases(self) -> set[int]:
        """Renew this process's leases on the jobs it runs; stop (without ending) any another process took."""
        return await self._leases.renew(list(self._tasks), self._lost)

    def _lost(self, job_id: int) -> None:
        task = self._tasks.get(job_id)
        if task is not None:
            log.warning("job %s: another process has taken it over; stopping here", job_id)
            task.cancel()

    async def aclose(self) -> None:
        """Stop every job's task without ending the job, and release their claims: another engine resumes them."""
        await self._leases.aclose()
        held = list(self._tasks)
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._poller.aclose()
        await self._leases.release(held)

    # ----------------------------------------------------------------- running

    def _new_run(self, record: JobRecord, hooks: JobHooks) -> JobRun:
        run = JobRun(self._context, record, self._observer.hooks(hooks))
        self._runs[record.id] = run
        return run

    def _spawn(self, run: JobRun, work: Callable[[], Awaitable[None]], *, front: bool = False) -> None:
        job_id = run.job_id
        self._leases.keep_renewing(lambda: list(self._tasks), self._lost)
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
        current_job.set(run.job_id)  # this task's log lines carry the job's number
        queued_at = self._context.clock.monotonic()
        try:
            await run.emit()
            async with self._queue.slot(run.job_id, front=front):
                self._observer.queue_waited(self._context.clock.monotonic() - queued_at)
                await work()
        except asyncio.CancelledError:
            if not run.cancel_requested:
                # A shutdown or a lost lease: `endings` leaves the job as it is, for its next owner.
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

    async def _on_queue_position(self, job_id: int, position: int) -> None:
        run = self._runs.get(job_id)
        if run is not None:
            await run.emit()
