"""The terminal's progress line: a job's state, its place in the queue, and its credits."""

from __future__ import annotations

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from bot import words
from bot.jobs.models import JobUpdate
from bot.jobs.quote import quote_of
from bot.terminal.style import describe, state_words

COLUMNS = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())


def progress_bar(console: Console) -> Progress:
    """A rich progress display with the terminal's columns, kept on screen when it ends."""
    return Progress(*COLUMNS, console=console, transient=False)


class ProgressDisplay:
    """A rich progress line that follows one job's state (`label` sets it apart from others)."""

    def __init__(self, progress: Progress, label: str = "") -> None:
        self._progress = progress
        self._label = label
        self._task = progress.add_task(f"{label}Starting", total=None)
        self.last: JobUpdate | None = None

    async def update(self, update: JobUpdate) -> None:
        """Show the job's state, queue place and credits: set aside while it runs, charged once known."""
        self.last = update
        job = update.job
        text = state_words(job.state)
        if update.queue_position:
            text = f"Waiting for a free slot (#{update.queue_position} in line)"
        if update.activity:
            text = f"{text}: {describe(update.activity, update.activity_data)}"
        if job.charged_credits is not None:
            text = f"{text}  [dim]{words.credits(job.charged_credits)} charged[/dim]"
        elif (quote := quote_of(job)) is not None:
            text = f"{text}  [dim]{describe(*quote.sentence())}[/dim]"
        done = job.state.terminal
        self._progress.update(
            self._task, description=self._label + text, total=1 if done else None, completed=1 if done else 0
        )
