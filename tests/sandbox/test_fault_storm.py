"""Random faults from seeded RNGs: a reproducible storm over 50 jobs, and what each kind means."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.clock import FakeClock
from bot.sandbox import Faults, Sandbox, SandboxConfig
from bot.sandbox.faults import FaultSpec, parse_fault_spec
from tests.sandbox.helpers import API_KEY, Media, lip_sync_body, upload

TERMINAL = {"complete", "error", "canceled"}
JOBS = 50


async def _submit(api: httpx.AsyncClient, body: dict[str, Any], seen: list[str]) -> str | None:
    """Create the way a careful client does: retry only a 429 (no project was made), never anything else."""
    while True:
        try:
            response = await api.post("/v1/lip-sync", json=body)
        except httpx.TransportError:
            seen.append("create:transport")
            return None
        seen.append(f"create:{response.status_code}")
        if response.status_code == 429:
            continue
        if response.status_code != 200:
            return None
        return str(response.json()["id"])


async def _wait(api: httpx.AsyncClient, project_id: str, seen: list[str]) -> dict[str, Any]:
    """Read until Magic Hour says the job ended; every other answer is temporary."""
    for _ in range(1000):
        try:
            response = await api.get(f"/v1/video-projects/{project_id}")
        except httpx.TransportError:
            seen.append("get:transport")
            continue
        try:
            body = response.json()
        except json.JSONDecodeError:
            seen.append("get:malformed")
            continue
        status = body.get("status") if response.status_code == 200 else None
        seen.append(f"get:{response.status_code}:{status}")
        if status in TERMINAL:
            result: dict[str, Any] = body
            return result
    raise AssertionError("the job never ended")


async def _storm(tmp: Path, media: Media, seed: int) -> tuple[list[str], dict[str, Any]]:
    """50 jobs one after another through random faults on create and status reads; what the client saw."""
    seen: list[str] = []
    clock = FakeClock()
    config = SandboxConfig(api_key=API_KEY, queue_seconds=5, render_seconds=10)
    async with (
        Sandbox(config, data_dir=tmp, clock=clock) as sb,
        httpx.AsyncClient(base_url=sb.base_url, headers={"Authorization": f"Bearer {API_KEY}"}) as api,
        httpx.AsyncClient() as storage,
    ):
        video = await upload(api, storage, media.video, "video", "mp4")
        audio = await upload(api, storage, media.audio_wav, "audio", "wav")
        sb.faults.randomly(
            "get_project", rate=0.2, kinds=[409, 500, 503, "malformed", "unknown_status", "lost"], seed=seed
        )
        sb.faults.randomly("create", rate=0.3, kinds=[429], seed=seed)
        ids = [await _submit(api, lip_sync_body(video, audio, end_seconds=0.5), seen) for _ in range(JOBS)]
        await clock.advance(3600)
        finals = [await _wait(api, project_id, seen) for project_id in ids if project_id is not None]
        figures = {
            "ids": ids,
            "finals": finals,
            "jobs_created": sb.counters.jobs_created,
            "creates": sb.counters.creates,
            "status_reads": sb.counters.status_reads,
            "faults": dict(sb.counters.faults_injected),
            "charged": [sb.charged(project_id) for project_id in ids if project_id is not None],
            "charged_total": sb.charged_total,
            "spent": 1_000_000 - sb.credits,
        }
    return seen, figures


@pytest.mark.slow
async def test_fault_storm_over_50_jobs_is_reproducible(tmp_path: Path, media: Media) -> None:
    """Every job ends complete, exactly once created, charged what its final read says; a rerun is identical."""
    seen, figures = await _storm(tmp_path / "first", media, seed=1)
    assert all(project_id is not None for project_id in figures["ids"])
    assert [final["status"] for final in figures["finals"]] == ["complete"] * JOBS
    # Zero duplicate creates: a 429 made nothing, so retrying it was safe.
    assert figures["jobs_created"] == JOBS
    assert figures["creates"] == JOBS + figures["faults"]["create:429"]
    assert figures["charged"] == [final["credits_charged"] for final in figures["finals"]] == [15] * JOBS
    assert figures["charged_total"] == figures["spent"] == 15 * JOBS
    # Every kind asked for showed up, and reads were spoiled at about the rate asked for.
    kinds = {"409", "500", "503", "malformed", "unknown_status", "lost"}
    assert {name.split(":", 1)[1] for name in figures["faults"] if name.startswith("get_project:")} == kinds
    spoiled = sum(n for name, n in figures["faults"].items() if name.startswith("get_project:"))
    assert 0.1 < spoiled / figures["status_reads"] < 0.3
    assert "get:200:optimizing" in seen and "get:malformed" in seen and "get:transport" in seen

    again, rerun = await _storm(tmp_path / "second", media, seed=1)
    assert again == seen
    assert {k: v for k, v in rerun.items() if k not in ("ids", "finals")} == {
        k: v for k, v in figures.items() if k not in ("ids", "finals")
    }


def _draws(faults: Faults, route: str, n: int) -> list[str | None]:
    out = []
    for _ in range(n):
        fault = faults.take(route)
        out.append(fault.label if fault is not None else None)
    return out


def test_random_rules_are_seeded_per_route() -> None:
    """Same seed, same draws; another seed or route, other draws; rate 0 removes the rule."""
    kinds: list[int | str] = [409, 500, 503, "malformed", "unknown_status"]
    first, second, other = Faults(), Faults(), Faults()
    for faults, seed in ((first, 1), (second, 1), (other, 2)):
        faults.randomly("get_project", rate=0.2, kinds=kinds, seed=seed)
        faults.randomly("account", rate=0.2, kinds=[500], seed=seed)
    draws = _draws(first, "get_project", 500)
    assert draws == _draws(second, "get_project", 500)
    assert draws != _draws(other, "get_project", 500)
    assert 60 < sum(d is not None for d in draws) < 140
    assert {d for d in draws if d is not None} == {"409", "500", "503", "malformed", "unknown_status"}
    # Each route has its own stream: the same seed and rate spoil other requests on another route.
    assert [d is None for d in _draws(first, "account", 100)] != [d is None for d in draws[:100]]
    first.randomly("get_project", rate=0, kinds=[500])
    assert _draws(first, "get_project", 50) == [None] * 50
    always = Faults()
    always.randomly("create", rate=1, kinds={429: 3, "lost": 1})
    assert set(_draws(always, "create", 100)) == {"429", "lost"}


def test_queued_faults_come_before_storms_and_random_rules() -> None:
    """A fault injected by hand is served first, then a storm, then the random rule."""
    clock = FakeClock()
    faults = Faults(clock=clock)
    faults.randomly("get_project", rate=1, kinds=["malformed"])
    faults.storm("get_project", seconds=10, statuses=[502])
    faults.fail("get_project", status=409)
    assert _draws(faults, "get_project", 3) == ["409", "502", "502"]
    faults.clear()
    assert _draws(faults, "get_project", 1) == [None]


def test_bad_random_arguments() -> None:
    """Unknown kinds, kinds on the wrong route, rates out of range and storms without a clock are refused."""
    faults = Faults()
    with pytest.raises(ValueError, match="unknown fault kind"):
        faults.randomly("create", rate=0.5, kinds=["explode"])
    with pytest.raises(ValueError, match="get_project only"):
        faults.randomly("create", rate=0.5, kinds=["unknown_status"])
    with pytest.raises(ValueError, match="status"):
        faults.randomly("create", rate=0.5, kinds=[302])
    with pytest.raises(ValueError, match="rate"):
        faults.randomly("create", rate=1.5, kinds=[429])
    with pytest.raises(ValueError, match="at least one"):
        faults.randomly("create", rate=0.5, kinds=[])
    with pytest.raises(ValueError, match="clock"):
        faults.storm("get_project", seconds=5)
    with pytest.raises(ValueError, match="exactly one"):
        faults.storm("get_project", times=2, seconds=5)


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("get_project:500:0.2", FaultSpec("get_project", 500, 0.2)),
        ("create:429:0.3", FaultSpec("create", 429, 0.3)),
        ("create:lost", FaultSpec("create", "lost", 1.0)),
        ("get_project:unknown_status:0.05", FaultSpec("get_project", "unknown_status", 0.05)),
    ],
)
def test_parse_fault_spec(text: str, spec: FaultSpec) -> None:
    """ROUTE:KIND[:RATE], rate 1 when left out."""
    assert parse_fault_spec(text) == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("get_project", "ROUTE:KIND"),
        ("status:500", "unknown route"),
        ("get_project:teapot", "unknown fault kind"),
        ("get_project:500:often", "RATE"),
        ("get_project:500:2", "RATE"),
        ("delete_project:malformed", "JSON"),
    ],
)
def test_parse_fault_spec_refuses(text: str, message: str) -> None:
    """Mistakes in a --fault are named."""
    with pytest.raises(ValueError, match=message):
        parse_fault_spec(text)


def test_apply_specs_adds_rates_per_route() -> None:
    """Several --fault for one route add up; more than 1 in all is refused."""
    faults = Faults()
    faults.apply([parse_fault_spec("get_project:500:0.2"), parse_fault_spec("get_project:malformed:0.1")], seed=1)
    assert faults.describe() == ["get_project: 500 20%, malformed 10%"]
    with pytest.raises(ValueError, match="more than 1"):
        faults.apply([parse_fault_spec("create:429:0.7"), parse_fault_spec("create:500:0.7")])
