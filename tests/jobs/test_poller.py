"""The shared poller: its request count follows the backoff, errors push every job back, deadlines hold."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.clock import FakeClock
from bot.jobs.poller import PollDeadlineExceeded, Poller, PollPolicy
from bot.magichour import LipSyncAssets, LipSyncRequest, MagicHourClient, RetryPolicy, UploadItem, VideoProject
from bot.sandbox import Sandbox, SandboxConfig

KEY = "poll-key"
NO_JITTER = PollPolicy(initial=5.0, maximum=20.0, growth=1.5, jitter=0.0, error_maximum=120.0)


@pytest.fixture
async def rig(tmp_path: Path, media_dir: Path) -> AsyncIterator[tuple[Sandbox, MagicHourClient, FakeClock, Path]]:
    clock = FakeClock()
    async with (
        Sandbox(SandboxConfig(api_key=KEY), data_dir=tmp_path / "sb", clock=clock) as sandbox,
        MagicHourClient(SecretStr(KEY), sandbox.base_url, clock=clock, retry=RetryPolicy.none()) as client,
    ):
        yield sandbox, client, clock, media_dir


async def create_job(client: MagicHourClient, media: Path, *, end: float = 1.5) -> str:
    video, audio = await client.create_upload_urls(
        [UploadItem(type="video", extension="mp4"), UploadItem(type="audio", extension="mp3")]
    )
    await client.upload_file(video.upload_url, media / "face.mp4")
    await client.upload_file(audio.upload_url, media / "voice.mp3")
    created = await client.create_lip_sync(
        LipSyncRequest(
            start_seconds=0,
            end_seconds=end,
            assets=LipSyncAssets(video_source="file", video_file_path=video.file_path, audio_file_path=audio.file_path),
        )
    )
    return created.id


async def drive(clock: FakeClock, task: asyncio.Future[Any], poller: Poller, *, limit: float = 7200.0) -> list[float]:
    """Advance fake time to each next sleep until the task ends; return the moments it woke at.

    Time only moves while no status request is in flight, as if each answer were instant.
    """
    woke: list[float] = []
    start = clock.monotonic()
    while not task.done():
        deadline = clock.next_deadline()
        if deadline is None or poller.polling:
            await asyncio.sleep(0.001)  # real I/O (an HTTP poll) is in progress
            continue
        if deadline - start > limit:
            raise AssertionError("the poller never finished")
        await clock.advance(deadline - clock.monotonic())
        woke.append(clock.monotonic() - start)
    return woke


async def test_request_count_follows_backoff(rig) -> None:
    """A 120 s render is polled at 5, 12.5, 23.75, 40.6, then every 20 s: 8 requests, not 240."""
    sandbox, client, clock, media = rig
    sandbox.config.render_seconds = 120
    project_id = await create_job(client, media)
    poller = Poller(client, clock, NO_JITTER)
    task = asyncio.ensure_future(poller.wait(project_id, within=3600))
    await drive(clock, task, poller)
    project = task.result()
    assert project.status == "complete"
    assert sandbox.counters.requests["get_project"] == 8
    assert poller.requests == 8
    await poller.aclose()


async def test_many_jobs_share_one_loop(rig) -> None:
    """Ten jobs polled together cost ten requests per round, from one loop."""
    sandbox, client, clock, media = rig
    sandbox.config.render_seconds = 30
    ids = [await create_job(client, media) for _ in range(10)]
    poller = Poller(client, clock, NO_JITTER)
    tasks = [asyncio.ensure_future(poller.wait(pid, within=3600)) for pid in ids]
    gathered = asyncio.ensure_future(asyncio.gather(*tasks))
    await drive(clock, gathered, poller)
    assert all(p.status == "complete" for p in gathered.result())
    # Polls at 5, 12.5, 23.75, 40.6: four rounds of ten.
    assert sandbox.counters.requests["get_project"] == 40
    await poller.aclose()


async def test_rate_limit_backs_everyone_off(rig) -> None:
    """A 429 pushes the next poll back to at least the maximum interval, then polling resumes."""
    sandbox, client, clock, media = rig
    sandbox.config.render_seconds = 10
    project_id = await create_job(client, media)
    sandbox.faults.fail("get_project", status=429, times=1)
    poller = Poller(client, clock, NO_JITTER)
    task = asyncio.ensure_future(poller.wait(project_id, within=3600))
    woke = await drive(clock, task, poller)
    assert task.result().status == "complete"
    # First poll at 5 s is refused; the next waits the 20 s penalty (not 7.5 s), and finds it done.
    assert sandbox.counters.requests["get_project"] == 2
    assert woke[-1] >= 25.0
    await poller.aclose()


async def test_deadline(rig) -> None:
    """A render that outlives its deadline raises, after a bounded number of polls."""
    sandbox, client, clock, media = rig
    sandbox.config.render_seconds = 10_000
    project_id = await create_job(client, media)
    poller = Poller(client, clock, NO_JITTER)
    task = asyncio.ensure_future(poller.wait(project_id, within=300))
    await drive(clock, task, poller)
    with pytest.raises(PollDeadlineExceeded):
        task.result()
    assert sandbox.counters.requests["get_project"] <= 5 + 300 // 20
    await poller.aclose()


async def test_one_broken_project_does_not_stop_the_others(rig) -> None:
    """An unexpected error for one project ends only that wait; the loop keeps polling the rest."""
    sandbox, client, clock, media = rig
    sandbox.config.render_seconds = 10
    good = await create_job(client, media)

    class Flaky:
        async def get_video_project(self, project_id: str) -> VideoProject:
            if project_id == "broken":
                raise ValueError("garbled response")
            project: VideoProject = await client.get_video_project(project_id)
            return project

    poller = Poller(Flaky(), clock, NO_JITTER)
    broken = asyncio.ensure_future(poller.wait("broken", within=3600))
    healthy = asyncio.ensure_future(poller.wait(good, within=3600))
    await drive(clock, asyncio.ensure_future(asyncio.gather(healthy, broken, return_exceptions=True)), poller)
    with pytest.raises(ValueError, match="garbled"):
        broken.result()
    assert healthy.result().status == "complete"
    await poller.aclose()
