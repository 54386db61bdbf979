"""The API listener: success paths, validation statuses and messages, auth."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import httpx
import pytest

from bot.sandbox import Sandbox
from tests.sandbox.helpers import Media, create_job, get_project, lip_sync_body, upload


async def test_upload_urls_in_request_order_on_the_storage_host(sandbox: Sandbox, api: httpx.AsyncClient) -> None:
    """Each item gets a signed PUT URL on the storage listener and an api-assets file path, in order."""
    items = [{"type": "video", "extension": "mp4"}, {"type": "audio", "extension": "mp3"}]
    response = await api.post("/v1/files/upload-urls", json={"items": items})
    assert response.status_code == 200
    got = response.json()["items"]
    assert [item["file_path"].rsplit(".", 1)[1] for item in got] == ["mp4", "mp3"]
    for item in got:
        assert item["file_path"].startswith("api-assets/")
        url = urlparse(item["upload_url"])
        assert f"{url.scheme}://{url.netloc}" == sandbox.storage_url != sandbox.base_url
        assert "sig=" in url.query and "expires=" in url.query
        assert item["expires_at"] == "2026-01-01T12:15:00.000Z"  # FakeClock start + 900 s
    assert sandbox.counters.requests["upload_urls"] == 1


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        pytest.param(None, 400, "Missing request body", id="no-body"),
        pytest.param({}, 400, "Missing required field: items", id="no-items"),
        pytest.param({"items": []}, 400, "items must contain at least 1 item", id="empty-items"),
        pytest.param(
            {"items": [{"type": "document", "extension": "pdf"}]},
            400,
            "Invalid value for items[0].type: 'document'. Expected one of: video, audio, image, gif",
            id="unknown-type",
        ),
        pytest.param(
            {"items": [{"type": "video", "extension": "mp3"}]},
            422,
            "Invalid extension 'mp3' for video file. Valid extensions are: mp4, m4v, mov, webm",
            id="audio-ext-for-video",
        ),
        pytest.param(
            {"items": [{"type": "video", "extension": ".mp4"}]},
            422,
            "Invalid extension '.mp4' for video file. Valid extensions are: mp4, m4v, mov, webm",
            id="dot",
        ),
        pytest.param(
            {"items": [{"type": "audio", "extension": "MP3"}]},
            422,
            "Invalid extension 'MP3' for audio file. Valid extensions are: "
            "mp3, wav, aac, flac, webm, weba, m4a, opus, ogg, oga, aiff, amr",
            id="uppercase",
        ),
    ],
)
async def test_upload_urls_validation(api: httpx.AsyncClient, body: Any, status: int, message: str) -> None:
    """Bad upload-urls bodies get the API's status and a message naming the problem."""
    response = (
        await api.post("/v1/files/upload-urls", json=body)
        if body is not None
        else await api.post("/v1/files/upload-urls")
    )
    assert response.status_code == status
    assert response.json() == {"message": message}


@pytest.mark.parametrize(
    "ext", ["mp3", "wav", "aac", "flac", "webm", "weba", "m4a", "opus", "ogg", "oga", "aiff", "amr"]
)
async def test_every_documented_audio_extension_is_accepted(api: httpx.AsyncClient, ext: str) -> None:
    """The audio slot takes exactly the extensions the real API lists."""
    response = await api.post("/v1/files/upload-urls", json={"items": [{"type": "audio", "extension": ext}]})
    assert response.status_code == 200


def _body(**overrides: Any) -> dict[str, Any]:
    return lip_sync_body("api-assets/x/v.mp4", "api-assets/x/a.mp3", **overrides)


def _assets(**assets: Any) -> dict[str, Any]:
    return _body(assets=assets)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            {k: v for k, v in _body().items() if k != "start_seconds"}, "Missing required field: start_seconds"
        ),
        pytest.param({k: v for k, v in _body().items() if k != "end_seconds"}, "Missing required field: end_seconds"),
        pytest.param({k: v for k, v in _body().items() if k != "assets"}, "Missing required field: assets"),
        pytest.param(_body(start_seconds="0"), "Invalid type for start_seconds: expected a number"),
        pytest.param(_body(end_seconds=True), "Invalid type for end_seconds: expected a number"),
        pytest.param(_body(assets="x"), "Invalid type for assets: expected an object"),
        pytest.param(_body(end_seconds=1.0, start_seconds=1.0), "end_seconds must be greater than start_seconds"),
        pytest.param(_body(end_seconds=1.0, start_seconds=1.5), "end_seconds must be greater than start_seconds"),
        pytest.param(_body(start_seconds=-1), "start_seconds must be greater than or equal to 0"),
        pytest.param(_body(start_seconds=0, end_seconds=0.05), "end_seconds must be greater than or equal to 0.1"),
        pytest.param(_body(max_fps_limit=0.5), "max_fps_limit must be greater than or equal to 1"),
        pytest.param(_body(name=3), "Invalid type for name: expected a string"),
        pytest.param(
            _assets(video_source="file", video_file_path="v"), "Missing required field: assets.audio_file_path"
        ),
        pytest.param(_assets(audio_file_path="a"), "Missing required field: assets.video_source"),
        pytest.param(
            _assets(video_source="vimeo", audio_file_path="a"),
            "Invalid value for assets.video_source: 'vimeo'. Expected one of: file, youtube",
        ),
        pytest.param(
            _assets(video_source="file", audio_file_path="a"),
            "assets.video_file_path is required when assets.video_source is 'file'",
        ),
        pytest.param(
            _assets(video_source="youtube", audio_file_path="a"),
            "assets.youtube_url is required when assets.video_source is 'youtube'",
        ),
        pytest.param(
            _body(style={"generation_mode": "ultra"}),
            "Invalid value for style.generation_mode: 'ultra'. Expected one of: lite, standard, pro",
        ),
    ],
)
async def test_lip_sync_validation(sandbox: Sandbox, api: httpx.AsyncClient, body: Any, message: str) -> None:
    """Invalid create bodies are 400s with a specific message, and create nothing."""
    response = await api.post("/v1/lip-sync", json=body)
    assert response.status_code == 400
    assert response.json() == {"message": message}
    assert sandbox.counters.jobs_created == 0
    assert sandbox.credits == 1_000_000


@pytest.mark.parametrize("content", [b"", b"not json", b"[1, 2]"])
async def test_lip_sync_bad_body(api: httpx.AsyncClient, content: bytes) -> None:
    """An empty, unparsable or non-object body is a 400."""
    response = await api.post("/v1/lip-sync", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    expected = "Missing request body" if not content else None
    if expected:
        assert response.json() == {"message": expected}
    else:
        assert response.json()["message"].startswith("Invalid request body")


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "sandbox-key"}, {"Authorization": "Basic sandbox-key"}],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/files/upload-urls"),
        ("POST", "/v1/lip-sync"),
        ("GET", "/v1/video-projects/abc"),
        ("DELETE", "/v1/video-projects/abc"),
        ("GET", "/v1/account"),
    ],
)
async def test_auth_required(sandbox: Sandbox, headers: dict[str, str], method: str, path: str) -> None:
    """Every API route wants `Authorization: Bearer <api_key>`; anything else is a 401."""
    async with httpx.AsyncClient(base_url=sandbox.base_url) as client:
        response = await client.request(method, path, headers=headers, json={})
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}


async def test_api_key_change_applies_at_once(sandbox: Sandbox, api: httpx.AsyncClient) -> None:
    """The key is read per request from the live config."""
    sandbox.config.api_key = "rotated"
    assert (await api.get("/v1/account")).status_code == 401
    response = await api.get("/v1/account", headers={"Authorization": "Bearer rotated"})
    assert response.status_code == 200


async def test_account(sandbox: Sandbox, api: httpx.AsyncClient) -> None:
    """The account reports the live balance and tier; free accounts have no subscription."""
    response = await api.get("/v1/account")
    assert response.status_code == 200
    body = response.json()
    assert body["credits"] == 1_000_000
    assert body["tier"] == "creator"
    assert body["subscription"]["status"] == "active"
    assert set(body) == {"id", "email", "credits", "tier", "subscription"}
    sandbox.config.tier = "free"
    sandbox.credits = 42
    body = (await api.get("/v1/account")).json()
    assert (body["credits"], body["tier"], body["subscription"]) == (42, "free", None)


async def test_unknown_project_and_route_are_404(api: httpx.AsyncClient) -> None:
    """Unknown ids and paths answer 404 {"message": "Not Found"}."""
    for response in (
        await api.get("/v1/video-projects/nope"),
        await api.delete("/v1/video-projects/nope"),
        await api.get("/v1/nothing-here"),
    ):
        assert response.status_code == 404
        assert response.json() == {"message": "Not Found"}


async def test_create_returns_estimate_and_debits(
    sandbox: Sandbox, api: httpx.AsyncClient, storage: httpx.AsyncClient, media: Media
) -> None:
    """Create answers {id, credits_charged}: the window at min(30, max_fps) fps, doubled for pro."""
    video = await upload(api, storage, media.video, "video", "mp4")
    audio = await upload(api, storage, media.audio_wav, "audio", "wav")
    cases: list[tuple[dict[str, Any], int]] = [
        ({}, 60),
        ({"max_fps_limit": 12}, 24),
        ({"max_fps_limit": 60}, 60),
        ({"style": {"generation_mode": "standard"}}, 60),
        ({"style": {"generation_mode": "pro"}}, 120),
        ({"start_seconds": 0.5, "end_seconds": 1.75}, 38),  # ceil(1.25 * 30)
    ]
    spent = 0
    for overrides, expected in cases:
        response = await api.post("/v1/lip-sync", json=lip_sync_body(video, audio, **overrides))
        assert response.status_code == 200, response.text
        assert response.json()["credits_charged"] == expected
        spent += expected
        assert sandbox.credits == 1_000_000 - spent
    assert sandbox.counters.jobs_created == len(cases)


async def test_free_tier_cannot_use_pro(sandbox: Sandbox, api: httpx.AsyncClient) -> None:
    """standard and pro need a paid tier: 403 on free, as the docs describe."""
    sandbox.config.tier = "free"
    response = await api.post("/v1/lip-sync", json=_body(style={"generation_mode": "pro"}))
    assert response.status_code == 403
    assert "free tier" in response.json()["message"]


async def test_new_project_fields(
    sandbox: Sandbox, api: httpx.AsyncClient, storage: httpx.AsyncClient, media: Media
) -> None:
    """A fresh project has the documented fields, a default name, no downloads and no error."""
    video = await upload(api, storage, media.video, "video", "mp4")
    audio = await upload(api, storage, media.audio_wav, "audio", "wav")
    project_id = await create_job(api, lip_sync_body(video, audio, max_fps_limit=24))
    body = await get_project(api, project_id)
    assert body["id"] == project_id
    assert body["status"] == "queued"
    assert body["type"] == "LIP_SYNC"
    assert body["name"] == "Lip Sync - 2026-01-01T12:00:00.000Z"
    assert body["created_at"] == "2026-01-01T12:00:00.000Z"
    assert (body["width"], body["height"], body["fps"]) == (-1, -1, 24)
    assert body["enabled"] is True
    assert (body["start_seconds"], body["end_seconds"]) == (0.0, 2.0)
    assert body["credits_charged"] == 48
    assert body["error"] is None
    assert body["downloads"] == []
    assert sandbox.projects[project_id].status == "queued"


async def test_every_response_says_it_is_the_sandbox(
    sandbox: Sandbox, api: httpx.AsyncClient, storage: httpx.AsyncClient, media: Media
) -> None:
    """`X-Magic-Hour-Sandbox: 1` on API and storage answers alike: successes, errors, faults, streams."""
    video = await upload(api, storage, media.video, "video", "mp4")
    audio = await upload(api, storage, media.audio_wav, "audio", "wav")
    sandbox.config.queue_seconds = sandbox.config.render_seconds = 0
    project_id = await create_job(api, lip_sync_body(video, audio))
    project = await get_project(api, project_id)
    items = (await api.post("/v1/files/upload-urls", json={"items": [{"type": "video", "extension": "mp4"}]})).json()
    responses = [
        await api.get("/v1/account"),
        await api.get(f"/v1/video-projects/{project_id}"),
        await api.get("/v1/video-projects/nope"),
        await api.get("/v1/nothing-here"),
        await api.post("/v1/lip-sync", json={}),
    ]
    sandbox.faults.fail("account", status=503)
    async with httpx.AsyncClient(base_url=sandbox.base_url) as anonymous:
        responses += [await anonymous.get("/v1/account"), await anonymous.get("/v1/account")]  # 503, then 401
    responses += [
        await storage.get(project["downloads"][0]["url"]),
        await storage.get(project["downloads"][0]["url"].split("?")[0]),  # 403, S3-style XML
        await storage.put(items["items"][0]["upload_url"], content=b"x"),
        await api.delete(f"/v1/video-projects/{project_id}"),
    ]
    assert [r.status_code for r in responses] == [200, 200, 404, 404, 400, 503, 401, 200, 403, 200, 204]
    assert all(r.headers.get("X-Magic-Hour-Sandbox") == "1" for r in responses)
