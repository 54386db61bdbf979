"""Every text the bot shows in Discord, as pure functions of engine and store records.

Nothing here talks to Discord or the database, so each message can be tested (and read) on its
own. The words come from the shared catalogue (`bot.words`, one file per language), written in a
`DiscordStyle` for the reader's language: times as Discord's timestamp markup (`<t:…:R>`), which
each member's client renders in their own language and time zone and which keeps counting without
edits; commands as `/name` in that language; members' file names in code spans they can't break
out of. What is Discord's own markup (bold, links, emoji, mentions) is added here, never in the
templates, so a translator only ever sees words.

Every function takes `lang`, a catalogue language (`bot.words.language_for` of a Discord locale):
an answer to an interaction is in the language of whoever acted (`cogs.locale.language_of`); a
job's status message and result are in the language of the member who started it (stored with the
job, `JobRecord.locale`).

Three rules hold for every message here:

- **Credits are stated one way.** What a job cost is `cost_text` (or `cost_short` in lists): what
  the ledger settled (`JobRecord.charged_credits`), 0 with "refunded" for a job that cost
  nothing, an estimate while it runs. What a member has left is `left_text`: the effective amount
  across allowance, server pool and bot budget (`EffectiveLimits.remaining`), naming the pool or
  budget when that is what limits it. Numbers have the language's separators (`bot.words.credits`).
- **Balances are private.** Only ephemeral answers (and managers' ephemeral answers) carry what a
  member has left; public messages carry what a job costs, never a balance.
- **Members see no internals**: no signed download URLs (buttons carry them), no Magic Hour
  project ids (logs and the managers' report have them), no raw state names.

The texts live in private modules grouped by subject: `_style` (how Discord writes the words,
shared helpers), `_credits`, `_jobs` (a job's status and result), `_members` and `_managers`;
this package re-exports their public names as its one surface.
"""

from __future__ import annotations

from cogs.render._credits import binding_limit, cost_short, cost_text, grant_line, left_text, limited_by
from cogs.render._jobs import (
    canceled_text,
    fresh_link_text,
    is_refusal,
    job_language,
    not_started_public,
    not_started_text,
    result_text,
    started_text,
    status_text,
)
from cogs.render._managers import grant_text, settings_text, usage_text
from cogs.render._members import (
    RunningJob,
    forget_prompt,
    forgotten_text,
    jobs_text,
    panel_text,
    queue_text,
    quota_text,
)
from cogs.render._style import (
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
    sandbox_note,
    state_label,
    style_for,
)

__all__ = [
    "DISCORD",
    "EN",
    "MAX_BUTTON_URL",
    "MAX_CONTENT",
    "SANDBOX_NOTE",
    "TIMED_STATES",
    "DiscordStyle",
    "RunningJob",
    "apology",
    "binding_limit",
    "bold",
    "button_label",
    "canceled_text",
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
    "forget_prompt",
    "forgotten_text",
    "fresh_link_text",
    "grant_line",
    "grant_text",
    "is_refusal",
    "job_language",
    "jobs_text",
    "jump_url",
    "left_text",
    "limited_by",
    "mode_label",
    "not_started_public",
    "not_started_text",
    "option_name",
    "panel_text",
    "per_window",
    "queue_text",
    "quota_text",
    "result_text",
    "sandbox_note",
    "settings_text",
    "started_text",
    "state_label",
    "status_text",
    "style_for",
    "usage_text",
]
