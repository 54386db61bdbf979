"""How the terminal writes the catalogue's sentences: local times, `lipsync-bot` commands, settings by name."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

from rich.markup import escape

from bot import words
from bot.config import env_file_path
from bot.store import JobState

TERMINAL_USER_ID = 0  # jobs from the command line belong to "the operator at the terminal"

STATE_WORDS = {
    JobState.RECEIVED: "Waiting",
    JobState.FETCHING: "Reading inputs",
    JobState.UPLOADING: "Uploading to Magic Hour",
    JobState.CREATING: "Starting the job at Magic Hour",
    JobState.SUBMITTED: "Queued at Magic Hour",
    JobState.RENDERING: "Rendering",
    JobState.DOWNLOADING: "Downloading the result",
    JobState.DELIVERING: "Saving",
    JobState.DONE: "Done",
    JobState.FAILED: "Failed",
    JobState.CANCELED: "Canceled",
}

_OPTIONS = {"youtube_url": "--youtube", "video": "VIDEO", "audio": "AUDIO", "name": "--name"}


def state_words(state: JobState) -> str:
    """A job's state as the progress line says it."""
    return STATE_WORDS.get(state, state.value)


class TerminalStyle:
    """How the catalogue's sentences are written in a terminal.

    `sandbox`: the commands it names are the trial's own (`lipsync-bot resume --sandbox`): the
    trial's jobs live in the trial's database, which the plain command never opens.
    """

    def __init__(self, *, sandbox: bool = False) -> None:
        self.sandbox = sandbox

    def when(self, moment: dt.datetime) -> str:
        """The moment in the machine's local time."""
        return moment.astimezone().strftime("%Y-%m-%d %H:%M %Z")

    def command(self, name: str) -> str:
        """The terminal's way to do what the Discord command `name` does."""
        if name == "cancel":
            return "Ctrl+C in the terminal that runs it"
        flag = " --sandbox" if self.sandbox and name in ("lipsync", "resume") else ""
        return f"`lipsync-bot {'render' if name == 'lipsync' else name}{flag}`"

    def quote(self, text: str) -> str:
        """A file name in quotes."""
        return f"'{text}'"

    def member(self, user_id: int) -> str:
        """The operator at the terminal, or a member by id."""
        return "you" if user_id == TERMINAL_USER_ID else f"member {user_id}"

    def option(self, name: str) -> str:
        """The `render` flag for a `/lipsync` option."""
        return _OPTIONS.get(name, f"--{name.replace('_', '-')}")


TERMINAL = TerminalStyle()
TRIAL = TerminalStyle(sandbox=True)


def describe(code: str, data: Mapping[str, object], style: TerminalStyle = TERMINAL) -> str:
    """The catalogue's sentence for `code`, written for the terminal (rich markup escaped)."""
    return escape(words.describe(code, data, style))


# The allowance a terminal job is measured against, by the limit that refused it. The terminal's
# user belongs to no server, so only the bot-wide settings can apply.
_MEMBER_LIMITS = frozenset({"member", "role", "server_default", "global_default"})


def setting_to_raise(code: str, *, trial: bool) -> str | None:
    """The setting that would let a refused terminal job through, or None if no setting would."""
    if not code.startswith("quota_"):  # (one job at a time: the refusal says how to end the other)
        return None
    kind = code.removeprefix("quota_").removesuffix("_spent").removesuffix("_hold")
    if kind == "bot_budget":
        return "BOT_BUDGET_CREDITS"
    if kind in _MEMBER_LIMITS:
        return "TRIAL_CREDITS" if trial else "DEFAULT_MEMBER_CREDITS"
    return None


def env_file() -> Path:
    """The `.env` the settings are read from: the one in the folder `lipsync-bot` runs in."""
    return env_file_path()
