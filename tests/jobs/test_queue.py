"""The slot queue against a model: places are exact, and only the front of the line is told of moves."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.jobs.queue import EXACT_POSITIONS, SlotQueue

# An operation: a new job at the back or the front, a waiting job gives up, or a holder finishes.
# Joins are likelier, so lines grow past the first `EXACT_POSITIONS`.
Op = tuple[str, int]
OPS = st.lists(
    st.tuples(st.sampled_from(["join", "join", "join", "join_front", "give_up", "finish"]), st.integers(0, 10_000)),
    min_size=20,
    max_size=80,
)


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def _play(ops: list[Op], capacity: int) -> None:
    told: dict[int, list[int]] = {}

    async def on_position(job_id: int, position: int) -> None:
        told.setdefault(job_id, []).append(position)

    queue = SlotQueue(capacity, on_position=on_position)
    done: dict[int, asyncio.Event] = {}
    tasks: dict[int, asyncio.Task[None]] = {}
    holders: list[int] = []  # who holds a slot, as the jobs themselves see it
    line: list[int] = []  # the model: who waits, in order

    async def job(job_id: int, front: bool) -> None:
        async with queue.slot(job_id, front=front):
            holders.append(job_id)
            await done[job_id].wait()
        holders.remove(job_id)

    holding: list[int] = []  # the model: who holds a slot
    for number, (kind, pick) in enumerate(ops):
        before = sum(len(v) for v in told.values())
        if kind.startswith("join"):
            front = kind == "join_front"
            done[number] = asyncio.Event()
            if not line and len(holding) < capacity:
                holding.append(number)
            elif front:
                line.insert(0, number)
            else:
                line.append(number)
            tasks[number] = asyncio.get_running_loop().create_task(job(number, front))
        elif kind == "give_up" and line:
            leaving = line.pop(pick % len(line))
            tasks[leaving].cancel()
        elif kind == "finish" and holding:
            finishing = holding.pop(pick % len(holding))
            done[finishing].set()
            while line and len(holding) < capacity:
                holding.append(line.pop(0))
        await _settle()
        told_now = sum(len(v) for v in told.values()) - before
        # One operation tells at most the front of the line, plus the job that just joined.
        assert told_now <= EXACT_POSITIONS + 2
        assert sorted(holders) == sorted(holding)
        assert [queue.position(job_id) for job_id in line] == list(range(1, len(line) + 1))
        for place, job_id in enumerate(line, start=1):
            last = told[job_id][-1]
            if place <= EXACT_POSITIONS:
                assert last == place, (job_id, place, told[job_id])
            else:
                assert last > EXACT_POSITIONS, (job_id, place, told[job_id])
    for event in done.values():
        event.set()
    for task in tasks.values():
        task.cancel()
    await asyncio.gather(*tasks.values(), return_exceptions=True)


@settings(max_examples=150, deadline=None)
@given(ops=OPS, capacity=st.integers(1, 3))
def test_places_are_exact_and_only_the_front_is_told(ops: list[Op], capacity: int) -> None:
    """Whatever joins, gives up or finishes: `position` is the model's place, every waiter in the
    first `EXACT_POSITIONS` was last told its true place, everyone behind was last told a place
    behind them, and no operation tells more than the front of the line."""
    asyncio.run(_play(ops, capacity))


def test_a_release_in_a_long_line_tells_only_the_front() -> None:
    """2,000 waiters and 100 releases: about EXACT_POSITIONS notices each, not 2,000."""

    async def scenario() -> int:
        notices = 0

        async def on_position(job_id: int, position: int) -> None:
            nonlocal notices
            notices += 1

        queue = SlotQueue(1, on_position=on_position)
        queue.enqueue(0)
        for job_id in range(1, 2001):
            queue.enqueue(job_id)
        for job_id in range(100):
            queue.discard(job_id)  # the holder finishes; the next one takes its slot
            await _settle()
        assert queue.position(101) == 1 and queue.position(2000) == 1900
        return notices

    assert asyncio.run(scenario()) == 100 * EXACT_POSITIONS
