"""`IdButton`: a button that keeps working after a restart, rebuilt from its custom id alone.

Everything a button needs (a job id, a member id) is in its custom id, so discord.py rebuilds it
whenever it is clicked, in whichever process is running then; each feature registers its buttons
with `add_dynamic_items` in its extension's `setup`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, ClassVar, Self

import discord

from cogs.locale import speak_to

Button = discord.ui.Button[discord.ui.View]
# How a part of a custom id is read back: a number, or one of a set of words.
Part = type[int] | type[StrEnum]


def _pattern(part: Part) -> str:
    if issubclass(part, StrEnum):
        return "|".join(re.escape(word) for word in part)
    return "[0-9]+"


class IdButton(discord.ui.DynamicItem[Button], template=r"lipsync:[a-z]+(?::[0-9a-z]+)*"):
    """A button whose custom id, `lipsync:<action>:<part>…`, carries everything it needs.

    A subclass names its action and its parts (`action="cancel", parts={"job": int}`); the
    template, the custom id and the rebuilding from a click follow from them. Its constructor takes
    the parts in that order (then its label), so a click rebuilds it from its id alone.
    """

    # This base is never registered: its template is only the shape every subclass's id has.
    _action: ClassVar[str]
    _parts: ClassVar[tuple[tuple[str, Part], ...]]

    def __init_subclass__(cls, *, action: str, parts: Mapping[str, Part] | None = None) -> None:
        cls._action = action
        cls._parts = tuple((parts or {}).items())
        groups = (f"(?P<{name}>{_pattern(part)})" for name, part in cls._parts)
        super().__init_subclass__(template=":".join(("lipsync", action, *groups)))

    def __init__(self, *parts: int | str, label: str, style: discord.ButtonStyle) -> None:
        custom_id = ":".join(("lipsync", self._action, *(str(part) for part in parts)))
        super().__init__(discord.ui.Button(label=label, style=style, custom_id=custom_id))

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        """Speak the clicking member's language (discord.py runs this before every click's callback)."""
        speak_to(interaction)
        return True

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        """Rebuild the button from its custom id: each part read back as its type."""
        # The subclass's constructor, not this base's: it takes the parts, with a default label.
        rebuild: Callable[..., Self] = cls
        return rebuild(*(part(match[name]) for name, part in cls._parts))
