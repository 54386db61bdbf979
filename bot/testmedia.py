"""Generate small, real media files with the ffmpeg from imageio-ffmpeg.

Used by the tests, the benchmarks, the sandbox (its YouTube "render" is a test pattern) and
`lipsync-bot render --sandbox --demo`, so that everything runs with no media of one's own.

Besides ordinary files there are odd ones a member could craft to game the credit estimate
(`bot.media.credits`): variable frame rate (`make_vfr_video`), a few frames spread over a long
time (`make_sparse_video`), absurd rates (`make_video(fps=1000)`, `make_video(fps=0.5)`, or an
H.264 stream whose own timing claims a rate the container does not: `claim_fps`), audio longer
than the video (`audio_seconds`), and a still picture muxed with audio (`make_still_video`). All
are tiny (32×32 by default) and quick to encode.
"""

from __future__ import annotations

from pathlib import Path

from bot.ffmpeg import ffmpeg_exe, run_ffmpeg

__all__ = [
    "ffmpeg_exe",
    "make_audio",
    "make_sparse_file",
    "make_sparse_video",
    "make_still_video",
    "make_vfr_video",
    "make_video",
    "run_ffmpeg",
]

_X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
_ODD_SIZE = (32, 32)

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
    audio_seconds: float | None = None,
    claim_fps: float | None = None,
) -> Path:
    """Write an H.264 test-pattern video (with a sine tone unless `with_audio` is false).

    `fps` may be anything ffmpeg accepts, absurd ones included (1000, 0.5). `audio_seconds`
    makes the tone that long, longer than the video if you like (the file then lasts as long as
    its audio; the video stream keeps its `seconds`). `claim_fps` writes that rate into the
    H.264 stream's own timing (VUI) while the container's timestamps stay at `fps`: a file that
    tells two stories.
    """
    width, height = size
    args = ["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}"]
    tone = audio_seconds if audio_seconds is not None else seconds
    if with_audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency={tone_hz}:sample_rate=44100:duration={tone}"]
    args += _X264
    if claim_fps is not None:
        # VUI time_scale / num_units_in_tick is two ticks per frame for progressive video.
        args += ["-bsf:v", f"h264_metadata=tick_rate={claim_fps * 2:g}"]
    if with_audio:
        args += ["-c:a", "aac", "-b:a", "64k"]
        args += ["-shortest", "-t", str(seconds)] if audio_seconds is None else []
    else:
        args += ["-t", str(seconds)]
    args += ["-movflags", "+faststart", str(path)]
    await run_ffmpeg(args)
    return path


async def make_vfr_video(
    path: Path,
    *,
    segments: tuple[tuple[float, float], ...] = ((30.0, 2.0), (5.0, 4.0)),
    size: tuple[int, int] = _ODD_SIZE,
) -> Path:
    """Write a variable-frame-rate H.264 mp4 (no audio): `segments` of (fps, seconds), one after
    another, each at its own rate, with the timestamps kept as they are (`-fps_mode vfr`)."""
    width, height = size
    args: list[str] = []
    for fps, seconds in segments:
        args += ["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}"]
    inputs = "".join(f"[{i}:v]" for i in range(len(segments)))
    args += ["-filter_complex", f"{inputs}concat=n={len(segments)}:v=1[v]", "-map", "[v]"]
    await run_ffmpeg([*args, "-fps_mode", "vfr", *_X264, "-movflags", "+faststart", str(path)])
    return path


async def make_sparse_video(
    path: Path, *, frames: int = 3, seconds: float = 60.0, size: tuple[int, int] = _ODD_SIZE
) -> Path:
    """Write an H.264 mp4 (no audio) of `frames` frames spread evenly over `seconds`: by default
    3 frames over 60 s, an average rate of 0.05 fps."""
    width, height = size
    rate = f"{frames}/{seconds:g}"
    await run_ffmpeg(
        [
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={width}x{height}:rate={rate}:duration={seconds}",
            *_X264,
            "-movflags",
            "+faststart",
            str(path),
        ]
    )
    return path


async def make_still_video(
    path: Path, *, seconds: float = 5.0, codec: str = "libx264", size: tuple[int, int] = _ODD_SIZE
) -> Path:
    """Write an mp4 holding one still picture (one frame, `codec`: libx264, mjpeg, png) muxed
    with `seconds` of a sine tone: a photo dressed as a video."""
    width, height = size
    video = ["-c:v", codec] + (["-pix_fmt", "yuv420p"] if codec == "libx264" else [])
    await run_ffmpeg(
        [
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={width}x{height}",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=220:sample_rate=44100:duration={seconds}",
            "-frames:v",
            "1",
            *video,
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            str(path),
        ]
    )
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
