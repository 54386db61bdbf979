"""Harness for driving the real bot through simcord (why each piece exists: tests/cogs/README.md).

`harness` gives a test the real bot from `bot.app.create_bot`, logged in to simcord's Discord,
with its commands synced, one server, a #lipsync channel, two members and a manager; the real
engine and store (a temporary SQLite file); and the project's sandbox over real HTTP, whose
clock (`harness.sandbox_clock`, a `FakeClock`) decides when renders finish.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import discord
import pytest
import simcord
import simcord.backend.cdn
from aiohttp import web
from discord import app_commands

from bot.app import LipsyncBot, Refused, create_bot, sync_commands
from bot.clock import FakeClock
from bot.config import Settings
from bot.errors import LipsyncError
from bot.jobs.engine import JobEngine
from bot.jobs.fetch import FetchPolicy
from bot.jobs.run import JobRun
from bot.sandbox import Sandbox, SandboxConfig
from bot.store import JobRecord, JobState, MemberHasActiveJobs, Store
from bot.testmedia import make_audio
from tests.conftest import SANDBOX_KEY, make_settings

# The CDN bridge serves simcord's attachments on http://127.0.0.1:<random port>.
LOCAL_CDN = FetchPolicy(hosts=frozenset({"127.0.0.1"}), allow_http=True, any_port=True)


def new_bot(settings: Settings) -> LipsyncBot:
    """The bot under test: fetches from the local CDN, and edits status messages without throttling.

    Unthrottled, every update the engine gives a status message is shown before the update
    returns, so a test that saw a state (`JobWatcher`) reads it on the message without waiting.
    The throttle and the bot-wide pace are tested on a fake clock in `lipsync/test_status.py` and
    `lipsync/test_pacing.py`.
    """
    bot = create_bot(settings, fetch_policy=LOCAL_CDN)
    bot.status_interval = 0.0
    return bot


def button_ids(message: discord.Message) -> list[str]:
    """The custom ids of a message's buttons, row by row (link buttons have none)."""
    return [
        child.custom_id
        for row in message.components
        if isinstance(row, discord.ActionRow)
        for child in row.children
        if isinstance(child, discord.Button) and child.custom_id
    ]


class JobWatcher:
    """Sees every update the engine gives a job's display, once it is shown, so tests can wait for a state."""

    def __init__(self) -> None:
        self.states: dict[int, list[JobState]] = {}
        self._changed = asyncio.Condition()

    async def saw(self, job: JobRecord) -> None:
        async with self._changed:
            seen = self.states.setdefault(job.id, [])
            if not seen or seen[-1] is not job.state:
                seen.append(job.state)
            self._changed.notify_all()

    async def reached(self, job_id: int, state: JobState) -> None:
        """Return once the job has been in `state` (fails after 30 s rather than hang)."""
        async with asyncio.timeout(30), self._changed:
            await self._changed.wait_for(lambda: state in self.states.get(job_id, []))


@pytest.fixture
def job_watcher(monkeypatch: pytest.MonkeyPatch) -> JobWatcher:
    """Spy on `JobRun.emit`, which returns once the job's display has shown the update.

    Not on `StatusMessage.update`: a bot that closes unloads its extensions, and discord.py drops
    their modules from `sys.modules`, so the next bot (a restart, or the next test's) imports
    `cogs.lipsync` afresh and a spy on the class this module imported would see nothing.
    """
    watcher = JobWatcher()
    original = JobRun.emit

    async def emit(self: JobRun) -> None:
        await original(self)
        await watcher.saw(self.record)

    monkeypatch.setattr(JobRun, "emit", emit)
    return watcher


# Discord's flag on a message that is a voice message (IS_VOICE_MESSAGE), and what it sends with the
# message's one attachment: a length in seconds and a base64 waveform (`Attachment.is_voice_message`).
VOICE_MESSAGE_FLAG = 1 << 13
VOICE_MESSAGE_NAME = "voice-message.ogg"


@pytest.fixture(scope="session")
def voice_ogg(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """What a Discord voice message holds: Opus audio in an Ogg file (1.5 s)."""
    folder = tmp_path_factory.mktemp("voice")
    path = asyncio.run(make_audio(folder / "voice.opus", seconds=1.5, tone_hz=660))
    return path.read_bytes()


@pytest.fixture
def upload_limit(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """Make interactions report a smaller `attachment_size_limit` (simcord always sends 25 MiB)."""

    def set_limit(size: int) -> None:
        original = discord.Interaction._from_data

        def from_data(self: discord.Interaction, data: Any) -> None:
            original(self, {**data, "attachment_size_limit": size})  # type: ignore[arg-type]

        monkeypatch.setattr(discord.Interaction, "_from_data", from_data)

    return set_limit


class CdnBridge:
    """Serves simcord's in-memory attachment CDN over real HTTP, as Discord's CDN would be."""

    def __init__(self) -> None:
        self.base = ""
        self.backend: Any = None
        self.requests = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{path:.*}", self._serve)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.base = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _serve(self, request: web.Request) -> web.Response:
        self.requests += 1
        blob = self.backend.cdn.get(f"{self.base}{request.path}") if self.backend is not None else None
        if blob is None:
            return web.Response(status=404, text="not found")
        return web.Response(body=blob, content_type="application/octet-stream")


@pytest.fixture
async def cdn(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[CdnBridge]:
    """simcord's attachment URLs, pointed at a local server the engine can download from."""
    bridge = CdnBridge()
    await bridge.start()
    monkeypatch.setattr(simcord.backend.cdn, "CDN_BASE", bridge.base)
    yield bridge
    await bridge.stop()


@pytest.fixture(scope="session")
def chart_ready() -> None:
    """matplotlib imported and one chart drawn, before a test's bot draws one inside simcord.

    The first chart in a process imports matplotlib (and, on a fresh machine, builds its font
    cache), which can outlast simcord's settle timeout on a busy machine; later charts take a
    fraction of a second. Tests that ask for `/lipsync-admin usage` also give simcord a longer
    settle timeout (`CHART_SETTLE_TIMEOUT`): drawing is real work in a worker thread, not a timer to advance.
    """
    import datetime as dt

    from bot.store import DailyUsage
    from cogs.manage._chart import draw_png

    draw_png(DailyUsage(days=(dt.date(2026, 1, 1),), by_member={1: (5,)}, pool_limit=None, pool_left=None), {})


# simcord's settle timeout for a test that draws the usage chart (see `chart_ready`), given with
# `@pytest.mark.env(settle_timeout=CHART_SETTLE_TIMEOUT)`.
CHART_SETTLE_TIMEOUT = 60.0


@pytest.fixture
def sandbox_clock() -> FakeClock:
    """The sandbox's clock: renders advance only when a test moves it."""
    return FakeClock()


@pytest.fixture
async def sandbox(tmp_path: Path, sandbox_clock: FakeClock) -> AsyncIterator[Sandbox]:
    """A fresh local Magic Hour whose renders finish at once unless a test sets `render_seconds`."""
    async with Sandbox(SandboxConfig(api_key=SANDBOX_KEY), data_dir=tmp_path / "sandbox", clock=sandbox_clock) as sb:
        yield sb


def expected_error(error: BaseException) -> bool:
    """Errors a member caused: the error handler answers them, they are not bot bugs."""
    while isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    return isinstance(error, LipsyncError | Refused | MemberHasActiveJobs | app_commands.CheckFailure)


@dataclass
class Harness:
    """The running bot in simcord, with the people and places the tests use."""

    env: simcord.Env
    bot: LipsyncBot
    settings: Settings
    sandbox: Sandbox
    sandbox_clock: FakeClock
    cdn: CdnBridge
    media: Path
    watcher: JobWatcher
    guild: simcord.GuildHandle
    channel: simcord.ChannelHandle
    alice: simcord.MemberActor
    bob: simcord.MemberActor
    manager: simcord.MemberActor
    onlooker: simcord.MemberActor  # a member who never acts: what they see is what the channel sees
    bots: list[LipsyncBot] = field(default_factory=list)
    locales: dict[int, str] = field(default_factory=dict)  # member id -> the locale their interactions carry

    @property
    def engine(self) -> JobEngine:
        """The running bot's engine."""
        return self.bot.services.engine

    @property
    def store(self) -> Store:
        """The running bot's store."""
        return self.bot.services.store

    def file(self, name: str, *, as_name: str | None = None) -> tuple[str, bytes]:
        """A media file as a slash-command attachment: (filename, bytes)."""
        return (as_name or name, (self.media / name).read_bytes())

    async def lipsync(
        self,
        member: simcord.MemberActor | None = None,
        *,
        video: str | tuple[str, bytes] | None = "face.mp4",
        audio: str | tuple[str, bytes] = "voice.mp3",
        **options: Any,
    ) -> simcord.InteractionResult:
        """Run `/lipsync` as `member` (alice by default) with files from the media folder."""
        if video is not None:
            options["video"] = self.file(video) if isinstance(video, str) else video
        options["audio"] = self.file(audio) if isinstance(audio, str) else audio
        return await (member or self.alice).slash(self.channel, "lipsync", **options)

    async def post(
        self, member: simcord.MemberActor, content: str = "", *, files: list[str | tuple[str, bytes]] | None = None
    ) -> discord.Message:
        """A member posts a message in #lipsync, with files from the media folder or (name, bytes)."""
        attachments = [self.file(f) if isinstance(f, str) else f for f in files or []]
        return await member.send(self.channel, content, attachments=attachments)

    async def voice_message(self, member: simcord.MemberActor, data: bytes, *, seconds: float = 1.5) -> discord.Message:
        """A member records a Discord voice message in #lipsync.

        simcord has no voice messages: it posts an ordinary attachment, and this adds what Discord
        sends with a voice message (the message flag, the attachment's length and waveform), as a
        real one would arrive.
        """
        message = await member.send(self.channel, attachments=[(VOICE_MESSAGE_NAME, data)])
        stored = self.env.backend.get_message(self.channel.id, message.id)
        stored.flags |= VOICE_MESSAGE_FLAG
        stored.attachments[0].update(content_type="audio/ogg", duration_secs=seconds, waveform="AAAAAAAAAAAA")
        return message

    def speaks(self, member: simcord.MemberActor, locale: str) -> None:
        """Make `member`'s interactions carry `locale` (their Discord client's language); simcord always sends en-US."""
        self.locales[member.id] = locale

    def public(self) -> list[discord.Message]:
        """Every message in the channel that members other than the one acting can read."""
        return self.channel.history(viewer=self.onlooker)

    async def mention(self, name: str) -> str:
        """How the bot writes a command hint once commands are synced: `</name:id>`, with Discord's id."""
        [command] = [c for c in await self.bot.tree.fetch_commands() if c.name == name.split(" ", 1)[0]]
        return f"</{name}:{command.id}>"

    async def message_of(self, job_id: int) -> discord.Message:
        """A job's one public message, as the channel sees it: its card, which becomes the result or the failure."""
        record = await self.store.jobs.get(job_id)
        assert record is not None and record.status_message_id is not None, "the job has no public message"
        [message] = [m for m in self.public() if m.id == record.status_message_id]
        return message

    async def latest_job(self, member: simcord.MemberActor | None = None) -> JobRecord:
        """The member's newest job."""
        jobs = await self.store.jobs.recent_for_member(self.guild.id, (member or self.alice).id, 1)
        assert jobs, "no job was created"
        return jobs[0]

    async def rendering(self, job_id: int) -> None:
        """Wait until Magic Hour (the sandbox) is rendering the job."""
        await self.watcher.reached(job_id, JobState.RENDERING)

    async def finish(self, job_id: int) -> JobRecord:
        """Wait for the job to end, then for the bot to handle what that caused in Discord."""
        record = await asyncio.wait_for(self.engine.wait(job_id), timeout=60)
        await self.env.settle()
        return record

    async def ledger_rows(self) -> int:
        """How many ledger rows exist in this server (reservations, settlements, refunds, grants)."""
        report = await self.store.quota.usage(self.guild.id)
        return report.total.jobs

    async def restart(self) -> None:
        """Stop the bot as a deploy would (jobs stay unfinished), start a new one on the same files."""
        await self.bot.close()
        restarted = new_bot(self.settings)
        self.bots.append(restarted)
        await self.env.restart_bot(restarted)
        self.bot = restarted
        await self.env.settle()


@pytest.fixture
async def harness(
    tmp_path: Path,
    sandbox: Sandbox,
    sandbox_clock: FakeClock,
    cdn: CdnBridge,
    media_dir: Path,
    engine_outside_simcord: None,
    job_watcher: JobWatcher,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Harness]:
    """The bot under test, started; unexpected bot errors fail the test at teardown."""
    marker = request.node.get_closest_marker("settings")
    overrides: dict[str, Any] = dict(marker.kwargs) if marker else {}
    overrides.setdefault("shard_count", 1)  # an AutoShardedBot: simcord needs to know how many shards
    settings = make_settings(tmp_path, sandbox.base_url, **overrides)
    bot = new_bot(settings)
    env_marker = request.node.get_closest_marker("env")
    env = simcord.Env(bot, **(dict(env_marker.kwargs) if env_marker else {}))
    locales: dict[int, str] = {}
    original_from_data = discord.Interaction._from_data

    def from_data(self: discord.Interaction, data: Any) -> None:
        # As Discord would send it: the locale of the member's client (simcord always says en-US).
        user = (data.get("member") or {}).get("user") or data.get("user") or {}
        locale = locales.get(int(user.get("id", 0)))
        original_from_data(self, {**data, "locale": locale} if locale else data)  # type: ignore[arg-type]

    monkeypatch.setattr(discord.Interaction, "_from_data", from_data)
    await env.start()
    cdn.backend = env.backend
    harness: Harness | None = None
    try:
        await sync_commands(bot, None)
        guild_marker = request.node.get_closest_marker("guild")
        guild = env.create_guild("Lip Sync Club", **(dict(guild_marker.kwargs) if guild_marker else {}))
        managers = guild.create_role("Mods", permissions=discord.Permissions(manage_guild=True))
        harness = Harness(
            env=env,
            bot=bot,
            settings=settings,
            sandbox=sandbox,
            sandbox_clock=sandbox_clock,
            cdn=cdn,
            media=media_dir,
            watcher=job_watcher,
            guild=guild,
            channel=guild.create_text_channel("lipsync"),
            alice=guild.add_member(env.create_user("alice")),
            bob=guild.add_member(env.create_user("bob")),
            manager=guild.add_member(env.create_user("mod"), roles=[managers]),
            onlooker=guild.add_member(env.create_user("onlooker")),
            bots=[bot],
            locales=locales,
        )
        yield harness
    finally:
        try:
            await (harness.bot if harness is not None else bot).close()
        finally:
            await env.shutdown()
    unexpected = [error for error in env.errors if not expected_error(error)]
    if unexpected:
        raise ExceptionGroup("the bot raised unexpected errors", unexpected)  # type: ignore[type-var]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """Run the test body on simcord's clock (token expiry, `discord.utils.utcnow`), like `simcord_env`."""
    harness = getattr(item, "funcargs", {}).get("harness")
    if isinstance(harness, Harness):
        with harness.env.time_context():
            return (yield)
    return (yield)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "settings(**overrides): Settings fields for the `harness` bot")
    config.addinivalue_line("markers", "env(**kwargs): simcord.Env arguments for the `harness` (approved_intents=...)")
    config.addinivalue_line("markers", "guild(**kwargs): the server's settings (preferred_locale=...)")
