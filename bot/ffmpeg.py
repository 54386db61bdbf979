"""The one way the project runs ffmpeg: the binary from imageio-ffmpeg, quiet, killed on cancel."""

from __future__ import annotations

import asyncio
import contextlib

import imageio_ffmpeg


class FfmpegError(RuntimeError):
    """ffmpeg exited with an error; `tail` holds its last lines of output."""

    def __init__(self, returncode: int, tail: str) -> None:
        super().__init__(f"ffmpeg failed ({returncode}): {tail}")
        self.returncode = returncode
        self.tail = tail


def ffmpeg_exe() -> str:
    """Path to the ffmpeg binary shipped by imageio-ffmpeg."""
    return str(imageio_ffmpeg.get_ffmpeg_exe())


async def run_ffmpeg(args: list[str]) -> None:
    """Run ffmpeg with `args`; raise `FfmpegError` if it fails.

    If the awaiting task is cancelled (a job canceled, a shutdown), the process is killed rather
    than left running on the operator's CPU.
    """
    proc = await asyncio.create_subprocess_exec(
        ffmpeg_exe(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-nostdin",
        "-y",
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await proc.communicate()
    except BaseException:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        raise
    if proc.returncode != 0:
        tail = " | ".join(stderr.decode(errors="replace").strip().splitlines()[-5:])
        raise FfmpegError(proc.returncode or -1, tail)
