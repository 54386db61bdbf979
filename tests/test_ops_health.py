"""The health check, beyond the database: the poller's liveness on `/healthz`, and the
container's probe (`python -m bot.ops.probe`, the Dockerfile's HEALTHCHECK) against a served `/healthz`.

The engine runs on a `FakeClock` here, so a poll falls due only when a test moves the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.clock import FakeClock
from bot.ops import probe
from bot.ops.health import DATABASE_CHECK_SECONDS
from bot.ops.server import OpsServer
from bot.sandbox import Sandbox
from bot.services import Services
from tests.conftest import make_settings

REPO = Path(__file__).resolve().parents[1]
PROJECT = "never-rendered"  # a project id the poller waits for; the sandbox has no such project


class TimersNeverFire(FakeClock):
    """A fake clock whose time moves on `advance` while every `sleep` on it waits forever.

    The poller's loop sleeps on the engine's clock until its next poll is due: here it never
    wakes by itself, as a loop stuck on a timer that doesn't fire.
    """

    async def sleep(self, seconds: float) -> None:
        """Never return (only cancellation ends the wait)."""
        self.sleep_calls.append(seconds)
        await asyncio.get_running_loop().create_future()


async def open_services(tmp_path: Path, sandbox: Sandbox, clock: FakeClock) -> Services:
    settings = make_settings(tmp_path, sandbox.base_url, metrics_port=0)
    return await Services.open(settings, clock=clock)


@pytest.fixture
async def services(tmp_path: Path, sandbox: Sandbox) -> AsyncIterator[Services]:
    """Services whose engine runs on a plain `FakeClock`."""
    async with await open_services(tmp_path, sandbox, FakeClock()) as opened:
        yield opened


@contextlib.asynccontextmanager
async def waiting_for_a_render(services: Services) -> AsyncIterator[None]:
    """A render being waited for: the poller's loop is running and has one project to poll."""
    waiter = asyncio.create_task(services.engine.poller.wait(PROJECT, within=3600))
    await asyncio.sleep(0)  # the waiter runs up to its future: the watch exists, the loop is started
    assert services.engine.poller.watching == 1
    try:
        yield
    finally:
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter


async def health(http: httpx.AsyncClient, server: OpsServer) -> tuple[int, object]:
    response = await http.get(f"{server.url}/healthz")
    return response.status_code, response.json()


async def test_healthz_is_503_when_the_poller_loop_has_died(services: Services) -> None:
    """The poller's task ended (here: cancelled) while a render is waited for: 503, "poller": "stalled"."""
    async with waiting_for_a_render(services), services.serve_ops() as server, httpx.AsyncClient() as http:
        assert server is not None
        assert await health(http, server) == (200, {"healthy": True, "checks": {"database": "ok", "poller": "ok"}})
        [loop] = [task for task in asyncio.all_tasks() if task.get_name() == "magic-hour-poller"]
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
        status, body = await health(http, server)
    assert status == 503
    assert body == {"healthy": False, "checks": {"database": "ok", "poller": "stalled"}}


async def test_healthz_is_503_when_a_due_poll_waits_past_the_grace(tmp_path: Path, sandbox: Sandbox) -> None:
    """A poll due for more than the grace (60 s) that the loop never started: 503, then 200 once it is poked."""
    clock = TimersNeverFire()
    async with (
        await open_services(tmp_path, sandbox, clock) as services,
        waiting_for_a_render(services),
        services.serve_ops() as server,
        httpx.AsyncClient() as http,
    ):
        assert server is not None
        await clock.advance(59.0)  # the first poll is overdue, but within the grace
        assert (await health(http, server))[0] == 200
        await clock.advance(2.0)
        status, body = await health(http, server)
        assert status == 503
        assert body == {"healthy": False, "checks": {"database": "ok", "poller": "stalled"}}
        # A webhook's poke makes the poll due now: nothing is overdue any more.
        assert services.engine.poller.poke(PROJECT)
        assert await health(http, server) == (200, {"healthy": True, "checks": {"database": "ok", "poller": "ok"}})


async def run_probe(port: int) -> tuple[int, str]:
    """Run the Dockerfile's HEALTHCHECK command (`python -m bot.ops.probe`); its exit code and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.ops.probe",
        cwd=REPO,
        env={**os.environ, "METRICS_PORT": str(port)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(30):
        output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_probe_exits_0_when_healthy_and_1_once_the_database_refuses_writes(services: Services) -> None:
    """The container's probe reads `/healthz` on METRICS_PORT: exit 0 while healthy, 1 (with the reason) when not."""
    async with services.serve_ops() as server:
        assert server is not None and server.port is not None
        assert await run_probe(server.port) == (0, '{"healthy": true, "checks": {"database": "ok", "poller": "ok"}}\n')
        conn = services.store._db.conn  # type: ignore[attr-defined] # the test's way to make the file refuse writes
        await conn.execute("PRAGMA query_only = ON")
        assert isinstance(services.clock, FakeClock)
        await services.clock.advance(DATABASE_CHECK_SECONDS)  # the last database verdict has expired
        try:
            code, output = await run_probe(server.port)
        finally:
            await conn.execute("PRAGMA query_only = OFF")
    assert code == 1
    assert '"healthy": false' in output and '"database": "write refused' in output


async def test_probe_exits_1_when_nothing_answers(
    services: Services, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No server on METRICS_PORT (the bot is down or not yet listening): `main()` answers 1 and says so."""
    async with services.serve_ops() as server:
        assert server is not None and server.port is not None
        port = server.port
    monkeypatch.setenv("METRICS_PORT", str(port))  # the port the server just stopped listening on
    assert await asyncio.to_thread(probe.main) == 1
    assert capsys.readouterr().out.startswith(f"no answer from http://127.0.0.1:{port}/healthz")


@pytest.mark.parametrize(
    ("host", "url"),
    [
        (None, "http://127.0.0.1:9108/healthz"),
        ("0.0.0.0", "http://127.0.0.1:9108/healthz"),
        ("::", "http://127.0.0.1:9108/healthz"),
        ("10.1.2.3", "http://10.1.2.3:9108/healthz"),
        ("fd00::7", "http://[fd00::7]:9108/healthz"),
    ],
)
def test_probe_asks_where_the_bot_listens(monkeypatch: pytest.MonkeyPatch, host: str | None, url: str) -> None:
    """An operator who binds METRICS_HOST to one address gets a probe that asks that address, not 127.0.0.1."""
    monkeypatch.setenv("METRICS_PORT", "9108")
    if host is None:
        monkeypatch.delenv("METRICS_HOST", raising=False)
    else:
        monkeypatch.setenv("METRICS_HOST", host)
    assert probe.healthz_url() == url


@pytest.mark.parametrize("port", [None, ""])
def test_probe_with_metrics_off_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str], port: str | None
) -> None:
    """Unset or empty METRICS_PORT turns metrics off for the bot, and so for the probe: no port is guessed."""
    monkeypatch.chdir(tmp_path)  # no .env here
    if port is None:
        monkeypatch.delenv("METRICS_PORT", raising=False)
    else:
        monkeypatch.setenv("METRICS_PORT", port)  # what `METRICS_PORT=` in an --env-file gives
    assert probe.healthz_url() is None
    assert probe.main() == 1
    assert capsys.readouterr().out.startswith("METRICS_PORT is empty, so the bot serves no /healthz")
