"""A persistent sandbox: the next one on the same folder knows the last one's account, files and projects."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx

from bot.clock import FakeClock
from bot.sandbox import Sandbox, SandboxConfig
from bot.sandbox.persist import KEEP_SECONDS, journal_path
from tests.sandbox.helpers import API_KEY, Media, create_job, lip_sync_body, upload


def _clients(sb: Sandbox) -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
    api = httpx.AsyncClient(base_url=sb.base_url, headers={"Authorization": f"Bearer {API_KEY}"})
    return api, httpx.AsyncClient()


async def _make_project(sb: Sandbox, media: Media) -> str:
    api, storage = _clients(sb)
    async with api, storage:
        video = await upload(api, storage, media.video, "video", "mp4")
        audio = await upload(api, storage, media.audio_wav, "audio", "wav")
        return await create_job(api, lip_sync_body(video, audio))


async def _read(sb: Sandbox, project_id: str) -> httpx.Response:
    api, storage = _clients(sb)
    async with api, storage:
        return await api.get(f"/v1/video-projects/{project_id}")


async def test_a_project_left_rendering_finishes_in_the_next_sandbox(tmp_path: Path, media: Media) -> None:
    """Stopped mid-render, a persistent sandbox's project renders on in the next one, and bills once."""
    config = SandboxConfig(api_key=API_KEY, render_seconds=60.0)
    first_clock = FakeClock()
    async with Sandbox(config, data_dir=tmp_path, clock=first_clock, persistent=True) as sb:
        project_id = await _make_project(sb, media)
        assert (await _read(sb, project_id)).json()["status"] == "rendering"
        balance = sb.credits
    assert journal_path(tmp_path).exists()

    # A minute and a half later (by the wall clock), a new process's sandbox on the same folder.
    later = FakeClock(start=first_clock.now() + dt.timedelta(seconds=90))
    async with Sandbox(SandboxConfig(api_key=API_KEY), data_dir=tmp_path, clock=later, persistent=True) as sb:
        assert sb.credits == balance  # the account is the same one
        done = (await _read(sb, project_id)).json()
        assert done["status"] == "complete", done
        assert done["credits_charged"] == 60  # 2 s at 30 fps, settled once
        async with httpx.AsyncClient() as http:
            video = await http.get(done["downloads"][0]["url"])
        assert video.status_code == 200 and len(video.content) > 1000


async def test_a_project_still_rendering_by_the_clock_keeps_rendering(tmp_path: Path, media: Media) -> None:
    """A render not due yet stays `rendering` in the next sandbox until its time has passed."""
    first_clock = FakeClock()
    config = SandboxConfig(api_key=API_KEY, render_seconds=600.0)
    async with Sandbox(config, data_dir=tmp_path, clock=first_clock, persistent=True) as sb:
        project_id = await _make_project(sb, media)
    later = FakeClock(start=first_clock.now() + dt.timedelta(seconds=30))
    async with Sandbox(SandboxConfig(api_key=API_KEY), data_dir=tmp_path, clock=later, persistent=True) as sb:
        assert (await _read(sb, project_id)).json()["status"] == "rendering"
        await later.advance(600)
        assert (await _read(sb, project_id)).json()["status"] == "complete"


async def test_a_sandbox_that_is_not_persistent_keeps_nothing(tmp_path: Path, media: Media) -> None:
    """The default (tests, `lipsync-bot sandbox`): no journal, and a new sandbox knows nothing."""
    async with Sandbox(SandboxConfig(api_key=API_KEY), data_dir=tmp_path, clock=FakeClock()) as sb:
        project_id = await _make_project(sb, media)
    assert not journal_path(tmp_path).exists()
    async with Sandbox(SandboxConfig(api_key=API_KEY), data_dir=tmp_path, clock=FakeClock(), persistent=True) as sb:
        assert (await _read(sb, project_id)).status_code == 404


async def test_old_projects_are_dropped_with_their_files(tmp_path: Path, media: Media) -> None:
    """A journal keeps a week, as Magic Hour keeps uploads: older projects and their files go."""
    first_clock = FakeClock()
    async with Sandbox(SandboxConfig(api_key=API_KEY), data_dir=tmp_path, clock=first_clock, persistent=True) as sb:
        project_id = await _make_project(sb, media)
        assert (await _read(sb, project_id)).json()["status"] == "complete"
        uploads = list(sb.uploads.values())
    assert all(path.exists() for path in uploads)
    much_later = FakeClock(start=first_clock.now() + dt.timedelta(seconds=KEEP_SECONDS + 60))
    async with Sandbox(SandboxConfig(api_key=API_KEY), data_dir=tmp_path, clock=much_later, persistent=True) as sb:
        assert (await _read(sb, project_id)).status_code == 404
        assert sb.uploads == {}
    assert not any(path.exists() for path in uploads)
