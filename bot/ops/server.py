"""The operator's HTTP endpoints, on `METRICS_PORT`: `/metrics` (Prometheus) and `/healthz`.

Served by aiohttp on the bot's own event loop; answers carry no job data beyond the metrics'
labels (states, modes, server ids, endpoints without ids).
"""

from __future__ import annotations

import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.ops.health import Health
from bot.ops.metrics import Metrics

log = logging.getLogger(__name__)


class OpsServer:
    """`/metrics` and `/healthz` on one port; `start()` then `aclose()`."""

    def __init__(self, metrics: Metrics, health: Health, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._metrics = metrics
        self._health = health
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        """The server's base URL (after `start`)."""
        host = "127.0.0.1" if self._host in ("0.0.0.0", "") else self._host  # noqa: S104 - comparing, not binding
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Start listening (port 0 picks a free one; `port` tells which)."""
        app = web.Application()
        app.router.add_get("/metrics", self._serve_metrics)
        app.router.add_get("/healthz", self._serve_health)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        server = site._server  # aiohttp keeps the bound socket here
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1]) if sockets else self._port
        log.info("metrics and health on port %s (/metrics, /healthz)", self.port)

    async def aclose(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _serve_metrics(self, request: web.Request) -> web.Response:
        await self._metrics.refresh()
        return web.Response(body=self._metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _serve_health(self, request: web.Request) -> web.Response:
        report = await self._health.check()
        if not report.healthy:
            log.warning("health check failed: %s", ", ".join(f"{k}: {v}" for k, v in report.checks.items()))
        return web.json_response(report.to_json(), status=200 if report.healthy else 503)
