"""Re-runs from uploaded files: which jobs may run again, for whom, until when, and at what price.

The flows through Discord (buttons, no upload at the sandbox, the ledger) are in
`tests/cogs/lipsync/test_creators.py`; here are the rules on their own.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from bot.config import GenerationMode
from bot.errors import InvalidInput, NotAllowed
from bot.jobs.config import EngineConfig
from bot.jobs.inputs import plan_reuse
from bot.jobs.models import GuildRules, InputSource, JobRequest, ReusedFiles
from bot.jobs.rerun import FILES_KEPT, REUSE_MARGIN, Again, check_fresh, offers, rerun_request, reusable
from bot.store import UNKNOWN_AT_MAGIC_HOUR, JobRecord, JobState

NOW = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
GUILD, OWNER = 10, 42
RULES = GuildRules(allowed_modes=tuple(GenerationMode), max_clip_seconds=60.0, max_input_bytes=50_000_000)


def config(default_max_fps: float | None = None) -> EngineConfig:
    return EngineConfig(work_dir=Path("/nonexistent"), default_rules=RULES, default_max_fps=default_max_fps)


def job(**changes: Any) -> JobRecord:
    """A finished lite job that uploaded a 2 s, 30 fps video and a 1.5 s voice an hour ago."""
    fields: dict[str, Any] = {
        "id": 7,
        "user_id": OWNER,
        "guild_id": GUILD,
        "channel_id": 11,
        "video_filename": "face.mp4",
        "video_size": 1000,
        "audio_filename": "voice.mp3",
        "audio_size": 500,
        "youtube_url": None,
        "start_seconds": 0.0,
        "end_seconds": 1.5,
        "mode": GenerationMode.LITE,
        "max_fps": None,
        "name": None,
        "state": JobState.DONE,
        "project_id": "p-7",
        "estimated_credits": 45,
        "charged_credits": 45,
        "error_code": None,
        "error_data": None,
        "delivery_kind": "file",
        "delivery_message_id": 99,
        "status_channel_id": 11,
        "status_message_id": 98,
        "created_at": NOW - dt.timedelta(hours=1),
        "updated_at": NOW - dt.timedelta(hours=1),
        "video_file_path": "api-assets/v.mp4",
        "audio_file_path": "api-assets/a.mp3",
        "files_uploaded_at": NOW - dt.timedelta(hours=1),
        "video_seconds": 2.0,
        "audio_seconds": 1.5,
        "source_fps": 30.0,
    }
    fields.update(changes)
    return JobRecord(**fields)


def files(**changes: Any) -> ReusedFiles:
    record = job()
    fields: dict[str, Any] = {
        "from_job": record.id,
        "audio_file_path": "api-assets/a.mp3",
        "video_file_path": "api-assets/v.mp4",
        "uploaded_at": NOW,
        "audio_seconds": 1.5,
        "video_seconds": 8.0,
        "source_fps": 25.0,
    }
    fields.update(changes)
    return ReusedFiles(**fields)


def request(mode: GenerationMode = GenerationMode.LITE, **changes: Any) -> JobRequest:
    fields: dict[str, Any] = {
        "user_id": OWNER,
        "audio": InputSource(filename="voice.mp3"),
        "video": InputSource(filename="long.mp4"),
        "mode": mode,
    }
    fields.update(changes)
    return JobRequest(**fields)


# ---------------------------------------------------------------------------------- what may run again


def test_a_finished_job_offers_pro_and_another_window_a_failed_one_a_retry() -> None:
    assert offers(job(), NOW) == (Again.PRO, Again.WINDOW)
    assert offers(job(mode=GenerationMode.PRO), NOW) == (Again.WINDOW,)
    failed = job(state=JobState.FAILED, error_code="magic_hour_error", charged_credits=0)
    assert offers(failed, NOW) == (Again.RETRY,)
    assert offers(job(state=JobState.CANCELED), NOW) == ()


@pytest.mark.parametrize(
    ("code", "offered"),
    [
        ("magic_hour_no_source_face", (Again.VIDEO,)),
        ("magic_hour_invalid_video_file", (Again.VIDEO,)),
        ("magic_hour_invalid_youtube_url", (Again.VIDEO,)),
        ("magic_hour_file_too_large", (Again.VIDEO,)),
        ("magic_hour_processing_timeout", (Again.WINDOW,)),
        ("magic_hour_invalid_parameters", (Again.WINDOW,)),
        ("magic_hour_invalid_audio_file", ()),
        ("magic_hour_error", (Again.RETRY,)),
        ("magichour_unavailable", (Again.RETRY,)),
    ],
)
def test_retry_is_offered_only_where_retrying_can_help(code: str, offered: tuple[Again, ...]) -> None:
    """The member's own input at fault: the same files fail the same way, so another video, another part, or nothing."""
    failed = job(state=JobState.FAILED, error_code=code, charged_credits=0)
    assert offers(failed, NOW) == offered
    # Another video needs none of the uploaded files: offered even once they are gone.
    gone = failed.model_copy(update={"files_uploaded_at": NOW - FILES_KEPT})
    assert offers(gone, NOW) == (offered if offered == (Again.VIDEO,) else ())


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"state": JobState.RENDERING}, "rerun_not_ended"),
        ({"state": JobState.FAILED, "error_code": UNKNOWN_AT_MAGIC_HOUR}, "rerun_uncertain"),
        ({"state": JobState.FAILED, "error_code": "magic_hour_invalid_audio_path"}, "rerun_files_gone"),
        ({"audio_file_path": None, "files_uploaded_at": None}, "rerun_no_files"),
        ({"files_uploaded_at": NOW - FILES_KEPT}, "rerun_expired"),
    ],
)
def test_jobs_that_cant_run_again_say_why(changes: dict[str, Any], code: str) -> None:
    """Each is refused with a code of its own, and no button is offered for it."""
    record = job(**changes)
    with pytest.raises(InvalidInput) as raised:
        reusable(record, NOW)
    assert raised.value.code == code
    assert offers(record, NOW) == ()


def test_a_rerun_that_waited_past_its_files_week_is_refused_when_it_runs() -> None:
    with pytest.raises(InvalidInput) as raised:
        plan_reuse(config(), request(start=0.0, end=1.0), RULES, files(uploaded_at=NOW - FILES_KEPT), now=NOW)
    assert raised.value.code == "rerun_expired"


def test_files_are_used_until_an_hour_before_magic_hour_deletes_them() -> None:
    uploaded = NOW - FILES_KEPT + REUSE_MARGIN
    check_fresh(files(uploaded_at=uploaded + dt.timedelta(seconds=1)), NOW)  # a second to spare: fine
    with pytest.raises(InvalidInput) as raised:
        check_fresh(files(uploaded_at=uploaded), NOW)
    assert raised.value.code == "rerun_expired"
    assert raised.value.data["expired_at"] == NOW


def test_only_the_owner_in_the_jobs_server_may_run_it_again() -> None:
    with pytest.raises(NotAllowed) as raised:
        rerun_request(job(), Again.PRO, by_user_id=OWNER + 1, guild_id=GUILD, now=NOW)
    assert (raised.value.code, raised.value.data) == ("rerun_not_owner", {"owner": OWNER, "job": 7})
    with pytest.raises(InvalidInput) as other_server:
        rerun_request(job(), Again.PRO, by_user_id=OWNER, guild_id=GUILD + 1, now=NOW)
    assert other_server.value.code == "no_such_job"


def test_a_rerun_request_reuses_the_jobs_files_and_window() -> None:
    again = rerun_request(job(max_fps=24.0, name="intro"), Again.PRO, by_user_id=OWNER, guild_id=GUILD, now=NOW)
    assert again.mode is GenerationMode.PRO and (again.start, again.end) == (0.0, 1.5)
    assert (again.max_fps, again.name) == (24.0, "intro")
    assert again.reuse is not None and again.reuse.video_file_path == "api-assets/v.mp4"
    assert again.video is not None and again.video.url is None and again.video.path is None  # nothing to fetch
    window = rerun_request(job(), Again.WINDOW, by_user_id=OWNER, guild_id=GUILD, now=NOW, start=0.5, end=None)
    assert window.mode is GenerationMode.LITE and (window.start, window.end) == (0.5, None)


# ---------------------------------------------------------------------------------- prices


def test_the_same_window_in_pro_is_the_same_frames_at_two_credits() -> None:
    """The first run reserved 45 for 1.5 s at 30 fps in lite; in pro it is 90."""
    reused = files(video_seconds=2.0, source_fps=30.0)
    lite = plan_reuse(config(), request(start=0.0, end=1.5), RULES, reused, now=NOW)
    pro = plan_reuse(config(), request(GenerationMode.PRO, start=0.0, end=1.5), RULES, reused, now=NOW)
    assert (lite.amount, pro.amount) == (45, 90)


def test_a_new_window_is_priced_at_the_sources_own_rate_or_the_cap() -> None:
    """25 fps measured and trusted: 4 s is 100 frames, but Magic Hour holds 120 at create (30 fps)."""
    voiced = files(audio_seconds=6.0)  # a voice long enough for every part asked here
    window = request(start=4.0, end=8.0, max_fps=20.0)
    assert plan_reuse(config(), window, RULES, voiced, now=NOW).amount == 80  # min(25, 20) fps; the hold is at 20 too
    four_seconds = plan_reuse(config(), request(start=4.0, end=8.0), RULES, voiced, now=NOW)
    assert (four_seconds.amount, four_seconds.quote.estimate) == (120, 100)
    unknown_rate = files(source_fps=None, audio_seconds=6.0)
    assert (
        plan_reuse(config(default_max_fps=60.0), request(start=4.0, end=8.0), RULES, unknown_rate, now=NOW).amount
        == 240
    )
    youtube = files(video_file_path=None, video_seconds=None, source_fps=None, audio_seconds=6.0)
    clip = request(video=None, youtube_url="https://www.youtube.com/watch?v=dQw4w9WgXcQ", start=10.0, end=12.0)
    # As a new YouTube job: at the cap (the video may run at 60 fps), never below the 30 fps hold.
    assert plan_reuse(config(default_max_fps=60.0), clip, RULES, youtube, now=NOW).amount == 120


def test_a_new_window_follows_the_videos_and_the_voices_lengths() -> None:
    """No end: the voice's length; a part past the video or voice is announced, never cut; a start past it, refused."""
    to_voice_end = plan_reuse(config(), request(start=2.0), RULES, files(), now=NOW)
    assert (to_voice_end.start, to_voice_end.end) == (2.0, 3.5)
    with pytest.raises(InvalidInput) as past_video:
        plan_reuse(config(), request(start=7.0, end=20.0), RULES, files(audio_seconds=30.0), now=NOW)
    data = past_video.value.data
    assert past_video.value.code == "part_past_video" and data["render_end"] == 8.0
    assert (data["fix_end"], data["fix_end_estimate"], data["fix_end_hold"]) == (8.0, 25, 30)
    with pytest.raises(InvalidInput) as past_voice:
        plan_reuse(config(), request(start=4.0, end=8.0), RULES, files(), now=NOW)
    assert past_voice.value.code == "part_past_voice" and past_voice.value.data["render_end"] == 5.5
    with pytest.raises(InvalidInput) as past:
        plan_reuse(config(), request(start=9.0), RULES, files(), now=NOW)
    assert past.value.code == "start_past_end"
    short = GuildRules(allowed_modes=RULES.allowed_modes, max_clip_seconds=2.0, max_input_bytes=1)
    with pytest.raises(InvalidInput) as long_clip:
        plan_reuse(config(), request(start=0.0, end=5.0), short, files(audio_seconds=6.0), now=NOW)
    assert long_clip.value.code == "clip_too_long"


def test_a_job_the_operator_reconciled_can_be_retried() -> None:
    """Once Magic Hour's charge is recorded, the job's fate is known: retrying it can't pay twice unknowingly."""
    record = job(state=JobState.FAILED, error_code=UNKNOWN_AT_MAGIC_HOUR, error_data={"reconciled_charge": 0})
    assert reusable(record, NOW).from_job == record.id
