"""Fault switches and counters."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from bot.clock import FakeClock
from bot.sandbox import Sandbox
from tests.sandbox.helpers import Media, create_job, get_project, lip_sync_body, run_to_end, upload

BODY = lip_sync_body("api-assets/x/v.mp4", "api-assets/x/a.wav")


async def _until(condition: Callable[[], bool]) -> None:
    """Yield to the event loop until the sandbox, running in it, has reached `condition` (bounded)."""
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0.001)


async def test_fail_returns_status_without_effect(sandbox: Sandbox, api: httpx.AsyncClient) -> None:
    """fail() answers the next `times` requests with the status and a message; nothing is created."""
    sandbox.faults.fail("create", status=429, times=2)
    for _ in range(2):
        response = await api.post("/v1/lip-sync", json=BODY)
        assert response.status_code == 429
        assert response.json() == {"message": "Too Many Requests"}
    assert sandbox.counters.jobs_created == 0
    assert sandbox.credits == 1_000_000
    assert (await api.post("/v1/lip-sync", json=BODY)).status_code == 200
    assert sandbox.counters.requests["create"] == 3
    assert sandbox.counters.jobs_created == 1


async def test_faults_are_consumed_in_order_per_route(sandbox: Sandbox, api: httpx.AsyncClient) -> None:
    """Faults queue per route, first injected first served, and other routes are untouched."""
    sandbox.faults.fail("account", status=500)
    sandbox.faults.fail("account", status=503, message="overloaded")
    sandbox.faults.fail("get_project", status=502)
    first = await api.get("/v1/account")
    second = await api.get("/v1/account")
    assert (first.status_code, first.json()) == (500, {"message": "Internal Server Error"})
    assert (second.status_code, second.json()) == (503, {"message": "overloaded"})
    assert (await api.get("/v1/account")).status_code == 200
    assert sandbox.faults.pending("get_project") == 1
    sandbox.faults.clear()
    assert sandbox.faults.pending("get_project") == 0
    assert sandbox.counters.requests["account"] == 3


async def test_fail_comes_before_auth(sandbox: Sandbox) -> None:
    """An injected status answers even an unauthenticated request (it models the edge, not the app)."""
    sandbox.faults.fail("account", status=503)
    async with httpx.AsyncClient(base_url=sandbox.base_url) as client:
        assert (await client.get("/v1/account")).status_code == 503
        assert (await client.get("/v1/account")).status_code == 401


async def test_disconnect_before_effect(sandbox: Sandbox, api: httpx.AsyncClient) -> None:
    """disconnect() drops the connection with no response and no job."""
    sandbox.faults.disconnect("create")
    with pytest.raises(httpx.RemoteProtocolError):
        await api.post("/v1/lip-sync", json=BODY)
    assert sandbox.counters.jobs_created == 0
    assert sandbox.credits == 1_000_000
    assert sandbox.counters.requests["create"] == 1


async def test_disconnect_after_effect_creates_and_bills(sandbox: Sandbox, api: httpx.AsyncClient) -> None:
    """disconnect(after_effect=True) creates (and bills) the job, then drops the response."""
    sandbox.faults.disconnect("create", after_effect=True)
    with pytest.raises(httpx.RemoteProtocolError):
        await api.post("/v1/lip-sync", json=BODY)
    assert sandbox.counters.jobs_created == 1
    assert len(sandbox.projects) == 1
    assert sandbox.credits == 1_000_000 - 60


async def test_disconnect_after_effect_on_delete(sandbox: Sandbox, api: httpx.AsyncClient) -> None:
    """For DELETE the project is deleted even though the client saw a transport error."""
    project_id = await create_job(api, BODY)
    sandbox.faults.disconnect("delete_project", after_effect=True)
    with pytest.raises(httpx.RemoteProtocolError):
        await api.delete(f"/v1/video-projects/{project_id}")
    assert (await get_project(api, project_id))["status"] == "canceled"


async def test_hang_creates_the_job_then_holds_until_the_client_gives_up(
    sandbox: Sandbox, api: httpx.AsyncClient
) -> None:
    """hang("create"): the job exists and is billed, the client times out, and the hold ends with it."""
    sandbox.faults.hang("create")
    with pytest.raises(httpx.ReadTimeout):
        await api.post("/v1/lip-sync", json=BODY, timeout=httpx.Timeout(5.0, read=0.2))
    assert sandbox.counters.jobs_created == 1
    assert sandbox.credits == 1_000_000 - 60
    assert sandbox.counters.requests["create"] == 1
    # The next create is not held.
    assert (await api.post("/v1/lip-sync", json=BODY)).status_code == 200


async def test_hang_until_release(sandbox: Sandbox, api: httpx.AsyncClient) -> None:
    """A held request answers normally once release() is called."""
    sandbox.faults.hang("account")
    request = asyncio.create_task(api.get("/v1/account"))
    await _until(lambda: sandbox.counters.requests["account"] == 1)
    await asyncio.sleep(0)
    assert not request.done()
    sandbox.faults.release()
    response = await request
    assert response.status_code == 200


async def test_storage_faults(
    sandbox: Sandbox, api: httpx.AsyncClient, storage: httpx.AsyncClient, clock: FakeClock, media: Media
) -> None:
    """Storage routes take faults too: a failed or dropped PUT stores nothing, a truncated download breaks."""
    response = await api.post("/v1/files/upload-urls", json={"items": [{"type": "video", "extension": "mp4"}]})
    item = response.json()["items"][0]
    sandbox.faults.fail("storage_put", status=503)
    assert (await storage.put(item["upload_url"], content=b"abc")).status_code == 503
    sandbox.faults.disconnect("storage_put")
    with pytest.raises(httpx.TransportError):
        await storage.put(item["upload_url"], content=b"abc")
    assert item["file_path"] not in sandbox.uploads
    sandbox.faults.disconnect("storage_put", after_effect=True)
    with pytest.raises(httpx.TransportError):
        await storage.put(item["upload_url"], content=media.video.read_bytes())
    assert item["file_path"] in sandbox.uploads

    audio = await upload(api, storage, media.audio_wav, "audio", "wav")
    project_id = await create_job(api, lip_sync_body(item["file_path"], audio))
    url = (await run_to_end(api, clock, project_id))["downloads"][0]["url"]
    sandbox.faults.disconnect("download", after_effect=True)
    with pytest.raises(httpx.RemoteProtocolError):
        await storage.get(url)
    size = sandbox.projects[project_id].result.path.stat().st_size  # type: ignore[union-attr]
    assert sandbox.counters.bytes_downloaded == size // 2
    assert len((await storage.get(url)).content) == size
    assert sandbox.counters.requests["download"] == 2


def test_bad_fault_arguments() -> None:
    """Typos in route names and nonsense counts fail loudly."""
    from bot.sandbox import Faults

    faults = Faults()
    with pytest.raises(ValueError, match="unknown route"):
        faults.fail("creat", status=429)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="times"):
        faults.disconnect("create", times=0)
    with pytest.raises(ValueError, match="status"):
        faults.fail("create", status=200)
