"""Where the terminal saves results: `--out` (a file, or a folder with a trailing slash), else `results/`."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from bot.jobs.models import Delivery, LinkProvider
from bot.store import JobRecord

DEFAULT_FOLDER = Path("results")  # under the folder `lipsync-bot` runs in; .gitignore lists it


@dataclass(frozen=True)
class Output:
    """A folder, and the file name to use there (None: the result's own name)."""

    folder: Path
    name: str | None = None

    @classmethod
    def parse(cls, raw: str | None, *, folder_only: bool = False) -> Output:
        """`--out` as typed: a trailing slash or an existing folder means a folder; else a file.

        Kept as the typed text, not a `Path`, because `Path("some/dir/")` forgets the slash.
        """
        if raw is None:
            return cls(DEFAULT_FOLDER)
        path = Path(raw).expanduser()
        if folder_only or raw.endswith(("/", os.sep)) or path.is_dir():
            return cls(path)
        return cls(path.parent, path.name)

    def path_for(self, result_name: str) -> Path:
        """Where a result called `result_name` goes."""
        return self.folder / (self.name or result_name)


class SaveToFile:
    """Delivers by moving the result to the chosen output path (or printing a link to it)."""

    def __init__(self, output: Output, console: Console | None = None) -> None:
        self._output = output
        self._console = console
        self.saved: Path | None = None
        self.sandbox = False

    async def deliver(self, job: JobRecord, result: Path | None, *, sandbox: bool, link: LinkProvider) -> Delivery:
        """Move the result out of the job's temporary folder; with no file, print a fresh link."""
        self.sandbox = sandbox
        if result is None:
            url = await link()
            if self._console is not None:
                self._console.print(f"Job #{job.id}'s result couldn't be downloaded here; fetch it from: {url}")
            return Delivery(kind="link")
        target = self._output.path_for(result.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(result), target)
        target.chmod(0o644)  # the download was a private temporary file; the result is the user's
        self.saved = target
        return Delivery(kind="local", detail=str(target))
