"""What the cogs' tests rely on in simcord 3.2.1, each checked on a toy bot (see README.md here).

If simcord changes one of these behaviours, the failure shows up here with a plain name instead
of as a mysterious hang or a flake in the real cog tests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest
import simcord
from aiohttp import web
from discord.ext import commands

from bot.clock import FakeClock, SystemClock
from tests.outside_simcord import outside_simcord

TEMPLATE = r"spike:cancel:(?P<job>[0-9]+)"


class SpikeCancel(discord.ui.DynamicItem[discord.ui.Button[Any]], template=TEMPLATE):
    """A restart-proof Cancel button keyed by a job id, like the real one."""

    def __init__(self, job: int, owner: int) -> None:
        super().__init__(discord.ui.Button(label="Cancel", custom_id=f"spike:cancel:{job}"))
        self.job = job
        self.owner = owner

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: Any, /
    ) -> SpikeCancel:
        bot = interaction.client
        assert isinstance(bot, SpikeBot)
        return cls(int(match["job"]), bot.owner)

    async def callback(self, interaction: discord.Interaction) -> None:
        if interaction.user.id != self.owner:
            await interaction.response.send_message("Only the owner can cancel.", ephemeral=True)
            return
        await interaction.response.send_message(f"Canceled {self.job}.", ephemeral=True)


class SpikeBot(commands.Bot):
    """Two attachments, a refusal before defer, real HTTP, a live message, a background job."""

    def __init__(self, url: str) -> None:
        super().__init__(command_prefix="!", intents=discord.Intents.default())
        self.url = url
        self.owner = 0
        self.job_done = asyncio.Event()
        self.background: asyncio.Task[None] | None = None
        self.outcome: dict[str, Any] = {}

    async def setup_hook(self) -> None:
        self.add_dynamic_items(SpikeCancel)

        @self.tree.command(name="spike")
        async def spike(interaction: discord.Interaction, video: discord.Attachment, audio: discord.Attachment) -> None:
            if not video.filename.endswith(".mp4"):
                await interaction.response.send_message("That isn't a video.", ephemeral=True)
                return
            await interaction.response.defer(thinking=True)
            async with aiohttp.ClientSession() as session, session.get(self.url) as response:
                body = await response.text()
            self.owner = interaction.user.id
            view = discord.ui.View(timeout=None)
            view.add_item(SpikeCancel(7, self.owner))
            await interaction.edit_original_response(content=f"{body}: {video.size}+{audio.size}", view=view)
            self.outcome["bot_scope_monotonic"] = time.monotonic()
            self.background = outside_simcord(self._finish_later(interaction))

    async def _finish_later(self, interaction: discord.Interaction) -> None:
        await self.job_done.wait()  # an asyncio.Event: simcord can't tell what this waits for
        self.outcome["detached_monotonic"] = time.monotonic()
        self.outcome["expired"] = interaction.is_expired()
        try:
            await interaction.followup.send("done")
        except discord.HTTPException as exc:
            self.outcome["followup_error"] = (exc.status, exc.code)
            assert isinstance(interaction.channel, discord.TextChannel)
            await interaction.channel.send(
                f"{interaction.user.mention} your result",
                file=discord.File(__file__, filename="result.txt"),
                allowed_mentions=discord.AllowedMentions(users=True),
            )


@pytest.fixture
async def pong_url() -> AsyncIterator[str]:
    app = web.Application()

    async def pong(_: web.Request) -> web.Response:
        return web.Response(text="pong")

    app.router.add_get("/", pong)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/"
    await runner.cleanup()


async def test_slash_flow_expiry_and_restart(pong_url: str) -> None:
    """Attachments, refusal, defer, real HTTP, buttons, a token that expires, a restart."""
    bot = SpikeBot(pong_url)
    async with simcord.run(bot) as env:
        await bot.tree.sync()
        guild = env.create_guild()
        channel = guild.create_text_channel("lipsync")
        alice = guild.add_member(env.create_user("alice"))
        bob = guild.add_member(env.create_user("bob"))

        refused = await alice.slash(channel, "spike", video=("notes.txt", b"text"), audio=("a.mp3", b"ab"))
        assert refused.ephemeral and refused.response is not None
        assert refused.response.content == "That isn't a video."

        started = await alice.slash(channel, "spike", video=("v.mp4", b"12345"), audio=("a.mp3", b"ab"))
        status = started.response
        assert status is not None and status.content == "pong: 5+2"

        other = await bob.click(status, label="Cancel")
        assert other.ephemeral and other.response is not None and "Only the owner" in other.response.content
        mine = await alice.click(status, label="Cancel")
        assert mine.response is not None and mine.response.content == "Canceled 7."

        await env.advance_time(16 * 60)
        bot.job_done.set()
        assert bot.background is not None
        await bot.background
        await env.settle()
        # Discord answers 401 (50027) here; simcord says 404 (10015). Treat both as "token gone".
        assert bot.outcome["expired"] is True
        assert bot.outcome["followup_error"] == (404, 10015)
        last = channel.last_message
        assert last is not None and last.content == f"{alice.mention} your result"
        assert [a.filename for a in last.attachments] == ["result.txt"]
        assert [m.id for m in last.mentions] == [alice.id]
        # time.monotonic is simcord's virtual clock inside bot-owned work, the real one outside.
        assert bot.outcome["bot_scope_monotonic"] < 1.0
        # Compared with the real clock read here, not with a constant: the machine's uptime is
        # whatever it is (a fresh CI machine has been up for seconds).
        assert abs(time.monotonic() - bot.outcome["detached_monotonic"]) < 60.0

        await env.restart_bot(SpikeBot(pong_url))
        again = await bob.click(status, label="Cancel")
        assert again.response is not None and "Only the owner" in again.response.content


class WaitsBot(commands.Bot):
    """Starts one bot-owned background wait of a chosen kind."""

    def __init__(self, kind: str) -> None:
        super().__init__(command_prefix="!", intents=discord.Intents.default())
        self.kind = kind
        self.fake = FakeClock()

    async def setup_hook(self) -> None:
        @self.tree.command(name="wait")
        async def wait(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("waiting")
            waits = {
                "asyncio.sleep": lambda: asyncio.sleep(3600),
                "SystemClock.sleep": lambda: SystemClock().sleep(3600),
                "FakeClock.sleep": lambda: self.fake.sleep(3600),
                "Event.wait": lambda: asyncio.Event().wait(),
            }
            asyncio.get_running_loop().create_task(waits[self.kind]())


@pytest.mark.parametrize(
    ("kind", "settles"),
    [("asyncio.sleep", True), ("SystemClock.sleep", True), ("FakeClock.sleep", False), ("Event.wait", False)],
)
async def test_which_background_waits_simcord_can_settle(kind: str, settles: bool) -> None:
    """Timers are virtual and park; a wait on a future simcord can't classify blocks every action."""
    bot = WaitsBot(kind)
    # A wait that settles gets ample time (a loaded machine can take a while to park the task);
    # one that can't settle would use it all up, so it gets a short one.
    async with simcord.run(bot, settle_timeout=10.0 if settles else 0.3, check_errors=False) as env:
        await bot.tree.sync()
        guild = env.create_guild()
        channel = guild.create_text_channel("c")
        alice = guild.add_member(env.create_user("alice"))
        if settles:
            await alice.slash(channel, "wait")
        else:
            # simcord names the wait ("unknown wait") once the task reached it; on a loaded
            # machine it may still be "runnable" at the timeout. Either way the action can't settle.
            with pytest.raises(TimeoutError, match="did not settle"):
                await alice.slash(channel, "wait")


class MenuBot(commands.Bot):
    """A message menu that reports what Discord sent about the message and the member."""

    def __init__(self) -> None:
        super().__init__(command_prefix="!", intents=discord.Intents(guilds=True))
        self.seen: dict[str, Any] = {}

    async def setup_hook(self) -> None:
        @self.tree.context_menu(name="Look")
        async def look(interaction: discord.Interaction, message: discord.Message) -> None:
            [attachment] = message.attachments
            history = [m async for m in interaction.channel.history(limit=5)]  # type: ignore[union-attr]
            self.seen = {
                "locale": interaction.locale.value,
                "voice": attachment.is_voice_message(),
                "content_type": attachment.content_type,
                "history_attachments": sum(len(m.attachments) for m in history),
            }
            await interaction.response.send_message("seen", ephemeral=True)


@pytest.mark.parametrize("content_intent", [True, False], ids=["message-content", "no-message-content"])
async def test_locale_voice_messages_and_the_message_content_intent(content_intent: bool) -> None:
    """simcord sends every interaction as en-US and has no voice messages (README: "Interaction locale",
    "Voice messages"); the menu's own target is always readable, other messages' attachments only with the intent."""
    bot = MenuBot()
    approved = discord.Intents(guilds=True, message_content=content_intent)
    async with simcord.run(bot, approved_intents=approved) as env:
        await bot.tree.sync()
        guild = env.create_guild()
        channel = guild.create_text_channel("c")
        alice = guild.add_member(env.create_user("alice"))
        message = await alice.send(channel, attachments=[("voice-message.ogg", b"OggS")])
        await alice.context_menu(channel, "Look", message)
    assert bot.seen == {
        "locale": "en-US",  # the harness sets a member's locale itself
        "voice": False,  # the harness marks voice messages itself
        "content_type": "audio/ogg",
        "history_attachments": 1 if content_intent else 0,
    }
