"""The crash matrix: a real engine process, killed with SIGKILL in each state, then restarted.

For every state a job passes through, a process (`crash_target.py`) runs one job on a real
SQLite file against the sandbox, is held in that state by a sandbox switch (or a hanging input
host, or a deliverer that never returns), and is killed. A new engine then resumes. Each job must
end delivered exactly once, or refunded with a true reason, or "unknown at Magic Hour" counted
against the budget; the ledger's charge equals what the sandbox charged; the store's invariants
hold.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from bot.clock import FakeClock
from bot.jobs.models import JobHooks
from bot.sandbox import Sandbox
from bot.services import Services
from bot.store import JobState
from tests.conftest import SANDBOX_KEY, KeepFile, RecordingSink, make_settings

GUILD, USER = 1, 42


@dataclass(frozen=True)
class Case:
    """Where the process is killed, how it is held there, and how the job must end."""

    kill_in: str  # the state printed by the target when it is killed
    hold: Callable[[Sandbox], None]
    ends: JobState
    code: str | None = None  # the job's error code when it fails
    delivered: bool = False
    charged_like_sandbox: bool = True
    block_delivery: bool = False
    fetch_url: bool = False
    # What must also be true before the kill (beyond the state): the create reached the sandbox.
    created_first: bool = False


def _nothing(sandbox: Sandbox) -> None:
    del sandbox


def _long_queue(sandbox: Sandbox) -> None:
    sandbox.config.queue_seconds = 3600


def _long_render(sandbox: Sandbox) -> None:
    sandbox.config.render_seconds = 3600


CASES = [
    Case("fetching", _nothing, JobState.FAILED, "interrupted", charged_like_sandbox=False, fetch_url=True),
    Case(
        "uploading",
        lambda sb: sb.faults.hang("storage_put"),
        JobState.FAILED,
        "interrupted",
        charged_like_sandbox=False,
    ),
    # Killed after Magic Hour made (and billed) the project, before its answer arrived.
    Case("creating", lambda sb: sb.faults.hang("create"), JobState.FAILED, "unknown_at_magic_hour", created_first=True),
    Case("submitted", _long_queue, JobState.DONE, delivered=True),
    Case("rendering", _long_render, JobState.DONE, delivered=True),
    Case("downloading", lambda sb: sb.faults.hang("download"), JobState.DONE, delivered=True),
    Case("delivering-held", _nothing, JobState.DONE, delivered=True, block_delivery=True),
]


@pytest.fixture
async def hanging_host() -> AsyncIterator[str]:
    """An input host that accepts the request and never answers: a fetch that never ends."""

    async def never(request: web.Request) -> web.StreamResponse:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    app = web.Application()
    app.router.add_get("/{name}", never)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/face.mp4"
    await runner.cleanup()


async def _run_until_killed(case: Case, sandbox: Sandbox, env: dict[str, str], video: str, audio: str) -> int:
    """Start the target, wait for the state, kill it with SIGKILL; return the job's id."""
    args = [sys.executable, str(Path(__file__).with_name("crash_target.py")), video, audio]
    if case.block_delivery:
        args.append("--block-delivery")
    proc = await asyncio.create_subprocess_exec(
        *args, env=env, cwd=Path(__file__).resolve().parents[2], stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    try:
        while True:
            line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
            assert line, f"the target exited before reaching {case.kill_in}"
            _, job, state = line.split()
            if state == case.kill_in:
                async with asyncio.timeout(30):
                    while case.created_first and sandbox.counters.jobs_created == 0:
                        await asyncio.sleep(0.01)  # the create's effect is observable in the sandbox
                return int(job)
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()


@pytest.mark.parametrize("case", CASES, ids=[c.kill_in for c in CASES])
async def test_killed_in_each_state_ends_right_after_restart(
    case: Case, tmp_path: Path, sandbox: Sandbox, media_dir: Path, hanging_host: str
) -> None:
    """SIGKILL in this state, restart: delivered once, or refunded truly, or counted as unknown."""
    settings = make_settings(tmp_path, sandbox.base_url, job_lease_seconds=3)
    env = {
        **os.environ,
        "MAGIC_HOUR_API_KEY": SANDBOX_KEY,
        "MAGIC_HOUR_BASE_URL": sandbox.base_url,
        "DATABASE_PATH": str(settings.database_path),
        "WORK_DIR": str(settings.work_dir),
        "POLL_INITIAL_SECONDS": "0.05",
        "POLL_MAX_SECONDS": "0.1",
        "DEFAULT_MEMBER_CREDITS": "10000",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    case.hold(sandbox)
    video = hanging_host if case.fetch_url else str(media_dir / "face.mp4")
    job_id = await _run_until_killed(case, sandbox, env, video, str(media_dir / "voice.mp3"))

    # Whatever held the job lets go, and every render finishes while nothing runs.
    sandbox.faults.clear()
    sandbox.config.queue_seconds = sandbox.config.render_seconds = 0
    assert isinstance(sandbox.clock, FakeClock)
    await sandbox.clock.advance(4000)

    services = await Services.open(settings)
    try:
        keeper = KeepFile(tmp_path / "delivered")
        # The killed process's claim holds until its heartbeat is found stopped (3 s here).
        resumed = await services.engine.resume(
            lambda job: JobHooks(sink=RecordingSink(), deliverer=keeper), settle=True
        )
        assert [job.id for job in resumed] == [job_id]
        final = await services.engine.wait(job_id)
        assert final.state is case.ends, final
        assert final.error_code == case.code
        assert len(keeper.delivered) == (1 if case.delivered else 0)
        limits = await services.store.quota.limits(GUILD, USER, ())
        assert limits.reserved == 0
        if case.charged_like_sandbox:
            assert final.project_id is not None or case.code == "unknown_at_magic_hour"
            [project] = sandbox.projects.values()
            assert final.charged_credits == sandbox.charged(project.id) > 0
            assert limits.used == final.charged_credits
        else:
            assert sandbox.counters.jobs_created == 0 and final.charged_credits is None and limits.used == 0
        assert sandbox.counters.jobs_created <= 1  # never created twice
        assert await services.store.check_invariants() == []
    finally:
        await services.aclose()
