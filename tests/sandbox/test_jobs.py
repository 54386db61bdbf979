"""Jobs: statuses by the clock, downloads and their expiry, credits, job errors, DELETE."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from bot.clock import FakeClock
from bot.sandbox import Sandbox
from tests.sandbox.helpers import Media, create_job, get_project, lip_sync_body, run_to_end, upload


async def test_statuses_follow_the_clock(
    sandbox: Sandbox, api: httpx.AsyncClient, clock: FakeClock, files: dict[str, str]
) -> None:
    """queued for queue_seconds (5), rendering for render_seconds (10), then complete with a download."""
    project_id = await create_job(api, lip_sync_body(files["video"], files["audio"]))
    seen = []
    for step in (0, 4.9, 0.1, 9.8, 0.2):
        await clock.advance(step)
        seen.append((await get_project(api, project_id))["status"])
    assert seen == ["queued", "queued", "rendering", "rendering", "complete"]
    body = await get_project(api, project_id)
    assert (body["width"], body["height"], body["fps"]) == (160, 120, 30)
    assert len(body["downloads"]) == 1
    assert body["download"] == body["downloads"][0]
    assert body["downloads"][0]["url"].startswith(
        f"{sandbox.storage_url}/download/{project_id}/sandbox-{project_id}.mp4?"
    )
    assert body["downloads"][0]["expires_at"] == "2026-01-01T13:00:15.000Z"  # complete at +15 s, TTL 3600 s
    assert sandbox.projects[project_id].status == "complete"


async def test_download_expires_and_a_new_get_signs_a_fresh_url(
    sandbox: Sandbox, api: httpx.AsyncClient, storage: httpx.AsyncClient, clock: FakeClock, files: dict[str, str]
) -> None:
    """A download URL works until download_url_ttl passes, then 403; GET the project for a new one."""
    project_id = await create_job(api, lip_sync_body(files["video"], files["audio"]))
    first = (await run_to_end(api, clock, project_id))["downloads"][0]["url"]
    response = await storage.get(first)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "video/mp4"
    assert sandbox.counters.bytes_downloaded == len(response.content) > 1000
    await clock.advance(sandbox.config.download_url_ttl + 1)
    expired = await storage.get(first)
    assert expired.status_code == 403
    assert "<Code>AccessDenied</Code>" in expired.text and "expired" in expired.text
    fresh = (await get_project(api, project_id))["downloads"][0]["url"]
    assert fresh != first
    assert (await storage.get(fresh)).content == response.content


async def test_tampered_download_url_is_403(
    api: httpx.AsyncClient, storage: httpx.AsyncClient, clock: FakeClock, files: dict[str, str]
) -> None:
    """A download URL with a changed signature or no signature is refused."""
    project_id = await create_job(api, lip_sync_body(files["video"], files["audio"]))
    url = (await run_to_end(api, clock, project_id))["downloads"][0]["url"]
    assert (await storage.get(url[:-4] + "0000")).status_code == 403
    assert (await storage.get(url.split("?")[0])).status_code == 403


async def test_payment_required_when_credits_are_short(
    sandbox: Sandbox, api: httpx.AsyncClient, files: dict[str, str]
) -> None:
    """402 {"message": "Payment required"} when the balance is below the estimate; nothing is created."""
    sandbox.credits = 59
    response = await api.post("/v1/lip-sync", json=lip_sync_body(files["video"], files["audio"]))
    assert response.status_code == 402
    assert response.json() == {"message": "Payment required"}
    assert sandbox.credits == 59
    assert sandbox.projects == {}
    sandbox.credits = 60
    assert (await api.post("/v1/lip-sync", json=lip_sync_body(files["video"], files["audio"]))).status_code == 200
    assert sandbox.credits == 0


@pytest.mark.parametrize(
    ("overrides", "audio", "estimate", "settled"),
    [
        pytest.param({}, "audio", 60, 60, id="exact"),
        pytest.param({}, "short", 60, 30, id="audio-shorter-than-window"),
        pytest.param({"end_seconds": 5.0}, "audio", 150, 60, id="window-past-video-end"),
        pytest.param({"max_fps_limit": 10}, "audio", 20, 20, id="fps-capped"),
        pytest.param({"style": {"generation_mode": "pro"}}, "short", 120, 60, id="pro-doubles"),
        pytest.param({"start_seconds": 1.5, "end_seconds": 4.0}, "audio", 75, 15, id="late-start"),
    ],
)
async def test_settles_to_rendered_frames(
    sandbox: Sandbox,
    api: httpx.AsyncClient,
    clock: FakeClock,
    files: dict[str, str],
    overrides: dict[str, Any],
    audio: str,
    estimate: int,
    settled: int,
) -> None:
    """The estimate is debited at create and settles to ceil(rendered s × fps) × rate at completion."""
    response = await api.post("/v1/lip-sync", json=lip_sync_body(files["video"], files[audio], **overrides))
    assert response.json()["credits_charged"] == estimate
    assert sandbox.credits == 1_000_000 - estimate
    body = await run_to_end(api, clock, response.json()["id"])
    assert body["status"] == "complete", body["error"]
    assert body["credits_charged"] == settled
    assert sandbox.credits == 1_000_000 - settled


async def test_job_error_fault_refunds(
    sandbox: Sandbox, api: httpx.AsyncClient, clock: FakeClock, files: dict[str, str]
) -> None:
    """A job_error fault ends the next job in error with that code, refunded in full; later jobs are fine."""
    sandbox.faults.job_error("no_source_face")
    failing = await create_job(api, lip_sync_body(files["video"], files["audio"]))
    fine = await create_job(api, lip_sync_body(files["video"], files["audio"]))
    assert sandbox.credits == 1_000_000 - 120
    body = await get_project(api, failing)
    assert (body["status"], body["error"]) == ("queued", None)
    body = await run_to_end(api, clock, failing)
    assert body["status"] == "error"
    assert body["error"] == {"code": "no_source_face", "message": "No face was detected in the video."}
    assert body["credits_charged"] == 0
    assert body["downloads"] == []
    assert (await get_project(api, fine))["status"] == "complete"
    assert sandbox.credits == 1_000_000 - 60


async def test_job_error_custom_message(
    sandbox: Sandbox, api: httpx.AsyncClient, clock: FakeClock, files: dict[str, str]
) -> None:
    """job_error takes a message and a count."""
    sandbox.faults.job_error("processing_timeout", message="too slow", times=2)
    ids = [await create_job(api, lip_sync_body(files["video"], files["audio"])) for _ in range(3)]
    await clock.advance(3600)
    errors = [(await get_project(api, i))["error"] for i in ids]
    assert errors == [{"code": "processing_timeout", "message": "too slow"}] * 2 + [None]


async def _error_of(api: httpx.AsyncClient, clock: FakeClock, body: dict[str, Any]) -> dict[str, str]:
    project_id = await create_job(api, body)
    project = await run_to_end(api, clock, project_id)
    assert project["status"] == "error"
    assert project["credits_charged"] == 0
    error: dict[str, str] = project["error"]
    return error


async def test_invalid_media_is_a_job_error(
    sandbox: Sandbox,
    api: httpx.AsyncClient,
    storage: httpx.AsyncClient,
    clock: FakeClock,
    media: Media,
    files: dict[str, str],
) -> None:
    """A text file named .mp4 is invalid_video_file; a video-only file as audio is invalid_audio_file."""
    junk = await upload(api, storage, media.not_media, "video", "mp4")
    silent = await upload(api, storage, media.video_only, "audio", "m4a")
    error = await _error_of(api, clock, lip_sync_body(junk, files["audio"]))
    assert error["code"] == "invalid_video_file"
    assert "could not be read" in error["message"]
    error = await _error_of(api, clock, lip_sync_body(files["video"], silent))
    assert error == {"code": "invalid_audio_file", "message": "The audio file has no audio stream."}
    # An audio-only file in the video slot has no video stream.
    error = await _error_of(api, clock, lip_sync_body(files["audio"], files["audio"]))
    assert error == {"code": "invalid_video_file", "message": "The video file has no video stream."}
    assert sandbox.credits == 1_000_000


async def test_bad_paths_are_job_errors(api: httpx.AsyncClient, clock: FakeClock, files: dict[str, str]) -> None:
    """Never-uploaded paths and unfetchable URLs are accepted at create and fail the job, like the real API."""
    error = await _error_of(api, clock, lip_sync_body("api-assets/nobody/missing.mp4", files["audio"]))
    assert error["code"] == "invalid_video_path"
    error = await _error_of(api, clock, lip_sync_body(files["video"], "https://example.com/voice.mp3"))
    assert error["code"] == "invalid_audio_path"


async def test_start_past_the_video_is_invalid_parameters(
    api: httpx.AsyncClient, clock: FakeClock, files: dict[str, str]
) -> None:
    """A window that starts after the video ends renders nothing."""
    error = await _error_of(api, clock, lip_sync_body(files["video"], files["audio"], start_seconds=3, end_seconds=4))
    assert error["code"] == "invalid_parameters"


async def test_youtube_source_renders_a_test_pattern(
    sandbox: Sandbox, api: httpx.AsyncClient, clock: FakeClock, files: dict[str, str]
) -> None:
    """A YouTube source completes with a generated video; a non-YouTube URL is invalid_youtube_url."""
    assets = {
        "video_source": "youtube",
        "youtube_url": "https://www.youtube.com/watch?v=x",
        "audio_file_path": files["audio"],
    }
    body = await run_to_end(
        api,
        clock,
        await create_job(api, {"start_seconds": 10, "end_seconds": 12, "max_fps_limit": 24, "assets": assets}),
    )
    assert body["status"] == "complete", body["error"]
    assert (body["fps"], body["credits_charged"]) == (24, 48)
    assets["youtube_url"] = "https://vimeo.com/1"
    error = await _error_of(api, clock, {"start_seconds": 0, "end_seconds": 1, "assets": assets})
    assert error["code"] == "invalid_youtube_url"


async def test_delete_cancels_a_running_job_and_refunds(
    sandbox: Sandbox, api: httpx.AsyncClient, clock: FakeClock, files: dict[str, str]
) -> None:
    """DELETE on a queued or rendering job: 204, status canceled, full refund, stays canceled."""
    queued = await create_job(api, lip_sync_body(files["video"], files["audio"]))
    await clock.advance(6)
    rendering = await create_job(api, lip_sync_body(files["video"], files["audio"]))
    await clock.advance(5)
    assert [(await get_project(api, i))["status"] for i in (queued, rendering)] == ["rendering", "rendering"]
    for project_id in (queued, rendering):
        response = await api.delete(f"/v1/video-projects/{project_id}")
        assert response.status_code == 204
    assert sandbox.credits == 1_000_000
    await clock.advance(3600)
    for project_id in (queued, rendering):
        body = await get_project(api, project_id)
        assert (body["status"], body["enabled"], body["credits_charged"], body["downloads"]) == (
            "canceled",
            False,
            0,
            [],
        )


async def test_delete_complete_job_removes_the_result(
    sandbox: Sandbox, api: httpx.AsyncClient, storage: httpx.AsyncClient, clock: FakeClock, files: dict[str, str]
) -> None:
    """DELETE on a complete job keeps its charge, disables it and its download URLs stop working."""
    project_id = await create_job(api, lip_sync_body(files["video"], files["audio"]))
    url = (await run_to_end(api, clock, project_id))["downloads"][0]["url"]
    assert (await api.delete(f"/v1/video-projects/{project_id}")).status_code == 204
    body = await get_project(api, project_id)
    assert (body["status"], body["enabled"], body["downloads"], body["credits_charged"]) == ("complete", False, [], 60)
    assert (await storage.get(url)).status_code == 404
    assert sandbox.credits == 1_000_000 - 60
    # Deleting again is harmless.
    assert (await api.delete(f"/v1/video-projects/{project_id}")).status_code == 204


async def test_delete_of_a_due_job_settles_instead_of_cancelling(
    sandbox: Sandbox, api: httpx.AsyncClient, clock: FakeClock, files: dict[str, str]
) -> None:
    """If the clock says the job already finished, DELETE finds it complete, not canceled."""
    project_id = await create_job(api, lip_sync_body(files["video"], files["short"]))
    await clock.advance(3600)
    assert (await api.delete(f"/v1/video-projects/{project_id}")).status_code == 204
    assert (await get_project(api, project_id))["status"] == "complete"
    assert sandbox.credits == 1_000_000 - 30


async def test_timing_changes_apply_to_later_jobs(
    sandbox: Sandbox, api: httpx.AsyncClient, clock: FakeClock, files: dict[str, str]
) -> None:
    """queue/render seconds are fixed per job at create."""
    before = await create_job(api, lip_sync_body(files["video"], files["audio"]))
    sandbox.config.queue_seconds = 0
    sandbox.config.render_seconds = 100
    after = await create_job(api, lip_sync_body(files["video"], files["audio"]))
    assert (await get_project(api, after))["status"] == "rendering"
    await clock.advance(15)
    assert [(await get_project(api, i))["status"] for i in (before, after)] == ["complete", "rendering"]
    await clock.advance(85)
    assert (await get_project(api, after))["status"] == "complete"


async def test_zero_timings_complete_on_first_get(
    sandbox: Sandbox, api: httpx.AsyncClient, files: dict[str, str]
) -> None:
    """With no queue or render time the first GET waits for the render and reports complete."""
    sandbox.config.queue_seconds = 0
    sandbox.config.render_seconds = 0
    project_id = await create_job(api, lip_sync_body(files["video"], files["audio"]))
    assert (await get_project(api, project_id))["status"] == "complete"


async def test_concurrent_gets_settle_once(
    sandbox: Sandbox, api: httpx.AsyncClient, clock: FakeClock, files: dict[str, str]
) -> None:
    """Many GETs of a just-due job all see it complete, and it is settled exactly once."""
    project_id = await create_job(api, lip_sync_body(files["video"], files["short"]))
    await clock.advance(3600)
    bodies = await asyncio.gather(*(get_project(api, project_id) for _ in range(8)))
    assert {body["status"] for body in bodies} == {"complete"}
    assert {body["credits_charged"] for body in bodies} == {30}
    assert sandbox.credits == 1_000_000 - 30
