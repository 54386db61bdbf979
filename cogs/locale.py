"""Languages in Discord: which catalogue speaks to whom, and the command names and descriptions.

`language_of` picks the catalogue of the member who acted (`interaction.locale`);
`CatalogueTranslator` gives Discord every command's names, descriptions and choices from each
catalogue's `[commands]` table when commands are synced. docs/design-notes.md, "Words and
languages", says who reads which language.
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
