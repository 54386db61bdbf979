"""The command line as a new user runs it: `render --sandbox --demo`, `check`, and bad input."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import av
import httpx

from bot.__main__ import SANDBOX_DEADLINE_MINUTES, _sandboxed
from bot.clock import FakeClock
from bot.sandbox import Sandbox
from tests.conftest import SANDBOX_KEY, make_settings

ROOT = Path(__file__).resolve().parents[1]


def _env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "MAGIC_HOUR_API_KEY")}
    return {**clean, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **extra}


def cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


async def acli(args: list[str], cwd: Path, **env: str) -> tuple[int, str]:
    """The CLI in a subprocess without blocking the loop (the sandbox it talks to runs here)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env=_env(**env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 180)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def _job_state(database: Path) -> str | None:
    """Job #1's state as the database says now (read-only; None before it exists)."""
    if not database.exists():
        return None
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
        try:
            row = conn.execute("SELECT state FROM jobs WHERE id = 1").fetchone()
        except sqlite3.OperationalError:  # the schema isn't there yet
            return None
    return None if row is None else str(row[0])


def _job_money(database: Path) -> tuple[int | None, list[tuple[str, int, int | None]]]:
    """Job #1's recorded charge and its ledger rows (kind, amount, charged), read-only."""
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
        [(charged,)] = conn.execute("SELECT charged_credits FROM jobs WHERE id = 1").fetchall()
        rows = conn.execute("SELECT kind, amount, charged FROM ledger WHERE job_id = 1 ORDER BY id").fetchall()
    return charged, [tuple(row) for row in rows]


def test_render_sandbox_demo_from_scratch(tmp_path: Path) -> None:
    """`lipsync-bot render --sandbox --demo` works in an empty folder with no configuration."""
    result = cli(["render", "--sandbox", "--demo", "--out", str(tmp_path / "out.mp4")], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Sandbox mode" in result.stdout
    assert "Likely cost: 90 credits, held until it finishes" in " ".join(result.stdout.split())
    assert "Credits charged:" in result.stdout and "not lip-synced" in result.stdout
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert container.streams.video and container.streams.audio
        assert "SANDBOX" in (container.metadata.get("title", "") + container.metadata.get("comment", ""))
    # The trial used a database of its own, never the real one.
    assert (tmp_path / "data" / "lipsync-bot-sandbox.sqlite3").exists()
    assert not (tmp_path / "data" / "lipsync-bot.sqlite3").exists()


def test_render_refuses_bad_input_clearly(tmp_path: Path) -> None:
    """A text file as the video is refused with a specific message and exit code 2."""
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    result = cli(["render", "--sandbox", str(notes), str(notes)], cwd=tmp_path)
    assert result.returncode == 2
    assert "'notes.txt' isn't a video" in result.stdout


async def test_check_says_what_is_missing(tmp_path: Path, sandbox: Sandbox) -> None:
    """`check` names the missing Discord token and confirms the Magic Hour key against the API."""
    code, out = await acli(
        ["check"], cwd=tmp_path, MAGIC_HOUR_API_KEY=SANDBOX_KEY, MAGIC_HOUR_BASE_URL=sandbox.base_url
    )
    assert code == 1
    assert f"ok   Settings: the environment only: there is no {tmp_path / '.env'}" in out
    assert "DISCORD_TOKEN is not set" in out
    assert "ok   Magic Hour: 1000000 credits, creator tier" in out
    assert SANDBOX_KEY not in out


async def test_check_reports_a_rejected_key(tmp_path: Path, sandbox: Sandbox) -> None:
    """A wrong Magic Hour key is reported as rejected, not as a crash."""
    code, out = await acli(["check"], cwd=tmp_path, MAGIC_HOUR_API_KEY="wrong", MAGIC_HOUR_BASE_URL=sandbox.base_url)
    assert code == 1
    assert "Magic Hour rejected MAGIC_HOUR_API_KEY" in out


async def test_sandbox_command_serves_the_api(tmp_path: Path) -> None:
    """`lipsync-bot sandbox --port 0` prints its URL and key, and answers with them."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "sandbox", "--port", "0", "--data-dir", str(tmp_path),
        cwd=tmp_path, env=_env(), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        lines: dict[str, str] = {}
        while "API key" not in lines:
            line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
            assert line, "the sandbox exited early"
            if ":" in line:
                name, _, value = line.strip().partition(":")
                lines[name.strip()] = value.strip()
        async with httpx.AsyncClient() as http:
            headers = {"Authorization": f"Bearer {lines['API key']}"}
            response = await http.get(f"{lines['API base URL']}/v1/account", headers=headers)
            assert response.status_code == 200 and response.json()["credits"] > 0
            refused = await http.get(f"{lines['API base URL']}/v1/account")
            assert refused.status_code == 401 and refused.json() == {"message": "Unauthorized"}
    finally:
        proc.terminate()
        await proc.wait()


def test_render_youtube_demo(tmp_path: Path) -> None:
    """A YouTube source with generated audio renders the sandbox's test pattern, estimated at 30 fps."""
    result = cli(
        ["render", "--sandbox", "--demo", "--youtube", "https://youtu.be/dQw4w9WgXcQ", "--end", "1"], cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Likely cost: 30 credits, held until it finishes" in " ".join(result.stdout.split())


async def test_render_killed_mid_job_is_finished_by_resume(tmp_path: Path, sandbox: Sandbox, media_dir: Path) -> None:
    """`render` killed while Magic Hour renders leaves a resumable job; `resume` delivers it and frees the member."""
    sandbox.config.render_seconds = 3600
    env = {
        "MAGIC_HOUR_API_KEY": SANDBOX_KEY,
        "MAGIC_HOUR_BASE_URL": sandbox.base_url,
        "POLL_INITIAL_SECONDS": "0.05",
        "JOB_LEASE_SECONDS": "3",  # `resume` waits this long for the killed run's heartbeat to be found stopped
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "render", str(media_dir / "face.mp4"), str(media_dir / "voice.mp3"),
        cwd=tmp_path, env=_env(**env), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with asyncio.timeout(60):
            while _job_state(tmp_path / "data" / "lipsync-bot.sqlite3") not in ("submitted", "rendering"):
                await asyncio.sleep(0.02)  # until the job is recorded as at Magic Hour
    finally:
        proc.kill()
        await proc.wait()

    # Until resumed, the terminal's one running job blocks another, and `render` says what to do.
    code, out = await acli(["render", str(media_dir / "face.mp4"), str(media_dir / "voice.mp3")], cwd=tmp_path, **env)
    assert code == 2 and "Unfinished from an earlier run: 1 job; `lipsync-bot resume` finishes each one." in out

    assert isinstance(sandbox.clock, FakeClock)
    await sandbox.clock.advance(3601)  # the render finished while nothing ran
    (tmp_path / "results").mkdir()
    code, out = await acli(["resume", "--out", str(tmp_path / "results")], cwd=tmp_path, **env)
    assert code == 0, out
    assert "Resuming 1 job(s): #1" in out and "Job #1: Done" in out
    [result] = (tmp_path / "results").iterdir()
    assert result.name == "sandbox-lipsync-1.mp4"
    assert sandbox.counters.jobs_created == 1
    code, out = await acli(["resume"], cwd=tmp_path, **env)
    assert code == 0 and "No unfinished jobs from the terminal." in out


async def test_reconcile_an_unknown_job_to_what_magic_hour_charged(
    tmp_path: Path, sandbox: Sandbox, media_dir: Path
) -> None:
    """The operator looks an unknown job up at Magic Hour and records its real charge, once."""
    sandbox.faults.disconnect("create", after_effect=True)  # made and billed, but the answer is lost
    env = {"MAGIC_HOUR_API_KEY": SANDBOX_KEY, "MAGIC_HOUR_BASE_URL": sandbox.base_url, "POLL_INITIAL_SECONDS": "0.05"}
    code, out = await acli(["render", str(media_dir / "face.mp4"), str(media_dir / "voice.mp3")], cwd=tmp_path, **env)
    assert code == 1 and "can't tell whether Magic Hour made it" in out
    code, out = await acli(["reconcile", "1", "--charged", "0"], cwd=tmp_path, **env)
    assert code == 0 and "Job #1: Magic Hour charged 0 credits; 45 credits given back." in out, out
    money = _job_money(tmp_path / "data" / "lipsync-bot.sqlite3")
    assert money == (0, [("reserve", -45, None), ("settle", 0, 45), ("reconcile", 45, 0)]), money
    code, out = await acli(["reconcile", "1", "--charged", "30"], cwd=tmp_path, **env)
    assert code == 2 and "Job #1 was already reconciled at 0 credits." in out, out
    assert _job_money(tmp_path / "data" / "lipsync-bot.sqlite3") == money  # the refusal changed nothing
    code, out = await acli(["reconcile", "7", "--charged", "0"], cwd=tmp_path, **env)
    assert code == 2 and "isn't a job whose fate at Magic Hour was unknown" in out


def test_a_sandbox_trial_gives_up_on_lost_projects_in_minutes(tmp_path: Path) -> None:
    """Sandbox trials have their own database and a short deadline: a restarted sandbox forgets old projects."""
    real = make_settings(tmp_path, "https://api.magichour.ai", job_deadline_minutes=60)
    trial = _sandboxed(real, "http://127.0.0.1:1")
    assert trial.job_deadline_minutes == SANDBOX_DEADLINE_MINUTES == 5
    assert trial.database_path != real.database_path and trial.database_url is None
    assert (
        _sandboxed(make_settings(tmp_path, "x", job_deadline_minutes=1), "http://127.0.0.1:1").job_deadline_minutes == 1
    )


def test_reconcile_refuses_numbers_no_job_can_have(tmp_path: Path) -> None:
    """A charge above what any job costs, or a job number no database holds: refused, nothing opened."""
    result = cli(["reconcile", "1", "--charged", "240001"], tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "One lip-sync job costs 0 to 240,000 credits at Magic Hour" in result.stdout
    result = cli(["reconcile", "1", "--charged", "-1"], tmp_path)
    assert result.returncode == 2 and "not -1" in result.stdout, result.stdout
    result = cli(["reconcile", str(2**63), "--charged", "0"], tmp_path)
    assert result.returncode == 2 and "There is no job #" in result.stdout, result.stdout
    assert not (tmp_path / "data").exists()  # refused before any database was opened
