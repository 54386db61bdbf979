"""Odd but real media for the sandbox's frame counting, written with PyAV frame by frame.

Each video is H.264 in MP4 with frames exactly where asked (time base 1/60000 s, no B-frames), the
last frame lasting until `end`: variable frame rates, sparse files, files whose header claims a
rate their frames do not have, stills with a long sound. (Test-side only: `bot.testmedia` makes
the ordinary media.)
"""

from __future__ import annotations

import asyncio
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

TIME_BASE = Fraction(1, 60000)  # exact for 1/60, 1/30 and 1 ms
SIZE = (64, 48)
SAMPLE_RATE = 44100


def _video_packets(stream: av.video.stream.VideoStream, times: Sequence[Fraction]) -> list[av.Packet[Any]]:
    packets: list[av.Packet[Any]] = []
    width, height = SIZE
    for index, time in enumerate(times):
        frame = av.VideoFrame(width, height, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes([(index * 37) % 256]) * plane.buffer_size)  # each frame its own shade
        frame.pts = int(time / TIME_BASE)
        frame.time_base = TIME_BASE
        packets.extend(stream.encode(frame))
    packets.extend(stream.encode(None))
    return packets


def _audio_packets(stream: av.audio.stream.AudioStream, seconds: float) -> list[av.Packet[Any]]:
    packets: list[av.Packet[Any]] = []
    total, done = round(seconds * SAMPLE_RATE), 0
    while done < total:
        count = min(1024, total - done)
        frame = av.AudioFrame(format="fltp", layout="mono", samples=count)
        frame.planes[0].update(bytes(frame.planes[0].buffer_size))
        frame.sample_rate = SAMPLE_RATE
        frame.pts = done
        packets.extend(stream.encode(frame))
        done += count
    packets.extend(stream.encode(None))
    return packets


def write_video(path: Path, times: Sequence[float | Fraction], end: float, audio_seconds: float | None = None) -> Path:
    """An MP4 whose frames start at `times` (seconds) and whose last frame shows until `end`."""
    exact = [Fraction(str(t)) if isinstance(t, float) else Fraction(t) for t in times]
    with av.open(str(path), mode="w", format="mp4") as container:
        video = container.add_stream("libx264", rate=30, options={"bframes": "0", "preset": "ultrafast"})
        video.width, video.height = SIZE
        video.pix_fmt = "yuv420p"
        video.codec_context.time_base = TIME_BASE
        audio = container.add_stream("aac", rate=SAMPLE_RATE) if audio_seconds is not None else None
        packets = _video_packets(video, exact)
        # Each frame lasts until the next; the last until `end` (the MP4 keeps it as the track's end).
        ordered = sorted(packets, key=lambda p: p.pts or 0)
        stops = [p.pts for p in ordered[1:]] + [int(Fraction(str(end)) / TIME_BASE)]
        for packet, stop in zip(ordered, stops, strict=True):
            packet.time_base = TIME_BASE
            packet.duration = (stop or 0) - (packet.pts or 0)
        for packet in packets:
            container.mux(packet)
        if audio is not None and audio_seconds is not None:
            for packet in _audio_packets(audio, audio_seconds):
                container.mux(packet)
    return path


def write_wav(path: Path, seconds: float) -> Path:
    """A silent 16-bit mono WAV of exactly `seconds`."""
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(SAMPLE_RATE)
        handle.writeframes(bytes(2 * round(seconds * SAMPLE_RATE)))
    return path


@dataclass(frozen=True)
class OddMedia:
    """The odd files, made once per session."""

    vfr: Path  # 10 frames at 0, .1, .2, .25, .3, .31, .32, .33, 1, 1.5 s; ends at 2 s
    sparse: Path  # 3 frames at 0, 20, 40 s; ends at 60 s; a 60 s sound
    claims_1000fps: Path  # 2 frames at 0 and 1 ms, the second to 2 s: the header says 1000 fps
    real_1000fps: Path  # 500 frames 1 ms apart: 0.5 s
    half_fps: Path  # 0.5 fps: 5 frames at 0, 2, 4, 6, 8 s; ends at 10 s
    cfr60: Path  # 60 fps, 2 s
    audio_longer: Path  # 30 fps video of 2 s with a 5 s sound track
    still: Path  # one picture shown for 5 s, with a 5 s sound
    voice: Path  # a 60 s WAV for every job


def _make(folder: Path) -> OddMedia:
    return OddMedia(
        vfr=write_video(folder / "vfr.mp4", [0, 0.1, 0.2, 0.25, 0.3, 0.31, 0.32, 0.33, 1.0, 1.5], end=2.0),
        sparse=write_video(folder / "sparse.mp4", [0, 20, 40], end=60.0, audio_seconds=60),
        claims_1000fps=write_video(folder / "claims_1000fps.mp4", [0, 0.001], end=2.0),
        real_1000fps=write_video(folder / "real_1000fps.mp4", [Fraction(i, 1000) for i in range(500)], end=0.5),
        half_fps=write_video(folder / "half_fps.mp4", [0, 2, 4, 6, 8], end=10.0),
        cfr60=write_video(folder / "cfr60.mp4", [Fraction(i, 60) for i in range(120)], end=2.0),
        audio_longer=write_video(
            folder / "audio_longer.mp4", [Fraction(i, 30) for i in range(60)], end=2.0, audio_seconds=5
        ),
        still=write_video(folder / "still.mp4", [0], end=5.0, audio_seconds=5),
        voice=write_wav(folder / "voice60.wav", 60.0),
    )


async def make_odd_media(folder: Path) -> OddMedia:
    """Write every odd file into `folder`."""
    return await asyncio.to_thread(_make, folder)
