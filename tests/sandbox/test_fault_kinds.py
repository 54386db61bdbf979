"""Faults for "a submitted job ends only on what Magic Hour says": odd status reads, storms, lost creates."""

from __future__ import annotations

import json

import httpx
import pytest

from bot.clock import FakeClock
from bot.sandbox import Sandbox
from tests.sandbox.helpers import create_job, get_project, lip_sync_body


@pytest.mark.parametrize("status", [409, 404])
async def test_status_read_answering_409_or_404(
    sandbox: Sandbox, api: httpx.AsyncClient, clock: FakeClock, files: dict[str, str], status: int
) -> None:
    """fail("get_project", status=409|404) answers that status and touches nothing: the job still finishes."""
    project_id = await create_job(api, lip_sync_body(files["video"], files["audio"]))
    await clock.advance(3600)
    sandbox.faults.fail("get_project", status=status, times=2)
    for _ in range(2):
        response = await api.get(f"/v1/video-projects/{project_id}")
        assert response.status_code == status
        assert response.json() == {"message": {409: "Conflict", 404: "Not Found"}[status]}
    assert not sandbox.projects[project_id].is_finalised()  # a faulted read does not finalise
    assert (await get_project(api, project_id))["status"] == "complete"
    assert sandbox.counters.status_reads == 3
    assert sandbox.counters.faults_injected == {f"get_project:{status}": 2}


async def test_malformed_status_read(
    sandbox: Sandbox, api: httpx.AsyncClient, clock: FakeClock, files: dict[str, str]
) -> None:
    """malformed(): 200 with half the JSON body and a matching Content-Length; the read still happened."""
    project_id = await create_job(api, lip_sync_body(files["video"], files["audio"]))
    await clock.advance(3600)
    sandbox.faults.malformed("get_project")
    response = await api.get(f"/v1/video-projects/{project_id}")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert int(response.headers["Content-Length"]) == len(response.content) > 10
    with pytest.raises(json.JSONDecodeError):
        response.json()
    whole = await get_project(api, project_id)
    assert whole["status"] == "complete"
    assert json.dumps(whole).startswith(response.text[:20])
    assert sandbox.counters.faults_injected["get_project:malformed"] == 1


async def test_malformed_only_where_json_is_answered() -> None:
    """A malformed body makes no sense for a 204 or a storage answer."""
    from bot.sandbox import Faults

    with pytest.raises(ValueError, match="JSON"):
        Faults().malformed("delete_project")
    with pytest.raises(ValueError, match="JSON"):
        Faults().randomly("download", rate=0.5, kinds=["malformed"])


async def test_unknown_status_value(
    sandbox: Sandbox, api: httpx.AsyncClient, clock: FakeClock, files: dict[str, str]
) -> None:
    """unknown_status(): a valid 200 project whose status is undocumented; the next read is real again."""
    project_id = await create_job(api, lip_sync_body(files["video"], files["audio"]))
    await clock.advance(6)
    sandbox.faults.unknown_status("optimizing")
    odd = await get_project(api, project_id)
    assert odd["status"] == "optimizing"
    real = await get_project(api, project_id)
    assert real["status"] == "rendering"
    assert {**odd, "status": "rendering"} == real
    await clock.advance(3600)
    sandbox.faults.unknown_status("awaiting_review", times=2)
    assert [(await get_project(api, project_id))["status"] for _ in range(3)] == [
        "awaiting_review",  # finalised by this very read, but not said
        "awaiting_review",
        "complete",
    ]


async def test_storm_for_a_number_of_reads(
    sandbox: Sandbox, api: httpx.AsyncClient, clock: FakeClock, files: dict[str, str]
) -> None:
    """storm(times=N): the next N reads answer 500, 502, 503, 500, ... then the job reads normally."""
    project_id = await create_job(api, lip_sync_body(files["video"], files["audio"]))
    await clock.advance(3600)
    sandbox.faults.storm("get_project", times=5)
    codes = [(await api.get(f"/v1/video-projects/{project_id}")).status_code for _ in range(5)]
    assert codes == [500, 502, 503, 500, 502]
    assert (await get_project(api, project_id))["status"] == "complete"


async def test_storm_for_a_stretch_of_the_clock(
    sandbox: Sandbox, api: httpx.AsyncClient, clock: FakeClock, files: dict[str, str]
) -> None:
    """storm(seconds=D): every read fails until the sandbox clock has moved D; creates make nothing in one."""
    project_id = await create_job(api, lip_sync_body(files["video"], files["audio"]))
    sandbox.faults.storm("get_project", seconds=60, statuses=[503])
    sandbox.faults.storm("create", seconds=60, statuses=[502])
    for step in (0, 30, 29.9):
        await clock.advance(step)
        assert (await api.get(f"/v1/video-projects/{project_id}")).status_code == 503
        assert (await api.post("/v1/lip-sync", json=lip_sync_body(files["video"], files["audio"]))).status_code == 502
    await clock.advance(0.1)
    assert (await get_project(api, project_id))["status"] == "complete"
    assert sandbox.counters.jobs_created == 1
    assert sandbox.counters.faults_injected == {"get_project:503": 3, "create:502": 3}
    assert sandbox.faults.pending("get_project") == 0


async def test_create_whose_answer_is_lost(
    sandbox: Sandbox, api: httpx.AsyncClient, clock: FakeClock, files: dict[str, str]
) -> None:
    """disconnect("create", after_effect=True): the client sees no answer, but the project exists,
    is charged, renders and settles like any other."""
    sandbox.faults.disconnect("create", after_effect=True)
    with pytest.raises(httpx.RemoteProtocolError):
        await api.post("/v1/lip-sync", json=lip_sync_body(files["video"], files["short"]))
    (project_id,) = sandbox.projects
    assert sandbox.counters.jobs_created == 1
    assert sandbox.counters.faults_injected == {"create:lost": 1}
    assert sandbox.charged(project_id) == 60  # the 30 fps estimate for 2 s
    assert sandbox.credits == 1_000_000 - 60
    body = await get_project(api, project_id)
    assert (body["status"], body["credits_charged"]) == ("queued", 60)
    await clock.advance(3600)
    body = await get_project(api, project_id)
    assert (body["status"], body["credits_charged"]) == ("complete", 30)  # 1 s of audio at 30 fps
    assert sandbox.charged(project_id) == sandbox.charged_total == 30
    assert sandbox.credits == 1_000_000 - 30


async def test_create_answered_with_an_error_after_its_effect(
    sandbox: Sandbox, api: httpx.AsyncClient, files: dict[str, str]
) -> None:
    """fail(..., after_effect=True): a gateway error for a create that went through anyway."""
    sandbox.faults.fail("create", status=504, after_effect=True)
    response = await api.post("/v1/lip-sync", json=lip_sync_body(files["video"], files["audio"]))
    assert response.status_code == 504
    assert response.json() == {"message": "Gateway Timeout"}
    assert sandbox.counters.jobs_created == 1
    assert sandbox.charged_total == 60
    assert sandbox.counters.faults_injected == {"create:504-after-effect": 1}
    with pytest.raises(ValueError, match="download"):
        sandbox.faults.fail("download", status=500, after_effect=True)


async def test_malformed_create_still_makes_the_project(
    sandbox: Sandbox, api: httpx.AsyncClient, files: dict[str, str]
) -> None:
    """A create answered with a cut-off body went through: the project exists and is charged."""
    sandbox.faults.malformed("create")
    response = await api.post("/v1/lip-sync", json=lip_sync_body(files["video"], files["audio"]))
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()
    (project_id,) = sandbox.projects
    assert response.text in json.dumps({"id": project_id, "credits_charged": 60, "estimated_frame_cost": 60})
    assert sandbox.charged(project_id) == 60


async def test_delete_counter(sandbox: Sandbox, api: httpx.AsyncClient, files: dict[str, str]) -> None:
    """counters.deletes counts DELETEs, faulted ones included."""
    project_id = await create_job(api, lip_sync_body(files["video"], files["audio"]))
    sandbox.faults.fail("delete_project", status=503)
    assert (await api.delete(f"/v1/video-projects/{project_id}")).status_code == 503
    assert (await api.delete(f"/v1/video-projects/{project_id}")).status_code == 204
    assert (sandbox.counters.deletes, sandbox.counters.creates, sandbox.counters.status_reads) == (2, 1, 0)
    assert sandbox.charged(project_id) == 0  # canceled while queued: refunded


async def test_charged_unknown_project(sandbox: Sandbox) -> None:
    """charged() names only projects the sandbox made."""
    with pytest.raises(KeyError):
        sandbox.charged("nope")
    assert sandbox.charged_total == 0
