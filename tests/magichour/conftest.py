"""Fixtures for the Magic Hour client tests: a sandbox over real HTTP and a client pointed at it."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from pydantic import SecretStr

from bot.clock import FakeClock, SystemClock
from bot.config import GenerationMode
from bot.magichour import LipSyncRequest, MagicHourClient, RetryPolicy, UploadItem, VideoProject
from bot.sandbox import Sandbox, SandboxConfig
from bot.testmedia import make_audio, make_video

# Distinctive, so that scanning logs and captured requests for it means something.
API_KEY = "sandbox-key-7f3a9c1e-never-leak-me"


class InstantClock:
    """A clock whose `sleep` returns at once but remembers what it was asked to wait.

    `now()` is the real time, or `frozen_at` when given (for Retry-After dates).
    """

    def __init__(self, frozen_at: dt.datetime | None = None) -> None:
        self._real = SystemClock()
        self._frozen_at = frozen_at
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self._real.monotonic()

    def now(self) -> dt.datetime:
        return self._frozen_at or self._real.now()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(0)


class RecordingTransport(httpx.AsyncBaseTransport):
    """A real HTTP transport that keeps every request it sends, to check headers on the wire."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass(frozen=True)
class Answer:
    """One scripted response."""

    status: int = 200
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    """One request the scripted server received."""

    method: str
    path: str
    headers: dict[str, str]


class ScriptedServer:
    """A real HTTP server on 127.0.0.1 that answers each path from a queue of scripted responses.

    For what the sandbox does not do (Retry-After headers, odd bodies, its own headers). A path
    whose queue is empty answers 404.
    """

    def __init__(self) -> None:
        self.answers: dict[str, list[Answer]] = defaultdict(list)
        self.seen: list[Seen] = []
        self.base_url = ""
        self._runner: web.AppRunner | None = None

    def script(self, path: str, *answers: Answer) -> None:
        """Queue answers for `path`, in order."""
        self.answers[path].extend(answers)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _answer(self, request: web.Request) -> web.Response:
        self.seen.append(Seen(request.method, request.path, dict(request.headers)))
        queue = self.answers.get(request.path)
        if not queue:
            return web.json_response({"message": "Not Found"}, status=404)
        answer = queue.pop(0)
        if isinstance(answer.body, str | bytes):
            return web.Response(status=answer.status, body=answer.body, headers=answer.headers)
        return web.json_response(answer.body, status=answer.status, headers=answer.headers)


@pytest.fixture
async def scripted() -> AsyncIterator[ScriptedServer]:
    server = ScriptedServer()
    await server.start()
    yield server
    await server.stop()


def sandbox_config(**overrides: object) -> SandboxConfig:
    """The sandbox settings the tests start from."""
    values: dict[str, object] = {
        "api_key": API_KEY,
        "credits": 1_000_000,
        "queue_seconds": 0.0,
        "render_seconds": 0.0,
        "upload_url_ttl": 900.0,
        "download_url_ttl": 3600.0,
        "max_upload_bytes": 10 * 2**30,
        "tier": "creator",
    }
    values.update(overrides)
    return SandboxConfig.model_validate(values)


@pytest.fixture
def clock() -> InstantClock:
    return InstantClock()


@pytest.fixture
def retry() -> RetryPolicy:
    return RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=8.0, jitter=0.25)


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    async with Sandbox(sandbox_config(), data_dir=tmp_path / "sandbox", host="127.0.0.1") as sb:
        yield sb


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def fake_sandbox(tmp_path: Path, fake_clock: FakeClock) -> AsyncIterator[Sandbox]:
    """A sandbox whose clock (URL expiry, statuses) only moves when the test advances it."""
    async with Sandbox(sandbox_config(), data_dir=tmp_path / "sandbox", clock=fake_clock) as sb:
        yield sb


@pytest.fixture
async def client(sandbox: Sandbox, clock: InstantClock, retry: RetryPolicy) -> AsyncIterator[MagicHourClient]:
    async with MagicHourClient(SecretStr(API_KEY), sandbox.base_url, retry=retry, clock=clock) as mh:
        yield mh


@pytest.fixture
async def fake_client(fake_sandbox: Sandbox, clock: InstantClock, retry: RetryPolicy) -> AsyncIterator[MagicHourClient]:
    async with MagicHourClient(SecretStr(API_KEY), fake_sandbox.base_url, retry=retry, clock=clock) as mh:
        yield mh


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small real video and audio file, made once per session."""
    folder = tmp_path_factory.mktemp("media")

    async def make() -> tuple[Path, Path]:
        video = await make_video(folder / "face.mp4", seconds=1.0, fps=15.0)
        audio = await make_audio(folder / "voice.mp3", seconds=1.0)
        return video, audio

    return asyncio.run(make())


async def upload_inputs(mh: MagicHourClient, media: tuple[Path, Path]) -> tuple[str, str]:
    """Upload the session's video and audio; return their `file_path`s (video, audio)."""
    video, audio = media
    video_url, audio_url = await mh.create_upload_urls(
        [UploadItem(type="video", extension="mp4"), UploadItem(type="audio", extension="mp3")]
    )
    await mh.upload_file(video_url.upload_url, video)
    await mh.upload_file(audio_url.upload_url, audio)
    return video_url.file_path, audio_url.file_path


def lip_sync_request(
    video_path: str, audio_path: str, *, end_seconds: float = 1.0, mode: GenerationMode | None = None
) -> LipSyncRequest:
    """A valid request for uploaded inputs (one second unless told otherwise)."""
    return LipSyncRequest.from_paths(
        audio_file_path=audio_path,
        video_file_path=video_path,
        start_seconds=0.0,
        end_seconds=end_seconds,
        mode=mode,
    )


async def completed_project(mh: MagicHourClient, media: tuple[Path, Path]) -> VideoProject:
    """Upload, create and fetch a finished project (the sandbox renders at once: no polling loop)."""
    video_path, audio_path = await upload_inputs(mh, media)
    job = await mh.create_lip_sync(lip_sync_request(video_path, audio_path))
    project = await mh.get_video_project(job.id)
    assert project.is_complete, project
    return project
