"""The words every Discord text shares: the style for the reader's language, and credit figures.

Pure functions of engine and store records; nothing here talks to Discord or the database. Each
feature keeps its own texts beside it (`cogs/lipsync/_texts.py`, `cogs/manage/_texts.py`);
docs/design-notes.md, "Words and languages", gives the rules every message keeps.
"""

from __future__ import annotations

from cogs.texts._balance import balance_lines, grant_lines, left_text, limited_by, over_line, source_text
from cogs.texts._credits import cost_short, cost_text, quote_text
from cogs.texts._mentions import MENTIONS, CommandMentions
from cogs.texts._style import (
    DISCORD,
    EN,
    MAX_BUTTON_URL,
    MAX_CONTENT,
    SANDBOX_NOTE,
    TIMED_STATES,
    DiscordStyle,
    apology,
    bold,
    button_label,
    coarse_duration,
    command_name,
    credits,
    describe,
    discord_timestamp,
    duration,
    error_text,
    failure_text,
    jump_url,
    mode_label,
    option_name,
    per_window,
    progress_bar,
    sandbox_note,
    span,
    state_label,
    style_for,
)

__all__ = [
    "DISCORD",
    "EN",
    "MAX_BUTTON_URL",
    "MAX_CONTENT",
    "MENTIONS",
    "SANDBOX_NOTE",
    "TIMED_STATES",
    "CommandMentions",
    "DiscordStyle",
    "apology",
    "balance_lines",
    "bold",
    "button_label",
    "coarse_duration",
    "command_name",
    "cost_short",
    "cost_text",
    "credits",
    "describe",
    "discord_timestamp",
    "duration",
    "error_text",
    "failure_text",
    "grant_lines",
    "jump_url",
    "left_text",
    "limited_by",
    "mode_label",
    "option_name",
    "over_line",
    "per_window",
    "progress_bar",
    "quote_text",
    "sandbox_note",
    "source_text",
    "span",
    "state_label",
    "style_for",
]
