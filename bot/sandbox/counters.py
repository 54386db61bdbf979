"""What the sandbox has seen, for tests and benchmarks to assert on."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field


@dataclass
class Counters:
    """Request counts per route (faulted ones included), projects created, faults injected, bytes moved.

    `jobs_created` counts creates that made a project (whatever answer the client got), so
    "no duplicate creates" reads `jobs_created == <jobs the client submitted>`. Credits charged
    per project are on the sandbox itself: `sb.charged(project_id)`.
    """

    requests: collections.Counter[str] = field(default_factory=collections.Counter)
    jobs_created: int = 0
    # "<route>:<label>", e.g. "get_project:503", "create:lost", "get_project:malformed".
    faults_injected: collections.Counter[str] = field(default_factory=collections.Counter)
    # Webhooks sent, "<event>:<answer>": "video.completed:200", "video.errored:unreachable", "...:lost".
    webhooks: collections.Counter[str] = field(default_factory=collections.Counter)
    bytes_uploaded: int = 0
    bytes_downloaded: int = 0
    # Live figures, not history (`reset` leaves them): requests being handled now, and how many of
    # them a `hang` fault holds. A test waits for `in_flight == held` before it moves a fake clock.
    in_flight: int = 0
    held: int = 0

    @property
    def creates(self) -> int:
        """`POST /v1/lip-sync` requests received, faulted ones included (see `jobs_created`)."""
        return self.requests["create"]

    @property
    def status_reads(self) -> int:
        """`GET /v1/video-projects/{id}` requests received, faulted ones included."""
        return self.requests["get_project"]

    @property
    def deletes(self) -> int:
        """`DELETE /v1/video-projects/{id}` requests received, faulted ones included."""
        return self.requests["delete_project"]

    def reset(self) -> None:
        """Zero the history (the live `in_flight` and `held` stay as they are)."""
        self.requests.clear()
        self.jobs_created = 0
        self.faults_injected.clear()
        self.webhooks.clear()
        self.bytes_uploaded = 0
        self.bytes_downloaded = 0
