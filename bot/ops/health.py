"""The health check: is the Discord gateway connected, does the database take writes, is the poller alive.

`Health.check()` runs each check and answers a `HealthReport`; the ops server serves it on
`/healthz` (200 when healthy, 503 when not), and the container's `HEALTHCHECK` asks it. The
gateway check applies only where a gateway was registered (`watch_gateway`, by the Discord bot):
the command line has none.

The database check writes a row, so it runs at most once per `DATABASE_CHECK_SECONDS` (on the
injected clock), shared by every request meanwhile: a flood of `/healthz` requests is never a
flood of database writes. The gateway and poller checks read memory and are always current.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.clock import Clock, SystemClock
from bot.jobs.poller import Poller
from bot.ops.fresh import Fresh
from bot.ops.metrics import Metrics
from bot.store import Store

#: A database that hasn't answered a one-row write in this long is not healthy.
DATABASE_TIMEOUT = 5.0
#: How long one database verdict stands before the next `/healthz` writes again.
DATABASE_CHECK_SECONDS = 15.0


@dataclass(frozen=True)
class HealthReport:
    """Each check's verdict ("ok", or what is wrong), and whether all of them passed."""

    checks: dict[str, str] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        """True when every check said "ok"."""
        return all(verdict == "ok" for verdict in self.checks.values())

    def to_json(self) -> dict[str, object]:
        """The report as `/healthz` answers it."""
        return {"healthy": self.healthy, "checks": dict(self.checks)}


class Health:
    """Checks the parts a running bot can't do without."""

    def __init__(
        self,
        store: Store,
        poller: Poller,
        metrics: Metrics | None = None,
        *,
        clock: Clock | None = None,
        database_every: float = DATABASE_CHECK_SECONDS,
    ) -> None:
        self._store = store
        self._poller = poller
        self._metrics = metrics
        self._gateway: Callable[[], bool] | None = None
        self._database_verdict = Fresh(self._database, clock or SystemClock(), database_every)

    def watch_gateway(self, connected: Callable[[], bool]) -> None:
        """Include the Discord gateway: `connected()` says whether it is connected now."""
        self._gateway = connected

    async def check(self) -> HealthReport:
        """Run every check now."""
        checks: dict[str, str] = {}
        if self._gateway is not None:
            checks["gateway"] = "ok" if self._gateway() else "disconnected"
        checks["database"] = await self._database_verdict.get()
        checks["poller"] = "ok" if self._poller.alive() else "stalled"
        return HealthReport(checks)

    async def _database(self) -> str:
        try:
            await asyncio.wait_for(self._store.heartbeat.beat(), DATABASE_TIMEOUT)
        except TimeoutError:
            return f"no answer to a write within {DATABASE_TIMEOUT:g} s"
        except Exception as exc:
            if self._metrics is not None:
                self._metrics.store_error("health", exc)
            return f"write refused ({type(exc).__name__})"
        return "ok"
