"""`/quota` and `/forget-me`: a member's credits, and deleting a member's data on request."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.config import QuotaWindow
from bot.store import Balance, LimitKind, Store
from cogs import role_ids
from cogs.manage._forget import forget_view
from cogs.manage._texts import forget_prompt, quota_text

if TYPE_CHECKING:
    pass


async def allowance_role(store: Store, balance: Balance, member: discord.User | discord.Member) -> int | None:
    """The role whose limit gives the member's allowance, when a role's limit is where it comes from."""
    if balance.source is not LimitKind.ROLE or not isinstance(member, discord.Member):
        return None
    limits = await store.limits.role_limits(member.guild.id)
    theirs = [role.id for role in member.roles if role.id in limits]
    return max(theirs, key=lambda role: limits[role], default=None)


class QuotaCog(commands.Cog, name="Quota"):
    """A member's own credits and data."""

    def __init__(self, store: Store, window: QuotaWindow) -> None:
        self.store = store
        self.window = window

    @app_commands.command(name="quota", description="Your lip-sync credits: what's left and when it resets.")
    @app_commands.guild_only()
    async def quota(self, interaction: discord.Interaction) -> None:
        """Show the member's balance, the limit that applies and the reset time (only they see it)."""
        user = interaction.user
        balance = await self.store.usage.balance(interaction.guild_id, user.id, role_ids(user))
        role = await allowance_role(self.store, balance, user)
        text = quota_text(balance, self.window, role_id=role)
        await interaction.response.send_message(text, ephemeral=True)

    @app_commands.command(name="forget-me", description="Delete your lip-sync data in this server.")
    @app_commands.guild_only()
    async def forget_me(self, interaction: discord.Interaction) -> None:
        """Explain what will be deleted and ask for a confirmation click; nothing is deleted yet."""
        await interaction.response.send_message(forget_prompt(), view=forget_view(interaction.user.id), ephemeral=True)
