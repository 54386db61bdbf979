"""Command mentions: `</cancel:123>` is a link members click to start typing the command.

Discord needs each command's id, which only the synced command tree knows: the lip-sync cog
learns the ids when it loads (from Discord) and whenever the commands are synced
(`bot.app.sync_commands` says so), and forgets them when it unloads. Until then, and in tests
without a synced tree, commands are written as `/name`. One registry per process: the texts are
pure functions of records, and a command's id is the same in every server the bot is in.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


class KnownCommand(Protocol):
    """What a synced command gives (discord.py's `AppCommand` has both)."""

    @property
    def name(self) -> str:
        """The command's name, as the code declares it."""
        ...

    @property
    def id(self) -> int:
        """Discord's id for it."""
        ...


class CommandMentions:
    """The ids of the bot's commands, by name, once Discord has said them."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}

    def learn(self, commands: Iterable[KnownCommand]) -> None:
        """Remember the ids of these commands (replacing what was known)."""
        self._ids = {command.name: command.id for command in commands}

    def forget(self) -> None:
        """Forget every id (the cog that learned them unloaded)."""
        self._ids = {}

    def mention(self, name: str) -> str | None:
        """`</name:id>` for a command (or `"group sub"`), or None when its id isn't known."""
        command_id = self._ids.get(name.split(" ", 1)[0])
        return f"</{name}:{command_id}>" if command_id is not None else None


MENTIONS = CommandMentions()
