"""Odd media against the estimate: what the bot sets aside beside what the sandbox charges.

Run: `.venv/bin/python -m bench.bench_odd_media`. Each file goes through the real engine (probe,
estimate, reserve, upload, create, render, settle) against an in-process sandbox, in pro mode with
the default 30 fps cap and a 60 s voice, so the window is the video's own length. The sandbox
counts frames on its own (from decoded timestamps, not `bot.media`), so a mistake in the bot's
estimate shows up as a gap between the columns. Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from pydantic import SecretStr

from bot.clock import FakeClock
from bot.config import GenerationMode, Settings
from bot.jobs.models import Delivery, InputSource, JobHooks, JobRequest, JobUpdate, LinkProvider
from bot.sandbox import Sandbox, SandboxConfig
from bot.services import Services
from bot.store import JobRecord
from bot.testmedia import make_audio, make_sparse_video, make_still_video, make_vfr_video, make_video

KEY = "bench-key"

Maker = Callable[[Path], Awaitable[Path]]

FILES: list[tuple[str, Maker]] = [
    ("30 fps, 2 s (ordinary)", lambda p: make_video(p, seconds=2.0, fps=30)),
    ("24 fps, 2 s (ordinary)", lambda p: make_video(p, seconds=2.0, fps=24)),
    ("variable rate: 2 s at 30 fps, 4 s at 5 fps", lambda p: make_vfr_video(p)),
    ("sparse: 3 frames over 60 s", lambda p: make_sparse_video(p)),
    ("claims 1,000 fps (H.264 timing), 30 fps real, 2 s", lambda p: make_video(p, seconds=2.0, claim_fps=1000)),
    ("really 1,000 fps, 1 s", lambda p: make_video(p, seconds=1.0, fps=1000)),
    ("0.5 fps, 10 s", lambda p: make_video(p, seconds=10.0, fps=0.5)),
    ("2 s of video, 10 s of audio in the file", lambda p: make_video(p, seconds=2.0, audio_seconds=10.0)),
    ("a still picture with 5 s of audio", lambda p: make_still_video(p)),
]


class _Sink:
    async def update(self, update: JobUpdate) -> None:
        """Nothing to show."""


class _Drop:
    async def deliver(self, job: JobRecord, result: Path | None, *, sandbox: bool, link: LinkProvider) -> Delivery:
        return Delivery(kind="local")


async def measure(name: str, maker: Maker, services: Services, sandbox: Sandbox, folder: Path, user: int) -> str:
    video = await maker(folder / f"odd-{user}.mp4")
    request = JobRequest(
        user_id=user,
        guild_id=1,
        video=InputSource(filename=video.name, path=video, size=video.stat().st_size),
        audio=InputSource(filename="voice.mp3", path=folder / "voice.mp3"),
        mode=GenerationMode.PRO,
    )
    record = await services.engine.submit(request, JobHooks(sink=_Sink(), deliverer=_Drop()))
    final = await services.engine.wait(record.id)
    if final.project_id is None:
        return f"| {name} | refused: `{final.error_code}` | – | – | – |"
    project = sandbox.projects[final.project_id]
    return (
        f"| {name} | {final.estimated_credits:,} | {project.estimate:,} | "
        f"{sandbox.charged(final.project_id):,} | {final.charged_credits:,} |"
    )


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-odd-") as tmp:
        folder = Path(tmp)
        await make_audio(folder / "voice.mp3", seconds=60.0)
        async with Sandbox(SandboxConfig(api_key=KEY), data_dir=folder / "sandbox", clock=FakeClock()) as sandbox:
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                magic_hour_api_key=SecretStr(KEY),
                magic_hour_base_url=sandbox.base_url,
                database_path=folder / "bot.sqlite3",
                work_dir=folder / "work",
                poll_initial_seconds=0.05,
                poll_max_seconds=0.1,
                default_member_credits=1_000_000,
            )
            async with await Services.open(settings) as services:
                print("| File | Bot sets aside | Sandbox holds at create | Sandbox charges | Ledger charge |")
                print("|---|---:|---:|---:|---:|")
                for user, (name, maker) in enumerate(FILES, start=100):
                    print(await measure(name, maker, services, sandbox, folder, user), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
