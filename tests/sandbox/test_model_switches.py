"""The switches and reports a model of the bot's endings needs: reads that lose their money field or
their shape, YouTube sources faster than 30 fps, what each client last read, every DELETE and what
it found, requests in flight, and finishing due renders without a read."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from bot.clock import FakeClock
from bot.sandbox import Faults, Sandbox
from tests.sandbox.helpers import create_job, get_project, lip_sync_body


async def test_a_read_without_its_charge(
    sandbox: Sandbox, api: httpx.AsyncClient, clock: FakeClock, files: dict[str, str]
) -> None:
    """no_charge(): a 200 project body with no credits_charged; the read still finalises; the next read has it."""
    project_id = await create_job(api, lip_sync_body(files["video"], files["audio"]))
    await clock.advance(3600)
    sandbox.faults.no_charge()
    bare = await get_project(api, project_id)
    assert "credits_charged" not in bare and bare["status"] == "complete"
    whole = await get_project(api, project_id)
    assert whole["credits_charged"] == sandbox.charged(project_id) == 60
    assert {**bare, "credits_charged": 60} == whole
    assert sandbox.counters.faults_injected == {"get_project:no_charge": 1}


async def test_a_read_in_another_shape(
    sandbox: Sandbox, api: httpx.AsyncClient, clock: FakeClock, files: dict[str, str]
) -> None:
    """odd_json(): valid JSON with the project one level down; the status a client sees is none."""
    project_id = await create_job(api, lip_sync_body(files["video"], files["audio"]))
    sandbox.faults.odd_json(times=2)
    odd = (await api.get(f"/v1/video-projects/{project_id}")).json()
    assert set(odd) == {"data"} and odd["data"]["id"] == project_id
    sandbox.faults.odd_json("create")
    made = (await api.post("/v1/lip-sync", json=lip_sync_body(files["video"], files["audio"]))).json()
    assert set(made) == {"data"} and made["data"]["id"] in sandbox.projects  # made, and billed
    assert project_id in sandbox.projects and sandbox.projects[project_id].last_read is None
    with pytest.raises(ValueError, match="JSON"):
        Faults().odd_json("delete_project")


@pytest.mark.parametrize(
    ("youtube_fps", "max_fps", "frames"), [(30, None, 30), (60, None, 60), (60, 45, 45), (24, 60, 24)]
)
async def test_a_youtube_source_renders_at_its_own_rate(
    sandbox: Sandbox,
    api: httpx.AsyncClient,
    clock: FakeClock,
    files: dict[str, str],
    youtube_fps: float,
    max_fps: float | None,
    frames: int,
) -> None:
    """youtube_fps: the create holds 30 fps (or the cap), the render settles at min(source, cap)."""
    sandbox.config.youtube_fps = youtube_fps
    assets = {
        "video_source": "youtube",
        "youtube_url": "https://www.youtube.com/watch?v=x",
        "audio_file_path": files["audio"],
    }
    body = lip_sync_body(None, files["audio"], assets=assets, end_seconds=1.0)
    if max_fps is not None:
        body["max_fps_limit"] = max_fps
    created = (await api.post("/v1/lip-sync", json=body)).json()
    assert created["credits_charged"] == min(30, max_fps or 30)
    await clock.advance(3600)
    project = await get_project(api, created["id"])
    assert project["status"] == "complete" and project["credits_charged"] == frames
    assert project["fps"] == min(youtube_fps, max_fps or youtube_fps)


async def test_the_last_read_is_what_the_client_received(
    sandbox: Sandbox, api: httpx.AsyncClient, clock: FakeClock, files: dict[str, str]
) -> None:
    """A whole 200 read is noted with its status and time; a cut, lost or refused read is not."""
    project_id = await create_job(api, lip_sync_body(files["video"], files["audio"]))
    await clock.advance(6)  # past the 5 s queue
    await get_project(api, project_id)
    seen = sandbox.projects[project_id].last_read
    assert seen is not None and (seen.status, seen.at) == ("rendering", clock.monotonic())
    await clock.advance(3600)
    sandbox.faults.malformed()
    await api.get(f"/v1/video-projects/{project_id}")  # finalised by this read, but the client can't tell
    sandbox.faults.disconnect("get_project", after_effect=True)
    with pytest.raises(httpx.TransportError):
        await api.get(f"/v1/video-projects/{project_id}")
    sandbox.faults.fail("get_project", status=503)
    await api.get(f"/v1/video-projects/{project_id}")
    assert sandbox.projects[project_id].status == "complete"
    assert sandbox.projects[project_id].last_read == seen  # still "rendering": nothing else arrived whole
    sandbox.faults.unknown_status()
    await get_project(api, project_id)
    last = sandbox.projects[project_id].last_read
    assert last is not None and last.status == "optimizing"


async def test_every_delete_says_what_it_found(
    sandbox: Sandbox, api: httpx.AsyncClient, clock: FakeClock, files: dict[str, str]
) -> None:
    """`sb.deletes` notes each DELETE that reached a project: a running render it stopped, and a
    finished one it destroyed (the clock said complete though no read had said so)."""
    running = await create_job(api, lip_sync_body(files["video"], files["audio"]))
    done = await create_job(api, lip_sync_body(files["video"], files["audio"]))
    await clock.advance(6)
    await get_project(api, running)
    await get_project(api, done)
    assert (await api.delete(f"/v1/video-projects/{running}")).status_code == 204
    await clock.advance(3600)
    sandbox.faults.fail("delete_project", status=500)  # refused before it reaches anything: not noted
    await api.delete(f"/v1/video-projects/{done}")
    assert (await api.delete(f"/v1/video-projects/{done}")).status_code == 204
    notes = sandbox.deletes
    assert [(n.project_id, n.found) for n in notes] == [(running, "rendering"), (done, "complete")]
    assert all(n.last_read is not None and n.last_read.status == "rendering" for n in notes)
    assert notes[1].at == clock.monotonic() and sandbox.charged(done) == 60  # paid for, and gone
    assert sandbox.charged(running) == 0 and sandbox.projects[running].status == "canceled"


async def test_requests_in_flight_and_held(
    sandbox: Sandbox, api: httpx.AsyncClient, clock: FakeClock, files: dict[str, str]
) -> None:
    """`in_flight` counts requests being handled and `held` those a hang holds; both drop to 0 after."""
    project_id = await create_job(api, lip_sync_body(files["video"], files["audio"]))
    sandbox.faults.hang("get_project")
    read = asyncio.ensure_future(api.get(f"/v1/video-projects/{project_id}"))
    async with asyncio.timeout(10):
        while sandbox.counters.held == 0:
            await asyncio.sleep(0.001)
    assert sandbox.counters.in_flight == sandbox.counters.held == 1
    sandbox.counters.reset()
    assert sandbox.counters.in_flight == 1  # live figures survive a reset of the history
    sandbox.faults.release()
    assert (await read).status_code == 200
    assert sandbox.counters.in_flight == sandbox.counters.held == 0


async def test_finish_due_ends_renders_without_a_read(
    sandbox: Sandbox, api: httpx.AsyncClient, clock: FakeClock, files: dict[str, str]
) -> None:
    """finish_due(): a render the clock says is over is finalised and settled; one still going is left."""
    early = await create_job(api, lip_sync_body(files["video"], files["audio"]))
    await clock.advance(20)
    late = await create_job(api, lip_sync_body(files["video"], files["audio"]))
    await sandbox.finish_due()
    assert sandbox.projects[early].is_finalised() and sandbox.projects[early].status == "complete"
    assert not sandbox.projects[late].is_finalised()
    assert sandbox.counters.status_reads == 0 and sandbox.projects[early].last_read is None
