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
from collections.abc import Callable

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
from bot.jobs.observe import NO_OBSERVER, EngineObserver
from bot.jobs.poller import Poller
from bot.jobs.queue import SlotQueue
from bot.jobs.runner import Runs
from bot.jobs.stored import dump_request
from bot.jobs.takeover import Takeover
from bot.jobs.youtube import canonical_youtube_url
from bot.magichour import MagicHourClient
from bot.store import JobRecord, JobState, Store

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
        self._running = Runs(self._context, self._queue, self._observer, store, config)
        self._runs = self._running.runs  # by job id: the runs and tasks of the jobs running here
        self._tasks = self._running.tasks
        self._rescues: set[asyncio.Task[None]] = set()
        self._links_made: dict[int, float] = {}  # job id -> when its last fresh link was made
        self._leases = Leases(store, clock, config.lease_seconds, patience=config.lease_seconds)
        self._leases.watch(lambda: list(self._tasks), self._running.lost, self._on_cancel_request)
        self._stopping = False  # a clean stop has begun: no new work here
        self._takeovers = Takeover(
            store=store,
            runs=self._running,
            queue=self._queue,
            admission=self.admission,
            leases=self._leases,
            config=config,
            clock=clock,
            stopping=lambda: self._stopping,
        )
        self._listening = False
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
        stored = dump_request(request)
        if self._stopping:
            record = await self.admission.record(request, admitted, stored=stored)
            log.info("job %s: received while stopping; another process (or the next start) runs it", record.id)
            return record
        await self._leases.start()  # registered before any claim of this process is written
        here = self._takeovers.free_slots() > 0
        record = await self.admission.record(request, admitted, claimed=here, stored=stored)
        log.info("job %s: received from user %s in guild %s", record.id, record.user_id, record.guild_id)
        run = self._running.new_run(record, hooks)
        run.know_limits(admitted)
        self._queue.enqueue(record.id)
        self._running.spawn(run, lambda: run.run_new(request, admitted))
        return record

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
            await self._takeovers.settle(where)
        return await self._takeovers.round(hooks_for, where)

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
        """True when no process runs the job: unclaimed, this process's own (not running here), or its process gone."""
        holder = record.claimed_by
        if holder is None or holder == self.store.owner:
            return True
        stale = record.lease_until is None or record.lease_until <= self._context.clock.now()
        return stale and not await self.store.instances.registered(holder)

    async def _adopt(self, job_id: int) -> None:
        assert self._takeover is not None
        await self._takeovers.one(job_id, self._takeover[0])

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
        await self._running.wind_down(self.config.stop_grace_seconds)
        await self._poller.aclose()
        await self._leases.release(sorted(self._running.held))
        await self._leases.aclose()

    async def _on_queue_position(self, job_id: int, position: int) -> None:
        run = self._runs.get(job_id)
        if run is not None:
            await run.emit()
