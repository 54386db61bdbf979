"""Render times proportional to frames, with seeded noise, on the fake clock."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from bot.clock import FakeClock
from bot.sandbox import Sandbox, SandboxConfig
from tests.sandbox.helpers import API_KEY, Media, create_job, get_project, lip_sync_body, upload


async def _statuses(api: httpx.AsyncClient, clock: FakeClock, project_id: str, steps: list[float]) -> list[str]:
    seen = []
    for step in steps:
        await clock.advance(step)
        seen.append((await get_project(api, project_id))["status"])
    return seen


async def test_render_time_follows_the_estimated_frames(
    sandbox: Sandbox, api: httpx.AsyncClient, clock: FakeClock, files: dict[str, str]
) -> None:
    """overhead + frames x seconds_per_frame: 2 s at 30 fps is 60 frames, 2 + 7.5 s after 5 s of queue."""
    # Numbers exact in binary, so the boundaries are exact too.
    sandbox.config.render_seconds_per_frame = 0.125
    sandbox.config.render_overhead_seconds = 2
    long = await create_job(api, lip_sync_body(files["video"], files["audio"]))
    capped = await create_job(api, lip_sync_body(files["video"], files["audio"], max_fps_limit=10))
    assert sandbox.projects[long].render_seconds == 9.5
    assert sandbox.projects[capped].render_seconds == 4.5  # 20 frames at 10 fps
    assert await _statuses(api, clock, capped, [4.75, 0.25, 4.25, 0.25]) == [
        "queued",
        "rendering",
        "rendering",
        "complete",
    ]
    assert await _statuses(api, clock, long, [0, 4.75, 0.25]) == ["rendering", "rendering", "complete"]


async def test_fixed_render_seconds_without_a_per_frame_time(
    sandbox: Sandbox, api: httpx.AsyncClient, files: dict[str, str]
) -> None:
    """render_seconds_per_frame 0 (the default): every job takes render_seconds; the overhead is not added."""
    sandbox.config.render_overhead_seconds = 100
    project_id = await create_job(api, lip_sync_body(files["video"], files["audio"]))
    assert sandbox.projects[project_id].render_seconds == 10


async def _render_times(tmp: Path, media: Media, seed: int, jobs: int = 20) -> list[float]:
    config = SandboxConfig(
        api_key=API_KEY, render_seconds_per_frame=0.5, render_overhead_seconds=1, render_noise=0.1, render_seed=seed
    )
    async with (
        Sandbox(config, data_dir=tmp, clock=FakeClock()) as sb,
        httpx.AsyncClient(base_url=sb.base_url, headers={"Authorization": f"Bearer {API_KEY}"}) as api,
        httpx.AsyncClient() as storage,
    ):
        video = await upload(api, storage, media.video, "video", "mp4")
        audio = await upload(api, storage, media.audio_wav, "audio", "wav")
        ids = [await create_job(api, lip_sync_body(video, audio)) for _ in range(jobs)]
        return [sb.projects[project_id].render_seconds for project_id in ids]


async def test_noise_is_bounded_and_seeded(tmp_path: Path, media: Media) -> None:
    """Uniform within +-10 % of the per-frame part, the same for the same seed, different for another."""
    times = await _render_times(tmp_path / "a", media, seed=7)
    assert all(1 + 60 * 0.5 * 0.9 <= t <= 1 + 60 * 0.5 * 1.1 for t in times)
    assert len(set(times)) == len(times)
    assert times == await _render_times(tmp_path / "b", media, seed=7)
    assert times != await _render_times(tmp_path / "c", media, seed=8)


def test_render_noise_range() -> None:
    """Noise is relative: from 0 to 1."""
    with pytest.raises(ValidationError):
        SandboxConfig(render_noise=1.5)
    with pytest.raises(ValidationError):
        SandboxConfig(render_seconds_per_frame=-1)
