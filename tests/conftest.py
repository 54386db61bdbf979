"""Fixtures shared across the suite: generated media, a running sandbox, settings and services."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from pydantic import SecretStr

from bot.clock import FakeClock
from bot.config import Settings
from bot.jobs.fetch import FetchPolicy
from bot.jobs.models import Delivery, InputSource, JobRequest, JobUpdate, LinkProvider
from bot.sandbox import Sandbox, SandboxConfig
from bot.store import JobRecord
from bot.testmedia import make_audio, make_video
from bot.testmedia_hostile import make_corpus
from tests.outside_simcord import engine_outside_simcord  # noqa: F401 - a fixture, for every simcord test
from tests.store.pgserver import TempPostgres, running_postgres

SANDBOX_KEY = "sandbox-test-key"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[TempPostgres]:
    """A throwaway PostgreSQL server for the whole session, started on first use.

    Where PostgreSQL can't start, tests that need it are skipped on a developer's machine and
    fail in CI (`CI` set): there they must run.
    """
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small real media, generated once per test session."""
    folder = tmp_path_factory.mktemp("media")

    async def make() -> None:
        await asyncio.gather(
            make_video(folder / "face.mp4", seconds=2.0, fps=30, size=(160, 120), tone_hz=220),
            make_video(folder / "long.mp4", seconds=8.0, fps=25, size=(160, 120)),
            make_video(folder / "silent.mp4", seconds=2.0, fps=30, size=(160, 120), with_audio=False),
            make_audio(folder / "voice.mp3", seconds=1.5, tone_hz=880),
            make_audio(folder / "voice.wav", seconds=1.5, tone_hz=880),
        )
        (folder / "notes.txt").write_text("these are not the frames you are looking for\n")
        shutil.copy(folder / "notes.txt", folder / "liar.mp4")

    asyncio.run(make())
    return folder


# Fetching inputs from this machine's loopback, as tests' stand-ins for Discord's CDN are served.
LOOPBACK = FetchPolicy(hosts=frozenset({"127.0.0.1"}), allow_http=True, any_port=True)


@pytest.fixture
async def media_url(media_dir: Path) -> AsyncIterator[str]:
    """`media_dir` served over HTTP on 127.0.0.1 (a stand-in for Discord's CDN); the base URL."""
    app = web.Application()
    app.router.add_static("/", media_dir)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


def url_request(
    media_url: str, *, user_id: int, guild_id: int | None = 1, video: str = "face.mp4", audio: str = "voice.mp3"
) -> JobRequest:
    """A member's request whose files are links (as Discord's attachments are), served by `media_url`."""
    return JobRequest(
        user_id=user_id,
        guild_id=guild_id,
        channel_id=7,
        video=InputSource(filename=video, url=f"{media_url}/{video}"),
        audio=InputSource(filename=audio, url=f"{media_url}/{audio}"),
    )


@pytest.fixture(scope="session")
def hostile_media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The hostile corpus (`bot.testmedia_hostile.CORPUS`), generated once per test session."""
    return asyncio.run(make_corpus(tmp_path_factory.mktemp("hostile")))


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    """A fresh local Magic Hour on 127.0.0.1 with instant renders.

    Its clock is fake: a test that sets `render_seconds` moves renders along with
    `sandbox.clock.advance(...)`, while the bot under test runs on real time.
    """
    config = SandboxConfig(api_key=SANDBOX_KEY)
    async with Sandbox(config, data_dir=tmp_path / "sandbox", clock=FakeClock()) as running:
        yield running


def make_settings(tmp_path: Path, base_url: str, **overrides: object) -> Settings:
    """Settings for a test: temporary files, the sandbox's URL, fast polling, no `.env`."""
    values: dict[str, object] = {
        "magic_hour_api_key": SecretStr(SANDBOX_KEY),
        "magic_hour_base_url": base_url,
        "database_path": tmp_path / "db" / "bot.sqlite3",
        "work_dir": tmp_path / "work",
        "poll_initial_seconds": 0.05,
        "poll_max_seconds": 0.1,
        "default_member_credits": 10_000,
        "delivery_retry_minutes": 0.001,  # a failed delivery falls back to a link at once
        # A test that stops services mid-upload or mid-delivery (a deliverer that never returns)
        # waits this long for it; the clean stop's own tests say how long they give it.
        "stop_grace_seconds": 1.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


class RecordingSink:
    """A progress sink that keeps every update."""

    def __init__(self) -> None:
        self.updates: list[JobUpdate] = []

    async def update(self, update: JobUpdate) -> None:
        """Keep the snapshot."""
        self.updates.append(update)

    @property
    def states(self) -> list[str]:
        """The distinct states seen, in order."""
        seen: list[str] = []
        for update in self.updates:
            if not seen or seen[-1] != update.job.state.value:
                seen.append(update.job.state.value)
        return seen


class KeepFile:
    """A deliverer that moves the result into a folder and counts deliveries."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.delivered: list[Path] = []
        self.links: list[str] = []
        self.sandbox_flags: list[bool] = []  # what each delivery was told: a sandbox render or not
        self.fail_with: Exception | None = None

    async def deliver(self, job: JobRecord, result: Path | None, *, sandbox: bool, link: LinkProvider) -> Delivery:
        """Move the file, or raise `fail_with` if set; with no file, keep the link."""
        self.sandbox_flags.append(sandbox)
        if self.fail_with is not None:
            raise self.fail_with
        if result is None:
            self.links.append(await link())
            return Delivery(kind="link")
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / f"{len(self.delivered)}-{result.name}"
        shutil.move(str(result), target)
        self.delivered.append(target)
        return Delivery(kind="local", detail=str(target))


async def move_clock_until(clock: FakeClock, done: Callable[[], bool]) -> None:
    """Move fake time on while `done()` is false: toward the next wake-up, a second at a time.

    Real HTTP runs in between, and a request in flight isn't a sleeper the clock can see; moving a
    second per step (with a moment of real time for I/O after each) keeps what happens during one
    request to about a second of fake time, however far the next wake-up is.
    """
    async with asyncio.timeout(60):
        while not done():
            deadline = clock.next_deadline()
            if deadline is not None:
                await clock.advance(min(1.0, max(0.0, deadline - clock.monotonic())))
            await asyncio.sleep(0.002)
