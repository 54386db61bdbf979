"""The sandbox's own charging rule: the 30 fps estimate at create, frames counted from the source at completion."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import httpx
import pytest

from bot.clock import FakeClock
from bot.config import GenerationMode
from bot.sandbox import Sandbox
from bot.sandbox.billing import count_frames, estimate_credits, exact
from bot.sandbox.errors import RenderError
from bot.sandbox.media import read_audio_seconds, read_video
from tests.sandbox.helpers import Media, create_job, lip_sync_body, run_to_end, upload
from tests.sandbox.oddmedia import OddMedia, write_video


def _count(path: Path, start: float, seconds: float, max_fps: float | None = None) -> int:
    return count_frames(read_video(path), exact(start), exact(seconds), max_fps).frames


@pytest.mark.parametrize(
    ("start", "end", "max_fps", "mode", "credits"),
    [
        (0, 10, None, "lite", 300),  # the docs' example: 10 s lite at 30 fps
        (0, 10, 24, "lite", 240),
        (0, 10, 60, "standard", 300),
        (0, 10, None, "pro", 600),
        (0.5, 1.75, None, "lite", 38),  # ceil(37.5)
        (0.1, 0.3, None, "lite", 6),  # exactly 6, not 7: the decimals as written, no float noise
        (1.1, 2.2, 23.976, "lite", 27),  # ceil(1.1 * 23.976) = ceil(26.3736)
    ],
)
def test_estimate_at_create(start: float, end: float, max_fps: float | None, mode: str, credits: int) -> None:
    """ceil((end - start) * min(30, max_fps_limit)) * (2 for pro), exact."""
    assert estimate_credits(start, end, max_fps, GenerationMode(mode)) == credits


@pytest.mark.parametrize(
    ("start", "seconds", "max_fps"),
    [
        (s, length, cap)
        for s in (0, 0.52, 0.5, 1 / 3)
        for length in (0.01, 0.2, 1.0, 1.25, 1.24)
        for cap in (None, 12, 24, 29.97, 30, 60)
    ],
)
def test_constant_rate_sources_follow_the_documented_rule(
    media: Media, odd: OddMedia, start: float, seconds: float, max_fps: float | None
) -> None:
    """For 30 and 60 fps sources, aligned or not: exactly ceil(seconds * min(fps, max_fps_limit))."""
    for path, fps in ((media.video, 30), (odd.cfr60, 60)):
        rate = exact(fps) if max_fps is None else min(exact(fps), exact(max_fps))
        assert _count(path, start, seconds, max_fps) == math.ceil(exact(seconds) * rate), (path.name, fps)


def test_documented_example_60fps(odd: OddMedia) -> None:
    """60 fps x 2 s = 120 frames, 48 with max_fps_limit 24 (the changelog's 600 and 240, over 2 s)."""
    assert _count(odd.cfr60, 0, 2) == 120
    assert _count(odd.cfr60, 0, 2, 24) == 48


@pytest.mark.parametrize(
    ("name", "start", "seconds", "max_fps", "frames"),
    [
        pytest.param("vfr", 0, 2, None, 10, id="vfr-all-real-frames"),
        # At 10 fps the four frames .3-.33 s cannot all show: .3 and .33 do (and .25 does not).
        pytest.param("vfr", 0, 2, 10, 7, id="vfr-capped"),
        pytest.param("vfr", 0.5, 1.5, None, 3, id="vfr-window"),  # .33 (still showing), 1 and 1.5
        pytest.param("sparse", 0, 60, None, 3, id="sparse"),
        pytest.param("sparse", 0, 60, 30, 3, id="sparse-capped"),
        # As for any source: ceil(40 s x its 0.05 fps); the picture at 40 s shows after the last sample.
        pytest.param("sparse", 10, 40, None, 2, id="sparse-window"),
        pytest.param("claims_1000fps", 0, 2, None, 2, id="claims-1000fps"),
        pytest.param("claims_1000fps", 0, 2, 30, 2, id="claims-1000fps-capped"),
        pytest.param("real_1000fps", 0, 0.5, None, 500, id="real-1000fps"),
        pytest.param("real_1000fps", 0, 0.5, 30, 15, id="real-1000fps-capped"),
        pytest.param("half_fps", 0, 10, None, 5, id="half-fps"),
        pytest.param("half_fps", 1, 4, None, 2, id="half-fps-window"),
        pytest.param("half_fps", 0, 10, 30, 5, id="half-fps-capped"),
        pytest.param("still", 0, 5, None, 1, id="still"),
        pytest.param("still", 0, 5, 30, 1, id="still-capped"),
    ],
)
def test_odd_sources_are_counted_by_their_frames(
    odd: OddMedia, name: str, start: float, seconds: float, max_fps: float | None, frames: int
) -> None:
    """Sparse, variable-rate and lying files are charged the distinct frames a render at R shows."""
    assert _count(getattr(odd, name), start, seconds, max_fps) == frames


def test_what_the_odd_files_claim(odd: OddMedia) -> None:
    """The files really are odd: headers and container durations that mislead a naive probe."""
    with av.open(str(odd.claims_1000fps)) as container:
        assert container.streams.video[0].base_rate == 1000  # r_frame_rate: "1000 fps"
    with av.open(str(odd.audio_longer)) as container:
        assert container.duration == 5_000_000  # the container lasts 5 s ...
    assert read_video(odd.audio_longer).end == 2  # ... its video 2 s
    assert read_video(odd.sparse).times == (Fraction(0), Fraction(20), Fraction(40))
    assert read_video(odd.still).end == 5
    assert read_audio_seconds(odd.voice) == 60


def test_count_never_exceeds_either_bound(odd: OddMedia) -> None:
    """At most the frames on screen in the window, and at most ceil(seconds x R)."""
    for path in (odd.vfr, odd.sparse, odd.half_fps, odd.cfr60, odd.claims_1000fps):
        timeline = read_video(path)
        for start in (Fraction(0), Fraction(1, 7), Fraction(1, 2)):
            for cap in (None, 5.0, 24.0):
                seconds = timeline.end - start
                count = count_frames(timeline, start, seconds, cap)
                assert count.frames <= len(timeline.visible(start, start + seconds))
                assert count.frames <= math.ceil(seconds * count.rate)
                assert count.frames >= 1


def test_a_picture_is_not_a_video(tmp_path: Path) -> None:
    """A PNG in the video slot (whatever its name) is invalid_video_file."""
    png = tmp_path / "face.mp4"
    with av.open(str(png), mode="w", format="image2pipe") as container:
        stream = container.add_stream("png", rate=1)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "rgb24"
        frame = av.VideoFrame(16, 16, "rgb24")
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    with pytest.raises(RenderError) as caught:
        read_video(png)
    assert caught.value.code == "invalid_video_file"


def test_a_video_with_an_offset_start(tmp_path: Path) -> None:
    """Times count from the file's start, as ffmpeg's -ss does: a file starting at 10 s is counted from there."""
    path = write_video(tmp_path / "late.mp4", [10 + Fraction(i, 30) for i in range(60)], end=12.0)
    timeline = read_video(path)
    assert timeline.times[0] == 0
    assert timeline.end == 2
    assert _count(path, 0, 2) == 60


@pytest.mark.parametrize(
    ("name", "start", "end", "max_fps", "estimate", "settled"),
    [
        pytest.param("vfr", 0, 2, None, 60, 10, id="vfr"),
        pytest.param("vfr", 0, 2, 10, 20, 7, id="vfr-capped"),
        pytest.param("sparse", 0, 60, None, 1800, 3, id="sparse"),
        pytest.param("claims_1000fps", 0, 2, None, 60, 2, id="claims-1000fps"),
        # The estimate is at 30 fps; a real 1000 fps source uncapped settles higher: the account pays more.
        pytest.param("real_1000fps", 0, 0.5, None, 15, 500, id="real-1000fps"),
        pytest.param("half_fps", 0, 10, None, 300, 5, id="half-fps"),
        pytest.param("audio_longer", 0, 5, None, 150, 60, id="audio-longer-than-video"),
        pytest.param("still", 0, 5, None, 150, 1, id="still-with-sound"),
    ],
)
async def test_charges_over_http(
    sandbox: Sandbox,
    api: httpx.AsyncClient,
    storage: httpx.AsyncClient,
    clock: FakeClock,
    odd: OddMedia,
    name: str,
    start: float,
    end: float,
    max_fps: float | None,
    estimate: int,
    settled: int,
) -> None:
    """Create debits the 30 fps estimate; completion settles to the counted frames; the account follows."""
    video = await upload(api, storage, getattr(odd, name), "video", "mp4")
    audio = await upload(api, storage, odd.voice, "audio", "wav")
    body = lip_sync_body(video, audio, start_seconds=start, end_seconds=end)
    if max_fps is not None:
        body["max_fps_limit"] = max_fps
    project_id = await create_job(api, body)
    assert sandbox.charged(project_id) == estimate
    assert sandbox.credits == 1_000_000 - estimate
    project = await run_to_end(api, clock, project_id)
    assert project["status"] == "complete", project["error"]
    assert project["credits_charged"] == sandbox.charged(project_id) == settled
    assert sandbox.credits == 1_000_000 - settled
