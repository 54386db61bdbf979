"""The engine's settings: its slice of `Settings`, fixed for the life of one engine."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from bot.config import Settings
from bot.jobs.fetch import DISCORD_CDN, FetchPolicy
from bot.jobs.forecast import ForecastPolicy
from bot.jobs.models import GuildRules
from bot.jobs.poller import PollPolicy
from bot.media.bounded import ProbeLimits


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard a finished render is pushed to its owner before falling back to a link.

    A completed render is paid for, so download and delivery are retried with backoff
    (`first_delay`, doubling up to `max_delay`) for `patience` seconds; then the member gets a link
    to the result instead, retried the same way; only if that fails too is the delivery given up
    (and logged).
    """

    patience: float = 3600.0
    first_delay: float = 5.0
    max_delay: float = 300.0


@dataclass(frozen=True)
class EngineConfig:
    """The engine's limits, taken from `Settings`."""

    work_dir: Path
    default_rules: GuildRules
    max_jobs_in_flight: int = 4
    max_concurrent_transfers: int = 4
    default_max_fps: float | None = None
    job_deadline_seconds: float = 3600.0
    # Past the deadline, a project that can't be read is asked about again for this long before
    # the job ends as unknown at Magic Hour (it may be complete: deleting it blind would lose it).
    deadline_grace_seconds: float = 1800.0
    deadline_grace_interval: float = 60.0
    poll: PollPolicy = field(default_factory=PollPolicy)
    forecast: ForecastPolicy = field(default_factory=ForecastPolicy)
    delivery: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    link_cooldown_seconds: float = 30.0  # at most one fresh download link per job this often
    fetch_policy: FetchPolicy = DISCORD_CDN  # where attachments may be fetched from
    # True when the operator said so (`--sandbox`); a result is also labelled a sandbox render
    # when the server that made it says it is the sandbox. Never guessed from a URL.
    sandbox: bool = False
    # How long another process's heartbeat may stand still (it beats every fifth of this) before
    # this one takes it for dead and takes its jobs over.
    lease_seconds: float = 6.0
    # How long a clean stop lets jobs that have started reach Magic Hour (or finish delivering)
    # before it hands them to another process; jobs that wait (queued, rendering) go at once.
    stop_grace_seconds: float = 20.0
    # How long a job's steps (and the lease loops) keep retrying a database that went away before
    # the step fails; a member's own requests wait less (`bot.store.db.DEFAULT_PATIENCE`).
    store_patience: float = 60.0
    # What probing one member's file may use (a child process: memory, CPU and wall time).
    probe_limits: ProbeLimits = field(default_factory=ProbeLimits)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, sandbox: bool, fetch_policy: FetchPolicy = DISCORD_CDN
    ) -> EngineConfig:
        """The engine's slice of the settings."""
        deadline = settings.job_deadline_minutes * 60
        return cls(
            work_dir=settings.work_dir,
            default_rules=GuildRules(
                allowed_modes=tuple(settings.allowed_modes),
                max_clip_seconds=settings.max_clip_seconds,
                max_input_bytes=settings.max_input_bytes,
            ),
            max_jobs_in_flight=settings.max_jobs_in_flight,
            max_concurrent_transfers=settings.max_concurrent_transfers,
            default_max_fps=settings.default_max_fps,
            job_deadline_seconds=deadline,
            # Half the deadline at most, so a short deadline (tests, impatient operators) stays short.
            deadline_grace_seconds=min(1800.0, deadline / 2),
            deadline_grace_interval=min(60.0, deadline / 20),
            # With webhooks on, Magic Hour says when a render ends: polls are only a safety net.
            poll=PollPolicy(
                initial=settings.poll_initial_seconds,
                maximum=settings.poll_max_seconds,
                webhooks=settings.webhooks_enabled,
            ),
            forecast=ForecastPolicy(
                enabled=settings.poll_forecast,
                min_samples=settings.forecast_min_renders,
                webhooks=settings.webhooks_enabled,
            ),
            delivery=DeliveryPolicy(patience=settings.delivery_retry_minutes * 60),
            sandbox=sandbox,
            fetch_policy=fetch_policy,
            lease_seconds=settings.job_lease_seconds,
            stop_grace_seconds=settings.stop_grace_seconds,
            probe_limits=ProbeLimits(
                memory_bytes=settings.probe_memory_mib << 20,
                cpu_seconds=math.ceil(settings.probe_timeout_seconds),
                wall_seconds=settings.probe_timeout_seconds,
            ),
        )
