"""A local stand-in for the Magic Hour API over real HTTP, for tests, benchmarks and trying the bot.

Same endpoints, validation, statuses and error bodies as the real API, with presigned-style
upload and download URLs on a separate storage listener, statuses that follow a clock, credit
estimates and settlement, fault switches and counters. Its render is real media but no lip sync.
"""

from __future__ import annotations

from bot.sandbox.config import SandboxConfig
from bot.sandbox.counters import Counters
from bot.sandbox.faults import ROUTES, Faults, Route
from bot.sandbox.projects import Project, Status
from bot.sandbox.render import SANDBOX_LABEL
from bot.sandbox.server import Sandbox, serve_forever

__all__ = [
    "ROUTES",
    "SANDBOX_LABEL",
    "Counters",
    "Faults",
    "Project",
    "Route",
    "Sandbox",
    "SandboxConfig",
    "Status",
    "serve_forever",
]
