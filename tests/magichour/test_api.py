"""API calls against the sandbox over real HTTP: success paths, error classes and retries."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from bot.config import GenerationMode
from bot.errors import LipsyncError
from bot.magichour import (
    InsufficientCredits,
    InvalidRequest,
    LipSyncAssets,
    LipSyncRequest,
    MagicHourClient,
    NotFound,
    NotOnPlan,
    ProjectStatus,
    RateLimited,
    RetryPolicy,
    SubmissionUncertain,
    Unauthorized,
    Unavailable,
    UploadItem,
)
from bot.sandbox import Sandbox

from .conftest import (
    API_KEY,
    Answer,
    InstantClock,
    RecordingTransport,
    ScriptedServer,
    completed_project,
    lip_sync_request,
    upload_inputs,
)

# --- success paths -------------------------------------------------------------------------------


async def test_get_account(client: MagicHourClient, sandbox: Sandbox) -> None:
    """The account's credits, tier and subscription come back typed."""
    account = await client.get_account()
    assert account.credits == sandbox.credits == 1_000_000
    assert account.tier == "creator"
    assert account.subscription is not None and account.subscription.status == "active"
    assert account.email == "sandbox@example.com"


async def test_create_upload_urls_in_one_call(client: MagicHourClient, sandbox: Sandbox) -> None:
    """Several files get their URLs from one request, in order, with matching extensions."""
    urls = await client.create_upload_urls(
        [UploadItem(type="video", extension=".MP4"), UploadItem(type="audio", extension="wav")]
    )
    assert sandbox.counters.requests["upload_urls"] == 1
    assert [u.file_path.rsplit(".", 1)[1] for u in urls] == ["mp4", "wav"]
    assert all(u.upload_url.startswith(sandbox.storage_url) for u in urls)
    assert all(u.expires_at is not None for u in urls)


async def test_full_job_lifecycle(client: MagicHourClient, sandbox: Sandbox, media: tuple[Path, Path]) -> None:
    """Upload, create, poll, download and delete: the happy path of one job."""
    video_path, audio_path = await upload_inputs(client, media)
    assert set(sandbox.uploads) == {video_path, audio_path}

    job = await client.create_lip_sync(lip_sync_request(video_path, audio_path, mode=GenerationMode.STANDARD))
    assert job.id in sandbox.projects
    assert job.credits_charged == 30  # 1 s at the 30 fps estimate, 1 credit per frame

    project = await client.get_video_project(job.id)
    assert project.id == job.id
    assert project.status is ProjectStatus.COMPLETE
    assert project.type == "LIP_SYNC"
    assert project.error is None
    assert len(project.downloads) == 1 and project.download_url is not None

    await client.delete_video_project(job.id)
    after = await client.get_video_project(job.id)
    assert after.enabled is False and after.downloads == []
    assert sandbox.counters.requests["delete_project"] == 1


async def test_job_error_is_reported_not_raised(
    client: MagicHourClient, sandbox: Sandbox, media: tuple[Path, Path]
) -> None:
    """A render that fails is a project with status error and its code, not an exception."""
    video_path, audio_path = await upload_inputs(client, media)
    sandbox.faults.job_error(code="no_source_face")
    job = await client.create_lip_sync(lip_sync_request(video_path, audio_path))
    project = await client.get_video_project(job.id)
    assert project.is_failed and project.error is not None
    assert project.error.code == "no_source_face"
    assert project.credits_charged == 0  # refunded


# --- error classes from real responses -----------------------------------------------------------


async def test_400_is_invalid_request(client: MagicHourClient, sandbox: Sandbox) -> None:
    """A body the API refuses (end before start, built past local validation) raises InvalidRequest."""
    assets = LipSyncAssets(audio_file_path="api-assets/a.mp3", video_source="file", video_file_path="api-assets/v.mp4")
    bad = LipSyncRequest.model_construct(start_seconds=5.0, end_seconds=1.0, assets=assets)
    with pytest.raises(InvalidRequest) as caught:
        await client.create_lip_sync(bad)
    assert caught.value.status_code == 400
    assert caught.value.message
    assert sandbox.counters.requests["create"] == 1
    assert sandbox.counters.jobs_created == 0


async def test_422_bad_extension_names_the_valid_ones(client: MagicHourClient, sandbox: Sandbox) -> None:
    """The upload-urls 422 message reaches the member-facing text."""
    with pytest.raises(InvalidRequest) as caught:
        await client.create_upload_urls([UploadItem(type="video", extension="exe")])
    error = caught.value
    assert error.status_code == 422
    assert error.message is not None and "exe" in error.message and "mp4" in error.message
    assert "mp4" in error.user_message
    assert sandbox.counters.requests["upload_urls"] == 1


async def test_422_too_long_on_create(client: MagicHourClient, sandbox: Sandbox) -> None:
    """More than 120,000 frames is refused with 422 and not retried."""
    request = lip_sync_request("api-assets/v.mp4", "api-assets/a.mp3", end_seconds=5000.0)
    with pytest.raises(InvalidRequest) as caught:
        await client.create_lip_sync(request)
    assert caught.value.status_code == 422
    assert sandbox.counters.requests["create"] == 1


async def test_401_wrong_key(sandbox: Sandbox, clock: InstantClock) -> None:
    """A wrong key raises Unauthorized at once; the message does not contain the key."""
    async with MagicHourClient(SecretStr("wrong-key-123"), sandbox.base_url, clock=clock) as mh:
        with pytest.raises(Unauthorized) as caught:
            await mh.get_account()
    assert caught.value.status_code == 401
    assert caught.value.message == "Unauthorized"
    assert "wrong-key-123" not in str(caught.value) and "wrong-key-123" not in caught.value.user_message
    assert sandbox.counters.requests["account"] == 1
    assert clock.sleeps == []


async def test_402_low_credits(client: MagicHourClient, sandbox: Sandbox, media: tuple[Path, Path]) -> None:
    """Too few credits raises InsufficientCredits; no job, no retry."""
    video_path, audio_path = await upload_inputs(client, media)
    sandbox.credits = 10
    with pytest.raises(InsufficientCredits) as caught:
        await client.create_lip_sync(lip_sync_request(video_path, audio_path))
    assert caught.value.status_code == 402
    assert sandbox.counters.jobs_created == 0 and sandbox.counters.requests["create"] == 1


async def test_403_mode_not_on_plan(client: MagicHourClient, sandbox: Sandbox, media: tuple[Path, Path]) -> None:
    """Pro mode on the free tier raises NotOnPlan."""
    video_path, audio_path = await upload_inputs(client, media)
    sandbox.config.tier = "free"
    with pytest.raises(NotOnPlan) as caught:
        await client.create_lip_sync(lip_sync_request(video_path, audio_path, mode=GenerationMode.PRO))
    assert caught.value.status_code == 403
    assert sandbox.counters.jobs_created == 0


async def test_404_unknown_project(client: MagicHourClient, sandbox: Sandbox, clock: InstantClock) -> None:
    """GET and DELETE of an unknown id raise NotFound without retrying."""
    with pytest.raises(NotFound) as caught:
        await client.get_video_project("no-such-project")
    assert caught.value.status_code == 404 and caught.value.message == "Not Found"
    with pytest.raises(NotFound):
        await client.delete_video_project("no-such-project")
    assert sandbox.counters.requests["get_project"] == 1
    assert sandbox.counters.requests["delete_project"] == 1
    assert clock.sleeps == []


async def test_429_exhausted_is_rate_limited(client: MagicHourClient, sandbox: Sandbox, clock: InstantClock) -> None:
    """429 on every attempt raises RateLimited after max_attempts requests."""
    sandbox.faults.fail("account", status=429, times=4)
    with pytest.raises(RateLimited) as caught:
        await client.get_account()
    assert caught.value.status_code == 429
    assert sandbox.counters.requests["account"] == 4
    assert len(clock.sleeps) == 3


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_exhausted_is_unavailable(
    client: MagicHourClient, sandbox: Sandbox, clock: InstantClock, status: int
) -> None:
    """5xx on every attempt raises Unavailable with the status and the API's message."""
    sandbox.faults.fail("get_project", status=status, times=4, message="down for maintenance")
    with pytest.raises(Unavailable) as caught:
        await client.get_video_project("anything")
    assert caught.value.status_code == status
    assert caught.value.message == "down for maintenance"
    assert not isinstance(caught.value, SubmissionUncertain)
    assert sandbox.counters.requests["get_project"] == 4


async def test_errors_are_lipsync_errors_with_friendly_text(sandbox: Sandbox, clock: InstantClock) -> None:
    """Every client error is a LipsyncError whose user_message is plain and carries no secret."""
    async with MagicHourClient(SecretStr("bad"), sandbox.base_url, clock=clock) as mh:
        with pytest.raises(LipsyncError) as caught:
            await mh.get_account()
    assert caught.value.user_message.endswith(".")
    assert "http" not in caught.value.user_message.lower()
    assert caught.value.code == "magichour_unauthorized"
    assert "GET /v1/account" in str(caught.value) and "401" in str(caught.value)


# --- retries of calls that are safe to repeat ----------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_get_project_retries_through_errors(
    client: MagicHourClient, sandbox: Sandbox, media: tuple[Path, Path], clock: InstantClock, status: int
) -> None:
    """Two failures, then success: three requests, two back-off sleeps."""
    project = await completed_project(client, media)
    sandbox.counters.reset()
    sandbox.faults.fail("get_project", status=status, times=2)
    again = await client.get_video_project(project.id)
    assert again.id == project.id
    assert sandbox.counters.requests["get_project"] == 3
    assert len(clock.sleeps) == 2
    assert 0.375 <= clock.sleeps[0] <= 0.5 and 0.75 <= clock.sleeps[1] <= 1.0


async def test_account_retries_through_a_dropped_connection(
    client: MagicHourClient, sandbox: Sandbox, clock: InstantClock
) -> None:
    """A connection dropped without an answer is retried for a GET."""
    sandbox.faults.disconnect("account")
    account = await client.get_account()
    assert account.credits == sandbox.credits
    assert sandbox.counters.requests["account"] == 2
    assert len(clock.sleeps) == 1


async def test_upload_urls_retry_through_429(client: MagicHourClient, sandbox: Sandbox) -> None:
    """Upload URLs cost nothing, so they are retried like a GET."""
    sandbox.faults.fail("upload_urls", status=429)
    urls = await client.create_upload_urls([UploadItem(type="audio", extension="mp3")])
    assert len(urls) == 1
    assert sandbox.counters.requests["upload_urls"] == 2


async def test_delete_whose_answer_was_lost_is_retried(
    client: MagicHourClient, sandbox: Sandbox, media: tuple[Path, Path]
) -> None:
    """DELETE after a lost answer: the retry succeeds and the project stays deleted."""
    project = await completed_project(client, media)
    sandbox.faults.disconnect("delete_project", after_effect=True)
    await client.delete_video_project(project.id)
    assert sandbox.counters.requests["delete_project"] == 2
    assert sandbox.projects[project.id].enabled is False


async def test_delete_treats_404_on_a_retry_as_done(clock: InstantClock) -> None:
    """If the first DELETE's answer is lost and the retry finds nothing, the delete happened.

    The sandbox keeps deleted projects (a second DELETE is a 204), so this 404-after-retry case
    needs a scripted transport.
    """
    answers = iter([httpx.Response(503, json={"message": "busy"}), httpx.Response(404, json={"message": "Not Found"})])
    transport = httpx.MockTransport(lambda request: next(answers))
    async with (
        httpx.AsyncClient(transport=transport) as http,
        MagicHourClient(SecretStr(API_KEY), "https://api.test", http=http, clock=clock) as mh,
    ):
        await mh.delete_video_project("p1")
    assert len(clock.sleeps) == 1


ACCOUNT = {"id": "a", "email": None, "credits": 1, "tier": "free", "subscription": None}


async def test_retry_after_seconds_are_honoured(scripted: ScriptedServer, clock: InstantClock) -> None:
    """A numeric Retry-After sets the wait, capped at 60 s. The sandbox sends none, so this is scripted."""
    scripted.script(
        "/v1/account",
        Answer(429, {"message": "slow down"}, {"Retry-After": "2"}),
        Answer(503, {"message": "later"}, {"Retry-After": "3600"}),
        Answer(200, ACCOUNT),
    )
    async with MagicHourClient(SecretStr(API_KEY), scripted.base_url, clock=clock) as mh:
        account = await mh.get_account()
    assert account.credits == 1
    assert clock.sleeps == [2.0, 60.0]
    assert len(scripted.seen) == 3


async def test_retry_after_dates_count_from_the_clients_clock(scripted: ScriptedServer) -> None:
    """An HTTP-date Retry-After waits until that moment by the client's clock; a past date is ignored."""
    clock = InstantClock(frozen_at=dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC))
    scripted.script(
        "/v1/account",
        Answer(503, {"message": "maintenance"}, {"Retry-After": "Sun, 01 Mar 2026 12:00:42 GMT"}),
        Answer(429, {"message": "slow down"}, {"Retry-After": "Sun, 01 Mar 2026 11:00:00 GMT"}),
        Answer(503, {"message": "maintenance"}, {"Retry-After": "Mon, 02 Mar 2026 12:00:00 GMT"}),
        Answer(200, ACCOUNT),
    )
    policy = RetryPolicy(max_attempts=4, base_delay=0.5, jitter=0.0)
    async with MagicHourClient(SecretStr(API_KEY), scripted.base_url, clock=clock, retry=policy) as mh:
        await mh.get_account()
    # 42 s; the past date falls back to the second exponential step (1 s); a day ahead is capped.
    assert clock.sleeps == [42.0, 1.0, 60.0]


async def test_create_429_with_a_retry_after_date_waits_then_makes_one_job(
    scripted: ScriptedServer,
) -> None:
    """The create call honours a dated Retry-After on 429 and sends again only because 429 made no job."""
    clock = InstantClock(frozen_at=dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC))
    scripted.script(
        "/v1/lip-sync",
        Answer(429, {"message": "slow down"}, {"Retry-After": "Sun, 01 Mar 2026 12:00:05 GMT"}),
        Answer(200, {"id": "job-1", "credits_charged": 30}),
    )
    async with MagicHourClient(SecretStr(API_KEY), scripted.base_url, clock=clock) as mh:
        job = await mh.create_lip_sync(lip_sync_request("api-assets/v.mp4", "api-assets/a.mp3"))
    assert job.id == "job-1"
    assert clock.sleeps == [5.0]
    assert [seen.path for seen in scripted.seen] == ["/v1/lip-sync", "/v1/lip-sync"]


async def test_no_retry_policy_fails_at_once(sandbox: Sandbox, clock: InstantClock) -> None:
    """RetryPolicy.none() makes one attempt only."""
    sandbox.faults.fail("account", status=503)
    async with MagicHourClient(SecretStr(API_KEY), sandbox.base_url, retry=RetryPolicy.none(), clock=clock) as mh:
        with pytest.raises(Unavailable):
            await mh.get_account()
    assert sandbox.counters.requests["account"] == 1 and clock.sleeps == []


async def test_without_retries_view_makes_one_attempt(sandbox: Sandbox, clock: InstantClock) -> None:
    """The poller's view fails at once on a 503 where the client itself would retry."""
    async with MagicHourClient(SecretStr(API_KEY), sandbox.base_url, clock=clock) as mh:
        view = mh.without_retries()
        sandbox.faults.fail("account", status=503)
        with pytest.raises(Unavailable):
            await view.get_account()
        assert sandbox.counters.requests["account"] == 1 and clock.sleeps == []

        sandbox.faults.fail("account", status=503)
        account = await mh.get_account()  # the client itself still retries
        assert account.credits == sandbox.credits
        assert sandbox.counters.requests["account"] == 3 and len(clock.sleeps) == 1


async def test_without_retries_view_shares_the_clients_and_does_not_close_them(
    sandbox: Sandbox, clock: InstantClock
) -> None:
    """Closing the view leaves the client's own HTTP clients open; the view's requests use them, key and all."""
    async with MagicHourClient(SecretStr(API_KEY), sandbox.base_url, clock=clock) as mh:
        async with mh.without_retries() as view:
            assert view.base_url == mh.base_url
            assert (await view.get_account()).credits == sandbox.credits  # the key went along
        await view.aclose()  # twice, harmlessly
        assert (await mh.get_account()).credits == sandbox.credits  # still open
    assert sandbox.counters.requests["account"] == 2

    recording = RecordingTransport()
    async with (
        httpx.AsyncClient(transport=recording) as http,
        MagicHourClient(SecretStr(API_KEY), sandbox.base_url, http=http, clock=clock) as mh,
    ):
        await mh.without_retries().get_account()
    (request,) = recording.requests
    assert request.headers["authorization"] == f"Bearer {API_KEY}"


# --- the sandbox says who it is ---------------------------------------------------------------

PROJECT = {"id": "job-1", "status": "complete", "credits_charged": 30, "downloads": []}


async def test_models_are_marked_sandbox_when_the_response_says_so(
    scripted: ScriptedServer, clock: InstantClock
) -> None:
    """`X-Magic-Hour-Sandbox: 1` on the response sets `sandbox` on the account, the created job and the project."""
    sandbox_header = {"X-Magic-Hour-Sandbox": "1"}
    scripted.script("/v1/account", Answer(200, ACCOUNT, sandbox_header))
    scripted.script("/v1/lip-sync", Answer(200, {"id": "job-1", "credits_charged": 30}, sandbox_header))
    scripted.script("/v1/video-projects/job-1", Answer(200, PROJECT, sandbox_header))
    async with MagicHourClient(SecretStr(API_KEY), scripted.base_url, clock=clock) as mh:
        account = await mh.get_account()
        job = await mh.create_lip_sync(lip_sync_request("api-assets/v.mp4", "api-assets/a.mp3"))
        project = await mh.get_video_project(job.id)
    assert (account.sandbox, job.sandbox, project.sandbox) == (True, True, True)
    assert project.status is ProjectStatus.COMPLETE and job.credits_charged == 30


@pytest.mark.parametrize("headers", [{}, {"X-Magic-Hour-Sandbox": "0"}, {"X-Magic-Hour-Sandbox": "yes"}])
async def test_models_are_not_sandbox_without_the_header(
    scripted: ScriptedServer, clock: InstantClock, headers: dict[str, str]
) -> None:
    """No header (or any value but 1) means not a sandbox, even when the body claims it is one."""
    scripted.script("/v1/account", Answer(200, {**ACCOUNT, "sandbox": True}, headers))
    scripted.script("/v1/lip-sync", Answer(200, {"id": "job-1", "credits_charged": 30, "sandbox": True}, headers))
    scripted.script("/v1/video-projects/job-1", Answer(200, {**PROJECT, "sandbox": True}, headers))
    async with MagicHourClient(SecretStr(API_KEY), scripted.base_url, clock=clock) as mh:
        account = await mh.get_account()
        job = await mh.create_lip_sync(lip_sync_request("api-assets/v.mp4", "api-assets/a.mp3"))
        project = await mh.get_video_project(job.id)
    assert (account.sandbox, job.sandbox, project.sandbox) == (False, False, False)


# --- client plumbing -----------------------------------------------------------------------------


async def test_injected_clients_are_used_and_left_open(sandbox: Sandbox) -> None:
    """Clients passed in belong to the caller: used as they are, not closed by aclose()."""
    async with httpx.AsyncClient() as http, httpx.AsyncClient() as storage:
        mh = MagicHourClient(SecretStr(API_KEY), sandbox.base_url + "/", http=http, storage_http=storage)
        assert mh.base_url == sandbox.base_url
        await mh.get_account()
        await mh.aclose()
        assert not http.is_closed and not storage.is_closed


async def test_constructor_refuses_unsafe_setups() -> None:
    """An empty key, or a storage client that would send an Authorization header, is refused."""
    with pytest.raises(ValueError, match="empty"):
        MagicHourClient(SecretStr(""))
    async with httpx.AsyncClient(headers={"Authorization": "Bearer x"}) as storage:
        with pytest.raises(ValueError, match="Authorization"):
            MagicHourClient(SecretStr(API_KEY), storage_http=storage)
    mh = MagicHourClient(SecretStr(API_KEY))
    assert API_KEY not in repr(mh)
    await mh.aclose()
