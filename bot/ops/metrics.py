"""Prometheus metrics: one `Metrics` per `Services`, with its own registry (no global state).

It is what the engine reports to (`EngineObserver`: it wraps each job's hooks to watch progress
and deliveries), what the Magic Hour client reports each request to (`RequestObserver`), and what
the Discord layer counts its delivery fallbacks with (`metrics_of(client).delivery_fallback(...)`).
Gauges that describe the present (jobs by state, the queue, the bot's budget, the forecast's
models) are read when scraped. Every name and what it means: docs/operators.md.

Nothing here may fail a job: every observation is guarded, and a failure is logged, not raised.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.clock import Clock
from bot.config import GenerationMode
from bot.jobs.forecast import RenderModel
from bot.jobs.models import Deliverer, Delivery, JobHooks, JobUpdate, LinkProvider, ProgressSink, QueueSnapshot
from bot.store import JobRecord, JobState, LedgerKind, Store, StoreError
from bot.store.renders import RenderSample

log = logging.getLogger(__name__)

#: The Discord layer's delivery fallbacks (`delivery_fallback`).
FALLBACKS = ("compressed", "link", "channel", "dm")


def is_store_error(exc: BaseException) -> bool:
    """True for an error that came from the database."""
    return isinstance(exc, StoreError | sqlite3.Error | asyncpg.PostgresError | asyncpg.InterfaceError)


def _guild(record: JobRecord) -> str:
    return str(record.guild_id) if record.guild_id is not None else "none"


@dataclass(frozen=True)
class _Sources:
    """Where the scrape-time gauges come from (bound once the engine exists)."""

    states: Callable[[], Mapping[str, int]]
    queue: Callable[[], QueueSnapshot]
    models: Callable[[GenerationMode], RenderModel | None]


class Metrics:
    """Every metric the bot exports, in `registry`."""

    def __init__(self, clock: Clock, store: Store | None = None, registry: CollectorRegistry | None = None) -> None:
        self.clock = clock
        self.store = store
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.job_transitions = Counter(
            "lipsync_job_transitions", "Jobs that entered each state.", ["state"], registry=r
        )
        self.jobs_finished = Counter(
            "lipsync_jobs_finished",
            "Jobs that ended, by outcome (done, failed, canceled) and reason (the error code; empty when none).",
            ["outcome", "reason"],
            registry=r,
        )
        self.queue_wait = Histogram(
            "lipsync_queue_wait_seconds",
            "How long jobs waited in the queue for a slot.",
            buckets=(0.1, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
            registry=r,
        )
        self.credits_reserved = Counter(
            "lipsync_credits_reserved",
            "Credits set aside for jobs (reservations and top-ups), by server ('none': the command line).",
            ["guild"],
            registry=r,
        )
        self.credits_charged = Counter(
            "lipsync_credits_charged",
            "Credits finished jobs were charged (Magic Hour's charge), by server ('none': the command line).",
            ["guild"],
            registry=r,
        )
        self.requests = Counter(
            "lipsync_magic_hour_requests",
            "Requests to Magic Hour (and its storage), by endpoint and HTTP status ('error': no answer).",
            ["endpoint", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "lipsync_magic_hour_request_seconds",
            "How long requests to Magic Hour took (transfers: the whole transfer), by endpoint.",
            ["endpoint"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=r,
        )
        self.key_refusals = Counter(
            "lipsync_api_key_refusals",
            "Status reads Magic Hour answered 401/403: the bot's key is refused, and renders can't be followed.",
            registry=r,
        )
        self.polls_per_job = Histogram(
            "lipsync_polls_per_job",
            "Status requests each render's wait took.",
            buckets=(1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50, 100),
            registry=r,
        )
        self.render_seconds = Histogram(
            "lipsync_render_seconds",
            "How long completed renders took at Magic Hour, from submission, by mode.",
            ["mode"],
            buckets=(10, 20, 30, 60, 90, 120, 180, 240, 300, 450, 600, 900, 1800, 3600),
            registry=r,
        )
        self.notice_seconds = Histogram(
            "lipsync_completion_notice_seconds",
            "At most how late a completed render was noticed: from the last status read that found it "
            "rendering to the one that found it complete.",
            buckets=(0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 60),
            registry=r,
        )
        self.delivery_seconds = Histogram(
            "lipsync_completion_to_delivery_seconds",
            "From a render found complete to its result delivered (download, compression, posting).",
            buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600),
            registry=r,
        )
        self.deliveries = Counter(
            "lipsync_deliveries", "Results delivered, by how (file, compressed, link, dm, local).", ["kind"], registry=r
        )
        self.delivery_fallbacks = Counter(
            "lipsync_delivery_fallbacks",
            "Discord delivery fallbacks taken: compressed (re-encoded to fit), link (too large even then), "
            "channel (a channel message instead of the interaction's followup), dm (the channel refused).",
            ["fallback"],
            registry=r,
        )
        self.delivery_failures = Counter(
            "lipsync_delivery_attempt_failures",
            "Delivery attempts that failed (each is retried, then a link is sent).",
            registry=r,
        )
        self.store_errors = Counter(
            "lipsync_store_errors",
            "Database errors, by where they surfaced: job (a job's step), health (the health check's write), "
            "metrics (reading the budget for a scrape).",
            ["where"],
            registry=r,
        )
        for fallback in FALLBACKS:
            self.delivery_fallbacks.labels(fallback)
        for where in ("job", "health", "metrics"):
            self.store_errors.labels(where)
        self._sources: _Sources | None = None
        self._budget: tuple[int, int] | None = None  # (limit, used) this window, when there is a budget
        self.registry.register(_LiveCollector(self))

    def bind(
        self,
        *,
        states: Callable[[], Mapping[str, int]],
        queue: Callable[[], QueueSnapshot],
        models: Callable[[GenerationMode], RenderModel | None],
    ) -> None:
        """Where the scrape-time gauges read from (the engine, once it exists)."""
        self._sources = _Sources(states, queue, models)

    async def refresh(self) -> None:
        """Read what only the database knows (the bot's budget) for the next scrape."""
        if self.store is None:
            return
        try:
            limits = await self.store.quota.limits(None, 0, ())
        except Exception as exc:
            self.store_error("metrics", exc)
            return
        if limits.budget_limit is None or limits.budget_available is None:
            self._budget = None
        else:
            self._budget = (limits.budget_limit, limits.budget_limit - limits.budget_available)

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)

    # --------------------------------------------------------------- small API for the front ends

    def delivery_fallback(self, fallback: str) -> None:
        """The Discord layer fell back: "compressed", "link", "channel" or "dm"."""
        self.delivery_fallbacks.labels(fallback).inc()

    def store_error(self, where: str, exc: BaseException | None = None) -> None:
        """A database error surfaced at `where`."""
        self.store_errors.labels(where).inc()

    # --------------------------------------------------------------- RequestObserver (Magic Hour client)

    def request(self, endpoint: str, status: str, seconds: float) -> None:
        """One request to Magic Hour or its storage."""
        self.requests.labels(endpoint, status).inc()
        self.request_seconds.labels(endpoint).observe(seconds)

    # --------------------------------------------------------------- EngineObserver

    def hooks(self, hooks: JobHooks) -> JobHooks:
        """The job's hooks, wrapped so its progress and deliveries are counted."""
        return JobHooks(sink=_WatchedSink(hooks.sink, self), deliverer=_WatchedDeliverer(hooks.deliverer, self))

    def queue_waited(self, seconds: float) -> None:
        """A job got its slot after waiting this long."""
        self.queue_wait.observe(max(0.0, seconds))

    def job_error(self, exc: BaseException) -> None:
        """A job's run failed; database errors are counted."""
        if is_store_error(exc):
            self.store_error("job", exc)

    def polls(self, count: int) -> None:
        """A render's wait ended after `count` status requests."""
        self.polls_per_job.observe(count)

    def key_refused(self) -> None:
        """Magic Hour refused the bot's key on a status read (the operator must act)."""
        self.key_refusals.inc()

    # --------------------------------------------------------------- the forecast

    def render_sample(self, sample: RenderSample) -> None:
        """A completed render was placed in time."""
        self.render_seconds.labels(sample.mode.value).observe(sample.seconds)
        if sample.low > 0:
            self.notice_seconds.observe(sample.high - sample.low)

    # --------------------------------------------------------------- scrape time

    def _collect_live(self) -> Iterable[Metric]:
        sources = self._sources
        if sources is not None:
            states = GaugeMetricFamily(
                "lipsync_jobs_active", "Jobs this process is running, by state.", labels=["state"]
            )
            for state in JobState:
                if not state.terminal:
                    states.add_metric([state.value], sources.states().get(state.value, 0))
            yield states
            queue = sources.queue()
            yield GaugeMetricFamily("lipsync_queue_length", "Jobs waiting for a slot.", value=queue.waiting)
            yield GaugeMetricFamily("lipsync_slots_in_use", "Slots held by running jobs.", value=queue.in_flight)
            yield GaugeMetricFamily(
                "lipsync_slots", "Jobs that may run at once (MAX_JOBS_IN_FLIGHT).", value=queue.capacity
            )
            per_frame = GaugeMetricFamily(
                "lipsync_forecast_seconds_per_frame",
                "The forecast's render seconds per frame, by mode.",
                labels=["mode"],
            )
            overhead = GaugeMetricFamily(
                "lipsync_forecast_overhead_seconds", "The forecast's seconds per render beyond its frames, by mode.",
                labels=["mode"],
            )  # fmt: skip
            spread = GaugeMetricFamily(
                "lipsync_forecast_spread_ratio", "How far renders stray from the forecast (relative sd), by mode.",
                labels=["mode"],
            )  # fmt: skip
            for mode in GenerationMode:
                model = sources.models(mode)
                if model is not None:
                    per_frame.add_metric([mode.value], model.per_frame)
                    overhead.add_metric([mode.value], model.overhead)
                    spread.add_metric([mode.value], model.spread)
            yield from (per_frame, overhead, spread)
        if self._budget is not None:
            limit, used = self._budget
            yield GaugeMetricFamily(
                "lipsync_budget_credits", "The bot's budget per window (BOT_BUDGET_CREDITS).", value=limit
            )
            yield GaugeMetricFamily(
                "lipsync_budget_used_credits", "Credits used or held this window against the bot's budget.", value=used
            )


class _LiveCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        try:
            return list(self._metrics._collect_live())
        except Exception:
            log.exception("could not read the live metrics")
            return []


class _WatchedSink:
    """A job's progress sink, counting transitions, outcomes, credits and delivery time on the way."""

    def __init__(self, inner: ProgressSink, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics
        self._state: JobState | None = None
        self._reserved = 0  # credits counted as reserved for this job, in this process
        self._completed_at: float | None = None

    async def update(self, update: JobUpdate) -> None:
        try:
            await self._observe(update)
        except Exception:
            log.exception("job %s: metrics could not observe an update", update.job.id)
        await self._inner.update(update)

    async def _observe(self, update: JobUpdate) -> None:
        metrics, record = self._metrics, update.job
        if update.credits_reserved and not self._reserved and record.estimated_credits:
            self._reserved = record.estimated_credits
            metrics.credits_reserved.labels(_guild(record)).inc(record.estimated_credits)
        state, first = record.state, self._state is None
        if state is self._state:
            return
        self._state = state
        if first and state is not JobState.RECEIVED:
            return  # a resumed job: its state was counted by the process that ran it before
        metrics.job_transitions.labels(state.value).inc()
        if state is JobState.DOWNLOADING:
            self._completed_at = metrics.clock.monotonic()
        if state is JobState.DONE:
            metrics.deliveries.labels(record.delivery_kind or "unknown").inc()
            if self._completed_at is not None:
                metrics.delivery_seconds.observe(metrics.clock.monotonic() - self._completed_at)
        if state.terminal:
            metrics.jobs_finished.labels(state.value, record.error_code or "").inc()
            await self._count_credits(record)

    async def _count_credits(self, record: JobRecord) -> None:
        metrics = self._metrics
        if metrics.store is None:
            return
        entries = await metrics.store.quota.entries(record.id)
        held = sum(e.credits for e in entries if e.kind in (LedgerKind.RESERVE, LedgerKind.TOPUP))
        if self._reserved and held > self._reserved:  # top-ups, beyond the reservation counted above
            metrics.credits_reserved.labels(_guild(record)).inc(held - self._reserved)
        charged = sum(e.charged or 0 for e in entries if e.kind is LedgerKind.SETTLE)
        if charged:
            metrics.credits_charged.labels(_guild(record)).inc(charged)


class _WatchedDeliverer:
    """A job's deliverer, counting failed attempts."""

    def __init__(self, inner: Deliverer, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def deliver(self, job: JobRecord, result: Path | None, *, sandbox: bool, link: LinkProvider) -> Delivery:
        try:
            return await self._inner.deliver(job, result, sandbox=sandbox, link=link)
        except Exception:
            self._metrics.delivery_failures.inc()
            raise


class _NoMetrics:
    """What `metrics_of` gives when the bot has no metrics (yet): every call does nothing."""

    def delivery_fallback(self, fallback: str) -> None:
        return None


def metrics_of(client: object) -> Metrics | _NoMetrics:
    """The metrics of a bot (its `services.metrics`), for the Discord layer's one-line counts."""
    try:
        metrics = getattr(getattr(client, "services", None), "metrics", None)
    except Exception:  # services not open yet, or already closed
        metrics = None
    return metrics if isinstance(metrics, Metrics) else _NoMetrics()
