"""`/lipsync` and everything that follows a job in Discord: the command, its status and result
messages, its buttons and its texts. This module only wires them into the bot."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cogs.errors import on_tree_error
from cogs.lipsync._cog import LipsyncCog
from cogs.lipsync._presenter import JobPresenter
from cogs.lipsync._settings import MemberSettingsCog
from cogs.lipsync._status import DEFAULT_MIN_INTERVAL
from cogs.lipsync._views import DYNAMIC_ITEMS
from cogs.locale import CatalogueTranslator

if TYPE_CHECKING:
    from bot.app import LipsyncBot

__all__ = ["LipsyncCog", "setup"]


async def setup(bot: LipsyncBot) -> None:
    """Add the cog, built from the bot's services, and register what presents jobs in Discord:
    the hooks resumed jobs use, the restart-proof buttons, members' own settings, the one error
    handler, and the translator that gives Discord the commands' names and descriptions in every language."""
    interval = bot.status_interval if bot.status_interval is not None else DEFAULT_MIN_INTERVAL
    presenter = JobPresenter(bot, bot.services, min_interval=interval)
    bot.hooks_factory = presenter.for_record
    bot.add_dynamic_items(*DYNAMIC_ITEMS)
    bot.tree.error(on_tree_error)
    await bot.tree.set_translator(CatalogueTranslator())
    await bot.add_cog(LipsyncCog(bot, bot.services, presenter))
    await bot.add_cog(MemberSettingsCog(bot.services))
