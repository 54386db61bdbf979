"""The terminal as an operator meets it on a first day: YouTube, Ctrl+C, trials, refusals, where results go."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import io
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from bot import words
from bot.__main__ import _maybe_sandbox, _parser, _sandboxed
from bot.clock import FakeClock
from bot.config import GenerationMode, Settings
from bot.jobs.models import JobUpdate
from bot.sandbox import Sandbox
from bot.store import JobRecord, JobState, StoreUnavailable
from bot.store.quota import QuotaLedger
from bot.terminal import TERMINAL, TRIAL, Output, RenderOptions, render, resume
from bot.terminal.progress import ProgressDisplay, progress_bar
from bot.terminal.style import setting_to_raise
from tests.conftest import SANDBOX_KEY, make_settings
from tests.test_cli import _env, acli, cli

YOUTUBE = "https://youtu.be/dQw4w9WgXcQ"


def _rows(database: Path, sql: str) -> list[tuple[object, ...]]:
    """Rows of a read-only query; none while the database or its schema doesn't exist yet."""
    if not database.exists():
        return []
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
        try:
            return conn.execute(sql).fetchall()
        except sqlite3.OperationalError:
            return []


def _state(database: Path) -> str | None:
    rows = _rows(database, "SELECT state FROM jobs WHERE id = 1")
    return str(rows[0][0]) if rows else None


async def _until_at_magic_hour(database: Path) -> None:
    async with asyncio.timeout(60):
        while _state(database) not in ("submitted", "rendering"):
            await asyncio.sleep(0.02)


# --------------------------------------------------------------------------------- YouTube


def test_render_youtube_with_an_audio_file(tmp_path: Path, media_dir: Path) -> None:
    """`render --youtube URL AUDIO`: the one file is the voice (argparse would have made it the VIDEO)."""
    result = cli(["render", "--sandbox", "--youtube", YOUTUBE, str(media_dir / "voice.mp3"), "--end", "1"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Job #1: Done" in result.stdout
    assert "Likely cost: 30 credits, held until it finishes" in " ".join(result.stdout.split())
    assert [p.name for p in (tmp_path / "results").iterdir()] == ["sandbox-lipsync-1.mp4"]


@pytest.mark.parametrize("link", ["https://example.com/watch?v=dQw4w9WgXcQ", "youtube.com/watch?v=dQw4w9WgXcQ"])
def test_a_malformed_link_is_refused_for_what_it_is(tmp_path: Path, media_dir: Path, link: str) -> None:
    """The link's own fault is named (not "give VIDEO or --youtube, not both"), in the terminal's words."""
    result = cli(["render", "--sandbox", "--youtube", link, str(media_dir / "voice.mp3"), "--end", "1"], tmp_path)
    assert result.returncode == 2
    assert "That isn't a YouTube link the bot can use" in result.stdout
    assert "Or give VIDEO (the video file) instead." in result.stdout
    assert "not both" not in result.stdout and "attach" not in result.stdout


def test_a_video_and_a_link_together_are_refused(tmp_path: Path, media_dir: Path) -> None:
    result = cli(
        ["render", "--sandbox", "--youtube", YOUTUBE, str(media_dir / "face.mp4"), str(media_dir / "voice.mp3")],
        tmp_path,
    )
    assert result.returncode == 2 and "Give VIDEO or --youtube, not both" in result.stdout


# --------------------------------------------------------------------------------- Ctrl+C


class Keys:
    """The keyboard in a test: Ctrl+C when the test says, and typed answers, in order."""

    def __init__(self, *answers: str | None) -> None:
        self.pressed = asyncio.Event()
        self._answers = list(answers)
        self.questions: list[str] = []

    async def ask(self, prompt: str) -> str | None:
        self.questions.append(prompt)
        return self._answers.pop(0)


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=300), out


async def test_ctrl_c_in_a_trial_leaves_the_job_and_resume_sandbox_finishes_it_in_seconds(
    tmp_path: Path, media_dir: Path
) -> None:
    """Ctrl+C, "leave it": the exact command to finish it; that command then delivers it, in seconds."""
    settings = make_settings(tmp_path, "unused")
    keys = Keys("l")
    console, out = _console()
    first = FakeClock()
    options = RenderOptions(video=media_dir / "face.mp4", audio=media_dir / "voice.mp3", out=Output(tmp_path / "r"))
    async with _maybe_sandbox(settings, True, render_seconds=600, trial=True, clock=first) as trial:
        running = asyncio.ensure_future(
            render(trial, options, console=console, sandbox=True, interrupts=keys, answers=keys)
        )
        await _until_at_magic_hour(trial.database_path)
        keys.pressed.set()
        assert await running == 130
    text = out.getvalue()
    assert "Job #1 is at Magic Hour" in keys.questions[0] and "[l]" in keys.questions[0]
    assert "Job #1 is left running at Magic Hour. `lipsync-bot resume --sandbox` finishes it" in text
    [(state, holder)] = _rows(trial.database_path, "SELECT state, claimed_by FROM jobs")
    assert state in ("submitted", "rendering") and holder is None  # unfinished, and handed back

    # The next command, a new process with a new sandbox on the same folder, eleven minutes later.
    later = FakeClock(start=first.now() + dt.timedelta(minutes=11))  # past its 1 s queue and 600 s render
    console, out = _console()
    async with (
        asyncio.timeout(60),  # far below the trial's 5-minute deadline: the project is known
        _maybe_sandbox(settings, True, trial=True, clock=later) as trial,
    ):
        code = await resume(trial, out=Output(tmp_path / "r"), console=console, sandbox=True)
    text = out.getvalue()
    assert code == 0, text
    assert "Job #1: Done" in text and "Credits charged: 45 (sandbox" in text
    assert (tmp_path / "r" / "sandbox-lipsync-1.mp4").stat().st_size > 1000


async def test_ctrl_c_before_magic_hour_cancels_for_free_without_asking(
    tmp_path: Path, sandbox: Sandbox, media_dir: Path
) -> None:
    """A job still uploading has nothing at Magic Hour: Ctrl+C cancels it at once, and it costs nothing."""
    sandbox.faults.hang("upload_urls")
    keys = Keys()
    console, out = _console()
    settings = make_settings(tmp_path, sandbox.base_url)
    options = RenderOptions(video=media_dir / "face.mp4", audio=media_dir / "voice.mp3")
    running = asyncio.ensure_future(render(settings, options, console=console, interrupts=keys, answers=keys))
    async with asyncio.timeout(60):
        while sandbox.counters.requests["upload_urls"] == 0:
            await asyncio.sleep(0.01)
    keys.pressed.set()
    assert await running == 1
    sandbox.faults.release()
    assert keys.questions == []
    assert "hadn't reached Magic Hour yet, so Ctrl+C canceled it: nothing was charged" in out.getvalue()
    assert _rows(settings.database_path, "SELECT state FROM jobs") == [("canceled",)]
    assert _rows(settings.database_path, "SELECT SUM(amount) FROM ledger") == [(0,)]  # reserved, then refunded
    assert sandbox.counters.jobs_created == 0


async def _render_and_press(tmp_path: Path, sandbox: Sandbox, media_dir: Path, answer: str) -> tuple[int, str]:
    """`lipsync-bot render` in a subprocess, a real SIGINT once the job renders, and `answer` typed in."""
    sandbox.config.render_seconds = 3600
    env = {"MAGIC_HOUR_API_KEY": SANDBOX_KEY, "MAGIC_HOUR_BASE_URL": sandbox.base_url, "POLL_INITIAL_SECONDS": "0.05"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "render", str(media_dir / "face.mp4"), str(media_dir / "voice.mp3"),
        cwd=tmp_path, env=_env(**env), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        await _until_at_magic_hour(tmp_path / "data" / "lipsync-bot.sqlite3")
        proc.send_signal(signal.SIGINT)
        out, _ = await asyncio.wait_for(proc.communicate(f"{answer}\n".encode()), 120)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_a_real_ctrl_c_asks_and_leave_hands_the_job_to_resume(
    tmp_path: Path, sandbox: Sandbox, media_dir: Path
) -> None:
    """SIGINT in the middle of a render: the question, then "l": exit 130, the job left for `lipsync-bot resume`."""
    code, out = await _render_and_press(tmp_path, sandbox, media_dir, "l")
    assert code == 130, out
    assert "Cancel it [c]" in out and "Job #1 is left running at Magic Hour. `lipsync-bot resume` finishes it" in out
    assert "Traceback" not in out and "KeyboardInterrupt" not in out
    database = tmp_path / "data" / "lipsync-bot.sqlite3"
    [(state, holder)] = _rows(database, "SELECT state, claimed_by FROM jobs")
    assert state in ("submitted", "rendering") and holder is None  # unfinished, and handed back

    assert isinstance(sandbox.clock, FakeClock)
    await sandbox.clock.advance(3601)
    env = {"MAGIC_HOUR_API_KEY": SANDBOX_KEY, "MAGIC_HOUR_BASE_URL": sandbox.base_url, "POLL_INITIAL_SECONDS": "0.05"}
    code, out = await acli(["resume"], cwd=tmp_path, **env)
    assert code == 0 and "Job #1: Done" in out, out
    assert sandbox.counters.jobs_created == 1


async def test_a_real_ctrl_c_then_cancel_stops_the_render_at_magic_hour(
    tmp_path: Path, sandbox: Sandbox, media_dir: Path
) -> None:
    """SIGINT, then "c": the project is stopped at Magic Hour and the job settles to its charge (0)."""
    code, out = await _render_and_press(tmp_path, sandbox, media_dir, "c")
    assert code == 1 and "Job #1: Canceled" in out and "Credits charged: 0" in out, out
    [project] = sandbox.projects.values()
    assert project.status.value == "canceled" and sandbox.charged(project.id) == 0
    database = tmp_path / "data" / "lipsync-bot.sqlite3"
    assert _rows(database, "SELECT state, charged_credits FROM jobs") == [("canceled", 0)]


# --------------------------------------------------------------------------------- trials and refusals


def test_a_trial_has_its_own_allowance_and_run_sandbox_keeps_the_operators(tmp_path: Path) -> None:
    """`render --sandbox` spends TRIAL_CREDITS (no budget); `run --sandbox` rehearses the real limits."""
    real = make_settings(tmp_path, "x", default_member_credits=600, bot_budget_credits=1000)
    trial = _sandboxed(real, "http://127.0.0.1:1", trial=True)
    assert trial.default_member_credits == real.trial_credits == 100_000
    assert trial.budget_credits is None
    rehearsal = _sandboxed(real, "http://127.0.0.1:1")
    assert rehearsal.default_member_credits == 600 and rehearsal.budget_credits == 1000


def test_a_trial_refusal_names_the_setting_and_where_it_is_read(tmp_path: Path) -> None:
    result = cli(["render", "--sandbox", "--demo"], tmp_path, TRIAL_CREDITS="10")
    assert result.returncode == 1  # refused once its files were measured: the job ended, unsent
    told = " ".join(result.stdout.split())
    assert "You have 10 credits left today, less than this clip's likely cost of 90 credits" in told
    assert f"raise TRIAL_CREDITS in '{tmp_path / '.env'}'" in result.stdout.replace("\n", "")


@pytest.mark.parametrize(("setting", "value"), [("DEFAULT_MEMBER_CREDITS", "10"), ("BOT_BUDGET_CREDITS", "10")])
async def test_a_refusal_names_the_setting_that_refused(
    tmp_path: Path, sandbox: Sandbox, media_dir: Path, setting: str, value: str
) -> None:
    env = {"MAGIC_HOUR_API_KEY": SANDBOX_KEY, "MAGIC_HOUR_BASE_URL": sandbox.base_url, setting: value}
    code, out = await acli(["render", str(media_dir / "face.mp4"), str(media_dir / "voice.mp3")], tmp_path, **env)
    assert code == 1 and f"raise {setting} in" in out, out
    assert sandbox.counters.jobs_created == 0


@pytest.mark.parametrize("how", ["", "_spent", "_hold"])
def test_every_refusal_for_credits_names_its_setting(how: str) -> None:
    """Whether the limit is spent, the likely cost doesn't fit, or only the hold doesn't: the same setting."""
    assert setting_to_raise(f"quota_global_default{how}", trial=False) == "DEFAULT_MEMBER_CREDITS"
    assert setting_to_raise(f"quota_member{how}", trial=True) == "TRIAL_CREDITS"
    assert setting_to_raise(f"quota_bot_budget{how}", trial=False) == "BOT_BUDGET_CREDITS"
    assert setting_to_raise(f"quota_server_pool{how}", trial=False) is None


def test_a_missing_file_is_refused_before_any_job_exists(tmp_path: Path, media_dir: Path) -> None:
    """Like an empty file: exit 2, the file named, and no job in the database."""
    result = cli(["render", "--sandbox", str(tmp_path / "nope.mp4"), str(media_dir / "voice.mp3")], tmp_path)
    assert result.returncode == 2 and "'nope.mp4' doesn't exist or isn't a file." in result.stdout
    assert _rows(tmp_path / "data" / "lipsync-bot-sandbox.sqlite3", "SELECT id FROM jobs") == []


async def test_a_database_outage_is_told_plainly_and_costs_nothing(
    tmp_path: Path, media_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database can't be reached (past the store's own retries): try again in a minute, exit 1, no job."""

    async def unreachable(*args: object, **kwargs: object) -> None:
        raise StoreUnavailable("PostgreSQL could not be reached (ConnectionRefusedError)")

    monkeypatch.setattr(QuotaLedger, "limits", unreachable)
    console, out = _console()
    options = RenderOptions(video=media_dir / "face.mp4", audio=media_dir / "voice.mp3", out=Output(tmp_path / "r"))
    async with _maybe_sandbox(make_settings(tmp_path, "unused"), True, trial=True) as trial:
        code = await render(trial, options, console=console, sandbox=True, interrupts=Keys(), answers=Keys())
    text = out.getvalue()
    assert code == 1, text
    assert "can't reach its database right now" in text and "try again in a minute" in text
    assert "Traceback" not in text and "ConnectionRefusedError" not in text
    assert _rows(trial.database_path, "SELECT id FROM jobs") == []


# --------------------------------------------------------------------------------- where results go


def test_out_with_a_trailing_slash_is_a_folder(tmp_path: Path) -> None:
    result = cli(["render", "--sandbox", "--demo", "--out", "some/dir/"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "some" / "dir" / "sandbox-lipsync-1.mp4").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".mp4"] == []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, Path("results/x.mp4")),
        ("out.mp4", Path("out.mp4")),
        ("a/b/out.mp4", Path("a/b/out.mp4")),
        ("a/b/", Path("a/b/x.mp4")),
    ],
)
def test_output_paths(raw: str | None, expected: Path) -> None:
    assert Output.parse(raw).path_for("x.mp4") == expected


def test_an_existing_folder_without_a_slash_is_a_folder(tmp_path: Path) -> None:
    assert Output.parse(str(tmp_path)).path_for("x.mp4") == tmp_path / "x.mp4"
    assert Output.parse(str(tmp_path / "new"), folder_only=True).path_for("x.mp4") == tmp_path / "new" / "x.mp4"


def test_the_results_folder_is_ignored_by_git() -> None:
    lines = (Path(__file__).resolve().parents[1] / ".gitignore").read_text().split()
    assert "/results/" in lines


async def test_the_last_progress_line_says_what_was_charged(tmp_path: Path) -> None:
    """5 s at 25 fps, held 150: the running line states the quote; the finished one what was charged."""
    console, out = _console()
    window: dict[str, Any] = {"start_seconds": 0.0, "end_seconds": 5.0, "source_fps": 25.0, "max_fps": 30.0}
    window["mode"] = GenerationMode.LITE
    job = JobRecord.model_construct(state=JobState.DONE, estimated_credits=150, charged_credits=125, **window)
    running = JobRecord.model_construct(state=JobState.RENDERING, estimated_credits=150, charged_credits=None, **window)
    with progress_bar(console) as progress:
        display = ProgressDisplay(progress)
        await display.update(JobUpdate(job=running, elapsed=1.0))
        quoted = "Likely cost: 125 credits; 150 credits held until it finishes"
        assert quoted in str(progress.tasks[0].description)
        await display.update(JobUpdate(job=job, elapsed=2.0))
        assert "125 credits charged" in str(progress.tasks[0].description)
    assert "held until" not in out.getvalue().splitlines()[-1]


# --------------------------------------------------------------------------------- help and words


def test_help_says_where_settings_come_from_and_what_each_option_does(tmp_path: Path) -> None:
    result = cli(["render", "--help"], tmp_path)
    text = " ".join(result.stdout.split())
    assert f"then from {tmp_path / '.env'} (there is none yet: copy .env.example)" in text
    assert "--youtube URL AUDIO" in text
    [commands] = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    render_parser = commands.choices["render"]
    unexplained = [a.dest for a in render_parser._actions if not a.help]
    assert unexplained == [], unexplained
    assert "Discord" in " ".join(cli(["check", "--help"], tmp_path).stdout.split())


_ONLY_FROM_DISCORD = {"fetch_failed", "fetch_refused", "video_content_type", "audio_content_type"}


def _core_codes() -> list[str]:
    """Codes above the catalogue's Discord section: the core's words, which the terminal shows too."""
    text = (Path(words.__file__).parent / "en.toml").read_text()
    core = text.split("# --- the Discord layer", 1)[0]
    return [line.split("=", 1)[0].strip() for line in core.splitlines() if "=" in line and not line.startswith("#")]


@pytest.mark.parametrize("style", [TERMINAL, TRIAL])
def test_the_terminal_never_asks_to_upload_or_attach(style: object) -> None:
    """Uploading and attaching are Discord's verbs: a terminal user gives a file (or a link)."""
    codes = [code for code in _core_codes() if code not in _ONLY_FROM_DISCORD]
    assert len(codes) > 80
    for code in codes:
        text = words.describe(code, {}, style).lower()  # type: ignore[arg-type]
        assert "attach" not in text and "uploading it" not in text and "upload it" not in text, (code, text)


def test_settings_default_matches_what_the_help_promises() -> None:
    assert Settings.model_fields["trial_credits"].default == 100_000
