"""The Sandbox object itself and the CLI entry point."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from bot.clock import SystemClock
from bot.sandbox import Sandbox, SandboxConfig, parse_fault_spec, serve_forever
from tests.sandbox.helpers import Media, create_job, lip_sync_body, upload


async def _output_until(capsys: pytest.CaptureFixture[str], marker: str) -> str:
    """Collect stdout until `marker` shows up (the server runs in this same loop)."""
    out = ""
    async with asyncio.timeout(5):
        while marker not in out:
            await asyncio.sleep(0.001)
            out += capsys.readouterr().out
    return out


async def test_serve_forever_prints_url_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """serve_forever prints the base URL and key to use, serves, and stops cleanly when cancelled."""
    task = asyncio.create_task(serve_forever(SandboxConfig(api_key="operator-key"), tmp_path, port=0))
    out = await _output_until(capsys, "Press Ctrl-C")
    match = re.search(r"API base URL: (http://127\.0\.0\.1:\d+)", out)
    assert match is not None
    assert "API key:      operator-key" in out
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{match[1]}/v1/account", headers={"Authorization": "Bearer operator-key"})
    assert response.status_code == 200
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert task.cancelled()


async def test_defaults_and_properties(tmp_path: Path) -> None:
    """With no clock a SystemClock is used; URLs name the two listeners; config is the live object."""
    config = SandboxConfig()
    async with Sandbox(config, data_dir=tmp_path) as sb:
        assert isinstance(sb.clock, SystemClock)
        assert sb.config is config
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", sb.base_url)
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", sb.storage_url)
        assert sb.base_url != sb.storage_url
        sb.credits = 5
        assert config.credits == 5


async def test_close_stops_renders_in_flight(tmp_path: Path, media: Media) -> None:
    """Closing the sandbox with jobs in flight ends every render task (cancelling any still running)."""
    async with Sandbox(SandboxConfig(render_seconds=60), data_dir=tmp_path) as sb:
        headers = {"Authorization": "Bearer sandbox-key"}
        async with httpx.AsyncClient(base_url=sb.base_url, headers=headers) as api, httpx.AsyncClient() as storage:
            video = await upload(api, storage, media.video, "video", "mp4")
            audio = await upload(api, storage, media.audio_wav, "audio", "wav")
            for _ in range(3):
                await create_job(api, lip_sync_body(video, audio))
        tasks = [p.task for p in sb.projects.values() if p.task is not None]
    assert len(tasks) == 3
    assert all(task.done() for task in tasks)
    assert sb.state.tasks == set()


async def test_serve_forever_with_faults(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Faults given to serve_forever are active from the first request and listed in the banner."""
    faults = [parse_fault_spec("create:429"), parse_fault_spec("get_project:503:0.25")]
    config = SandboxConfig(api_key="k", render_seconds_per_frame=0.5, render_noise=0.1)
    task = asyncio.create_task(serve_forever(config, tmp_path, port=0, faults=faults, seed=3))
    out = await _output_until(capsys, "Press Ctrl-C")
    assert "Fault:        create: 429 100%" in out
    assert "Fault:        get_project: 503 25%" in out
    assert "Seed:         3" in out
    assert "0 s + 0.5 s/frame (noise 10%)" in out
    match = re.search(r"API base URL: (http://127\.0\.0\.1:\d+)", out)
    assert match is not None
    async with httpx.AsyncClient(base_url=match[1], headers={"Authorization": "Bearer k"}) as client:
        response = await client.post("/v1/lip-sync", json=lip_sync_body("a", "b"))
    assert response.status_code == 429
    assert response.headers["X-Magic-Hour-Sandbox"] == "1"
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _cli_env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[2])
    clean = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "MAGIC_HOUR_API_KEY")}
    return {**clean, "PYTHONPATH": root, "COLUMNS": "100"}


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "sandbox", *args],
        cwd=cwd,
        env=_cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_help_explains_faults(tmp_path: Path) -> None:
    """`lipsync-bot sandbox --help` documents --fault, its kinds and --seed."""
    result = _cli(["--help"], tmp_path)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for needle in ("--fault ROUTE:KIND[:RATE]", "--seed", "malformed", "unknown_status", "lost", "429 on create"):
        assert needle in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fault", "get_project"], "expected ROUTE:KIND[:RATE]"),
        (["--fault", "create:teapot"], "unknown fault kind"),
        (["--fault", "create:429:0.7", "--fault", "create:503:0.7"], "more than 1"),
        (["--render-noise", "2"], "render_noise"),
    ],
)
def test_cli_refuses_bad_switches(tmp_path: Path, args: list[str], message: str) -> None:
    """Mistakes are named on stderr with exit status 2, before anything listens."""
    result = _cli(args, tmp_path)
    assert result.returncode == 2
    assert message in result.stderr


async def test_cli_serves_with_faults(tmp_path: Path) -> None:
    """`lipsync-bot sandbox --port 0 --fault create:429 --seed 1` serves, and every create is a 429."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "sandbox",
        "--port",
        "0",
        "--data-dir",
        str(tmp_path / "data"),
        "--fault",
        "create:429",
        "--seed",
        "1",
        cwd=tmp_path,
        env=_cli_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    try:
        out = ""
        async with asyncio.timeout(60):  # a bound on start-up, not a wait for luck
            while "Press Ctrl-C" not in out:
                line = await proc.stdout.readline()
                assert line, out
                out += line.decode()
        match = re.search(r"API base URL: (http://127\.0\.0\.1:\d+)", out)
        assert match is not None, out
        async with httpx.AsyncClient(base_url=match[1], headers={"Authorization": "Bearer sandbox-key"}) as client:
            created = await client.post("/v1/lip-sync", json=lip_sync_body("a", "b"))
            account = await client.get("/v1/account")
        assert created.status_code == 429
        assert account.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        await proc.wait()
    assert proc.returncode == 130
