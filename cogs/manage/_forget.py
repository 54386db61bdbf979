"""The confirmation button under `/forget-me`, which deletes a member's data in this server."""

from __future__ import annotations

import discord

from bot.errors import NotAllowed
from cogs import services_of, texts
from cogs.buttons import IdButton
from cogs.errors import report_error
from cogs.manage._texts import forgotten_text


class ForgetButton(IdButton, action="forget", parts={"user": int}):
    """The confirmation under `/forget-me`: deletes the member's data in this server."""

    def __init__(self, user_id: int, *, label: str = "Delete my data") -> None:
        super().__init__(user_id, label=label, style=discord.ButtonStyle.danger)
        self.user_id = user_id

    async def callback(self, interaction: discord.Interaction) -> None:
        """Delete the data of the member named in the button, if they are the one pressing it."""
        try:
            if interaction.user.id != self.user_id or interaction.guild_id is None:
                raise NotAllowed("forget_not_owner")
            report = await services_of(interaction.client).store.delete_member_data(interaction.guild_id, self.user_id)
            text = forgotten_text(report)
            await interaction.response.edit_message(content=text, view=None)
        except Exception as exc:
            await report_error(interaction, exc)


def forget_view(user_id: int) -> discord.ui.View:
    """The confirmation button for `/forget-me`."""
    view = discord.ui.View(timeout=None)
    view.add_item(ForgetButton(user_id, label=texts.button_label("button_forget")))
    return view
