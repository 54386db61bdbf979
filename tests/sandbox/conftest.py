"""Fixtures for the sandbox tests: small real media, a sandbox on a FakeClock, and HTTP clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.clock import FakeClock
from bot.sandbox import Sandbox, SandboxConfig
from tests.sandbox.helpers import API_KEY, Media, make_media, upload
from tests.sandbox.oddmedia import OddMedia, make_odd_media


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    """Small real media files shared by every sandbox test."""
    # A private loop: session fixtures cannot share the per-test event loop.
    return asyncio.run(make_media(tmp_path_factory.mktemp("media")))


@pytest.fixture(scope="session")
def odd(tmp_path_factory: pytest.TempPathFactory) -> OddMedia:
    """Variable-rate, sparse, still and otherwise odd videos, made once per session."""
    return asyncio.run(make_odd_media(tmp_path_factory.mktemp("odd")))


@pytest.fixture
def clock() -> FakeClock:
    """The sandbox's clock; tests move it by hand."""
    return FakeClock()


@pytest.fixture
def config() -> SandboxConfig:
    """Default settings with a queue and render time so statuses can be watched."""
    return SandboxConfig(api_key=API_KEY, credits=1_000_000, queue_seconds=5.0, render_seconds=10.0)


@pytest.fixture
async def sandbox(config: SandboxConfig, clock: FakeClock, tmp_path: Path) -> AsyncIterator[Sandbox]:
    """A running sandbox on 127.0.0.1 with free ports."""
    async with Sandbox(config, data_dir=tmp_path / "sandbox", clock=clock) as sb:
        yield sb


@pytest.fixture
async def api(sandbox: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    """An authenticated client for the API listener."""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(base_url=sandbox.base_url, headers=headers, timeout=10.0) as client:
        yield client


@pytest.fixture
async def storage() -> AsyncIterator[httpx.AsyncClient]:
    """A client with no API credentials, for upload and download URLs."""
    async with httpx.AsyncClient(timeout=10.0) as client:
        yield client


@pytest.fixture
async def files(api: httpx.AsyncClient, storage: httpx.AsyncClient, media: Media) -> dict[str, str]:
    """Uploaded file paths for the usual media."""
    return {
        "video": await upload(api, storage, media.video, "video", "mp4"),
        "audio": await upload(api, storage, media.audio_wav, "audio", "wav"),
        "short": await upload(api, storage, media.audio_short, "audio", "wav"),
    }
