"""Run by test_restart_after_sigkill: submit one job, print each state, then wait to be killed.

Settings come from the environment (the test points them at its sandbox and database).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from bot.config import Settings
from bot.jobs.models import Delivery, InputSource, JobHooks, JobRequest, JobUpdate, LinkProvider
from bot.services import Services
from bot.store import JobRecord


class PrintStates:
    """Prints `STATE <job id> <state>` for the parent test to read."""

    async def update(self, update: JobUpdate) -> None:
        print(f"STATE {update.job.id} {update.job.state.value}", flush=True)


class NeverDeliver:
    """This process is killed before any result exists."""

    async def deliver(self, job: JobRecord, result: Path | None, *, sandbox: bool, link: LinkProvider) -> Delivery:
        raise AssertionError("the killed process must not deliver")


async def main(video: Path, audio: Path) -> None:
    services = await Services.open(Settings(_env_file=None))  # type: ignore[call-arg]
    request = JobRequest(
        user_id=42,
        guild_id=1,
        channel_id=7,
        video=InputSource(filename=video.name, path=video),
        audio=InputSource(filename=audio.name, path=audio),
    )
    await services.engine.submit(request, JobHooks(sink=PrintStates(), deliverer=NeverDeliver()))
    await asyncio.Event().wait()  # until SIGKILL


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
