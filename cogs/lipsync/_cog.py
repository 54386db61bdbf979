"""`/lipsync`, `/lipsync-status`, `/jobs`, `/queue`, `/cancel` and the two message menus.

`/lipsync` takes the files as options; the message menus ("Lip-sync: use this video", "…voice")
take them from messages already in the channel (`cogs.lipsync._picker`). Both start jobs the same way
(`cogs.lipsync._start.start_job`). Every answer is in the language of the member who asked.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import bounds
from bot.config import GenerationMode
from bot.errors import InvalidInput
from bot.jobs.engine import JobEngine
from bot.jobs.models import InputSource, JobRequest
from bot.services import Services
from bot.store import Store
from cogs import role_ids, texts
from cogs.lipsync._picker import (
    MENU_VIDEO,
    MENU_VOICE,
    REMEMBER_FOR,
    Kind,
    Picker,
    RecentPicks,
    media_in,
    menu_name,
    recent_media,
    with_remembered,
)
from cogs.lipsync._presenter import JobPresenter
from cogs.lipsync._settings import with_member_defaults
from cogs.lipsync._start import COG_NAME, start_job
from cogs.lipsync._texts import jobs_text, queue_text
from cogs.lipsync._views import cancel_job, panel

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

MODE_CHOICES = [app_commands.Choice(name=texts.mode_label(mode), value=mode.value) for mode in GenerationMode]
RECENT_JOBS = 10


def _source(attachment: discord.Attachment) -> InputSource:
    # The URL is signed and expires: the engine fetches it at once and never stores it.
    return InputSource(
        filename=attachment.filename,
        size=attachment.size,
        content_type=attachment.content_type,
        url=attachment.url,
    )


class LipsyncCog(commands.Cog, name=COG_NAME):
    """Starting, following and stopping lip-sync jobs."""

    def __init__(
        self, bot: commands.Bot | commands.AutoShardedBot, services: Services, presenter: JobPresenter
    ) -> None:
        self.bot = bot
        self.services = services
        self.engine: JobEngine = services.engine
        self.store: Store = services.store
        self.presenter = presenter
        self.picks = RecentPicks(services.clock)
        self.menus = [
            app_commands.guild_only()(app_commands.ContextMenu(name=MENU_VIDEO, callback=self.use_video)),
            app_commands.guild_only()(app_commands.ContextMenu(name=MENU_VOICE, callback=self.use_voice)),
        ]

    async def cog_load(self) -> None:
        """Add the message menus (discord.py keeps them outside cogs), and learn the commands' ids."""
        for menu in self.menus:
            self.bot.tree.add_command(menu)
        try:
            texts.MENTIONS.learn(await self.bot.tree.fetch_commands())
        except discord.HTTPException as exc:
            # Command hints stay plain `/name` text until the next sync: nothing else depends on it.
            log.warning("could not read the commands' ids from Discord: %s", exc)

    async def cog_unload(self) -> None:
        """Remove the menus and stop the status messages' delayed edits: the bot is shutting down."""
        for menu in self.menus:
            self.bot.tree.remove_command(menu.name, type=menu.type)
        self.presenter.close()
        texts.MENTIONS.forget()

    @commands.Cog.listener()
    async def on_commands_synced(self, synced: list[app_commands.AppCommand]) -> None:
        """The commands were just synced (`bot.app.sync_commands`): hints mention them by their new ids."""
        texts.MENTIONS.learn(synced)

    @app_commands.command(name="lipsync", description="Lip-sync a face video (or a YouTube clip) to a voice.")
    @app_commands.guild_only()
    @app_commands.describe(
        audio="The voice to sync to (mp3, wav, m4a, ogg, …)",
        video="A video of one clear, front-facing face (mp4, mov, webm)",
        youtube_url="A YouTube link instead of a video file (then set `end`)",
        start="Where the clip starts in the video, in seconds (default 0)",
        end="Where the clip ends, in seconds (default: the audio's length)",
        mode="Quality: pro costs twice as much per frame",
        max_fps="Cap the frame rate: fewer frames cost fewer credits (empty: the bot's default cap)",
        name="A name for the job",
    )
    @app_commands.choices(mode=MODE_CHOICES)
    async def lipsync(
        self,
        interaction: discord.Interaction,
        audio: discord.Attachment,
        video: discord.Attachment | None = None,
        youtube_url: app_commands.Range[str, 1, 300] | None = None,
        start: app_commands.Range[float, 0.0, bounds.MAX_SOURCE_SECONDS] = 0.0,
        end: app_commands.Range[float, 0.0, bounds.MAX_SOURCE_SECONDS] | None = None,
        mode: str | None = None,
        max_fps: app_commands.Range[float, bounds.MIN_FPS, bounds.MAX_FPS] | None = None,
        name: app_commands.Range[str, 1, 100] | None = None,
    ) -> None:
        """Check the request at once (an ephemeral answer if it's wrong), then start the job."""
        request = JobRequest(
            user_id=interaction.user.id,
            audio=_source(audio),
            video=_source(video) if video is not None else None,
            youtube_url=youtube_url,
            start=start,
            end=end,
            max_fps=max_fps,  # the member's own cap, else the engine's DEFAULT_MAX_FPS, when none is given
            name=name,
            guild_id=interaction.guild_id,
            role_ids=role_ids(interaction.user),
        )
        # Options left empty take the member's `/lipsync-settings`, then the bot's defaults.
        request = await with_member_defaults(self.services, request, mode=mode)
        await start_job(interaction, request)

    @app_commands.command(name="lipsync-status", description="Your credits, running jobs and the queue, in one place.")
    @app_commands.guild_only()
    async def status(self, interaction: discord.Interaction) -> None:
        """One private panel: what the member has left, their running jobs with Cancel buttons, the queue."""
        content, view = await panel(interaction)
        await interaction.response.send_message(content, view=view, ephemeral=True)

    @app_commands.command(name="jobs", description="Your recent lip-sync jobs in this server.")
    @app_commands.guild_only()
    async def jobs(self, interaction: discord.Interaction) -> None:
        """List the member's latest jobs, newest first (only they see it)."""
        recent = await self.store.jobs.recent_for_member(interaction.guild_id, interaction.user.id, RECENT_JOBS)
        await interaction.response.send_message(jobs_text(recent), ephemeral=True)

    @app_commands.command(name="queue", description="How busy the bot is, and where your jobs stand.")
    @app_commands.guild_only()
    async def queue(self, interaction: discord.Interaction) -> None:
        """Show the job slots in use, the line, and the member's running jobs with their places."""
        recent = await self.store.jobs.recent_for_member(interaction.guild_id, interaction.user.id, RECENT_JOBS)
        mine = [(job, self.engine.queue_position(job.id)) for job in recent if not job.state.terminal]
        text = queue_text(self.engine.queue_snapshot(), mine)
        await interaction.response.send_message(text, ephemeral=True)

    @app_commands.command(name="cancel", description="Cancel one of your running lip-sync jobs.")
    @app_commands.guild_only()
    @app_commands.describe(job_id="The job's number, as shown in its status message or in /jobs")
    async def cancel(
        self, interaction: discord.Interaction, job_id: app_commands.Range[int, 1, bounds.MAX_DISCORD_INTEGER]
    ) -> None:
        """Cancel a job the member started; nothing is charged unless Magic Hour already finished it."""
        await cancel_job(interaction, job_id)

    # ------------------------------------------------------------------ message menus

    async def use_video(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Lip-sync this message's video (or YouTube link): pick the voice from the channel's recent messages."""
        await self._offer(interaction, message, "video")

    async def use_voice(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Lip-sync a video to this message's voice (a voice message or an audio file): pick the video."""
        await self._offer(interaction, message, "audio")

    async def _offer(self, interaction: discord.Interaction, message: discord.Message, kind: Kind) -> None:
        wanted: Kind = "audio" if kind == "video" else "video"
        own_menu, other_menu = (MENU_VIDEO, MENU_VOICE) if kind == "video" else (MENU_VOICE, MENU_VIDEO)
        found = media_in(message, kind)
        if not found:
            # Checked before anything else: a message with nothing to use is answered at once, for free.
            raise InvalidInput(f"pick_not_{kind}", menu=menu_name(own_menu))
        chosen = found[0]
        guild_id, user_id = interaction.guild_id, interaction.user.id
        self.picks.remember(guild_id, user_id, chosen)
        await interaction.response.defer(ephemeral=True, thinking=True)
        channel = self.bot.get_partial_messageable(message.channel.id, guild_id=guild_id)
        remembered = self.picks.recall(guild_id, user_id, wanted)
        choices = with_remembered(await recent_media(channel, wanted), remembered)
        if not choices:
            quoted = texts.DISCORD.quote(chosen.label)
            data = {
                "video": quoted,
                "audio": quoted,
                "menu": menu_name(other_menu),
                "minutes": int(REMEMBER_FOR // 60),
            }
            await interaction.edit_original_response(content=texts.describe(f"pick_no_{wanted}", data))
            return
        admitted = await self.engine.admission.read(guild_id, user_id, role_ids(interaction.user))
        picker = Picker(
            origin=interaction,
            chosen=chosen,
            choices=choices,
            modes=admitted.rules.allowed_modes,
            remembered=remembered,
        )
        await interaction.edit_original_response(content=picker.summary(), view=picker)
