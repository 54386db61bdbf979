"""Buttons that keep working after a restart.

Each button is a `discord.ui.DynamicItem`: everything it needs (a job id, a member id) is in its
custom id, and discord.py rebuilds it from that id whenever it is clicked, in whichever process
is running then. `bot.app` registers them with `add_dynamic_items` in `setup_hook`. Clicks reach
the engine and the store through `cogs.services_of(interaction.client)`.
"""

from __future__ import annotations

import re
from typing import Any, Self

import discord

from bot.errors import InvalidInput, NotAllowed
from bot.store import JobState
from cogs import render, role_ids, services_of
from cogs.errors import report_error

Button = discord.ui.Button[discord.ui.View]


class CancelButton(discord.ui.DynamicItem[Button], template=r"lipsync:cancel:(?P<job>[0-9]+)"):
    """Cancel on a job's status message; only the member who started the job may use it."""

    def __init__(self, job_id: int, *, label: str = "Cancel") -> None:
        super().__init__(
            discord.ui.Button(label=label, style=discord.ButtonStyle.danger, custom_id=f"lipsync:cancel:{job_id}")
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        """Rebuild the button from its custom id."""
        return cls(int(match["job"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        """Cancel the job for its owner; anyone else gets a polite ephemeral no."""
        await cancel_job(interaction, self.job_id)


class NewLinkButton(discord.ui.DynamicItem[Button], template=r"lipsync:link:(?P<job>[0-9]+)"):
    """Under a result too large to post: fetches a newly signed download link (old ones expire)."""

    def __init__(self, job_id: int) -> None:
        super().__init__(
            discord.ui.Button(label="New link", style=discord.ButtonStyle.secondary, custom_id=f"lipsync:link:{job_id}")
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        """Rebuild the button from its custom id."""
        return cls(int(match["job"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        """Answer the job's owner (or a server manager), only them, with a fresh link."""
        try:
            engine = services_of(interaction.client).engine
            manages = interaction.guild_id if interaction.permissions.manage_guild else None
            # Checked before deferring, so a refusal is instant; only then is Magic Hour asked.
            job = await engine.allow_link(self.job_id, by_user_id=interaction.user.id, manager_of=manages)
            await interaction.response.defer(ephemeral=True, thinking=True)
            url = await engine.fresh_download_url(job)
            button = len(url) <= render.MAX_BUTTON_URL
            await interaction.edit_original_response(
                content=render.fresh_link_text(self.job_id, button=button, url=url),
                view=download_view(url) if button else None,
            )
        except Exception as exc:
            await report_error(interaction, exc)


class ForgetButton(discord.ui.DynamicItem[Button], template=r"lipsync:forget:(?P<user>[0-9]+)"):
    """The confirmation under `/forget-me`: deletes the member's data in this server."""

    def __init__(self, user_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label="Delete my data", style=discord.ButtonStyle.danger, custom_id=f"lipsync:forget:{user_id}"
            )
        )
        self.user_id = user_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        """Rebuild the button from its custom id."""
        return cls(int(match["user"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        """Delete the data of the member named in the button, if they are the one pressing it."""
        try:
            if interaction.user.id != self.user_id or interaction.guild_id is None:
                raise NotAllowed("forget_not_owner")
            report = await services_of(interaction.client).store.delete_member_data(interaction.guild_id, self.user_id)
            await interaction.response.edit_message(content=render.forgotten_text(report), view=None)
        except Exception as exc:
            await report_error(interaction, exc)


class RefreshPanelButton(discord.ui.DynamicItem[Button], template=r"lipsync:panel"):
    """Under the `/lipsync-status` panel: shows it again, as it is now."""

    def __init__(self) -> None:
        super().__init__(
            discord.ui.Button(label="Refresh", style=discord.ButtonStyle.secondary, custom_id="lipsync:panel")
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        """Rebuild the button from its custom id."""
        return cls()

    async def callback(self, interaction: discord.Interaction) -> None:
        """Redraw the panel of whoever pressed it (only they can see it: it is ephemeral)."""
        try:
            content, view = await panel(interaction)
            await interaction.response.edit_message(content=content, view=view)
        except Exception as exc:
            await report_error(interaction, exc)


def status_view(job_id: int) -> discord.ui.View:
    """The buttons under a running job's status message."""
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job_id))
    return view


def link_view(job_id: int, url: str | None = None) -> discord.ui.View:
    """The buttons under a result that was too large to attach: Download (when given a link) and New link."""
    view = discord.ui.View(timeout=None) if url is None else download_view(url)
    view.add_item(NewLinkButton(job_id))
    return view


def download_view(url: str) -> discord.ui.View:
    """A Download button: the signed link stays on the button, never in the message's text."""
    view = discord.ui.View(timeout=None)
    view.add_item(discord.ui.Button(label="Download", style=discord.ButtonStyle.link, url=url))
    return view


# A message holds at most 25 buttons: the panel's Cancel buttons stop short of that.
MAX_PANEL_BUTTONS = 20


async def panel(interaction: discord.Interaction) -> tuple[str, discord.ui.View]:
    """`/lipsync-status` for the member behind `interaction`: their credits, running jobs and the queue.

    Each running job gets its own Cancel button (the same restart-proof button as on its status
    message), and a Refresh button redraws the panel.
    """
    services = services_of(interaction.client)
    guild_id, user = interaction.guild_id, interaction.user
    balance = await services.store.quota.limits(guild_id, user.id, role_ids(user))
    recent = await services.store.jobs.recent_for_member(guild_id, user.id, MAX_PANEL_BUTTONS)
    now = services.clock.now()
    running = [
        render.RunningJob(
            job=job,
            position=services.engine.queue_position(job.id),
            elapsed=max(0.0, (now - job.created_at).total_seconds()),
        )
        for job in recent
        if not job.state.terminal
    ]
    text = render.panel_text(balance, services.settings.quota_window, running, services.engine.queue_snapshot())
    view = discord.ui.View(timeout=None)
    for item in running:
        if item.job.state not in (JobState.DOWNLOADING, JobState.DELIVERING):  # too late to cancel those
            view.add_item(CancelButton(item.job.id, label=f"Cancel #{item.job.id}"))
    view.add_item(RefreshPanelButton())
    return text, view


def forget_view(user_id: int) -> discord.ui.View:
    """The confirmation button for `/forget-me`."""
    view = discord.ui.View(timeout=None)
    view.add_item(ForgetButton(user_id))
    return view


DYNAMIC_ITEMS: tuple[type[discord.ui.DynamicItem[Any]], ...] = (
    CancelButton,
    NewLinkButton,
    ForgetButton,
    RefreshPanelButton,
)


async def cancel_job(interaction: discord.Interaction, job_id: int) -> None:
    """Cancel `job_id` for the member behind `interaction` (the button and `/cancel` share this)."""
    try:
        engine = services_of(interaction.client).engine
        job = await engine.job(job_id)
        if job.guild_id != interaction.guild_id:
            raise InvalidInput("no_such_job", job=job_id)
        if job.user_id != interaction.user.id:
            # Checked before deferring, so the refusal is instant and only the presser sees it.
            raise NotAllowed("not_owner_of", owner=job.user_id, job=job_id)
        await interaction.response.defer(ephemeral=True, thinking=True)
        canceled = await engine.cancel(job_id, by_user_id=interaction.user.id)
        await interaction.edit_original_response(content=render.canceled_text(canceled))
    except Exception as exc:
        await report_error(interaction, exc)
