"""`Sandbox`: the API and storage listeners around one `SandboxState`, and `serve_forever` for the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from aiohttp import web

from bot.clock import Clock, SystemClock
from bot.sandbox import jobs, persist, webhooks
from bot.sandbox.api import make_api_app
from bot.sandbox.config import SandboxConfig
from bot.sandbox.counters import Counters
from bot.sandbox.faults import Faults, FaultSpec
from bot.sandbox.projects import DeleteNote, Project
from bot.sandbox.state import SandboxState
from bot.sandbox.storage import make_storage_app


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):  # noqa: S104 - comparing, not binding
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


class Sandbox:
    """A local Magic Hour over real HTTP: use as `async with Sandbox(config, data_dir=...) as sb`.

    The API listens on `port` and storage (upload and download URLs) on `storage_port`, a
    separate host as far as clients are concerned; 0 picks a free port. Statuses follow `clock`
    (a `SystemClock` unless given), so a `FakeClock` drives every transition in tests.
    `persistent` keeps its account, uploads and projects in `data_dir` for the next sandbox
    there (`bot.sandbox.persist`): what a terminal trial needs to leave a job running.
    """

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        data_dir: Path,
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        storage_port: int = 0,
        persistent: bool = False,
    ) -> None:
        self._state = SandboxState(config=config or SandboxConfig(), clock=clock or SystemClock(), data_dir=data_dir)
        self._persistent = persistent
        self._host = host
        self._port = port
        self._storage_port = storage_port
        self._runners: list[web.AppRunner] = []
        self.base_url = ""
        self.storage_url = ""

    @property
    def config(self) -> SandboxConfig:
        """The live settings; changes apply to later requests and jobs."""
        return self._state.config

    @property
    def clock(self) -> Clock:
        """The clock statuses and URL expiry follow."""
        return self._state.clock

    @property
    def credits(self) -> int:
        """The account balance now (the same number as `config.credits`)."""
        return self._state.config.credits

    @credits.setter
    def credits(self, value: int) -> None:
        self._state.config.credits = value

    @property
    def projects(self) -> dict[str, Project]:
        """Every project created, by id, for inspection."""
        return self._state.projects

    def charged(self, project_id: str) -> int:
        """Credits the account stands charged for this project now (`KeyError` if there is none).

        The estimate while it runs, the settled amount once complete, 0 once refunded (error,
        canceled): what a client's ledger should show for it once the project has ended.
        """
        return self._state.projects[project_id].credits_charged

    @property
    def charged_total(self) -> int:
        """Credits charged for every project together (the account's spending, grants aside)."""
        return sum(project.credits_charged for project in self._state.projects.values())

    @property
    def deletes(self) -> list[DeleteNote]:
        """Every DELETE that reached a project, in order: what it found, and what its client last read."""
        return self._state.deletes

    async def finish_due(self) -> None:
        """Finalise every project the clock says has finished (as a read of each would), so that
        `charged` and `status` show where each render ended without a client asking."""
        now = self._state.clock.monotonic()
        for project in list(self._state.projects.values()):
            if project.is_due(now):
                await jobs.finalise(self._state, project)

    @property
    def uploads(self) -> dict[str, Path]:
        """Every completed upload: `file_path` -> file on disk."""
        return self._state.uploads

    @property
    def faults(self) -> Faults:
        """The fault switches."""
        return self._state.faults

    @property
    def counters(self) -> Counters:
        """Requests per route, jobs created, bytes moved."""
        return self._state.counters

    @property
    def state(self) -> SandboxState:
        """Everything the sandbox holds (for advanced inspection)."""
        return self._state

    async def _start_site(self, app: web.Application, port: int) -> int:
        # handler_cancellation: a client that goes away ends a held ("hang") or half-read request.
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await runner.setup()
        self._runners.append(runner)
        site = web.TCPSite(runner, self._host, port)
        await site.start()
        # (host, port) or (host, port, flowinfo, scope_id) for IPv6; port 0 was resolved at bind.
        return int(runner.addresses[0][1])

    async def start(self) -> None:
        """Bind both listeners and get ready to serve."""
        state = self._state
        for folder in (state.uploads_dir, state.outputs_dir):
            await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        state.render_slots = asyncio.Semaphore(state.config.max_concurrent_renders)
        if self._persistent:
            for project in await asyncio.to_thread(persist.load, state):
                jobs.start_render(state, project)
                webhooks.announce(state, project)
            state.on_change = lambda: persist.save(state)
        try:
            storage_port = await self._start_site(make_storage_app(state), self._storage_port)
            self.storage_url = f"http://{_url_host(self._host)}:{storage_port}"
            state.storage_url = self.storage_url
            api_port = await self._start_site(make_api_app(state), self._port)
            self.base_url = f"http://{_url_host(self._host)}:{api_port}"
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Release held requests, stop renders and close both listeners."""
        self._state.faults.release()
        tasks = list(self._state.tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def serve_forever(
    config: SandboxConfig,
    data_dir: Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    storage_port: int = 0,
    faults: Sequence[FaultSpec] = (),
    seed: int = 0,
) -> None:
    """Run a sandbox until cancelled (Ctrl-C under `asyncio.run`), printing how to reach it.

    `faults` (the CLI's `--fault`) become random rules seeded with `seed` (`Faults.apply`). The
    API key printed is the sandbox's own, not a Magic Hour secret.
    """
    async with Sandbox(config, data_dir=data_dir, host=host, port=port, storage_port=storage_port) as sb:
        sb.faults.apply(faults, seed=seed)
        lines = sb.faults.describe()
        fault_text = "".join(f"  Fault:        {line}\n" for line in lines) if lines else "  Faults:       none\n"
        timing = (
            f"{config.render_overhead_seconds:g} s + {config.render_seconds_per_frame:g} s/frame"
            f" (noise {config.render_noise:.0%})"
            if config.render_seconds_per_frame > 0
            else f"{config.render_seconds:g} s"
        )
        sys.stdout.write(
            "Magic Hour sandbox running (no credits are spent; results are NOT lip-synced).\n"
            f"  API base URL: {sb.base_url}\n"
            f"  Storage URL:  {sb.storage_url}\n"
            f"  API key:      {config.api_key}\n"
            f"  Credits:      {config.credits}   Tier: {config.tier}\n"
            f"  Queue/render: {config.queue_seconds:g} s / {timing}\n"
            f"{fault_text}"
            f"  Seed:         {seed}\n"
            f"  Data dir:     {data_dir}\n"
            "Press Ctrl-C to stop.\n"
        )
        sys.stdout.flush()
        await asyncio.Event().wait()
