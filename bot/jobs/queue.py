"""A first-in, first-out limit on jobs in flight, with positions a member can see."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

PositionListener = Callable[[int, int], Awaitable[None]]


class SlotQueue:
    """At most `capacity` holders at once; the rest wait in arrival order.

    Unlike `asyncio.Semaphore`, it can say where each waiter stands, and tells a listener
    `(job_id, position)` whenever a waiter's position changes, so status messages can follow.
    """

    def __init__(self, capacity: int, on_position: PositionListener | None = None) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._holders: set[int] = set()
        self._waiters: OrderedDict[int, asyncio.Future[None]] = OrderedDict()
        self._on_position = on_position
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def capacity(self) -> int:
        """How many jobs may hold a slot at once."""
        return self._capacity

    @property
    def in_flight(self) -> int:
        """How many jobs hold a slot now."""
        return len(self._holders)

    @property
    def waiting(self) -> int:
        """How many jobs are waiting for a slot."""
        return len(self._waiters)

    def position(self, job_id: int) -> int | None:
        """1-based place in the queue, or None if the job is not waiting."""
        for index, waiting_id in enumerate(self._waiters, start=1):
            if waiting_id == job_id:
                return index
        return None

    @asynccontextmanager
    async def slot(self, job_id: int, *, front: bool = False) -> AsyncIterator[None]:
        """Hold a slot for the body of the `async with`; wait in line for it first.

        `front` puts the job ahead of everyone waiting (a resumed job that is already rendering).
        """
        await self._acquire(job_id, front=front)
        try:
            yield
        finally:
            self._release(job_id)

    def enqueue(self, job_id: int, *, front: bool = False) -> None:
        """Take a place now (holding a slot if one is free), so the position is known at once."""
        if job_id in self._holders or job_id in self._waiters:
            return
        if not self._waiters and len(self._holders) < self._capacity:
            self._holders.add(job_id)
            return
        self._waiters[job_id] = asyncio.get_running_loop().create_future()
        if front:
            self._waiters.move_to_end(job_id, last=False)

    async def _acquire(self, job_id: int, *, front: bool = False) -> None:
        self.enqueue(job_id, front=front)
        if job_id in self._holders:
            return
        future = self._waiters[job_id]
        if front:
            await self._notify_all()
        else:
            await self._notify(job_id, len(self._waiters))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                # We were handed the slot at the moment we were cancelled: pass it on.
                self._release(job_id)
            else:
                self._waiters.pop(job_id, None)
                await self._notify_all()
            raise

    def discard(self, job_id: int) -> None:
        """Give up a place or a slot, whether or not `slot()` was ever entered (idempotent)."""
        future = self._waiters.pop(job_id, None)
        if future is not None:
            future.cancel()
            if self._on_position is not None and self._waiters:
                self._spawn_notify()
        elif job_id in self._holders:
            self._release(job_id)

    def _spawn_notify(self) -> None:
        # Called from places that can't await; keep the task so it isn't garbage-collected.
        task = asyncio.get_running_loop().create_task(self._notify_all())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _release(self, job_id: int) -> None:
        self._holders.discard(job_id)
        while self._waiters and len(self._holders) < self._capacity:
            next_id, future = self._waiters.popitem(last=False)
            if future.done():
                continue
            self._holders.add(next_id)
            future.set_result(None)
        if self._on_position is not None and self._waiters:
            self._spawn_notify()

    async def _notify(self, job_id: int, position: int) -> None:
        if self._on_position is not None:
            await self._on_position(job_id, position)

    async def _notify_all(self) -> None:
        for index, waiting_id in enumerate(list(self._waiters), start=1):
            await self._notify(waiting_id, index)
