"""Media and HTTP helpers shared by the sandbox tests."""

from __future__ import annotations

import array
import asyncio
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import httpx

from bot.clock import FakeClock
from bot.testmedia import make_audio, make_video

API_KEY = "sandbox-key"


@dataclass(frozen=True)
class Media:
    """Test media made once per session."""

    video: Path  # 2 s, 30 fps, 160x120, 220 Hz tone
    video_only: Path  # 2 s, no audio stream
    audio_wav: Path  # 2 s, 880 Hz
    audio_short: Path  # 1 s, 880 Hz
    audio_mp3: Path  # 2 s, 880 Hz
    not_media: Path  # a text file named .mp4


async def make_media(folder: Path) -> Media:
    media = Media(
        video=folder / "video.mp4",
        video_only=folder / "video_only.mp4",
        audio_wav=folder / "voice.wav",
        audio_short=folder / "short.wav",
        audio_mp3=folder / "voice.mp3",
        not_media=folder / "not_media.mp4",
    )
    await asyncio.gather(
        make_video(media.video, seconds=2.0, fps=30, tone_hz=220),
        make_video(media.video_only, seconds=2.0, fps=30, with_audio=False),
        make_audio(media.audio_wav, seconds=2.0, tone_hz=880),
        make_audio(media.audio_short, seconds=1.0, tone_hz=880),
        make_audio(media.audio_mp3, seconds=2.0, tone_hz=880),
    )
    media.not_media.write_text("this is not a video\n")
    return media


async def upload(api: httpx.AsyncClient, storage: httpx.AsyncClient, path: Path, kind: str, ext: str) -> str:
    """Upload a file the way a client does; return its `file_path`."""
    response = await api.post("/v1/files/upload-urls", json={"items": [{"type": kind, "extension": ext}]})
    assert response.status_code == 200, response.text
    item = response.json()["items"][0]
    put = await storage.put(item["upload_url"], content=path.read_bytes())
    assert put.status_code == 200, put.text
    return str(item["file_path"])


def lip_sync_body(video: str | None, audio: str, **overrides: Any) -> dict[str, Any]:
    """A valid create body for a file source, with overrides merged in at the top level."""
    body: dict[str, Any] = {
        "start_seconds": 0.0,
        "end_seconds": 2.0,
        "assets": {"video_source": "file", "video_file_path": video, "audio_file_path": audio},
    }
    body.update(overrides)
    return body


async def create_job(api: httpx.AsyncClient, body: dict[str, Any]) -> str:
    """Create a job and return its id."""
    response = await api.post("/v1/lip-sync", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def get_project(api: httpx.AsyncClient, project_id: str) -> dict[str, Any]:
    """The project JSON."""
    response = await api.get(f"/v1/video-projects/{project_id}")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def run_to_end(api: httpx.AsyncClient, clock: FakeClock, project_id: str) -> dict[str, Any]:
    """Move the clock past queue and render time and return the finalised project."""
    await clock.advance(3600)
    return await get_project(api, project_id)


@dataclass(frozen=True)
class Probe:
    """What a test needs to know about a rendered file."""

    video_seconds: float
    fps: float
    frames: int
    width: int
    height: int
    audio_seconds: float
    audio_codec: str
    video_codec: str
    metadata: dict[str, str]


def probe_output(path: Path) -> Probe:
    """Streams, durations and metadata of an MP4, via PyAV."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0]
        assert video.duration is not None and video.time_base is not None
        assert audio.duration is not None and audio.time_base is not None
        rate = video.average_rate
        assert rate is not None
        return Probe(
            video_seconds=float(video.duration * video.time_base),
            fps=float(rate),
            frames=video.frames,
            width=video.codec_context.width,
            height=video.codec_context.height,
            audio_seconds=float(audio.duration * audio.time_base),
            audio_codec=audio.codec_context.name,
            video_codec=video.codec_context.name,
            metadata=dict(container.metadata),
        )


def dominant_hz(path: Path) -> float:
    """The main frequency of a file's audio, by counting zero crossings (pure Python; a sine tone is enough)."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=44100)
    samples = array.array("h")
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                samples.frombytes(bytes(out.planes[0])[: out.samples * 2])
    crossings = sum(1 for a, b in itertools.pairwise(samples) if (a < 0) != (b < 0))
    return crossings / 2 / (len(samples) / 44100)
