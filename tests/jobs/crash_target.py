"""Run by the crash matrix: one real engine process that submits one job and is then killed.

    python crash_target.py VIDEO AUDIO [--block-delivery]

VIDEO is a file path or an http URL (fetched under a policy that allows this machine's loopback).
Settings come from the environment (the test points them at its sandbox and database). Prints
`STATE <job id> <state>` on every change, for the test to kill it in the state it wants.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from bot.config import Settings
from bot.jobs.fetch import FetchPolicy
from bot.jobs.models import Delivery, InputSource, JobHooks, JobRequest, JobUpdate, LinkProvider
from bot.services import Services
from bot.store import JobRecord

LOOPBACK = FetchPolicy(hosts=frozenset({"127.0.0.1"}), allow_http=True, any_port=True)


class PrintStates:
    """Prints `STATE <job id> <state>` for the parent test to read."""

    async def update(self, update: JobUpdate) -> None:
        print(f"STATE {update.job.id} {update.job.state.value}", flush=True)


class Hold:
    """Delivers by never finishing (the process is killed while delivering), or refuses to deliver."""

    def __init__(self, block: bool) -> None:
        self._block = block

    async def deliver(self, job: JobRecord, result: Path | None, *, sandbox: bool, link: LinkProvider) -> Delivery:
        if self._block:
            print(f"STATE {job.id} delivering-held", flush=True)
            await asyncio.Event().wait()
        raise AssertionError("the killed process must not deliver")


def _source(arg: str) -> InputSource:
    if arg.startswith("http://"):
        return InputSource(filename="face.mp4", url=arg, content_type="video/mp4")
    return InputSource(filename=Path(arg).name, path=Path(arg))


async def main(video: str, audio: str, block_delivery: bool) -> None:
    services = await Services.open(Settings(_env_file=None), fetch_policy=LOOPBACK)  # type: ignore[call-arg]
    request = JobRequest(user_id=42, guild_id=1, channel_id=7, video=_source(video), audio=_source(audio))
    await services.engine.submit(request, JobHooks(sink=PrintStates(), deliverer=Hold(block_delivery)))
    await asyncio.Event().wait()  # until SIGKILL


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], "--block-delivery" in sys.argv[3:]))
