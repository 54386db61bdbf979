"""One engine process of the multi-process tests: submit jobs, take over others', deliver to files.

Usage: `python -m tests.jobs.engine_worker FIRST_USER COUNT VIDEO AUDIO DELIVERIES BLOCK_AFTER`, with
the settings in the environment (DATABASE_URL, the sandbox's URL, ...). It starts its leases
(taking over jobs of dead processes, and queued jobs while it has a free slot), submits COUNT
jobs for members FIRST_USER, FIRST_USER+1, …, prints `SUBMITTED`, and runs until SIGTERM (a clean
stop, after which it exits 0) or SIGKILL. VIDEO and AUDIO are links (as a member's attachments
are: fetched from this machine's loopback, a stand-in for Discord's CDN) or local files.

Each delivery writes a file `DELIVERIES/<job id>.<pid>.<n>`, so the test counts who delivered
what. With BLOCK_AFTER >= 0, deliveries after that many never return and do nothing (they wait
before any effect): a test can kill this process while some of its jobs wait there.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from bot.config import Settings
from bot.jobs.fetch import FetchPolicy
from bot.jobs.models import Delivery, InputSource, JobHooks, JobRequest, JobUpdate, LinkProvider
from bot.services import Services
from bot.store import JobRecord

LOOPBACK = FetchPolicy(hosts=frozenset({"127.0.0.1"}), allow_http=True, any_port=True)


class Quiet:
    """A progress sink that shows nothing."""

    async def update(self, update: JobUpdate) -> None:
        return None


class ToFiles:
    """Records each delivery as a file; after `block_after` deliveries, waits forever instead."""

    def __init__(self, folder: Path, block_after: int) -> None:
        self.folder = folder
        self.block_after = block_after
        self.count = 0

    async def deliver(self, job: JobRecord, result: Path | None, *, sandbox: bool, link: LinkProvider) -> Delivery:
        if 0 <= self.block_after <= self.count:
            await asyncio.Event().wait()
        self.count += 1
        size = result.stat().st_size if result is not None else 0
        (self.folder / f"{job.id}.{os.getpid()}.{self.count}").write_text(str(size))
        return Delivery(kind="local")


def _source(where: str) -> InputSource:
    name = where.rsplit("/", 1)[-1]
    if where.startswith("http://"):
        return InputSource(filename=name, url=where)
    path = Path(where)
    return InputSource(filename=name, path=path, size=path.stat().st_size)


async def main(first_user: int, count: int, video: str, audio: str, deliveries: Path, block_after: int) -> None:
    services = await Services.open(Settings(_env_file=None), fetch_policy=LOOPBACK)  # type: ignore[call-arg]
    deliverer = ToFiles(deliveries, block_after)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await services.engine.start_leases(lambda record: JobHooks(sink=Quiet(), deliverer=deliverer))
        for user in range(first_user, first_user + count):
            request = JobRequest(user_id=user, guild_id=1, channel_id=7, video=_source(video), audio=_source(audio))
            await services.engine.submit(request, JobHooks(sink=Quiet(), deliverer=deliverer))
        print("SUBMITTED", flush=True)
        await stop.wait()
    finally:
        await services.aclose()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    first, n, video_where, audio_where, out, block = sys.argv[1:7]
    asyncio.run(main(int(first), int(n), video_where, audio_where, Path(out), int(block)))
