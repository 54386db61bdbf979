"""A local stand-in for the Magic Hour API over real HTTP, for tests, benchmarks and trying the bot.

Same endpoints, validation, statuses and `{"message": ...}` error bodies as the real API, with
presigned-style upload and download URLs on a separate storage listener, statuses that follow a
clock, credit estimates and settlement (`billing`), fault switches (`faults`) and counters. Every
answer carries `X-Magic-Hour-Sandbox: 1`. Its render is real media but no lip sync (`output`).

    async with Sandbox(SandboxConfig(), data_dir=tmp_path, clock=FakeClock()) as sb:
        client_base_url = sb.base_url        # API; bearer auth with config.api_key
        sb.faults.fail("create", status=429) # etc.

docs/design-notes.md, "The sandbox", says how it answers where the real API is silent.
"""

from __future__ import annotations

from bot.sandbox.config import SandboxConfig
from bot.sandbox.counters import Counters
from bot.sandbox.faults import ROUTES, Faults, FaultSpec, Route, parse_fault_spec
from bot.sandbox.middleware import SANDBOX_HEADER
from bot.sandbox.output import SANDBOX_LABEL
from bot.sandbox.projects import DeleteNote, Project, ReadNote, Status
from bot.sandbox.server import Sandbox, serve_forever

__all__ = [
    "ROUTES",
    "SANDBOX_HEADER",
    "SANDBOX_LABEL",
    "Counters",
    "DeleteNote",
    "FaultSpec",
    "Faults",
    "Project",
    "ReadNote",
    "Route",
    "Sandbox",
    "SandboxConfig",
    "Status",
    "parse_fault_spec",
    "serve_forever",
]
