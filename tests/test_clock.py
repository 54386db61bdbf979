"""The fake clock's wake-ups one at a time: what a test uses to let everything settle between them."""

from __future__ import annotations

import asyncio

from bot.clock import FakeClock


async def test_wake_next_wakes_one_sleeper_at_a_time_in_order() -> None:
    """Sleepers due together wake one per call, in the order they slept; none past `until`."""
    clock = FakeClock()
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(name)

    start = clock.monotonic()
    tasks = [asyncio.ensure_future(sleeper(name, s)) for name, s in [("a", 5), ("b", 5), ("c", 2), ("d", 9)]]
    await asyncio.sleep(0)
    tasks[1].cancel()  # a cancelled sleep is skipped, never "woken"
    await asyncio.sleep(0)
    assert await clock.wake_next() and woke == ["c"] and clock.monotonic() == start + 2
    assert await clock.wake_next() and woke == ["c", "a"] and clock.monotonic() == start + 5
    assert not await clock.wake_next(until=start + 8) and clock.monotonic() == start + 5
    assert await clock.wake_next(until=start + 9) and woke == ["c", "a", "d"]
    assert not await clock.wake_next()
    await asyncio.gather(*tasks, return_exceptions=True)
