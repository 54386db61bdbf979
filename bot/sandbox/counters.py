"""What the sandbox has seen, for tests and benchmarks to assert on."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field


@dataclass
class Counters:
    """Request counts per route (faulted ones included), jobs created and bytes moved."""

    requests: collections.Counter[str] = field(default_factory=collections.Counter)
    jobs_created: int = 0
    bytes_uploaded: int = 0
    bytes_downloaded: int = 0

    def reset(self) -> None:
        """Zero everything."""
        self.requests.clear()
        self.jobs_created = 0
        self.bytes_uploaded = 0
        self.bytes_downloaded = 0
