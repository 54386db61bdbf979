"""Everything one sandbox holds, shared by the API and storage listeners."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.clock import Clock
from bot.sandbox.config import SandboxConfig
from bot.sandbox.counters import Counters
from bot.sandbox.faults import Faults
from bot.sandbox.projects import DeleteNote, Project
from bot.sandbox.signing import UrlSigner
from bot.sandbox.timefmt import new_id


@dataclass
class SandboxState:
    """The account, uploads, projects, switches and counters of one sandbox."""

    config: SandboxConfig
    clock: Clock
    data_dir: Path
    faults: Faults = field(init=False)
    counters: Counters = field(default_factory=Counters)
    signer: UrlSigner = field(default_factory=UrlSigner)
    account_id: str = field(default_factory=new_id)
    # file_path ("api-assets/...") -> where the uploaded bytes are on disk.
    uploads: dict[str, Path] = field(default_factory=dict)
    projects: dict[str, Project] = field(default_factory=dict)
    deletes: list[DeleteNote] = field(default_factory=list)
    storage_url: str = ""
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    render_slots: asyncio.Semaphore | None = None
    render_rng: random.Random = field(init=False)
    # Called after every change a later sandbox on the same folder needs (`bot.sandbox.persist`).
    on_change: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        # Storms over time end by the sandbox clock.
        self.faults = Faults(clock=self.clock)
        # Render-time noise; reproducible, not for cryptography.
        self.render_rng = random.Random(self.config.render_seed)  # noqa: S311

    @property
    def uploads_dir(self) -> Path:
        """Where uploaded files are stored."""
        return self.data_dir / "uploads"

    @property
    def outputs_dir(self) -> Path:
        """Where rendered results are stored."""
        return self.data_dir / "outputs"

    def changed(self) -> None:
        """Something worth keeping changed (an upload, a project made or ended): tell the journal, if any."""
        if self.on_change is not None:
            self.on_change()

    def now_unix(self) -> float:
        """The sandbox clock's wall time as Unix seconds (URL expiry follows the sandbox clock)."""
        return self.clock.now().timestamp()
