"""The engine's background work run outside simcord's bookkeeping, for every test that drives the bot.

simcord settles an action by running the bot's tasks until they are idle, advancing its clock
through their timers. The engine's job, poller and lease-heartbeat tasks never are (they wait on
Magic Hour and beat every second or so), so a settle would run them until its own deadline: each
action would take that long and fail outright on a loaded machine.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest
from simcord._runtime import _BOT_SCOPE

from bot.jobs.engine import JobEngine

T = TypeVar("T")


def outside_simcord(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """Run `coro` in a task simcord does not own, keeping the caller's other context.

    simcord waits for every task the bot starts before an action returns, and fails an action
    when one of them waits on something it can't classify (an `asyncio.Event`, a future another
    task resolves). The engine's job and poller tasks do exactly that for minutes, so they run
    here: on the real event loop and real time, still using simcord's Discord (the webhook adapter
    and clock selection live in the copied context).
    """
    context = contextvars.copy_context()
    context.run(_BOT_SCOPE.set, None)
    # `asyncio.Task` rather than `loop.create_task`: simcord's create_task re-enters its scope.
    return asyncio.Task(coro, context=context)


@pytest.fixture
def engine_outside_simcord(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start the engine's background work (jobs, poller) outside simcord's bookkeeping."""
    for name in ("submit", "resume", "start_leases"):
        original: Callable[..., Coroutine[Any, Any, Any]] = getattr(JobEngine, name)

        async def detached(self: JobEngine, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            return await outside_simcord(_original(self, *args, **kwargs))

        monkeypatch.setattr(JobEngine, name, detached)


__all__ = ["engine_outside_simcord", "outside_simcord"]
