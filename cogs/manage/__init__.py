"""Credits and who may spend them: managers' `/lipsync-admin` and a member's own `/quota` and
`/forget-me`, with their texts. This module only wires them into the bot."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cogs.manage._cog import ManageCog
from cogs.manage._forget import ForgetButton
from cogs.manage._quota import QuotaCog

if TYPE_CHECKING:
    from bot.app import LipsyncBot

__all__ = ["ManageCog", "QuotaCog", "setup"]


async def setup(bot: LipsyncBot) -> None:
    """Add both cogs, built from the bot's services, and the `/forget-me` confirmation button."""
    bot.add_dynamic_items(ForgetButton)
    await bot.add_cog(QuotaCog(bot.services.store, bot.settings.quota_window))
    await bot.add_cog(ManageCog(bot.services.store, bot.settings))
