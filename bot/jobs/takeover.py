"""Taking jobs on: after a restart, from a process found dead, and queued jobs while a slot is free.

A job is claimed before it runs here (`JobStore.claim`: unclaimed, this process's own, or held in
vain by a process found dead). Jobs under way are taken whatever this process's load, because
they are being paid for; queued ones only into free slots, oldest first, and they run from their
stored request as the process that accepted them would have (`stored.py`). Each job carries on
from the state it was in, exactly as after a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from bot.clock import Clock
from bot.jobs.admission import Admission
from bot.jobs.config import EngineConfig
from bot.jobs.leases import Leases
from bot.jobs.models import HooksFactory
from bot.jobs.queue import SlotQueue
from bot.jobs.run import JobRun
from bot.jobs.runner import Runs
from bot.jobs.stored import BadStoredRequest, load_request
from bot.store import JobRecord, JobState, Store
from bot.store.db import patient

log = logging.getLogger(__name__)

Where = Callable[[JobRecord], bool] | None


class Takeover:
    """Claims and starts the jobs this process may run; one round at a time."""

    def __init__(
        self,
        *,
        store: Store,
        runs: Runs,
        queue: SlotQueue,
        admission: Admission,
        leases: Leases,
        config: EngineConfig,
        clock: Clock,
        stopping: Callable[[], bool],
    ) -> None:
        self._store = store
        self._runs = runs
        self._queue = queue
        self._admission = admission
        self._leases = leases
        self._config = config
        self._clock = clock
        self._stopping = stopping
        self._claiming = asyncio.Lock()  # one round at a time

    def free_slots(self) -> int:
        """Slots no job holds or waits for here."""
        return max(0, self._queue.capacity - self._queue.in_flight - self._queue.waiting)

    async def round(self, hooks_for: HooksFactory, where: Where) -> list[JobRecord]:
        """Claim and start every job this process may run now (those `where` accepts)."""
        async with self._claiming:
            if self._stopping():
                return []
            await self._leases.start()
            found = [
                record
                for record in await self._store.jobs.claimable()
                if record.id not in self._runs.tasks and (where is None or where(record))
            ]
            queued = [record.id for record in found if record.state is JobState.RECEIVED]
            wanted = [record.id for record in found if record.state is not JobState.RECEIVED]
            wanted += queued[: self.free_slots()]
            started: list[JobRecord] = []
            for record in await self._store.jobs.claim(wanted):
                if record.id not in self._runs.tasks and await self._carry_on(record, hooks_for):
                    started.append(record)
            return started

    async def one(self, job_id: int, hooks_for: HooksFactory) -> None:
        """Claim one job (if it can be claimed) and start it here."""
        async with self._claiming:
            for record in await self._store.jobs.claim([job_id]):
                if record.id not in self._runs.tasks:
                    await self._carry_on(record, hooks_for)

    async def settle(self, where: Where) -> None:
        """Wait until each process holding one of these jobs has beaten (alive) or been found dead.

        At most a lease and a few heartbeats: a command run after a crash then finishes the crashed
        run's jobs rather than find them held.
        """
        me = self._store.owner
        holders = {
            record.claimed_by
            for record in await self._store.jobs.unfinished()
            if record.claimed_by not in (None, me) and (where is None or where(record))
        }
        if not holders:
            return
        await self._leases.start()
        give_up_at = self._clock.monotonic() + self._leases.seconds + 4 * self._leases.interval
        while holders and self._clock.monotonic() < give_up_at:
            await self._leases.beat()
            holders = {
                holder
                for holder in holders
                if holder is not None
                and not self._leases.alive(holder)
                and await self._store.instances.registered(holder)
            }
            if holders:
                await self._clock.sleep(self._leases.interval)

    async def _carry_on(self, record: JobRecord, hooks_for: HooksFactory) -> bool:
        """Run a job this process has just claimed from the state it is in; False if it can't be now."""
        try:
            run = self._runs.new_run(record, hooks_for(record))
        except Exception:
            # One bad record must not keep the others from resuming.
            log.exception("job %s: could not be resumed", record.id)
            return False
        log.info("job %s: resuming from %s", record.id, record.state.value)
        if record.state is JobState.RECEIVED:
            try:
                if await self._start_queued(run):
                    return True
            except Exception:
                # Claimed but not started: this process's own, so the next round tries again.
                log.exception("job %s: could not start it here; it is tried again later", record.id)
                self._runs.runs.pop(record.id, None)
                return False
        if record.project_id is None:
            # Nothing at Magic Hour to follow: it ends now, without waiting for a slot.
            with patient(self._config.store_patience):
                try:
                    await run.run_resumed()
                except Exception as exc:
                    try:
                        await run.failed(exc)
                    except Exception:
                        log.exception("job %s: could not be ended; it is resumed later", record.id)
                finally:
                    self._runs.runs.pop(record.id, None)
                    await run.cleanup()
            return True
        # A resumed job that is already rendering (and being paid for) goes to the front.
        self._runs.spawn(run, run.run_resumed, front=True)
        return True

    async def _start_queued(self, run: JobRun) -> bool:
        """Run a queued job from its stored request; False if it has none that can run (it then ends interrupted)."""
        text = await self._store.jobs.stored_request(run.job_id)
        if text is None:
            return False  # from before requests were stored
        try:
            request = load_request(text, run.record)
        except BadStoredRequest as exc:
            log.warning("job %s: its stored request can't be run (%s); it ends as interrupted", run.job_id, exc)
            return False
        admitted = await self._admission.read(request.guild_id, request.user_id, request.role_ids)
        run.know_limits(admitted)
        self._queue.enqueue(run.job_id)
        self._runs.spawn(run, lambda: run.run_new(request, admitted))
        return True
