"""Languages in Discord: which catalogue speaks to whom, and the command names and descriptions.

`language_of` picks the catalogue of the member who acted (`interaction.locale`); `speak_to` makes
it the reader's language for the rest of an interaction, which the command tree and every view,
form and button here do first (`MemberView`, `MemberModal`, `cogs.buttons.IdButton`).
`CatalogueTranslator` gives Discord the commands' names, descriptions and choices when they are
synced. docs/design-notes.md, "Words and languages", says who reads which language.
"""

from __future__ import annotations

import discord
from discord import app_commands

from bot import words

TCL = app_commands.TranslationContextLocation


def locale_of(interaction: discord.Interaction) -> str:
    """The Discord locale of the member behind `interaction` ("es-ES"), stored with their jobs."""
    return interaction.locale.value


def language_of(interaction: discord.Interaction) -> str:
    """The catalogue language to answer the member behind `interaction` in."""
    return words.language_for(locale_of(interaction))


def speak_to(interaction: discord.Interaction) -> None:
    """Make the member behind `interaction` the reader, for the rest of its task.

    discord.py runs each command, component click and form submission in a task of its own, whose
    first step is the check that calls this: the language ends with the task.
    """
    words.use(language_of(interaction))


class MemberView(discord.ui.View):
    """A view whose callbacks answer in the language of the member who clicked.

    A subclass's own `interaction_check` calls this one first.
    """

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        """Speak the clicking member's language; every click is let through (subclasses decide more)."""
        speak_to(interaction)
        return True


class MemberModal(discord.ui.Modal):
    """A form whose submission is answered in the language of the member who sent it."""

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        """Speak the submitting member's language; every submission is let through."""
        speak_to(interaction)
        return True


def command_key(context: app_commands.TranslationContextTypes) -> str | None:
    """The `[commands]` key of the string being translated, or None for strings the catalogue doesn't hold."""
    data: object = context.data
    location = context.location
    if isinstance(data, app_commands.Command | app_commands.ContextMenu | app_commands.Group):
        if location in (TCL.command_description, TCL.group_description):
            return f"{data.qualified_name}.description"
        return data.qualified_name
    if isinstance(data, app_commands.Parameter):
        key = f"{data.command.qualified_name}.{data.name}"
        return f"{key}.description" if location is TCL.parameter_description else key
    if isinstance(data, app_commands.Choice):
        return f"choice.{data.value}"
    return None


class CatalogueTranslator(app_commands.Translator):
    """Command names, descriptions and choices from each language's catalogue (`[commands]`).

    Keys are the command's qualified name (`"lipsync"`, `"lipsync-admin grant"`, a message menu's
    name), with `.description`, `.<option>` and `.<option>.description` after it, and
    `choice.<value>` for choices. English is what the code says; `en.toml` repeats it so a
    translator sees every key, and a test keeps the two equal.
    """

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        """The catalogue's text for this string in `locale`'s language; None leaves Discord the English."""
        language = words.language_for(locale.value)
        if language == words.DEFAULT_LANGUAGE:
            return None
        key = command_key(context)
        return words.commands(language).get(key) if key is not None else None


def command_texts(tree: app_commands.CommandTree[discord.Client]) -> dict[str, str]:
    """Every string the translator is asked about, by key, as the code says it (in English).

    `en.toml`'s `[commands]` table must be exactly this, and every other language must have the
    same keys (a test checks both).
    """
    texts: dict[str, str] = {}
    for command in tree.walk_commands():
        texts[command.qualified_name] = command.name
        texts[f"{command.qualified_name}.description"] = command.description
        if isinstance(command, app_commands.Command):
            for parameter in command.parameters:
                texts[f"{command.qualified_name}.{parameter.name}"] = parameter.name
                texts[f"{command.qualified_name}.{parameter.name}.description"] = parameter.description
                for choice in parameter.choices:
                    texts[f"choice.{choice.value}"] = choice.name
    for menu in tree.get_commands(type=discord.AppCommandType.message):
        texts[menu.qualified_name] = menu.name
    return texts
