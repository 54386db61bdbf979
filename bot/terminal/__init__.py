"""`lipsync-bot render` and `resume`: jobs from the terminal, through the same engine and store as the bot.

The terminal is one of the two front ends that make words: the catalogue's sentences are written
here in `TERMINAL` style (local times, `lipsync-bot` commands, quoted file names), or `TRIAL`
style for a `--sandbox` trial, whose commands carry `--sandbox`.

- `style.py`: that style, the progress line's state words, and which setting a refusal names.
- `commands.py`: `render`, `resume` and `reconcile`.
- `progress.py`: the live progress line; `output.py`: where results are saved.
- `interrupt.py`: Ctrl+C while a job runs asks what to do with it.
"""

from bot.terminal.commands import RenderOptions, reconcile, render, request_from_paths, resume
from bot.terminal.output import DEFAULT_FOLDER, Output, SaveToFile
from bot.terminal.style import TERMINAL, TERMINAL_USER_ID, TRIAL, TerminalStyle, describe

__all__ = [
    "DEFAULT_FOLDER",
    "TERMINAL",
    "TERMINAL_USER_ID",
    "TRIAL",
    "Output",
    "RenderOptions",
    "SaveToFile",
    "TerminalStyle",
    "describe",
    "reconcile",
    "render",
    "request_from_paths",
    "resume",
]
