"""Liveness by heartbeat: this process's claims kept alive, dead processes found and their jobs taken.

Each process registers under a random id and beats every `lease_seconds / 5`, one small write that
bumps its counter (`bot.store.instances`). The same heartbeat reads every process's counter, and
the jobs here that another process claimed or a member asked elsewhere to cancel. A process whose
counter stood still for `lease_seconds`, across at least `_ROUNDS` of this one's own successful
heartbeats, is dead: its row is deleted (only if the counter is still the one seen), and the
takeover loop, a task of its own, claims what it may run. docs/design-notes.md, "Liveness by
heartbeat", gives the reasons.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from bot.clock import Clock
from bot.store import Store
from bot.store.db import patient

log = logging.getLogger(__name__)

_ROUNDS = 3  # own successful heartbeats that must see another's counter stand still
_BEATS_PER_LEASE = 5


@dataclass
class _Seen:
    beats: int
    since: float  # when this process first saw that count (its monotonic clock)
    rounds: int = 0  # its own successful heartbeats since
    moved: bool = False  # the count has changed while this process watched: it was alive then


class Liveness:
    """Which other processes are dead, judged from their heartbeat counters as this process sees them.

    Only time during which this process itself was beating counts: after a gap in its own
    heartbeats longer than half the lease (an outage, or this process frozen), everyone is watched
    afresh, so a process that simply hasn't reached the database again yet is never judged on the
    outage's time.
    """

    def __init__(self, dead_after: float, *, rounds: int = _ROUNDS) -> None:
        self._dead_after = dead_after
        self._rounds = rounds
        self._seen: dict[str, _Seen] = {}
        self._last: float | None = None  # this process's last successful heartbeat

    def observe(self, beats: Mapping[str, int], now: float) -> dict[str, int]:
        """One heartbeat's reading of the others' counters; those now judged dead, with the count seen."""
        if self._last is not None and now - self._last > self._dead_after / 2:
            for watched in self._seen.values():
                watched.since, watched.rounds = now, 0
        self._last = now
        stale: dict[str, int] = {}
        for instance_id, count in beats.items():
            seen = self._seen.get(instance_id)
            if seen is None or seen.beats != count:
                self._seen[instance_id] = _Seen(count, now, moved=seen is not None)
                continue
            seen.rounds += 1
            if now - seen.since >= self._dead_after and seen.rounds >= self._rounds:
                stale[instance_id] = count
        for gone in set(self._seen) - set(beats):
            del self._seen[gone]
        return stale

    def moved(self, instance_id: str) -> bool:
        """Whether `instance_id`'s counter has changed while this process watched it (it was alive)."""
        seen = self._seen.get(instance_id)
        return seen is not None and seen.moved


class Leases:
    """One engine's heartbeat and takeover loops, and its release of its claims on a clean stop."""

    def __init__(self, store: Store, clock: Clock, lease_seconds: float, *, patience: float) -> None:
        self._store = store
        self._clock = clock
        self._lease_seconds = lease_seconds
        self._patience = patience
        self._liveness = Liveness(lease_seconds)
        self._registered = False
        self._heartbeat: asyncio.Task[None] | None = None
        self._takeovers: asyncio.Task[None] | None = None
        self._take_over: Callable[[], Awaitable[object]] | None = None
        self._soon: asyncio.Task[None] | None = None
        self._running: Callable[[], Sequence[int]] = list
        self._lost: Callable[[int], None] = lambda job_id: None
        self._cancel: Callable[[int, int], None] = lambda job_id, user_id: None
        self._failing = False

    @property
    def seconds(self) -> float:
        """How long another process's heartbeat may stand still before its jobs are taken over."""
        return self._lease_seconds

    @property
    def interval(self) -> float:
        """How often this process beats (and looks for jobs to take over)."""
        return self._lease_seconds / _BEATS_PER_LEASE

    def watch(
        self,
        running: Callable[[], Sequence[int]],
        lost: Callable[[int], None],
        cancel: Callable[[int, int], None],
    ) -> None:
        """Each heartbeat, about the jobs `running()` names: `lost(job)` for each another process
        claimed, `cancel(job, member)` for each a member asked to cancel."""
        self._running, self._lost, self._cancel = running, lost, cancel

    async def start(self) -> None:
        """Register this process (its claims hold from now on) and start beating; once."""
        if not self._registered:
            await self._store.instances.register()
            self._registered = True
        if self._heartbeat is None:
            self._heartbeat = asyncio.get_running_loop().create_task(self._every(self.beat), name="heartbeat")

    def alive(self, instance_id: str) -> bool:
        """True once this process has seen `instance_id`'s heartbeat move."""
        return self._liveness.moved(instance_id)

    def keep_taking_over(self, take_over: Callable[[], Awaitable[object]]) -> None:
        """Run `take_over` every heartbeat interval, and at once when a process is found dead (started once)."""
        self._take_over = take_over
        if self._takeovers is None:
            self._takeovers = asyncio.get_running_loop().create_task(self._every(take_over), name="job-takeover")

    async def beat(self) -> None:
        """One heartbeat: write it, act on this process's jobs, and judge the others."""
        beat = await self._store.instances.beat(self._running())
        me = self._store.owner
        if beat.registered_again:
            log.warning(
                "this process was taken for dead (no heartbeat for %.0f s: frozen, or cut off from the database); "
                "jobs another process took over are let go",
                self._lease_seconds,
            )
        for job_id, holder in beat.claims.items():
            if holder is not None and holder != me:
                self._lost(job_id)
        for job_id, user_id in beat.cancels.items():
            self._cancel(job_id, user_id)
        now = self._clock.monotonic()
        stale = self._liveness.observe({k: v for k, v in beat.beats.items() if k != me}, now)
        if not stale:
            return
        gone = await self._store.instances.forget(stale)
        if gone:
            log.warning(
                "process(es) %s stopped beating (nothing for %.0f s): taken for dead; their jobs are taken over",
                ", ".join(gone),
                self._lease_seconds,
            )
            self._take_over_soon()

    def _take_over_soon(self) -> None:
        if self._take_over is None or (self._soon is not None and not self._soon.done()):
            return
        take_over = self._take_over

        async def now() -> None:
            with patient(self._patience):
                try:
                    await take_over()
                except Exception:
                    log.exception("taking over a dead process's jobs failed; trying again at the next round")

        self._soon = asyncio.get_running_loop().create_task(now(), name="job-takeover-now")

    async def stop_taking_over(self) -> None:
        """Take no more jobs (a clean stop begins); the heartbeat goes on, so jobs still here stay here."""
        for task in (self._takeovers, self._soon):
            await _stopped(task)
        self._takeovers = self._soon = None
        self._take_over = None

    async def release(self, job_ids: Sequence[int]) -> None:
        """Give up the claims (a clean stop): another process may take the jobs at once."""
        try:
            await self._store.jobs.release(job_ids)
        except Exception:
            log.exception("could not release job claims; other processes take them when this one is found dead")

    async def aclose(self) -> None:
        """Stop both loops and unregister: whatever this process still claims is void from now on."""
        await self.stop_taking_over()
        await _stopped(self._heartbeat)
        self._heartbeat = None
        if self._registered:
            self._registered = False
            try:
                await self._store.instances.unregister()
            except Exception:
                log.exception(
                    "could not unregister this process; others find it dead after %.0f s", self._lease_seconds
                )

    async def _every(self, work: Callable[[], Awaitable[object]]) -> None:
        with patient(self._patience):
            while True:
                await self._clock.sleep(self.interval)
                try:
                    await work()
                except Exception as exc:
                    if not self._failing:  # once per run of failures, not every second
                        log.warning("keeping this process's heartbeat and jobs failed (%s); trying every round", exc)
                    self._failing = True
                else:
                    self._failing = False


async def _stopped(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
