"""The one place that turns an exception into a reply.

Errors a member caused or can act on (`bot.errors.LipsyncError` and its subclasses) are shown as
the catalogue's sentence for their code, in Discord style (`texts.error_text`); anything else
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
from bot.store import AboveCeiling, MemberHasActiveJobs, StoreUnavailable
from cogs import texts

log = logging.getLogger(__name__)


def unwrap(error: BaseException) -> BaseException:
    """The error that actually happened, without discord.py's `CommandInvokeError` wrapper."""
    while isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    return error


def reply_for(error: BaseException) -> str:
    """The text to show for `error`, in the reader's language; logs unexpected errors with a fresh reference id."""
    original = unwrap(error)
    if isinstance(original, Refused):
        return texts.error_text(original.error)
    if isinstance(original, LipsyncError):
        return texts.error_text(original)
    if isinstance(original, MemberHasActiveJobs):
        jobs = ", ".join(f"#{job_id}" for job_id in original.job_ids)
        return texts.describe("member_has_active_jobs", {"jobs": jobs})
    if isinstance(original, StoreUnavailable):
        # A restart or a failover of the database: the member can only wait, so say that plainly.
        log.warning("told a member to try again: %s", original)
        return texts.describe("database_unavailable")
    if isinstance(original, AboveCeiling):
        data = {"ceiling": original.ceiling, "requested": original.requested}
        return texts.describe("above_ceiling", data)
    if isinstance(original, app_commands.NoPrivateMessage):
        return texts.describe("no_guild")
    if isinstance(original, app_commands.MissingPermissions):
        return texts.describe("manage_permission")
    if isinstance(original, app_commands.CommandOnCooldown):
        return texts.describe("slow_down", {"wait": f"{original.retry_after:.0f}"})
    if isinstance(original, app_commands.TransformerError):
        return texts.describe("bad_option_value", {"value": str(original.value)})
    if isinstance(original, app_commands.CheckFailure):
        return texts.describe("check_failed")
    reference = secrets.token_hex(4)
    log.error("unexpected error (reference %s)", reference, exc_info=original)
    return texts.apology(reference)


async def report_error(interaction: discord.Interaction, error: BaseException) -> None:
    """Tell the member what went wrong, ephemerally and in their language, whatever state the interaction is in."""
    message = reply_for(error)
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(message, ephemeral=True)
        elif interaction.response.type is discord.InteractionResponseType.deferred_channel_message:
            # A deferred reply shows "thinking…" until edited. A private one is replaced by the
            # error; a public one (a job's status message to be) is removed, the error told privately.
            original = await interaction.original_response()
            if original.flags.ephemeral:
                await interaction.edit_original_response(content=message, view=None, attachments=[])
            else:
                await refuse_privately(interaction, message)
        else:
            await interaction.followup.send(message, ephemeral=True)
    except discord.HTTPException as exc:
        log.warning("could not tell the member about an error: %s", exc)


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


async def on_tree_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
    """The command tree's error handler: every slash-command error reaches the member here."""
    await report_error(interaction, error)
