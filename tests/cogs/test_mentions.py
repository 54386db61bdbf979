"""Command hints: clickable mentions once Discord has given the commands' ids, `/name` text before."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from cogs import texts
from cogs.texts import CommandMentions


@dataclass(frozen=True)
class Synced:
    name: str
    id: int


@pytest.fixture
def mentions() -> Iterator[CommandMentions]:
    """The process's registry, left as it was found (empty: no bot is running between tests)."""
    yield texts.MENTIONS
    texts.MENTIONS.forget()


def test_without_ids_hints_are_the_names_members_see(mentions: CommandMentions) -> None:
    """Before a sync (or in a test without one), a hint is plain text in the reader's language."""
    assert texts.describe("jobs_none", lang="es").endswith("Prueba `/lipsync`.")
    assert texts.style_for("es").command("cancel") == "`/cancelar`"


def test_with_ids_hints_are_mentions_discord_shows_in_the_readers_language(mentions: CommandMentions) -> None:
    """`</name:id>` with the code's name: Discord shows it translated and makes it clickable."""
    mentions.learn([Synced("lipsync", 11), Synced("cancel", 22), Synced("lipsync-admin", 33)])

    assert texts.style_for("es").command("cancel") == "</cancel:22>"
    assert texts.describe("jobs_none", lang="en").endswith("Try </lipsync:11>.")
    assert mentions.mention("lipsync-admin grant") == "</lipsync-admin grant:33>"  # a subcommand: its group's id
    assert mentions.mention("queue") is None  # not synced: the caller writes `/queue`
    assert texts.style_for("en").command("queue") == "`/queue`"

    mentions.forget()
    assert texts.style_for("en").command("cancel") == "`/cancel`"
