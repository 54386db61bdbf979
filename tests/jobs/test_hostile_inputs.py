"""Hostile files and too-short clips through the engine: refused before anything is sent or spent."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import InvalidInput
from bot.jobs.models import GuildRules, InputSource, JobHooks, JobRequest
from bot.jobs.validation import check_window
from bot.services import Services
from bot.store import JobState
from tests.conftest import KeepFile, RecordingSink

GUILD, USER = 1, 42


def request_for(video: Path, audio: Path, *, video_name: str | None = None, **fields: object) -> JobRequest:
    return JobRequest(
        user_id=USER,
        guild_id=GUILD,
        channel_id=7,
        video=InputSource(filename=video_name or video.name, path=video, size=video.stat().st_size),
        audio=InputSource(filename=audio.name, path=audio, size=audio.stat().st_size),
        **fields,  # type: ignore[arg-type]
    )


async def fails_free(services: Services, sandbox, request: JobRequest) -> tuple[str | None, dict[str, object]]:
    """Run the job; check it failed with nothing uploaded, created, reserved or left behind."""
    record = await services.engine.submit(request, JobHooks(sink=RecordingSink(), deliverer=KeepFile(Path("/"))))
    final = await services.engine.wait(record.id)
    assert final.state is JobState.FAILED, final
    assert sandbox.counters.requests["upload_urls"] == 0 and sandbox.counters.jobs_created == 0
    limits = await services.store.quota.limits(GUILD, USER, ())
    assert limits.used == 0 and limits.reserved == 0
    assert not any(services.settings.work_dir.iterdir())
    return final.error_code, dict(final.error_data or {})


@pytest.mark.parametrize(
    ("video", "audio", "code"),
    [
        pytest.param("bomb-16k.mov", None, "frame_too_large", id="png-bomb"),
        pytest.param("liar.mov", None, "frame_too_large", id="lying-h264"),
        pytest.param("ts.mp4", None, "unsupported_format_video", id="mpeg-ts"),
        pytest.param("magicyuv.mov", None, "unsupported_format_video", id="nut-magicyuv"),
        pytest.param("ffv1.webm", None, "unsupported_codec_video", id="ffv1-in-webm"),
        pytest.param(None, "caf.m4a", "unsupported_format_audio", id="caf"),
        pytest.param(None, "tracks.m4a", "too_many_streams", id="twenty-tracks"),
        pytest.param("short.mp4", None, "clip_too_short", id="short-video"),
        pytest.param(None, "short.wav", "clip_too_short", id="short-voice"),
    ],
)
async def test_hostile_files_fail_free(
    open_services, sandbox, media_dir: Path, hostile_media: dict[str, Path], video, audio, code
) -> None:
    """Each is refused with its own reason, before any upload, create or reservation."""
    services = await open_services()
    request = request_for(
        hostile_media[video] if video else media_dir / "face.mp4",
        hostile_media[audio] if audio else media_dir / "voice.mp3",
    )
    error_code, data = await fails_free(services, sandbox, request)
    assert error_code == code
    if code != "clip_too_short":
        assert data["filename"] == (video or audio)


async def test_a_probe_stopped_at_its_limit_is_a_free_refusal(open_services, sandbox, media_dir: Path) -> None:
    """A probe that can't finish within its memory cap ends the job with a friendly word, free."""
    services = await open_services(probe_memory_mib=64)  # less than the interpreter alone needs
    error_code, data = await fails_free(services, sandbox, request_for(media_dir / "face.mp4", media_dir / "voice.mp3"))
    assert error_code == "media_too_complex" and data["filename"] == "voice.mp3"


def youtube_request(start: float, end: float) -> JobRequest:
    return JobRequest(
        user_id=USER,
        guild_id=GUILD,
        youtube_url="https://www.youtube.com/watch?v=dQw4w9WgXcQ",
        audio=InputSource(filename="voice.mp3", path=Path("voice.mp3")),
        start=start,
        end=end,
    )


RULES = GuildRules(allowed_modes=(), max_clip_seconds=60.0, max_input_bytes=1 << 20)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (1.0, 1.05),
        (0.0, 0.0999),
        (5.0, 5.0 + 1e-9),
        # 0.1 s apart in binary, a hair under it in the decimals Magic Hour reads (found by fuzzing).
        (0.49562010768697695, 0.5956201076869769),
    ],
)
def test_a_window_under_a_tenth_of_a_second_is_refused_at_once(start: float, end: float) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_window(youtube_request(start, end), RULES)
    assert refused.value.code == ("bad_end" if end < 0.1 else "clip_too_short")


@pytest.mark.parametrize(("start", "end"), [(0.2, 0.3), (0.0, 0.1), (59.9, 60.0)])
def test_a_tenth_of_a_second_as_written_is_enough(start: float, end: float) -> None:
    """0.3 - 0.2 is 0.0999... in binary; Magic Hour reads the decimals, which are 0.1 apart."""
    check_window(youtube_request(start, end), RULES)
