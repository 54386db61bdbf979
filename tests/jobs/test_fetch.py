"""Fetching inputs over real HTTP: streamed to disk, size enforced as bytes arrive, bounded in time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from bot.errors import InvalidInput, JobFailed
from bot.jobs.fetch import fetch_input
from bot.jobs.models import InputSource


@pytest.fixture
async def cdn() -> AsyncIterator[str]:
    """A local stand-in for Discord's CDN with a normal, an oversized, a missing and a stalling file."""
    release = asyncio.Event()

    async def ok(_: web.Request) -> web.Response:
        return web.Response(body=b"x" * 3000)

    async def liar(_: web.Request) -> web.StreamResponse:
        # Claims nothing about its size and just keeps sending.
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(_)
        for _i in range(64):
            await response.write(b"y" * 1024)
        await response.write_eof()
        return response

    async def stall(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"z" * 10)
        await release.wait()  # never sends the rest
        return response

    app = web.Application()
    app.router.add_get("/ok.mp4", ok)
    app.router.add_get("/big.mp4", liar)
    app.router.add_get("/stall.mp4", stall)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    release.set()
    await runner.cleanup()


async def test_streams_to_disk(cdn: str, tmp_path: Path) -> None:
    """A normal file arrives whole."""
    async with httpx.AsyncClient() as http:
        path = await fetch_input(http, InputSource("ok.mp4", url=f"{cdn}/ok.mp4"), tmp_path / "v.mp4", max_bytes=10_000)
    assert path.read_bytes() == b"x" * 3000


async def test_size_limit_holds_whatever_the_sender_claims(cdn: str, tmp_path: Path) -> None:
    """A body larger than the limit is cut off as it arrives, with a friendly message."""
    async with httpx.AsyncClient() as http:
        with pytest.raises(InvalidInput) as refused:
            await fetch_input(http, InputSource("big.mp4", url=f"{cdn}/big.mp4"), tmp_path / "v.mp4", max_bytes=8192)
    assert refused.value.code == "file_over_limit" and "“big.mp4”" in refused.value.user_message


async def test_missing_file_asks_to_attach_again(cdn: str, tmp_path: Path) -> None:
    """An expired or missing attachment gives a message the member can act on."""
    async with httpx.AsyncClient() as http:
        with pytest.raises(JobFailed) as failed:
            await fetch_input(http, InputSource("gone.mp4", url=f"{cdn}/gone.mp4"), tmp_path / "v.mp4", max_bytes=10)
    assert "attach it again" in failed.value.user_message


async def test_a_stalled_download_gives_up_at_its_deadline(cdn: str, tmp_path: Path) -> None:
    """A CDN that stops sending can't hold the job forever."""
    async with httpx.AsyncClient() as http:
        with pytest.raises(JobFailed) as failed:
            await fetch_input(
                http,
                InputSource("stall.mp4", url=f"{cdn}/stall.mp4"),
                tmp_path / "v.mp4",
                max_bytes=10_000,
                deadline_seconds=0.2,
            )
    assert failed.value.code == "fetch_failed"
