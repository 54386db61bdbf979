"""One pace for every status message's edits, whatever the number of jobs.

Each status message already waits between its own edits; this bounds their sum, so a busy bot stays
well inside Discord's global request limit (50 a second) with room for everything else it sends.
"""

from __future__ import annotations

import asyncio
import collections

from bot.clock import Clock

# Status edits a second across the bot, and how many may go at once after a quiet spell.
EDITS_PER_SECOND = 5.0
BURST = 10
# A token refilled by a sleep of exactly the time it needs may come out a hair under one: count it.
_ROUNDING = 1e-9


class EditPacer:
    """A token bucket on `clock`: `turn()` returns when an edit may go, first come first served.

    An urgent turn (a job's final state) goes ahead of every waiting progress edit: the ending is
    what the member waits for. A turn cancelled while waiting gives nothing up.
    """

    def __init__(self, clock: Clock, *, per_second: float = EDITS_PER_SECOND, burst: int = BURST) -> None:
        if per_second <= 0 or burst < 1:
            raise ValueError("the pace needs a positive rate and a burst of at least one")
        self._clock = clock
        self._rate = per_second
        self._burst = float(burst)
        self._tokens = float(burst)
        self._at = clock.monotonic()
        self._urgent: collections.deque[asyncio.Future[None]] = collections.deque()
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        self._drain: asyncio.Task[None] | None = None
        self.granted = 0  # turns given, for tests and metrics

    def _refill(self) -> None:
        now = self._clock.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate + _ROUNDING)
        self._at = now

    async def turn(self, *, urgent: bool = False) -> None:
        """Wait until one more edit fits the pace."""
        self._refill()
        if self._tokens >= 1 and not self._urgent and (urgent or not self._waiting):
            self._tokens -= 1
            self.granted += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        (self._urgent if urgent else self._waiting).append(future)
        if self._drain is None or self._drain.done():
            self._drain = asyncio.get_running_loop().create_task(self._hand_out())
        await future

    def _next(self) -> asyncio.Future[None] | None:
        for line in (self._urgent, self._waiting):
            while line:
                future = line.popleft()
                if not future.done():  # a cancelled turn is skipped
                    return future
        return None

    async def _hand_out(self) -> None:
        while self._urgent or self._waiting:
            self._refill()
            if self._tokens < 1:
                await self._clock.sleep((1 - self._tokens) / self._rate)
                continue
            future = self._next()
            if future is None:
                return
            self._tokens -= 1
            self.granted += 1
            future.set_result(None)
