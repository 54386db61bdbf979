"""The credit estimate cannot be gamed with the file: odd media, the rate judgement, the rules.

Every odd file is real (made by `bot.testmedia` with ffmpeg), probed the way the engine probes a
member's upload, and priced with the rules the engine uses.
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import math
from fractions import Fraction
from pathlib import Path

import av
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config import GenerationMode
from bot.media import (
    MediaError,
    MediaInfo,
    billing_fps,
    estimate_credits,
    frame_cap,
    probe,
    probe_video,
    queue_hold_credits,
)
from bot.media.probe import FrameTiming, count_frames, frame_timing, judge_rate
from bot.testmedia import make_sparse_video, make_still_video, make_vfr_video, make_video, run_ffmpeg

# `bot.media.probe` the attribute is the function; the module is only reachable by name.
probe_mod = importlib.import_module("bot.media.probe")
PRO, LITE, STANDARD = GenerationMode.PRO, GenerationMode.LITE, GenerationMode.STANDARD
DEFAULT_MAX_FPS = 30.0  # Settings.default_max_fps
SMALL = (32, 32)


@pytest.fixture(autouse=True)
def no_wall_clock_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counting here never stops on wall time, so a slow machine cannot change a verdict (the time
    bound has its own test, with a fake clock)."""
    monkeypatch.setattr(probe_mod, "MAX_COUNT_SECONDS", math.inf)


@pytest.fixture(scope="module")
def odd(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Odd and ordinary videos, made once for this module."""
    folder = tmp_path_factory.mktemp("odd")
    files = {
        name: folder / name
        for name in (
            "vfr.mp4",
            "sparse.mp4",
            "fps1000.mp4",
            "claims1000.mp4",
            "half_fps.mp4",
            "long_audio.mp4",
            "still_h264.mp4",
            "still_mjpeg.mp4",
            "fps30.mp4",
            "fps25.mp4",
            "fps24.mp4",
            "fps2997.mp4",
            "bframes.mp4",
            "fps30.webm",
        )
    }

    async def make() -> None:
        await asyncio.gather(
            make_vfr_video(files["vfr.mp4"]),  # 2 s at 30 fps, then 4 s at 5 fps
            make_sparse_video(files["sparse.mp4"]),  # 3 frames over 60 s
            make_video(files["fps1000.mp4"], fps=1000, seconds=1.0, size=SMALL, with_audio=False),
            make_video(files["claims1000.mp4"], fps=30, seconds=2.0, size=SMALL, claim_fps=1000),
            make_video(files["half_fps.mp4"], fps=0.5, seconds=10.0, size=SMALL),
            make_video(files["long_audio.mp4"], fps=30, seconds=2.0, size=SMALL, audio_seconds=10.0),
            make_still_video(files["still_h264.mp4"], seconds=5.0),
            make_still_video(files["still_mjpeg.mp4"], seconds=5.0, codec="mjpeg"),
            make_video(files["fps30.mp4"], fps=30, seconds=2.0, size=SMALL),
            make_video(files["fps25.mp4"], fps=25, seconds=2.0, size=SMALL),
            make_video(files["fps24.mp4"], fps=24, seconds=2.0, size=SMALL),
            make_video(files["fps2997.mp4"], fps=30000 / 1001, seconds=2.0, size=SMALL),
            # B-frames: packets come in decode order, not presentation order.
            run_ffmpeg(
                [
                    *("-f", "lavfi", "-i", "testsrc2=size=32x32:rate=30:duration=2"),
                    *("-c:v", "libx264", "-preset", "veryfast", "-bf", "3", "-pix_fmt", "yuv420p"),
                    str(files["bframes.mp4"]),
                ]
            ),
            # Matroska keeps millisecond timestamps: 30 fps is 33, 33, 34 ms apart.
            run_ffmpeg(
                [
                    *("-f", "lavfi", "-i", "testsrc2=size=32x32:rate=30:duration=2"),
                    *("-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"),
                    str(files["fps30.webm"]),
                ]
            ),
        )

    asyncio.run(make())
    return files


async def probed(odd: dict[str, Path], name: str) -> MediaInfo:
    return await probe_video(odd[name], filename=name)


def frames_at_cap(seconds: float, cap: float, mode: GenerationMode) -> int:
    """What a render of `seconds` at the cap bills: the least an inconsistent file may reserve."""
    return max(1, math.ceil(round(seconds * cap, 6))) * mode.credits_per_frame


# --- odd files: billed at the cap, never at a figure they claim ------------------------------------

INCONSISTENT = [
    # name, verdicts it may get, frames counted, seconds
    # (the variable-rate file's codec rate is its encoder's time base, 1,000,000, with this ffmpeg;
    # without that, average 13.3 against nominal 30 disagree)
    ("vfr.mp4", ("implausible", "disagree"), 80, 6.0),
    ("sparse.mp4", ("implausible",), 3, 60.0),
    ("fps1000.mp4", ("implausible",), 1000, 1.0),
    ("half_fps.mp4", ("implausible",), 5, 10.0),
]


@pytest.mark.parametrize(("name", "verdict", "frames", "seconds"), INCONSISTENT)
async def test_odd_files_are_not_constant(
    odd: dict[str, Path], name: str, verdict: tuple[str, ...], frames: int, seconds: float
):
    info = await probed(odd, name)
    assert info.rate_verdict in verdict
    assert not info.rate_consistent and info.constant_fps is None
    assert info.counted_frames == frames
    assert info.counted_seconds == pytest.approx(seconds, abs=0.01)


@pytest.mark.parametrize(("name", "verdict", "frames", "seconds"), INCONSISTENT)
@pytest.mark.parametrize("max_fps", [None, 24.0, 30.0, 60.0])
async def test_odd_files_bill_at_the_cap(
    odd: dict[str, Path], name: str, verdict: tuple[str, ...], frames: int, seconds: float, max_fps: float | None
):
    info = await probed(odd, name)
    cap = max_fps or DEFAULT_MAX_FPS
    fps = billing_fps(info, max_fps, DEFAULT_MAX_FPS)
    assert fps == cap
    for length in (60.0, info.duration, 0.1):
        for mode in GenerationMode:
            estimate = estimate_credits(length, fps, mode)
            assert estimate >= frames_at_cap(length, cap, mode)
            assert estimate >= mode.credits_per_frame


async def test_the_reported_attacks_are_closed(odd: dict[str, Path]) -> None:
    """The sparse file reserved 0 for a 60 s pro job Magic Hour charged 3,600 for."""
    for name in ("sparse.mp4", "vfr.mp4"):
        info = await probed(odd, name)
        fps = billing_fps(info, None, DEFAULT_MAX_FPS)
        assert estimate_credits(60.0, fps, PRO) == 3600
        assert queue_hold_credits(60.0, None, PRO) == 3600
    # What the file itself claims would have been far lower.
    sparse = await probed(odd, "sparse.mp4")
    assert sparse.average_rate == pytest.approx(0.05)
    assert estimate_credits(60.0, sparse.average_rate or 0.0, PRO) == 6


async def test_a_codec_claim_the_container_contradicts(odd: dict[str, Path]) -> None:
    """The H.264 stream says 1000 fps, the container's timestamps 30: a file telling two stories is
    not believed (Magic Hour might read either), so it bills at the cap."""
    info = await probed(odd, "claims1000.mp4")
    assert info.codec_rate == 1000.0
    assert (info.average_rate, info.nominal_rate, info.counted_frames) == (30.0, 30.0, 60)
    assert info.rate_verdict == "implausible" and info.constant_fps is None
    assert billing_fps(info, None, DEFAULT_MAX_FPS) == 30.0
    assert billing_fps(info, 60.0, DEFAULT_MAX_FPS) == 60.0


async def test_audio_longer_than_the_video(odd: dict[str, Path]) -> None:
    info = await probed(odd, "long_audio.mp4")
    assert info.has_audio and info.duration == pytest.approx(2.0, abs=0.05)  # the video's length
    assert info.rate_consistent and info.constant_fps == 30.0
    with av.open(str(odd["long_audio.mp4"])) as container:
        assert float(container.duration or 0) / av.time_base == pytest.approx(10.0, abs=0.1)
    assert estimate_credits(info.duration, billing_fps(info, None, DEFAULT_MAX_FPS), LITE) == 60


@pytest.mark.parametrize("name", ["still_h264.mp4", "still_mjpeg.mp4"])
async def test_a_still_picture_muxed_with_audio_is_a_still_image(odd: dict[str, Path], name: str) -> None:
    with pytest.raises(MediaError) as exc:
        await probe_video(odd[name], filename="face.mp4")
    assert exc.value.code == "still_image_video"
    assert exc.value.data == {"filename": "face.mp4"}
    with pytest.raises(MediaError) as exc:
        await probe(odd[name], label="face.mp4")
    assert exc.value.code == "still_image"


# --- ordinary files keep their exact rate ------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "rate", "frames"),
    [
        ("fps30.mp4", 30.0, 60),
        ("fps25.mp4", 25.0, 50),
        ("fps24.mp4", 24.0, 48),
        ("fps2997.mp4", 30000 / 1001, None),
        ("bframes.mp4", 30.0, 60),
        ("fps30.webm", 30.0, 60),
    ],
)
async def test_ordinary_files_keep_their_rate(odd: dict[str, Path], name: str, rate: float, frames: int | None):
    info = await probed(odd, name)
    assert info.rate_verdict == "constant"
    assert info.constant_fps == rate  # exact: the declared rate, not a measurement
    if frames is not None:
        assert info.counted_frames == frames
    assert billing_fps(info, None, DEFAULT_MAX_FPS) == rate
    assert billing_fps(info, 24.0, DEFAULT_MAX_FPS) == min(rate, 24.0)
    assert billing_fps(info, None, 20.0) == 20.0
    assert billing_fps(info, None, None) == rate


async def test_ordinary_estimates(odd: dict[str, Path]) -> None:
    fps24 = billing_fps(await probed(odd, "fps24.mp4"), None, DEFAULT_MAX_FPS)
    fps25 = billing_fps(await probed(odd, "fps25.mp4"), None, DEFAULT_MAX_FPS)
    assert estimate_credits(10.0, fps24, STANDARD) == 240
    assert estimate_credits(10.0, fps25, PRO) == 500
    # Magic Hour still holds 30 fps at create; the engine reserves the larger figure.
    assert queue_hold_credits(10.0, None, STANDARD) == 300
    assert max(estimate_credits(10.0, fps24, STANDARD), queue_hold_credits(10.0, None, STANDARD)) == 300


# --- counting is bounded ----------------------------------------------------------------------


async def test_counting_stops_at_the_frame_bound(odd: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probe_mod, "MAX_COUNTED_FRAMES", 10)
    info = await probed(odd, "fps24.mp4")
    assert info.rate_verdict == "uncounted" and info.counted_frames is None
    assert billing_fps(info, None, DEFAULT_MAX_FPS) == 30.0  # the cap, not the file's 24
    assert not info.is_still_image


def test_counting_stops_at_the_time_bound(odd: dict[str, Path]) -> None:
    ticks = itertools.count(0.0, 10.0)  # every look at the clock is 10 s later

    with av.open(str(odd["fps24.mp4"])) as container:
        result = count_frames(container, container.streams.video[0], max_seconds=5.0, clock=lambda: next(ticks))
    assert result == "uncounted"
    with av.open(str(odd["fps24.mp4"])) as container:
        timing = count_frames(container, container.streams.video[0], max_seconds=5.0, clock=lambda: 0.0)
    assert isinstance(timing, FrameTiming) and timing.frames == 48


# --- the judgement, on made-up timestamps ------------------------------------------------------


def test_frames_evenly_rounded_to_milliseconds_are_even() -> None:
    stamps: list[int | None] = [round(i * 1000 / 30) for i in range(60)]
    timing = frame_timing(stamps, 33, 0.001)
    assert timing.even and timing.grid_fps == pytest.approx(30, rel=0.01)
    assert judge_rate([30.0, 30.0, 30.0], timing) == (30.0, "constant")


def test_a_time_base_of_one_frame_is_even_when_every_step_is_one_tick() -> None:
    timing = frame_timing(list(range(50)), 1, 1 / 25)
    assert timing.even and judge_rate([25.0, 25.0, 25.0], timing) == (25.0, "constant")


def test_bursts_that_average_the_claimed_rate_are_uneven() -> None:
    """Claims and average say 10 fps; the frames come in pairs 50 ms apart, 200 ms between pairs."""
    stamps: list[int | None] = [p * 200 + k * 50 for p in range(30) for k in (0, 1)]
    timing = frame_timing(stamps, 150, 0.001)
    assert not timing.even
    fps, verdict = judge_rate([10.0, 10.0, 10.0], timing)
    assert (fps, verdict) == (None, "uneven")


def test_a_long_last_frame_disagrees() -> None:
    """60 frames at 30 fps and then the last one held for 58 s: not a 30 fps minute."""
    stamps: list[int | None] = [i * 512 for i in range(60)]
    timing = frame_timing(stamps, 58 * 15360, 1 / 15360)
    assert timing.seconds == pytest.approx(60.0, abs=0.05)
    assert judge_rate([30.0, 30.0, 30.0], timing) == (None, "disagree")


def test_missing_or_too_few_timestamps() -> None:
    assert judge_rate([30.0], frame_timing([0, None, 1024], 512, 1 / 15360)) == (None, "no_timestamps")
    assert judge_rate([30.0], frame_timing([0, 0, 0], 512, 1 / 15360)) == (None, "no_timestamps")
    assert judge_rate([30.0], frame_timing([0], 512, 1 / 15360)) == (None, "too_few_frames")
    assert judge_rate([30.0], frame_timing([], 0, 1 / 15360)) == (None, "too_few_frames")


def test_claims_out_of_range_are_implausible() -> None:
    timing = frame_timing([i * 512 for i in range(60)], 512, 1 / 15360)
    assert judge_rate([30.0, 30.0, 30.0, None], timing) == (30.0, "constant")
    assert judge_rate([30.0, 1000.0, 30.0, 30.0], timing) == (None, "implausible")
    assert judge_rate([30.0, 30.0, 30.0, 31.0], timing) == (None, "disagree")  # 3 % apart
    assert judge_rate([30.0, 30.0, 30.0, 60.0], timing) == (None, "disagree")  # field rate or a lie
    fps, verdict = judge_rate([None, None, None], timing)  # no claims: the measured rate
    assert verdict == "constant" and fps == pytest.approx(30.0)


# --- the rules ----------------------------------------------------------------------------------


def info_with(constant_fps: float | None, verdict: str = "constant") -> MediaInfo:
    return MediaInfo(
        format_name="mov,mp4,m4a,3gp,3g2,mj2",
        duration=10.0,
        has_video=True,
        has_audio=True,
        video_codec="h264",
        audio_codec="aac",
        width=32,
        height=32,
        fps=constant_fps,
        frame_count=None,
        size_bytes=1,
        constant_fps=constant_fps,
        rate_verdict=verdict,  # type: ignore[arg-type]
    )


def test_billing_fps_rules() -> None:
    assert billing_fps(None, None, DEFAULT_MAX_FPS) == DEFAULT_MAX_FPS  # YouTube: the cap
    assert billing_fps(None, 24.0, DEFAULT_MAX_FPS) == 24.0
    assert billing_fps(None, 60.0, DEFAULT_MAX_FPS) == 60.0  # a 60 fps video renders at 60 under a 60 cap
    assert billing_fps(None, None, None) == 60.0  # no cap at all: the highest a YouTube video runs at
    assert billing_fps(info_with(24.0), 60.0, DEFAULT_MAX_FPS) == 24.0
    assert billing_fps(info_with(60.0), None, DEFAULT_MAX_FPS) == 30.0
    assert billing_fps(info_with(60.0), 60.0, DEFAULT_MAX_FPS) == 60.0
    assert billing_fps(info_with(60.0), None, None) == 60.0  # no cap at all: the file's own rate
    # A hand-made info that is not judged constant never lends its figure.
    assert billing_fps(info_with(5.0, "uneven"), None, DEFAULT_MAX_FPS) == 30.0
    assert billing_fps(info_with(None), None, DEFAULT_MAX_FPS) == 30.0
    assert billing_fps(info_with(math.nan), None, DEFAULT_MAX_FPS) == 30.0
    # Unusable caps are skipped.
    assert frame_cap(math.nan, 25.0) == 25.0
    assert frame_cap(0.0, -1.0) == 60.0
    assert frame_cap(math.inf, None) == 60.0


@pytest.mark.parametrize(
    ("seconds", "fps", "mode", "credits"),
    [
        (2.0, 30.0, LITE, 60),
        (2.0, 30.0, PRO, 120),
        (10.0, 24.0, STANDARD, 240),
        (0.1 + 0.2, 30.0, LITE, 9),  # 9.000000000000002 frames is 9
        (1.01, 30.0, LITE, 31),  # a started frame is a frame
        (10.0, 30000 / 1001, LITE, 300),
        (0.0, 30.0, PRO, 2),  # never 0: at least one frame
        (math.nan, 30.0, PRO, 2),
        (60.0, math.nan, LITE, 1),
        (-5.0, 30.0, LITE, 1),
        (1e-9, 30.0, STANDARD, 1),
    ],
)
def test_estimate_credits(seconds: float, fps: float, mode: GenerationMode, credits: int) -> None:
    assert estimate_credits(seconds, fps, mode) == credits


def test_no_estimate_is_infinite() -> None:
    with pytest.raises(ValueError, match="no finite estimate"):
        estimate_credits(math.inf, 30.0, LITE)
    with pytest.raises(ValueError, match="no finite estimate"):
        queue_hold_credits(math.inf, None, LITE)


@pytest.mark.parametrize(
    ("seconds", "max_fps", "mode", "credits"),
    [
        (10.0, None, LITE, 300),
        (10.0, 24.0, PRO, 480),
        (10.0, 60.0, LITE, 300),  # Magic Hour holds at most 30 fps
        (0.0, None, PRO, 2),
        (math.nan, None, LITE, 1),
        (10.0, math.nan, LITE, 300),
    ],
)
def test_queue_hold_credits(seconds: float, max_fps: float | None, mode: GenerationMode, credits: int) -> None:
    assert queue_hold_credits(seconds, max_fps, mode) == credits


# --- properties ---------------------------------------------------------------------------------

SECONDS = st.floats(min_value=0.0, max_value=4000.0, allow_nan=False)
FPS = st.floats(min_value=0.0, max_value=1000.0, allow_nan=False)
MODES = st.sampled_from(list(GenerationMode))


@given(SECONDS, SECONDS, FPS, MODES)
def test_estimate_is_monotonic_in_seconds(a: float, b: float, fps: float, mode: GenerationMode) -> None:
    low, high = sorted((a, b))
    assert estimate_credits(low, fps, mode) <= estimate_credits(high, fps, mode)


@given(SECONDS, FPS, FPS, MODES)
def test_estimate_is_monotonic_in_fps(seconds: float, a: float, b: float, mode: GenerationMode) -> None:
    low, high = sorted((a, b))
    assert estimate_credits(seconds, low, mode) <= estimate_credits(seconds, high, mode)


@given(st.floats(allow_nan=True, allow_infinity=False), st.floats(allow_nan=True, allow_infinity=False), MODES)
def test_estimate_is_at_least_one_frame(seconds: float, fps: float, mode: GenerationMode) -> None:
    try:
        credits = estimate_credits(seconds, fps, mode)
    except ValueError:  # a finite product can still overflow to infinity
        assert math.isinf(seconds * fps)
        return
    assert credits >= mode.credits_per_frame
    assert credits % mode.credits_per_frame == 0


@given(st.integers(min_value=0, max_value=100_000), st.integers(min_value=1, max_value=240), MODES)
def test_estimate_is_exact_for_integer_products(seconds: int, fps: int, mode: GenerationMode) -> None:
    assert estimate_credits(float(seconds), float(fps), mode) == max(1, seconds * fps) * mode.credits_per_frame


@given(
    st.integers(min_value=1, max_value=200_000),
    st.sampled_from([Fraction(24), Fraction(25), Fraction(30), Fraction(60), Fraction(30000, 1001)]),
    MODES,
)
def test_estimate_of_a_whole_number_of_frames_is_exact(frames: int, rate: Fraction, mode: GenerationMode) -> None:
    """A clip that is exactly `frames` frames long (seconds = frames / fps, a float) bills `frames`."""
    seconds = float(frames / rate)
    assert estimate_credits(seconds, float(rate), mode) == frames * mode.credits_per_frame


@given(SECONDS, st.one_of(st.none(), st.floats(min_value=1.0, max_value=60.0)), MODES)
def test_queue_hold_is_the_estimate_at_min_30_and_cap(
    seconds: float, max_fps: float | None, mode: GenerationMode
) -> None:
    hold = queue_hold_credits(seconds, max_fps, mode)
    assert hold >= mode.credits_per_frame
    assert hold == estimate_credits(seconds, min(30.0, max_fps or 30.0), mode)
    # A YouTube source is priced at its cap, never below the hold (it may run at 60 fps).
    assert hold <= estimate_credits(seconds, billing_fps(None, max_fps, None), mode)


@given(
    st.one_of(st.none(), st.floats(min_value=1.0, max_value=240.0)),
    st.sampled_from(["constant", "uneven", "disagree", "implausible", "uncounted"]),
    st.one_of(st.none(), st.floats(min_value=1.0, max_value=60.0)),
    st.one_of(st.none(), st.floats(min_value=1.0, max_value=60.0)),
)
def test_billing_fps_never_goes_below_the_cap_for_an_untrusted_rate(
    constant_fps: float | None, verdict: str, max_fps: float | None, default_max_fps: float | None
) -> None:
    info = info_with(constant_fps, verdict)
    cap = frame_cap(max_fps, default_max_fps)
    fps = billing_fps(info, max_fps, default_max_fps)
    assert fps <= cap
    if info.rate_consistent and constant_fps is not None:
        assert fps == min(constant_fps, cap)
    else:
        assert fps == cap
