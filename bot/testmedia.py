"""Generate small, real media files with the ffmpeg from imageio-ffmpeg.

Used by the tests, the benchmarks, the sandbox (its YouTube "render" is a test pattern) and
`lipsync-bot render --sandbox --demo`, so that everything runs with no media of one's own.
"""

from __future__ import annotations

from pathlib import Path

from bot.ffmpeg import ffmpeg_exe, run_ffmpeg

__all__ = ["ffmpeg_exe", "make_audio", "make_sparse_file", "make_video", "run_ffmpeg"]

_AUDIO_CODECS = {
    ".wav": ["-c:a", "pcm_s16le"],
    ".mp3": ["-c:a", "libmp3lame", "-b:a", "64k"],
    ".m4a": ["-c:a", "aac", "-b:a", "64k"],
    ".aac": ["-c:a", "aac", "-b:a", "64k"],
    ".ogg": ["-c:a", "libvorbis"],
    ".opus": ["-c:a", "libopus"],
    ".flac": ["-c:a", "flac"],
}


async def make_video(
    path: Path,
    *,
    seconds: float = 2.0,
    fps: float = 30.0,
    size: tuple[int, int] = (160, 120),
    with_audio: bool = True,
    tone_hz: int = 220,
) -> Path:
    """Write an H.264 test-pattern video (with a sine tone unless `with_audio` is false)."""
    width, height = size
    args = ["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}"]
    if with_audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency={tone_hz}:sample_rate=44100:duration={seconds}"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if with_audio:
        args += ["-c:a", "aac", "-b:a", "64k", "-shortest"]
    args += ["-t", str(seconds), "-movflags", "+faststart", str(path)]
    await run_ffmpeg(args)
    return path


async def make_audio(path: Path, *, seconds: float = 2.0, tone_hz: int = 440) -> Path:
    """Write a sine tone in the format the file's extension names (wav, mp3, m4a, ogg, ...)."""
    codec = _AUDIO_CODECS.get(path.suffix.lower(), [])
    args = ["-f", "lavfi", "-i", f"sine=frequency={tone_hz}:sample_rate=44100:duration={seconds}", *codec]
    await run_ffmpeg([*args, "-t", str(seconds), str(path)])
    return path


def make_sparse_file(path: Path, size: int) -> Path:
    """A file of `size` bytes that costs no disk blocks to make (for transfer benchmarks)."""
    with path.open("wb") as handle:
        handle.truncate(size)
    return path
