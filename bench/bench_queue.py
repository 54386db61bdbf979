"""Queue positions at scale: what a slot release costs when thousands of jobs wait.

    python bench/bench_queue.py [--jobs 2000] [--capacity 4]

Every job waits for one of `capacity` slots (`bot.jobs.SlotQueue`), holds it for one event-loop
turn and releases it. The listener does what the engine's does for each notice: it reads the job's
position (as `JobRun.emit` does) and counts the notice. Figures: CPU seconds for the whole queue,
notices sent (and how many of them when jobs were queued), and the most notices one release caused.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.jobs.queue import SlotQueue  # noqa: E402


async def run(jobs: int, capacity: int) -> dict[str, float]:
    notices = 0
    per_release: list[int] = [0]
    queue: SlotQueue

    async def on_position(job_id: int, position: int) -> None:
        nonlocal notices
        notices += 1
        per_release[-1] += 1
        queue.position(job_id)  # the engine's update reads the position again

    queue = SlotQueue(capacity, on_position=on_position)

    async def job(job_id: int) -> None:
        async with queue.slot(job_id):
            await asyncio.sleep(0)
        per_release.append(0)

    started = time.process_time()
    await asyncio.gather(*(job(i) for i in range(jobs)))
    for _ in range(3):  # let the last notices run
        await asyncio.sleep(0)
    cpu = time.process_time() - started
    # The first count is the notices at enqueueing (each job told its place once); then one per release.
    return {"cpu_s": cpu, "notices": notices, "at_enqueue": per_release[0], "max_per_release": max(per_release[1:])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--capacity", type=int, default=4)
    args = parser.parse_args()
    figures = asyncio.run(run(args.jobs, args.capacity))
    print(f"{args.jobs} jobs, {args.capacity} slots")
    print(f"queue CPU        {figures['cpu_s']:.2f} s")
    print(f"notices          {figures['notices']:,.0f} ({figures['at_enqueue']:,.0f} when the jobs were queued)")
    print(f"max per release  {figures['max_per_release']:,.0f}")


if __name__ == "__main__":
    main()
