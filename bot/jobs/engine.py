"""The job engine: a supervisor for every job's run.

It admits requests (`admission.py`), records them, and runs each job (`run.py`) in a slot of a
FIFO queue; it cancels a job for its owner (`cancels.py`), resumes unfinished jobs after a restart,
takes over dead processes' jobs (`leases.py`, `takeover.py`), and stops cleanly (`aclose`) without
ending jobs. Front ends talk only to this class, through the protocols in `models.py`; the engine
never imports Discord. docs/design-notes.md, "Several processes", says how processes share jobs.
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
from bot.errors import InvalidInput, NotAllowed
from bot.jobs.admission import Admission, Admitted
from bot.jobs.cancels import CANCEL_CHANNEL, Cancels
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
from bot.store import JobRecord, Store

log = logging.getLogger(__name__)


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
            expected_wait=self._expected_wait,
        )
        self._running = Runs(self._context, self._queue, self._observer, store, config)
        self._runs = self._running.runs  # by job id: the runs and tasks of the jobs running here
        self._tasks = self._running.tasks
        self._links_made: dict[int, float] = {}  # job id -> when its last fresh link was made
        self._leases = Leases(store, clock, config.lease_seconds, patience=config.lease_seconds)
        self._leases.watch(
            lambda: list(self._tasks), self._running.lost, lambda job, member: self._cancels.on_request(job, member)
        )
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
        self._cancels = Cancels(store=store, runs=self._running, takeover=self._takeovers, clock=clock)

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

        The answer comes within about a minute: how the job ended, or the job still being stopped
        at Magic Hour. A job another process runs is canceled there; if that process is gone
        (found dead), or the job was only waiting in a queue, it is taken and canceled here
        (`cancels.py`).
        """
        return await self._cancels.cancel(job_id, by_user_id=by_user_id)

    # ----------------------------------------------------------------- leases and takeover

    async def start_leases(
        self, hooks_for: HooksFactory, *, where: Callable[[JobRecord], bool] | None = None
    ) -> list[JobRecord]:
        """Resume what can be claimed now, then keep beating and take over what this process may run.

        Every heartbeat interval (`lease_seconds / 5`), in a loop of its own, claim and run the
        jobs `where` accepts that nobody runs: those of a process found dead, and queued ones while
        this process has a free slot. Also listens for cancels meant for jobs running here.
        """
        if not self._cancels.listening:
            await self.store.listen(CANCEL_CHANNEL, self._cancels.on_notice)
            self._cancels.listening = True
        self._cancels.hooks_for = hooks_for
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

    def _expected_wait(self, job_id: int) -> float | None:
        """How long a queued job should wait for a slot: the rounds of renders ahead of it, each as
        long as a typical render here. An estimate members see as such (a time, not a countdown)."""
        position = self._queue.position(job_id)
        typical = self._forecast.typical_seconds()
        if position is None or typical is None:
            return None
        rounds = -(-position // max(1, self._queue.capacity))  # ceiling: the slots free up together at worst
        return rounds * typical

    async def _on_queue_position(self, job_id: int, position: int) -> None:
        run = self._runs.get(job_id)
        if run is not None:
            await run.emit()
