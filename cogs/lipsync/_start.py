"""Starting a job from any interaction: `/lipsync`, a message menu's pick, a re-run button or its form.

Every way in goes through `start_job`, so each gets the same checks, quota and job card: the cheap
checks first (a refusal is an ephemeral answer and costs nothing), then a private "thinking" reply
that shows the member their job's progress until it is admitted, then the engine. The public card
is posted only once the job's credits are reserved (`cogs.lipsync._status`): a refusal before
that is told in the private reply alone, and the channel never sees the job.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Protocol

import discord
from discord.ext import commands

from bot.errors import InvalidInput, LipsyncError
from bot.jobs.models import JobHooks, JobRequest
from bot.store import JobRecord
from cogs import role_ids, services_of, texts
from cogs.errors import report_error
from cogs.lipsync._settings import with_member_delivery
from cogs.locale import MemberModal, locale_of

log = logging.getLogger(__name__)

COG_NAME = "Lip sync"  # the cog that owns the job presenter (`cogs.lipsync.LipsyncCog`)


class HooksFor(Protocol):
    """What starting a job needs of the presenter (`_presenter.JobPresenter`): a new job's hooks.

    A protocol, so starting a job doesn't import the presenter (which imports the status message,
    which imports the buttons, which start jobs again).
    """

    def for_interaction(self, interaction: discord.Interaction, request: JobRequest | None = None) -> JobHooks: ...


def presenter_of(client: discord.Client) -> HooksFor:
    """The presenter of the bot's jobs (status messages and results), held by the lip-sync cog."""
    cog = client.get_cog(COG_NAME) if isinstance(client, commands.bot.BotBase) else None  # Bot or AutoShardedBot
    presenter: HooksFor | None = getattr(cog, "presenter", None)
    if presenter is None:
        raise RuntimeError("the lip-sync cog isn't loaded")
    return presenter


async def start_job(interaction: discord.Interaction, request: JobRequest) -> JobRecord | None:
    """Check `request` and start it as a job (its public card comes once it is admitted); None if refused late.

    Where it is asked from is filled in here: the channel, the member's roles, their locale (the
    job's messages are worded in it). A refusal by the cheap checks is raised before anything is
    answered, for the caller's error handler to tell privately.
    """
    services = services_of(interaction.client)
    request = dataclasses.replace(
        request,
        channel_id=interaction.channel_id,
        role_ids=role_ids(interaction.user),
        locale=locale_of(interaction),
    )
    # Where the result goes and whether it pings: the member's settings now, kept with the job.
    request = await with_member_delivery(services, request)
    # Cheap checks raise before anything is deferred: the error handler answers ephemerally.
    await services.engine.precheck(request)
    # Private until the job is admitted: a refusal found while fetching never reaches the channel.
    # The public card's ids are stored with the job once it is posted, so a restart finds it.
    await interaction.response.defer(ephemeral=True, thinking=True)
    try:
        # The request goes with the hooks: a refusal offers fixes that start it again, changed.
        hooks = presenter_of(interaction.client).for_interaction(interaction, request)
        return await services.engine.submit(request, hooks)
    except LipsyncError as exc:
        # Refused between the check and now (e.g. a second job in another channel): the private
        # reply says why.
        text = f"❌ {texts.error_text(exc)}"
        try:
            await interaction.edit_original_response(content=text, view=None)
        except discord.HTTPException as error:
            log.warning("could not refuse privately: %s", error)
        return None


def parse_seconds(text: str) -> float | None:
    """A number of seconds a member typed ("1.5", or "1,5" as Spanish and Portuguese write it); None if empty."""
    cleaned = text.strip().removesuffix("s").strip().replace(",", ".")
    if not cleaned:
        return None
    try:
        value = float(cleaned)
    except ValueError:
        raise InvalidInput("bad_number", value=text.strip()[:20]) from None
    if not math.isfinite(value):
        raise InvalidInput("bad_number", value=text.strip()[:20])
    return value


def _seconds_text(value: float | None) -> str | None:
    return None if value is None else f"{value:g}"


WindowChosen = Callable[[discord.Interaction, float, float | None], Awaitable[None]]
"""Called with the form's interaction, the start and the end (None: to the end of the voice)."""


class WindowModal(MemberModal):
    """A form for the part of the video to lip-sync: start and end, in seconds.

    Checking the window is left to whoever receives it (the engine's checks, with their words);
    only numbers that aren't numbers are refused here.
    """

    def __init__(self, *, on_window: WindowChosen, start: float | None = None, end: float | None = None) -> None:
        # No fixed custom id: discord.py finds a submitted form by its id alone, so two members with
        # the form open at once would each reach whichever form was opened last (discord.py's own is random).
        super().__init__(title=texts.describe("window_title")[:45], timeout=600)
        self._on_window = on_window
        self.start_input: discord.ui.TextInput[WindowModal] = discord.ui.TextInput(
            label=texts.describe("window_start")[:45],
            default=_seconds_text(start) or "0",
            custom_id="window:start",
            required=False,
            max_length=12,
        )
        self.end_input: discord.ui.TextInput[WindowModal] = discord.ui.TextInput(
            label=texts.describe("window_end")[:45],
            default=_seconds_text(end),
            placeholder=texts.describe("window_end_hint")[:100],
            custom_id="window:end",
            required=False,
            max_length=12,
        )
        self.add_item(self.start_input)
        self.add_item(self.end_input)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        """Read the numbers and hand them on; anything wrong is told privately."""
        try:
            start = parse_seconds(self.start_input.value) or 0.0
            end = parse_seconds(self.end_input.value)
            await self._on_window(interaction, start, end)
        except Exception as exc:
            await report_error(interaction, exc)
