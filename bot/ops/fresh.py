"""A value worth fetching at most once in a while, however many ask for it at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from bot.clock import Clock

T = TypeVar("T")


class Fresh(Generic[T]):
    """`get()` runs `fetch` when its last answer is older than `max_age` seconds on `clock`.

    Callers that ask while a fetch is running share it (one fetch, however many requests), and
    an answer is kept for `max_age` whatever it was, so a failing dependency isn't asked again
    for every request either. A fetch that raises is not kept: the next caller tries again.
    """

    def __init__(self, fetch: Callable[[], Awaitable[T]], clock: Clock, max_age: float) -> None:
        self._fetch = fetch
        self._clock = clock
        self._max_age = max_age
        self._value: T | None = None
        self._at: float | None = None
        self._running: asyncio.Future[T] | None = None

    async def get(self) -> T:
        """The last answer if it is recent enough, else a fresh one."""
        if self._at is not None and self._clock.monotonic() - self._at < self._max_age:
            return self._value  # type: ignore[return-value] # set together with `_at`
        if self._running is None:
            self._running = asyncio.ensure_future(self._run())
        # Shielded: one caller giving up (a dropped connection) doesn't cancel the others' fetch.
        return await asyncio.shield(self._running)

    async def _run(self) -> T:
        try:
            value = await self._fetch()
            self._value, self._at = value, self._clock.monotonic()
            return value
        finally:
            self._running = None
