"""The official magic-hour SDK runs its own flow against the sandbox, changing only base_url."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
from magic_hour import ApiError, Client

from bot.sandbox import SANDBOX_LABEL, Sandbox, SandboxConfig
from tests.sandbox.helpers import Media, dominant_hz, probe_output


async def test_sdk_generate_end_to_end(media: Media, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """client.v1.lip_sync.generate uploads, creates, polls and downloads a result with the given audio."""
    # The SDK polls with time.sleep, so it runs in a thread while the sandbox serves from this loop.
    monkeypatch.setenv("MAGIC_HOUR_POLL_INTERVAL", "0.02")
    config = SandboxConfig(api_key="sdk-key", queue_seconds=0.05, render_seconds=0.05)
    # Local names the SDK understands by mimetype: .mp4 -> video, .mp3 -> audio.
    video = shutil.copy(media.video, tmp_path / "face.mp4")
    audio = shutil.copy(media.audio_mp3, tmp_path / "voice.mp3")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    async with Sandbox(config, data_dir=tmp_path / "sandbox") as sb:
        client = Client(token="sdk-key", base_url=sb.base_url)

        def generate() -> Any:
            return client.v1.lip_sync.generate(
                assets={"video_file_path": str(video), "audio_file_path": str(audio), "video_source": "file"},
                start_seconds=0,
                end_seconds=1.5,
                max_fps_limit=24,
                wait_for_completion=True,
                download_outputs=True,
                download_directory=str(downloads),
            )

        result = await asyncio.to_thread(generate)
        account = await asyncio.to_thread(client.v1.account.list)

    assert result.status == "complete"
    assert result.error is None
    assert result.credits_charged == 36  # 1.5 s at 24 fps
    assert account.credits == 1_000_000 - 36
    assert sb.counters.requests["upload_urls"] == 2
    assert sb.counters.requests["storage_put"] == 2
    assert sb.counters.requests["create"] == 1
    assert sb.counters.requests["download"] == 1
    (path,) = result.downloaded_paths
    assert Path(path).name == f"sandbox-{result.id}.mp4"
    probe = probe_output(Path(path))
    assert abs(probe.video_seconds - 1.5) <= 0.15
    assert abs(probe.audio_seconds - 1.5) <= 0.15
    assert probe.fps == pytest.approx(24)
    assert probe.metadata["title"] == SANDBOX_LABEL
    # The video's own tone is 220 Hz; the result carries the given 880 Hz voice.
    assert dominant_hz(Path(path)) == pytest.approx(880, rel=0.05)


async def test_sdk_sees_job_errors_and_api_errors(
    media: Media, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed job comes back as status error (the SDK does not raise); a 402 raises ApiError."""
    monkeypatch.setenv("MAGIC_HOUR_POLL_INTERVAL", "0.02")
    video = shutil.copy(media.video, tmp_path / "face.mp4")
    audio = shutil.copy(media.audio_mp3, tmp_path / "voice.mp3")
    async with Sandbox(SandboxConfig(api_key="k"), data_dir=tmp_path / "sandbox") as sb:
        client = Client(token="k", base_url=sb.base_url)

        def generate() -> Any:
            return client.v1.lip_sync.generate(
                assets={"video_file_path": str(video), "audio_file_path": str(audio), "video_source": "file"},
                start_seconds=0,
                end_seconds=1,
                download_outputs=True,
                download_directory=str(tmp_path),
            )

        sb.faults.job_error("no_source_face")
        failed = await asyncio.to_thread(generate)
        sb.credits = 10
        with pytest.raises(ApiError) as caught:
            await asyncio.to_thread(generate)
        deleted = await asyncio.to_thread(client.v1.video_projects.delete, id=failed.id)

    assert failed.status == "error"
    assert failed.error.code == "no_source_face"
    assert not failed.downloaded_paths
    assert caught.value.status_code == 402
    assert deleted is None
