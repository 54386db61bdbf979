"""Hostile media: each file of the generated corpus is refused (or read) within the probe's bounds.

The corpus is `bot.testmedia_hostile.CORPUS`, made fresh for each session: nothing binary is kept.
The bounds (a child process with capped memory, CPU and time; headers read before anything is
decoded; an allow-list of containers and codecs) are in `bot.media.bounded` and `bot.media.accept`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot import words
from bot.media import MediaError, probe_audio, probe_video
from bot.media.accept import MAX_FRAME_SIDE, MAX_STREAMS, MAX_VIDEO_STREAMS, StreamHeader, judge_headers
from bot.media.bounded import ProbeLimits, child_environment
from bot.testmedia_hostile import CORPUS

# What each file gets: the refusal code and its data (the file name aside), or None if it is read.
EXPECTED: dict[str, tuple[str, dict[str, object]] | None] = {
    "bomb-16k.mov": ("frame_too_large", {"width": 16000, "height": 16000, "limit": MAX_FRAME_SIDE}),
    "bomb-8k.mov": ("frame_too_large", {"width": 8000, "height": 8000, "limit": MAX_FRAME_SIDE}),
    "liar.mov": ("frame_too_large", {"width": 4200, "height": 128, "limit": MAX_FRAME_SIDE}),
    "cover.mp3": None,  # audio with cover art: fine, and the picture is never decoded
    "ts.mp4": ("unsupported_format_video", {}),
    "ffv1.mov": ("unsupported_format_video", {}),
    "magicyuv.mov": ("unsupported_format_video", {}),
    "caf.m4a": ("unsupported_format_audio", {}),
    "ffv1.webm": ("unsupported_codec_video", {"codec": "ffv1"}),
    "tracks.m4a": ("too_many_streams", {"streams": 20, "limit": MAX_STREAMS}),
    # Short clips are readable media; the engine refuses them by length (tests/jobs).
    "short.mp4": None,
    "short.wav": None,
}
SLOTS = {item.name: item.slot for item in CORPUS}


async def probe_slot(path: Path, name: str, limits: ProbeLimits | None = None):
    probe = probe_video if SLOTS[name] == "video" else probe_audio
    return await probe(path, filename=name, limits=limits or ProbeLimits())


def test_the_expectations_cover_the_whole_corpus() -> None:
    assert set(EXPECTED) == set(SLOTS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_each_hostile_file_is_refused_with_a_clear_reason(hostile_media: dict[str, Path], name: str) -> None:
    """Bombs, liars, wrong containers and codecs are refused, saying what's wrong and what works."""
    expected = EXPECTED[name]
    if expected is None:
        info = await probe_slot(hostile_media[name], name)
        assert info.has_audio
        return
    code, data = expected
    with pytest.raises(MediaError) as refused:
        await probe_slot(hostile_media[name], name)
    assert refused.value.code == code
    assert refused.value.data == {"filename": name, **data}
    for language in ("en", "es", "pt-BR"):
        message = words.describe(code, refused.value.data, words.PLAIN, language)
        assert name in message and "Something went wrong" not in message


async def test_the_cover_art_bomb_is_audio_and_its_picture_is_never_decoded(hostile_media: dict[str, Path]) -> None:
    """16000×16000 at 16 bits is 2 GiB decoded: read within a 256 MiB cap, it can't have been."""
    info = await probe_audio(hostile_media["cover.mp3"], filename="cover.mp3", limits=ProbeLimits(256 << 20))
    assert info.has_cover_art and not info.has_video and info.audio_codec is not None


PROBE_THE_CORPUS = """
import asyncio, json, resource, sys
from pathlib import Path
from bot.media import probe_audio, probe_video

async def main():
    answers = {}
    for slot, path in json.loads(sys.argv[1]):
        probe = probe_video if slot == "video" else probe_audio
        try:
            await probe(Path(path), filename=Path(path).name)
            answers[Path(path).name] = None
        except Exception as exc:
            answers[Path(path).name] = getattr(exc, "code", type(exc).__name__)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across execve, so a fresh interpreter started
    # by a big test worker would report the worker's peak as its own.
    status = Path("/proc/self/status").read_text()
    bot_mib = int(status.split("VmHWM:")[1].split()[0]) / 1024
    probes_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"answers": answers, "bot_mib": bot_mib, "probes_mib": probes_mib}))

asyncio.run(main())
"""


def test_probing_the_corpus_stays_under_300_mib(hostile_media: dict[str, Path]) -> None:
    """The whole corpus, probed by a fresh process as the bot would: neither it nor any probe child
    peaks past 300 MiB. (Probed in the bot's own process, the 16000×16000 bomb alone took 2 GiB.)
    """
    files = [(item.slot, str(hostile_media[item.name])) for item in CORPUS]
    done = subprocess.run(
        [sys.executable, "-c", PROBE_THE_CORPUS, json.dumps(files)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["answers"] == {name: expected[0] if expected else None for name, expected in EXPECTED.items()}
    assert report["bot_mib"] < 300 and report["probes_mib"] < 300, report


async def test_a_probe_past_its_time_is_killed_and_refused(
    hostile_media: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """A child still reading at the deadline is killed; the member gets a friendly refusal."""
    caplog.set_level(logging.WARNING, logger="bot.media.bounded")
    with pytest.raises(MediaError) as refused:
        await probe_audio(hostile_media["short.wav"], filename="voice.wav", limits=ProbeLimits(wall_seconds=0))
    assert refused.value.code == "media_too_complex" and refused.value.data == {"filename": "voice.wav"}
    assert "Nothing was charged" in refused.value.user_message
    stopped = re.search(r"probe \(pid (\d+)\) was stopped", caplog.text)
    assert stopped is not None, caplog.text
    with pytest.raises(ProcessLookupError):  # killed and reaped: no process of that id is left
        os.kill(int(stopped.group(1)), 0)


async def test_a_probe_past_its_memory_cap_is_refused(hostile_media: dict[str, Path]) -> None:
    """A child that can't get the memory it needs fails inside its cap, and the member is told."""
    with pytest.raises(MediaError) as refused:
        await probe_video(hostile_media["short.mp4"], filename="clip.mp4", limits=ProbeLimits(memory_bytes=64 << 20))
    assert refused.value.code == "media_too_complex"


# --- the header rules, on made-up headers -------------------------------------------------------

H264 = StreamHeader("video", "h264", 1920, 1080, frames=60)
AAC = StreamHeader("audio", "aac")


@pytest.mark.parametrize(
    ("streams", "slot", "refusal"),
    [
        pytest.param([H264, AAC], "_video", None, id="phone-video"),
        pytest.param([StreamHeader("video", "hevc", 2160, 3840), AAC], "_video", None, id="4k-portrait"),
        pytest.param([H264, AAC, StreamHeader("data", None)], "_video", None, id="timecode-track"),
        pytest.param([StreamHeader("video", "h264", 4097, 64)], "_video", "frame_too_large", id="too-wide"),
        pytest.param([StreamHeader("video", "png", 64, 64, frames=30)], "_video", "unsupported_codec", id="png"),
        pytest.param([StreamHeader("video", "png", 64, 64, frames=1)], "_video", "still_image", id="one-png"),
        pytest.param([StreamHeader("video", None, 64, 64)], "_video", "unsupported_codec", id="no-decoder"),
        pytest.param([H264] * (MAX_VIDEO_STREAMS + 1), "_video", "too_many_video_streams", id="video-tracks"),
        pytest.param([AAC] * (MAX_STREAMS + 1), "_audio", "too_many_streams", id="tracks"),
        pytest.param([AAC, StreamHeader("video", "mjpeg", 600, 600, cover_art=True)], "_audio", None, id="cover"),
        pytest.param([AAC, StreamHeader("video", "png", 9000, 9000, cover_art=True)], "_audio", "frame_too_large"),
        pytest.param([StreamHeader("audio", "ac3")], "_audio", "unsupported_codec", id="ac3-voice"),
        pytest.param([H264, StreamHeader("audio", "ac3")], "_video", None, id="ac3-in-a-video"),
    ],
)
def test_header_rules(streams: list[StreamHeader], slot, refusal: str | None) -> None:
    verdict = judge_headers(streams, slot)
    assert (verdict.code if verdict is not None else None) == refusal


def test_the_probe_child_gets_no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """A decoder subverted by a file finds none of the bot's settings in its environment."""
    for name in ("DISCORD_TOKEN", "MAGIC_HOUR_API_KEY", "DATABASE_URL", "WEBHOOK_SECRET"):
        monkeypatch.setenv(name, "hunter2")
    monkeypatch.setenv("PATH", "/usr/bin")
    environment = child_environment()
    assert "hunter2" not in environment.values() and environment["PATH"] == "/usr/bin"
