"""Leases: this process's claims on the jobs it runs, kept alive; dead processes' jobs taken over.

Several processes may share one database. Each job is claimed by the process that runs it, for
`lease_seconds`; every third of that the claims are renewed, in a loop of their own (so a slow
takeover never delays a renewal). A job whose claim another process took is stopped here without
being ended. Another loop, as often, takes over the jobs whose process died.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from bot.clock import Clock
from bot.store import Store

log = logging.getLogger(__name__)


class Leases:
    """The two loops that keep one engine's leases, and its release of them on shutdown."""

    def __init__(self, store: Store, clock: Clock, lease_seconds: float) -> None:
        self._store = store
        self._clock = clock
        self._lease_seconds = lease_seconds
        self._renewals: asyncio.Task[None] | None = None
        self._takeovers: asyncio.Task[None] | None = None

    @property
    def seconds(self) -> float:
        """How long a claim lasts unless renewed."""
        return self._lease_seconds

    def keep_renewing(self, running: Callable[[], Sequence[int]], lost: Callable[[int], None]) -> None:
        """Renew the claims on the jobs `running()` names, from now on (started once)."""
        if self._renewals is None:
            self._renewals = asyncio.get_running_loop().create_task(
                self._every_third(lambda: self.renew(running(), lost)), name="job-lease-renewal"
            )

    def keep_taking_over(self, take_over: Callable[[], Awaitable[object]]) -> None:
        """Run `take_over` every third of a lease, from now on (started once)."""
        if self._takeovers is None:
            self._takeovers = asyncio.get_running_loop().create_task(self._every_third(take_over), name="job-takeover")

    async def renew(self, running: Sequence[int], lost: Callable[[int], None]) -> set[int]:
        """Renew this process's claims on `running`; call `lost` for each one another process took."""
        kept = await self._store.jobs.renew(list(running), self._lease_seconds)
        for job_id in running:
            if job_id not in kept:
                lost(job_id)
        return kept

    async def release(self, job_ids: Sequence[int]) -> None:
        """Give up the claims (a clean shutdown): another process may take the jobs at once."""
        try:
            await self._store.jobs.release(job_ids)
        except Exception:
            log.exception("could not release job claims; other processes take them when their leases run out")

    async def aclose(self) -> None:
        """Stop both loops."""
        for task in (self._takeovers, self._renewals):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._takeovers = self._renewals = None

    async def _every_third(self, work: Callable[[], Awaitable[object]]) -> None:
        interval = self._lease_seconds / 3
        while True:
            await self._clock.sleep(interval)
            try:
                await work()
            except Exception:
                log.exception("keeping job leases failed; trying again in %.0f s", interval)
