"""The sandbox's output: a real, labelled MP4 of the window with the given audio; no lip sync."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from bot.clock import FakeClock
from bot.sandbox import SANDBOX_LABEL
from bot.sandbox.output import RenderError, output_from_file, output_from_youtube
from bot.testmedia import make_audio
from tests.sandbox.helpers import Media, create_job, dominant_hz, lip_sync_body, probe_output, run_to_end, upload

TOLERANCE = 0.15


@pytest.mark.parametrize(
    ("start", "end", "max_fps", "audio", "seconds", "fps"),
    [
        pytest.param(0.5, 1.75, 12.0, "audio_wav", 1.25, 12, id="trim-and-cap"),
        pytest.param(0.0, 2.0, 60.0, "audio_wav", 2.0, 30, id="keeps-lower-input-fps"),
        pytest.param(0.0, 2.0, None, "audio_short", 1.0, 30, id="audio-shorter"),
        pytest.param(1.0, 5.0, 24.0, "audio_wav", 1.0, 24, id="window-past-video-end"),
    ],
)
async def test_output_from_file(
    media: Media,
    tmp_path: Path,
    start: float,
    end: float,
    max_fps: float | None,
    audio: str,
    seconds: float,
    fps: int,
) -> None:
    """Trimmed to the window, fps capped, audio replaced, ended at the shorter, labelled."""
    out = tmp_path / "sandbox-x.mp4"
    result = await output_from_file(media.video, getattr(media, audio), out, start=start, end=end, max_fps=max_fps)
    assert result.path == out and out.exists()
    probe = probe_output(out)
    assert abs(probe.video_seconds - seconds) <= TOLERANCE
    assert abs(probe.audio_seconds - seconds) <= TOLERANCE
    assert probe.fps == pytest.approx(fps)
    assert abs(probe.frames - seconds * fps) <= 2
    assert (probe.video_codec, probe.audio_codec) == ("h264", "aac")
    assert (probe.width, probe.height) == (160, 120)
    assert probe.metadata["title"] == SANDBOX_LABEL
    assert probe.metadata["comment"] == SANDBOX_LABEL
    assert result.frames == round(seconds * fps)
    # The voice is the given 880 Hz audio, not the video's own 220 Hz tone.
    assert dominant_hz(out) == pytest.approx(880, rel=0.05)


async def test_youtube_output_is_a_test_pattern(media: Media, tmp_path: Path) -> None:
    """YouTube sources become a test pattern of the window at min(30, max_fps) fps, labelled."""
    out = tmp_path / "sandbox-y.mp4"
    result = await output_from_youtube(media.audio_wav, out, start=30.0, end=31.5, max_fps=15.0)
    probe = probe_output(out)
    assert abs(probe.video_seconds - 1.5) <= TOLERANCE
    assert abs(probe.audio_seconds - 1.5) <= TOLERANCE
    assert probe.fps == pytest.approx(15)
    assert probe.metadata["title"] == SANDBOX_LABEL
    assert result.frames == 23  # ceil(1.5 * 15)


async def test_output_rejects_non_media(media: Media, tmp_path: Path) -> None:
    """Unreadable inputs raise the job error codes, and leave no output behind."""
    out = tmp_path / "sandbox-z.mp4"
    with pytest.raises(RenderError) as caught:
        await output_from_file(media.not_media, media.audio_wav, out, start=0, end=1, max_fps=None)
    assert caught.value.code == "invalid_video_file"
    with pytest.raises(RenderError) as caught:
        await output_from_file(media.video, media.video_only, out, start=0, end=1, max_fps=None)
    assert caught.value.code == "invalid_audio_file"
    assert list(tmp_path.iterdir()) == []


async def test_downloaded_result_through_the_api(
    api: httpx.AsyncClient, storage: httpx.AsyncClient, clock: FakeClock, media: Media, tmp_path: Path
) -> None:
    """End to end over HTTP: the downloaded file is the labelled output of the requested window."""
    video = await upload(api, storage, media.video, "video", "mp4")
    audio = await upload(api, storage, media.audio_mp3, "audio", "mp3")
    project_id = await create_job(
        api, lip_sync_body(video, audio, start_seconds=0.25, end_seconds=1.5, max_fps_limit=20)
    )
    body = await run_to_end(api, clock, project_id)
    assert body["status"] == "complete", body["error"]
    assert (body["fps"], body["credits_charged"]) == (20, 25)
    response = await storage.get(body["downloads"][0]["url"])
    out = tmp_path / f"sandbox-{project_id}.mp4"
    out.write_bytes(response.content)
    probe = probe_output(out)
    assert abs(probe.video_seconds - 1.25) <= TOLERANCE
    assert probe.fps <= 20
    assert probe.metadata["title"] == SANDBOX_LABEL


async def test_an_output_under_a_tenth_of_a_second_is_invalid_parameters(media: Media, tmp_path: Path) -> None:
    """Magic Hour renders nothing shorter than 0.1 s: a short voice, a window cut short by the
    video's end, or a short YouTube window fail the job, and leave no output behind."""
    short_voice = await make_audio(tmp_path / "short.wav", seconds=0.05)
    out = tmp_path / "out" / "sandbox-short.mp4"
    out.parent.mkdir()
    attempts = [
        output_from_file(media.video, short_voice, out, start=0, end=1, max_fps=None),
        output_from_file(media.video, media.audio_wav, out, start=1.95, end=5, max_fps=None),  # 2 s video
        output_from_youtube(media.audio_wav, out, start=1.0, end=1.05, max_fps=None),
    ]
    for attempt in attempts:
        with pytest.raises(RenderError) as caught:
            await attempt
        assert caught.value.code == "invalid_parameters"
        assert "at least 0.1 s" in caught.value.message
    assert list(out.parent.iterdir()) == []
    # A tenth of a second exactly is enough.
    result = await output_from_youtube(media.audio_wav, out, start=1.0, end=1.1, max_fps=None)
    assert result.seconds == pytest.approx(0.1)
