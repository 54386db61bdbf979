"""The Discord layer: slash commands, buttons and the messages that follow a job.

One package per feature, each an extension whose `__init__` only wires it: `cogs.lipsync` (the
command and everything that follows a job) and `cogs.manage` (credits, managers, a member's data).
Shared here: errors to replies (`errors`), languages (`locale`), the words every text uses
(`texts`) and restart-proof buttons (`buttons`). Only this package and `bot/app.py` import discord.
"""

from __future__ import annotations

import discord

from bot.services import Services


def services_of(client: discord.Client) -> Services:
    """The services of the bot that received an interaction (buttons find them this way).

    Buttons are rebuilt by discord.py from their custom id, outside any cog, so they reach the
    engine and store through the client, which `bot.app.LipsyncBot` gives a `services` attribute.
    """
    services = getattr(client, "services", None)
    if not isinstance(services, Services):
        raise RuntimeError("this client has no lipsync services")
    return services


def role_ids(user: discord.User | discord.Member) -> tuple[int, ...]:
    """The member's role ids (without @everyone), for role limits; none outside a server."""
    if isinstance(user, discord.Member):
        return tuple(role.id for role in user.roles if not role.is_default())
    return ()
