"""Time as a dependency, so tests can move it by hand instead of sleeping.

`SystemClock` is the real thing. `FakeClock` only moves when a test calls `advance`, which wakes
every `sleep` whose deadline has passed, in deadline order.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import itertools
import time
from typing import Protocol


class Clock(Protocol):
    """What the engine, poller, store and sandbox need to know about time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; only differences are meaningful."""
        ...

    def now(self) -> dt.datetime:
        """The current UTC time, timezone-aware."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait this long on this clock."""
        ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        """Seconds from `time.monotonic`."""
        return time.monotonic()

    def now(self) -> dt.datetime:
        """The current UTC time."""
        return dt.datetime.now(dt.UTC)

    async def sleep(self, seconds: float) -> None:
        """`asyncio.sleep`."""
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock that only moves when told to; `sleep` waits for `advance`."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._mono = 1000.0
        self._start_wall = start or dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
        self._start_mono = self._mono
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self.sleep_calls: list[float] = []

    def monotonic(self) -> float:
        """The fake monotonic time."""
        return self._mono

    def now(self) -> dt.datetime:
        """The fake wall time, moved in step with `monotonic`."""
        return self._start_wall + dt.timedelta(seconds=self._mono - self._start_mono)

    async def sleep(self, seconds: float) -> None:
        """Wait until `advance` moves the clock past now + seconds."""
        self.sleep_calls.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._mono + seconds, next(self._seq), future))
        await future

    @property
    def sleepers(self) -> int:
        """How many sleeps are waiting (cancelled ones excluded)."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    def next_deadline(self) -> float | None:
        """The earliest pending sleep's wake-up time, if any."""
        live = [d for d, _, f in self._sleepers if not f.done()]
        return min(live) if live else None

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking sleepers in order and letting each run before the next."""
        target = self._mono + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, future = heapq.heappop(self._sleepers)
            if future.done():
                continue
            self._mono = max(self._mono, deadline)
            future.set_result(None)
            # Let the woken task run (and perhaps sleep again) before time moves on.
            for _ in range(5):
                await asyncio.sleep(0)
        self._mono = target
        await asyncio.sleep(0)

    async def wake_next(self, *, until: float | None = None) -> bool:
        """Move to the earliest pending sleep's deadline and wake that one sleeper, unless it is due
        after `until`; whether one woke. Sleepers due at the same moment wake one per call, in the
        order they went to sleep: a test can let everything settle between two wake-ups."""
        while self._sleepers:
            deadline, _, future = self._sleepers[0]
            if future.done():
                heapq.heappop(self._sleepers)
                continue
            if until is not None and deadline > until:
                return False
            heapq.heappop(self._sleepers)
            self._mono = max(self._mono, deadline)
            future.set_result(None)
            for _ in range(5):
                await asyncio.sleep(0)
            return True
        return False
