"""The one place that turns an exception into a reply.

Errors a member caused or can act on (`bot.errors.LipsyncError` and its subclasses) are shown as
the catalogue's sentence for their code, in Discord style (`render.error_text`); anything else
gets a short apology with a reference id that is also logged with the traceback, so an operator
can find it. Replies are ephemeral: only the member who acted
sees them.
"""

from __future__ import annotations

import logging
import secrets

import discord
from discord import app_commands

from bot.app import Refused
from bot.errors import LipsyncError
from bot.store import AboveCeiling, MemberHasActiveJobs
from cogs import render

log = logging.getLogger(__name__)


def unwrap(error: BaseException) -> BaseException:
    """The error that actually happened, without discord.py's `CommandInvokeError` wrapper."""
    while isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    return error


def reply_for(error: BaseException) -> str:
    """The text to show for `error`; logs unexpected errors with a fresh reference id."""
    original = unwrap(error)
    if isinstance(original, Refused):
        return render.error_text(original.error)
    if isinstance(original, LipsyncError):
        return render.error_text(original)
    if isinstance(original, MemberHasActiveJobs):
        jobs = ", ".join(f"#{job_id}" for job_id in original.job_ids)
        return render.describe("member_has_active_jobs", {"jobs": jobs})
    if isinstance(original, AboveCeiling):
        return render.describe("above_ceiling", {"ceiling": original.ceiling, "requested": original.requested})
    if isinstance(original, app_commands.NoPrivateMessage):
        return render.describe("no_guild", {})
    if isinstance(original, app_commands.MissingPermissions):
        return "You need the Manage Server permission for this."
    if isinstance(original, app_commands.CommandOnCooldown):
        return f"Slow down a little: try again in {original.retry_after:.0f} s."
    if isinstance(original, app_commands.TransformerError):
        return f"`{original.value}` isn't a valid value for this option."
    if isinstance(original, app_commands.CheckFailure):
        return "You can't use this command here."
    reference = secrets.token_hex(4)
    log.error("unexpected error (reference %s)", reference, exc_info=original)
    return render.apology(reference)


async def report_error(interaction: discord.Interaction, error: BaseException) -> None:
    """Tell the member what went wrong, ephemerally, whatever state the interaction is in."""
    message = reply_for(error)
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(message, ephemeral=True)
        elif interaction.response.type is discord.InteractionResponseType.deferred_channel_message:
            # A deferred reply shows "thinking…" until edited: the error replaces it.
            await interaction.edit_original_response(content=message, view=None, attachments=[])
        else:
            await interaction.followup.send(message, ephemeral=True)
    except discord.HTTPException as exc:
        log.warning("could not tell the member about an error: %s", exc)


async def on_tree_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
    """The command tree's error handler: every slash-command error reaches the member here."""
    await report_error(interaction, error)
