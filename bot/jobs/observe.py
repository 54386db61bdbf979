"""What the engine tells an observer (metrics) about its jobs, without knowing who listens.

The engine calls these at the few places only it can see: a job's hooks when its run is made (an
observer may wrap them to watch progress and deliveries), the time a job waited for a slot, a
job step that failed on the database, each finished poll wait, and the API key refused. `NO_OBSERVER` ignores all.
"""

from __future__ import annotations

import contextvars
from typing import Protocol

from bot.jobs.models import JobHooks


class EngineObserver(Protocol):
    """Told what the engine sees; every method must be cheap and must not raise."""

    def hooks(self, hooks: JobHooks) -> JobHooks:
        """The hooks a job's run should use: `hooks` itself, or a wrapper that watches them."""
        ...

    def queue_waited(self, seconds: float) -> None:
        """A job waited this long for its slot."""
        ...

    def job_error(self, exc: BaseException) -> None:
        """A job's run failed with this exception (an observer counts the store's among them)."""
        ...

    def polls(self, count: int) -> None:
        """A render's wait ended after this many status requests."""
        ...

    def key_refused(self) -> None:
        """Magic Hour refused the bot's key (401/403) on a status read; the wait goes on."""
        ...


class _NoObserver:
    def hooks(self, hooks: JobHooks) -> JobHooks:
        return hooks

    def queue_waited(self, seconds: float) -> None:
        return None

    def job_error(self, exc: BaseException) -> None:
        return None

    def polls(self, count: int) -> None:
        return None

    def key_refused(self) -> None:
        return None


NO_OBSERVER: EngineObserver = _NoObserver()

# The job whose run the current task belongs to (set by the engine in each job's task), so log
# lines can carry its number (`LOG_FORMAT=json`). Context-local: each task sees its own.
current_job: contextvars.ContextVar[int | None] = contextvars.ContextVar("current_job", default=None)
