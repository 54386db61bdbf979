"""A first-in, first-out limit on jobs in flight, with positions a member can see."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from sortedcontainers import SortedKeyList

PositionListener = Callable[[int, int], Awaitable[None]]

# Waiters this near the front are told each change of place; behind them a member is told "more
# than this many ahead" once, and then their place when they reach the front. Telling every waiter
# of every release would cost n notices (and Discord edits) per release: n^2 for a queue of n.
EXACT_POSITIONS = 10


class SlotQueue:
    """At most `capacity` holders at once; the rest wait in arrival order.

    Unlike `asyncio.Semaphore`, it can say where each waiter stands (in O(log n)), and tells a
    listener `(job_id, position)` when a waiter's place changes within the first
    `EXACT_POSITIONS`, so status messages can follow without an edit per release for everyone.
    """

    def __init__(self, capacity: int, on_position: PositionListener | None = None) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._holders: set[int] = set()
        # Waiting jobs by id, with their ticket (their place in line: lower goes first).
        self._waiters: dict[int, tuple[int, asyncio.Future[None]]] = {}
        self._line: SortedKeyList[int] = SortedKeyList(key=lambda job_id: self._waiters[job_id][0])
        self._back = itertools.count(1)  # tickets for the back of the line
        self._front = itertools.count(-1, -1)  # and for its front, ahead of every ticket so far
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
        if job_id not in self._waiters:
            return None
        place: int = self._line.index(job_id)
        return place + 1

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
        ticket = next(self._front) if front else next(self._back)
        self._waiters[job_id] = (ticket, asyncio.get_running_loop().create_future())
        self._line.add(job_id)

    def _leave(self, job_id: int) -> tuple[int, asyncio.Future[None]] | None:
        """Take a waiter out of the line: its place (1-based) and its future, or None."""
        if job_id not in self._waiters:
            return None
        place = self._line.index(job_id) + 1
        self._line.remove(job_id)  # the key is read from `_waiters`, so it goes first
        return place, self._waiters.pop(job_id)[1]

    async def _acquire(self, job_id: int, *, front: bool = False) -> None:
        self.enqueue(job_id, front=front)
        if job_id in self._holders:
            return
        future = self._waiters[job_id][1]
        if front:
            # Everyone near the front moved back one, the last of them out of the first few.
            await self._notify_front(1, through=EXACT_POSITIONS + 1)
        else:
            await self._notify(job_id, len(self._waiters))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                # We were handed the slot at the moment we were cancelled: pass it on.
                self._release(job_id)
            else:
                left = self._leave(job_id)
                if left is not None:
                    await self._notify_front(left[0])
            raise

    def discard(self, job_id: int) -> None:
        """Give up a place or a slot, whether or not `slot()` was ever entered (idempotent)."""
        left = self._leave(job_id)
        if left is not None:
            place, future = left
            future.cancel()
            self._spawn_notify(place)
        elif job_id in self._holders:
            self._release(job_id)

    def _spawn_notify(self, from_place: int) -> None:
        # Called from places that can't await; keep the task so it isn't garbage-collected.
        if self._on_position is None or from_place > min(EXACT_POSITIONS, len(self._waiters)):
            return  # nobody whose place is told exactly moved
        task = asyncio.get_running_loop().create_task(self._notify_front(from_place))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _release(self, job_id: int) -> None:
        self._holders.discard(job_id)
        while self._line and len(self._holders) < self._capacity:
            next_id = self._line.pop(0)
            future = self._waiters.pop(next_id)[1]
            if future.done():
                continue
            self._holders.add(next_id)
            future.set_result(None)
        self._spawn_notify(1)

    async def _notify(self, job_id: int, position: int) -> None:
        if self._on_position is not None:
            await self._on_position(job_id, position)

    async def _notify_front(self, from_place: int, *, through: int = EXACT_POSITIONS) -> None:
        """Tell the waiters from `from_place` to place `through` where they now stand."""
        for index, waiting_id in enumerate(list(self._line[from_place - 1 : through]), start=from_place):
            await self._notify(waiting_id, index)
