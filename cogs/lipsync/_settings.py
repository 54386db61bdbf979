"""`/lipsync-settings`: a member's own defaults here, seen and changed privately.

The default mode and frame-rate cap apply when `/lipsync` is run without them
(`with_member_defaults`); where results go and whether they ping are kept with each job when it
starts (`with_member_delivery`), so the result follows the member's choice of that moment,
across restarts too. `cogs.lipsync._results` reads them back through `result_place` and
`pings_owner`.
"""

from __future__ import annotations

import dataclasses

import discord
from discord import app_commands
from discord.ext import commands

from bot import bounds
from bot.config import GenerationMode
from bot.errors import InvalidInput
from bot.jobs.models import JobRequest
from bot.services import Services
from bot.store import JobRecord, ResultPlace
from bot.store.member_settings import DEFAULTS
from cogs import role_ids, texts
from cogs.lipsync._settings_texts import settings_text

RESULT_CHOICES = [
    app_commands.Choice(name="This channel", value=ResultPlace.CHANNEL.value),
    app_commands.Choice(name="A thread for each job", value=ResultPlace.THREAD.value),
    app_commands.Choice(name="A direct message", value=ResultPlace.DM.value),
]


async def with_member_defaults(services: Services, request: JobRequest, *, mode: str | None) -> JobRequest:
    """`/lipsync`'s request with the member's default mode and frame-rate cap where they chose none.

    `mode` is what the member chose (None: nothing). A default mode the server no longer allows is
    skipped (the bot's default applies), so a setting never turns into a refusal.
    """
    chosen = GenerationMode(mode) if mode is not None else None
    if request.guild_id is None:
        return dataclasses.replace(request, mode=chosen or request.mode)
    mine = await services.store.member_settings.get(request.guild_id, request.user_id)
    if chosen is None and mine.mode is not None:
        admitted = await services.engine.admission.read(request.guild_id, request.user_id, request.role_ids)
        if mine.mode in admitted.rules.allowed_modes:
            chosen = mine.mode
    max_fps = request.max_fps if request.max_fps is not None else mine.max_fps
    return dataclasses.replace(request, mode=chosen or request.mode, max_fps=max_fps)


async def with_member_delivery(services: Services, request: JobRequest) -> JobRequest:
    """The request with where the member wants its result and whether it pings them (kept with the job)."""
    if request.guild_id is None:
        return request
    mine = await services.store.member_settings.get(request.guild_id, request.user_id)
    return dataclasses.replace(request, deliver_to=mine.results, ping_owner=mine.ping)


def result_place(job: JobRecord) -> ResultPlace:
    """Where `job`'s result goes: the member's choice when it started (the channel, for older jobs)."""
    return job.deliver_to or DEFAULTS.results


def pings_owner(job: JobRecord) -> bool:
    """Whether `job`'s result mentions its member: their choice when it started (yes, for older jobs)."""
    return job.ping_owner if job.ping_owner is not None else DEFAULTS.ping


class MemberSettingsCog(commands.Cog, name="Member settings"):
    """A member's own lip-sync settings in a server."""

    def __init__(self, services: Services) -> None:
        self.services = services

    @app_commands.command(name="lipsync-settings", description="Your own lip-sync defaults here (only you see them).")
    @app_commands.guild_only()
    @app_commands.describe(
        mode="The mode /lipsync uses when you don't choose one",
        max_fps="The frame-rate cap /lipsync uses when you don't set one",
        results="Where your finished videos go",
        ping="Whether a finished video pings you",
        reset="Back to the bot's defaults first",
    )
    @app_commands.choices(mode=[app_commands.Choice(name=texts.mode_label(m), value=m.value) for m in GenerationMode])
    @app_commands.choices(results=RESULT_CHOICES)
    async def lipsync_settings(
        self,
        interaction: discord.Interaction,
        mode: str | None = None,
        max_fps: app_commands.Range[float, bounds.MIN_FPS, bounds.MAX_FPS] | None = None,
        results: str | None = None,
        ping: bool | None = None,
        reset: bool = False,
    ) -> None:
        """Show the member's settings here; with options, change them first. Only they see the answer."""
        assert interaction.guild_id is not None  # guild_only
        guild_id, user_id = interaction.guild_id, interaction.user.id
        store = self.services.store.member_settings
        now = DEFAULTS if reset else await store.get(guild_id, user_id)
        wanted = GenerationMode(mode) if mode is not None else None
        if wanted is not None:
            admitted = await self.services.engine.admission.read(guild_id, user_id, role_ids(interaction.user))
            if wanted not in admitted.rules.allowed_modes:
                allowed = ", ".join(m.value for m in admitted.rules.allowed_modes)
                raise InvalidInput("mode_not_allowed", mode=wanted.value, allowed=allowed)
        changed = reset or any(value is not None for value in (mode, max_fps, results, ping))
        if changed:
            now = now.changed(
                mode=wanted,
                max_fps=max_fps,
                results=ResultPlace(results) if results is not None else None,
                ping=ping,
            )
            if now == DEFAULTS:
                await store.clear(guild_id, user_id)
            else:
                await store.save(guild_id, user_id, now)
        bot_fps = self.services.settings.default_max_fps
        text = settings_text(now, bot_fps, changed=changed)
        await interaction.response.send_message(text, ephemeral=True)
