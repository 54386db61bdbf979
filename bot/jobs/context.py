"""What every job's run shares, built once by the engine (its own module, so the run's parts can
name it without importing the run)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from bot.clock import Clock
from bot.jobs.admission import Admission
from bot.jobs.config import EngineConfig
from bot.jobs.forecast import RenderForecast
from bot.jobs.poller import Poller
from bot.magichour import MagicHourClient
from bot.store import Store


@dataclass(frozen=True)
class RunContext:
    """The engine's services, as each job's run sees them."""

    config: EngineConfig
    store: Store
    client: MagicHourClient
    poller: Poller
    admission: Admission
    fetch_http: httpx.AsyncClient
    clock: Clock
    transfers: asyncio.Semaphore
    queue_position: Callable[[int], int | None]
    forecast: RenderForecast
    # Seconds a queued job should wait for a slot (from its place and the render history); None: unknown.
    expected_wait: Callable[[int], float | None] = lambda _job_id: None
