"""`/lipsync`, `/lipsync-status`, `/jobs`, `/queue` and `/cancel`: start, follow and stop lip-sync jobs."""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.config import GenerationMode
from bot.errors import LipsyncError
from bot.jobs.engine import JobEngine
from bot.jobs.models import InputSource, JobRequest
from bot.store import Store
from cogs import render, role_ids
from cogs.errors import on_tree_error
from cogs.status import DEFAULT_MIN_INTERVAL, JobPresenter
from cogs.views import DYNAMIC_ITEMS, cancel_job, panel

if TYPE_CHECKING:
    from bot.app import LipsyncBot

log = logging.getLogger(__name__)

MODE_CHOICES = [app_commands.Choice(name=render.mode_label(mode), value=mode.value) for mode in GenerationMode]
RECENT_JOBS = 10


def _source(attachment: discord.Attachment) -> InputSource:
    # The URL is signed and expires: the engine fetches it at once and never stores it.
    return InputSource(
        filename=attachment.filename,
        size=attachment.size,
        content_type=attachment.content_type,
        url=attachment.url,
    )


class LipsyncCog(commands.Cog, name="Lip sync"):
    """Starting, following and stopping lip-sync jobs."""

    def __init__(self, engine: JobEngine, store: Store, presenter: JobPresenter) -> None:
        self.engine = engine
        self.store = store
        self.presenter = presenter

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
        start: app_commands.Range[float, 0.0] = 0.0,
        end: app_commands.Range[float, 0.0] | None = None,
        mode: str = GenerationMode.LITE.value,
        max_fps: app_commands.Range[float, 1.0, 60.0] | None = None,
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
            mode=GenerationMode(mode),
            max_fps=max_fps,  # the engine applies DEFAULT_MAX_FPS when the member sets none
            name=name,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            role_ids=role_ids(interaction.user),
        )
        # Cheap checks raise before anything is deferred: the error handler answers ephemerally.
        await self.engine.precheck(request)
        await interaction.response.defer(thinking=True)
        status = await interaction.original_response()
        # The status message's ids go in with the job, so a restart can always find it.
        request = dataclasses.replace(request, status_channel_id=status.channel.id, status_message_id=status.id)
        try:
            await self.engine.submit(request, self.presenter.for_interaction(interaction, status.id))
        except LipsyncError as exc:
            # Refused between the check and now (e.g. a second job in another channel): told to the
            # member alone, and the public reply removed.
            await refuse_privately(interaction, render.error_text(exc))

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
        await interaction.response.send_message(render.jobs_text(recent), ephemeral=True)

    @app_commands.command(name="queue", description="How busy the bot is, and where your jobs stand.")
    @app_commands.guild_only()
    async def queue(self, interaction: discord.Interaction) -> None:
        """Show the job slots in use, the line, and the member's running jobs with their places."""
        recent = await self.store.jobs.recent_for_member(interaction.guild_id, interaction.user.id, RECENT_JOBS)
        mine = [(job, self.engine.queue_position(job.id)) for job in recent if not job.state.terminal]
        text = render.queue_text(self.engine.queue_snapshot(), mine)
        await interaction.response.send_message(text, ephemeral=True)

    @app_commands.command(name="cancel", description="Cancel one of your running lip-sync jobs.")
    @app_commands.guild_only()
    @app_commands.describe(job_id="The job's number, as shown in its status message or in /jobs")
    async def cancel(self, interaction: discord.Interaction, job_id: app_commands.Range[int, 1]) -> None:
        """Cancel a job the member started; nothing is charged unless Magic Hour already finished it."""
        await cancel_job(interaction, job_id)

    async def cog_unload(self) -> None:
        """Stop the status messages' delayed edits: the bot is shutting down."""
        self.presenter.close()


async def refuse_privately(interaction: discord.Interaction, text: str) -> None:
    """Answer a deferred public command with an ephemeral refusal, and remove the public reply.

    A reply still "thinking" turns the next followup into itself, so it is first given a neutral
    line, which is then deleted (or stays, if Discord refuses the deletion).
    """
    try:
        await interaction.edit_original_response(content="⏳", view=None)
        await interaction.followup.send(f"❌ {text}", ephemeral=True)
        await interaction.delete_original_response()
    except discord.HTTPException as exc:
        log.warning("could not refuse privately: %s", exc)


async def setup(bot: LipsyncBot) -> None:
    """Add the cog, built from the bot's services, and register what presents jobs in Discord:
    the hooks resumed jobs use, the restart-proof buttons, and the one error handler."""
    interval = bot.status_interval if bot.status_interval is not None else DEFAULT_MIN_INTERVAL
    presenter = JobPresenter(bot, bot.services, min_interval=interval)
    bot.hooks_factory = presenter.for_record
    bot.add_dynamic_items(*DYNAMIC_ITEMS)
    bot.tree.error(on_tree_error)
    await bot.add_cog(LipsyncCog(bot.services.engine, bot.services.store, presenter))
