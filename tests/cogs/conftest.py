"""Harness for driving the real bot through simcord (findings in tests/cogs/README.md)."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine
from typing import Any, TypeVar

from simcord._runtime import _BOT_SCOPE

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
