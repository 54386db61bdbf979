"""The operator's HTTP endpoints, on `METRICS_PORT`: `/metrics` (Prometheus) and `/healthz`.

Served on the bot's own event loop through `bot.listening` (loopback unless `METRICS_HOST` says
otherwise; bounded connections and read times); answers carry no job data beyond the metrics'
labels (states, modes, server ids, endpoints without ids). Neither endpoint touches the database
per request: `/healthz` answers from the health check's cached database verdict (`Health`), and
`/metrics` reads the database's figures at most once per `METRICS_REFRESH_SECONDS`, however often
it is scraped.
"""

from __future__ import annotations

import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.clock import Clock, SystemClock
from bot.listening import Listener, ListenLimits
from bot.ops.fresh import Fresh
from bot.ops.health import Health
from bot.ops.metrics import Metrics

log = logging.getLogger(__name__)

METRICS_REFRESH_SECONDS = 10.0


class OpsServer:
    """`/metrics` and `/healthz` on one port; `start()` then `aclose()`."""

    def __init__(
        self,
        metrics: Metrics,
        health: Health,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
        limits: ListenLimits | None = None,
    ) -> None:
        self._metrics = metrics
        self._health = health
        self._host = host
        clock = clock or SystemClock()
        self._refresh = Fresh(metrics.refresh, clock, METRICS_REFRESH_SECONDS)
        routes = {("GET", "/metrics"): self._serve_metrics, ("GET", "/healthz"): self._serve_health}
        self._listener = Listener(routes, host=host, port=port, clock=clock, limits=limits, name="metrics")

    @property
    def port(self) -> int | None:
        """The bound port, once started."""
        return self._listener.port

    @property
    def url(self) -> str:
        """The server's base URL (after `start`)."""
        host = "127.0.0.1" if self._host in ("0.0.0.0", "") else self._host  # noqa: S104 - comparing, not binding
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Start listening (port 0 picks a free one; `port` tells which)."""
        await self._listener.start()
        log.info("metrics and health on port %s (/metrics, /healthz)", self.port)

    async def aclose(self) -> None:
        """Stop listening."""
        await self._listener.aclose()

    async def _serve_metrics(self, request: web.BaseRequest) -> web.Response:
        await self._refresh.get()
        return web.Response(body=self._metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _serve_health(self, request: web.BaseRequest) -> web.Response:
        report = await self._health.check()
        if not report.healthy:
            log.warning("health check failed: %s", ", ".join(f"{k}: {v}" for k, v in report.checks.items()))
        return web.json_response(report.to_json(), status=200 if report.healthy else 503)
