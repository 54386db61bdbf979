"""The Sandbox object itself and the CLI entry point."""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path

import httpx
import pytest

from bot.clock import SystemClock
from bot.sandbox import Sandbox, SandboxConfig, serve_forever
from tests.sandbox.helpers import Media, create_job, lip_sync_body, upload


async def _output_until(capsys: pytest.CaptureFixture[str], marker: str) -> str:
    """Collect stdout until `marker` shows up (the server runs in this same loop)."""
    out = ""
    async with asyncio.timeout(5):
        while marker not in out:
            await asyncio.sleep(0.001)
            out += capsys.readouterr().out
    return out


async def test_serve_forever_prints_url_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """serve_forever prints the base URL and key to use, serves, and stops cleanly when cancelled."""
    task = asyncio.create_task(serve_forever(SandboxConfig(api_key="operator-key"), tmp_path, port=0))
    out = await _output_until(capsys, "Press Ctrl-C")
    match = re.search(r"API base URL: (http://127\.0\.0\.1:\d+)", out)
    assert match is not None
    assert "API key:      operator-key" in out
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{match[1]}/v1/account", headers={"Authorization": "Bearer operator-key"})
    assert response.status_code == 200
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert task.cancelled()


async def test_defaults_and_properties(tmp_path: Path) -> None:
    """With no clock a SystemClock is used; URLs name the two listeners; config is the live object."""
    config = SandboxConfig()
    async with Sandbox(config, data_dir=tmp_path) as sb:
        assert isinstance(sb.clock, SystemClock)
        assert sb.config is config
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", sb.base_url)
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", sb.storage_url)
        assert sb.base_url != sb.storage_url
        sb.credits = 5
        assert config.credits == 5


async def test_close_stops_renders_in_flight(tmp_path: Path, media: Media) -> None:
    """Closing the sandbox with jobs in flight ends every render task (cancelling any still running)."""
    async with Sandbox(SandboxConfig(render_seconds=60), data_dir=tmp_path) as sb:
        headers = {"Authorization": "Bearer sandbox-key"}
        async with httpx.AsyncClient(base_url=sb.base_url, headers=headers) as api, httpx.AsyncClient() as storage:
            video = await upload(api, storage, media.video, "video", "mp4")
            audio = await upload(api, storage, media.audio_wav, "audio", "wav")
            for _ in range(3):
                await create_job(api, lip_sync_body(video, audio))
        tasks = [p.task for p in sb.projects.values() if p.task is not None]
    assert len(tasks) == 3
    assert all(task.done() for task in tasks)
    assert sb.state.tasks == set()
