"""The wiring: builds the store, the API client, the HTTP client for inputs, and the engine.

One place owns every long-lived resource and closes them in reverse order on shutdown. Front
ends (the Discord bot, `lipsync-bot render`) get a `Services` and nothing global. The metrics
registry lives here too (`metrics`), with the health check (`health`); `serve_ops` serves both on
`METRICS_PORT`, for the process that should (`lipsync-bot run`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

import httpx

from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.errors import ConfigurationError
from bot.jobs.config import EngineConfig
from bot.jobs.engine import JobEngine
from bot.jobs.fetch import DISCORD_CDN, FetchPolicy
from bot.jobs.forecast import RenderForecast
from bot.magichour import MagicHourClient
from bot.ops.health import Health
from bot.ops.metrics import Metrics
from bot.store import QuotaPolicy, Store

if TYPE_CHECKING:
    # Both serve HTTP with aiohttp, which only `run` and a process receiving webhooks need: the
    # terminal's commands start without it.
    from bot.jobs.webhooks import WebhookReceiver
    from bot.ops.server import OpsServer

log = logging.getLogger(__name__)

# Inputs come from Discord's CDN: generous read timeout per chunk, never an infinite wait.
_FETCH_TIMEOUT = httpx.Timeout(connect=10.0, read=60.0, write=60.0, pool=30.0)


@dataclass
class Services:
    """Everything a front end needs, built from `Settings`."""

    settings: Settings
    clock: Clock
    store: Store
    client: MagicHourClient
    fetch_http: httpx.AsyncClient
    engine: JobEngine
    metrics: Metrics
    health: Health
    webhooks: WebhookReceiver | None = None

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        clock: Clock | None = None,
        sandbox: bool = False,
        fetch_policy: FetchPolicy = DISCORD_CDN,
    ) -> Services:
        """Open the database and HTTP clients and build the engine.

        `sandbox` is the operator's word that the API is the sandbox (`--sandbox`). It is never
        guessed from the URL: any other endpoint is treated as real money, and a result is
        labelled a sandbox render only when the server that made it says it is the sandbox.
        """
        if settings.magic_hour_api_key is None:
            raise ConfigurationError("MAGIC_HOUR_API_KEY is not set. Put it in `.env` (see `.env.example`).")
        clock = clock or SystemClock()
        if settings.database_url is None:
            settings.database_path.parent.mkdir(parents=True, exist_ok=True)
        settings.work_dir.mkdir(parents=True, exist_ok=True)
        store = await Store.open(
            settings.database, clock=clock, policy=QuotaPolicy.from_settings(settings), name=settings.instance_name
        )
        metrics = Metrics(clock, store)
        client = MagicHourClient(
            settings.magic_hour_api_key, settings.magic_hour_base_url, clock=clock, observer=metrics
        )
        fetch_http = httpx.AsyncClient(timeout=_FETCH_TIMEOUT, follow_redirects=False)  # fetch_input checks each hop
        config = EngineConfig.from_settings(settings, sandbox=sandbox, fetch_policy=fetch_policy)
        forecast = RenderForecast(store.renders, clock, config.forecast, on_sample=metrics.render_sample)
        engine = JobEngine(
            config=config,
            store=store,
            client=client,
            fetch_http=fetch_http,
            clock=clock,
            forecast=forecast,
            observer=metrics,
        )
        metrics.bind(states=engine.states, queue=engine.queue_snapshot, models=forecast.model)
        health = Health(store, engine.poller, metrics, clock=clock)
        services = cls(settings, clock, store, client, fetch_http, engine, metrics, health)
        # A webhook may reach any process: the one that follows the project hears of it through
        # the store (PostgreSQL's NOTIFY; on SQLite only this process's receiver relays, so a
        # process without one has nothing to listen for).
        if settings.webhooks_enabled or settings.database_url is not None:
            await services._hear_webhooks()
        return services

    async def _hear_webhooks(self) -> None:
        from bot.jobs.webhooks import PROJECT_CHANNEL, WebhookReceiver

        settings, store, poller = self.settings, self.store, self.engine.poller
        await store.listen(PROJECT_CHANNEL, poller.poke)
        if settings.webhook_secret is not None and settings.webhook_port is not None:  # webhooks_enabled
            self.webhooks = WebhookReceiver(
                poller,
                settings.webhook_secret,
                self.clock,
                host=settings.webhook_host,
                port=settings.webhook_port,
                path=settings.webhook_path,
                relay=lambda project_id: store.notify(PROJECT_CHANNEL, project_id),
            )
            try:
                await self.webhooks.start()
            except OSError:
                await self.aclose()
                raise ConfigurationError(
                    f"Can't listen for webhooks on port {settings.webhook_port}: is it in use?"
                ) from None

    @contextlib.asynccontextmanager
    async def serve_ops(self) -> AsyncIterator[OpsServer | None]:
        """Serve `/metrics` and `/healthz` on `METRICS_PORT` while inside (nothing when it isn't set)."""
        port = self.settings.metrics_port
        if port is None:
            yield None
            return
        from bot.ops.server import OpsServer

        server = OpsServer(self.metrics, self.health, host=self.settings.metrics_host, port=port, clock=self.clock)
        try:
            await server.start()
        except OSError:
            raise ConfigurationError(f"Can't serve metrics on port {port}: is it in use?") from None
        try:
            yield server
        finally:
            await server.aclose()

    async def aclose(self) -> None:
        """Stop the engine (unfinished jobs stay resumable) and close every resource."""
        if self.webhooks is not None:
            await self.webhooks.aclose()
        await self.engine.aclose()
        await self.fetch_http.aclose()
        await self.client.aclose()
        await self.store.close()

    async def __aenter__(self) -> Services:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
