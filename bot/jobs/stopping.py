"""What a clean stop needs to know about the jobs still running: which can go now, and when to look again.

A job that only waits (for a slot, or for Magic Hour to render) can be handed to another process
at once: nothing of it is half-done. A job that is being fetched, uploaded, created or delivered
should first reach a point where another process can carry it on without loss: Magic Hour has its
project (a create is never abandoned to a process that would have to call it unknown), or the
member has their result. `Watched` tells the stop when a job's state changed, so it looks again
then instead of polling.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from bot.clock import Clock
from bot.jobs.models import JobUpdate, ProgressSink
from bot.jobs.run import JobRun
from bot.store import JobState

# States in which a job's task may be stopped at once and the job handed over, nothing lost.
_WAITING = frozenset({JobState.RECEIVED, JobState.SUBMITTED, JobState.RENDERING})


def may_stop_now(run: JobRun, queue_position: int | None) -> bool:
    """True when the job only waits: in the queue, or for its render at Magic Hour."""
    return queue_position is not None or run.record.state in _WAITING


class Watched:
    """A progress sink that also says (by setting `changed`) that a job's state may have changed."""

    def __init__(self, sink: ProgressSink, changed: asyncio.Event) -> None:
        self._sink = sink
        self._changed = changed

    async def update(self, update: JobUpdate) -> None:
        """Pass the snapshot on, after flagging the change."""
        self._changed.set()
        await self._sink.update(update)


async def wait_for_any(
    tasks: Sequence[asyncio.Task[None]], changed: asyncio.Event, clock: Clock, seconds: float
) -> None:
    """Wait until one of `tasks` ends, `changed` is set, or `seconds` pass on `clock`."""
    flag = asyncio.ensure_future(changed.wait())
    timer = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait({flag, timer, *tasks}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in (flag, timer):
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
