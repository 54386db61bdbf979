"""How Discord writes the catalogue's words: its style, the shared helpers, and labels."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping

from bot import words
from bot.config import GenerationMode, QuotaWindow
from bot.errors import LipsyncError
from bot.jobs.endings import UNREAD_REASONS
from bot.store import UNKNOWN_AT_MAGIC_HOUR, JobRecord, JobState
from cogs.texts._mentions import MENTIONS

EN = words.DEFAULT_LANGUAGE


def discord_timestamp(moment: dt.datetime, style: str = "R") -> str:
    """Discord's timestamp markup, e.g. `<t:1764115200:R>` ("in 3 hours" in the viewer's locale)."""
    return f"<t:{int(moment.timestamp())}:{style}>"


def command_name(name: str, *, language: str | None = None) -> str:
    """A command's name as the reader sees it in Discord (`cancel` -> `cancelar`)."""
    return words.commands(language or words.current()).get(name) or name


def option_name(name: str, command: str = "lipsync", *, language: str | None = None) -> str:
    """One of a command's options as the reader sees it (`end` -> `fin`)."""
    return words.commands(language or words.current()).get(f"{command}.{name}") or name


class DiscordStyle:
    """How the catalogue's sentences are written in Discord: for one language, or the reader's (None)."""

    def __init__(self, language: str | None = None) -> None:
        self._language = language

    @property
    def language(self) -> str:
        """The language command and option names are written in."""
        return self._language or words.current()

    def when(self, moment: dt.datetime) -> str:
        """A relative Discord timestamp."""
        return discord_timestamp(moment)

    def command(self, name: str) -> str:
        """A slash command as a clickable mention (Discord shows it in the reader's language), or,
        while its id isn't known, as a code span with the name this language's members see."""
        return MENTIONS.mention(name) or f"`/{command_name(name, language=self.language)}`"

    def quote(self, text: str) -> str:
        """A member's name for something, in a code span it can't close early."""
        return f"`{text.replace('`', 'ˋ')}`"

    def member(self, user_id: int) -> str:
        """A mention (messages that carry one allow only the intended member to be pinged)."""
        return f"<@{user_id}>"

    def option(self, name: str) -> str:
        """A `/lipsync` option, as a code span, by the name this language's members see."""
        return f"`{option_name(name, language=self.language)}`"


DISCORD = DiscordStyle()
"""The Discord style for the reader's language (`words.current()`)."""


@functools.cache
def style_for(language: str) -> DiscordStyle:
    """The Discord style for one given language, whoever reads."""
    return DiscordStyle(language)


# Discord rejects message content over 2000 characters, and link buttons whose URL is longer than 512.
MAX_CONTENT = 2000
MAX_BUTTON_URL = 512


def _clip(text: str) -> str:
    # Long error messages or many limits must never make Discord refuse the whole message.
    return text if len(text) <= MAX_CONTENT else text[: MAX_CONTENT - 1] + "…"


def describe(code: str, data: Mapping[str, object] | None = None, lang: str | None = None) -> str:
    """The catalogue's sentence for `code`, written for Discord in `lang`, else the reader's language.

    Clipped to what Discord accepts: a sentence quoting a member's 1,000-character file name must
    still reach them (a message over the limit is refused whole).
    """
    language = lang or words.current()
    return _clip(words.describe(code, data or {}, style_for(language), language))


def error_text(error: LipsyncError) -> str:
    """What a member reads for one of the bot's errors."""
    return describe(error.code, error.data)


def failure_text(job: JobRecord) -> str:
    """Why a job failed, from the code and data stored with it.

    A job whose fate at Magic Hour is unknown says why it is (lost while starting, or Magic Hour
    couldn't be read afterwards), and once the operator has reconciled it, that it was checked.
    """
    code = job.error_code or "error"
    if code == UNKNOWN_AT_MAGIC_HOUR:
        if not job.fate_unknown:
            code = "unknown_reconciled"
        elif (job.error_data or {}).get("reason") in _UNREAD_REASONS:
            code = "unknown_at_magic_hour_unread"
    return describe(code, job.error_data or {})


# Why a submitted job's fate can be unknown after it was made: Magic Hour couldn't be read. The
# other reasons (no answer to the create, a stop while creating) are about starting it, as is
# every such job recorded before reasons were.
_UNREAD_REASONS = UNREAD_REASONS


def sandbox_note() -> str:
    """How a sandbox render counts, under every sandbox job's messages."""
    return f"🧪 {describe('sandbox_note')}"


SANDBOX_NOTE = f"🧪 {describe('sandbox_note', lang=EN)}"  # in English, whoever imports this first


_STATE_EMOJI: dict[JobState, str] = {
    JobState.RECEIVED: "⏳",
    JobState.FETCHING: "📥",
    JobState.UPLOADING: "📤",
    JobState.CREATING: "📨",
    JobState.SUBMITTED: "🕒",
    JobState.RENDERING: "🎬",
    JobState.DOWNLOADING: "📥",
    JobState.DELIVERING: "📨",
    JobState.DONE: "✅",
    JobState.FAILED: "❌",
    JobState.CANCELED: "🛑",
}

# Progress bars: this many cells, and never full before the render has really ended.
BAR_CELLS = 10
BAR_MOST = 0.9

# States whose line counts the time spent in them (and shows the expected finish, when known).
TIMED_STATES: frozenset[JobState] = frozenset({JobState.SUBMITTED, JobState.RENDERING})

_MODE_COSTS: dict[GenerationMode, str] = {
    mode: f"{mode.credits_per_frame} credit{'s' if mode.credits_per_frame > 1 else ''}/frame" for mode in GenerationMode
}


def state_label(state: JobState) -> str:
    """A state as members read it: "🎬 Rendering at Magic Hour", never the raw state name."""
    return f"{_STATE_EMOJI[state]} {describe(f'state_{state.value}')}"


def per_window(window: QuotaWindow) -> str:
    """How often an allowance renews: "per day"."""
    return describe(f"per_{window.value}")


def mode_label(mode: GenerationMode) -> str:
    """A mode with its price, for the `/lipsync` choices: "lite — 1 credit/frame".

    The English default Discord is sent; other languages' labels are the catalogue's `[commands]`
    `choice.<mode>` entries, which the translator gives Discord.
    """
    return f"{mode.value} — {_MODE_COSTS[mode]}"


def credits(n: int) -> str:
    """ "1 credit", "1,234 credits", in the reader's language."""
    return words.credits(n, words.current())


def duration(seconds: float) -> str:
    """A short elapsed time, to the second, in the reader's language: "8 s", "2:05", "1:04:00", "3 h"."""
    return words.seconds(max(0, round(seconds)), words.current())


def coarse_duration(seconds: float) -> str:
    """A running time that changes about once a minute: "40 s", "3 min", "1 h 4 min".

    Under a minute it moves in 10-second steps; so a status message refreshed every few seconds is
    edited only when the words change.
    """
    total = max(0, int(seconds))
    if total < 60:
        if total < 10:
            return describe("duration_few")
        return describe("duration_s", {"s": total // 10 * 10})
    hours, rest = divmod(total, 3600)
    minutes = rest // 60
    if hours:
        return describe("duration_h_min", {"h": hours, "min": minutes})
    return describe("duration_min", {"min": minutes})


def progress_bar(fraction: float) -> str:
    """A bar of `BAR_CELLS` cells and its percentage, in steps of a cell: "▰▰▰▱▱▱▱▱▱▱ 30%"."""
    filled = int(min(max(fraction, 0.0), BAR_MOST) * BAR_CELLS)
    return f"{'▰' * filled}{'▱' * (BAR_CELLS - filled)} {filled * 100 // BAR_CELLS}%"


def span(start: float, end: float) -> str:
    """A part of a clip, exactly as rendered, in the reader's language: "0–1.5 s", "0:45–1:30"."""
    lang = words.current()
    if round(end, 1) < 60:
        low, high = words.decimal(round(start, 2), lang), words.decimal(round(end, 2), lang)
        return f"{low}–{high} s"
    low = words.seconds(start, lang) if round(start) >= 60 else f"0:{round(start):02}"
    return f"{low}–{words.seconds(end, lang)}"


def jump_url(guild_id: int | None, channel_id: int, message_id: int) -> str:
    """A link that opens a message in Discord."""
    return f"https://discord.com/channels/{guild_id if guild_id is not None else '@me'}/{channel_id}/{message_id}"


def bold(text: str) -> str:
    """Discord's bold markup."""
    return f"**{text}**"


def button_label(code: str, **data: object) -> str:
    """A button's label in the reader's language (Discord allows 80 characters)."""
    return describe(code, data)[:80]


def apology(reference: str) -> str:
    """The reply to an error nobody planned for."""
    return describe("apology", {"reference": f"`{reference}`"})
