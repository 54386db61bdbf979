"""Metrics, health and JSON logs: scraped over real HTTP after a sandbox job; unhealthy on a read-only database."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.clock import FakeClock
from bot.jobs.models import InputSource, JobHooks, JobRequest
from bot.jobs.observe import current_job
from bot.logsafety import RedactingFilter
from bot.magichour._client import _endpoint
from bot.ops.health import DATABASE_CHECK_SECONDS
from bot.ops.logs import JsonFormatter
from bot.ops.metrics import Metrics, metrics_of
from bot.ops.server import METRICS_REFRESH_SECONDS
from bot.sandbox import Sandbox
from bot.services import Services
from tests.conftest import KeepFile, RecordingSink, make_settings

GUILD = 5


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and sorted labels."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(scrape: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return scrape.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
async def services(tmp_path: Path, sandbox: Sandbox) -> AsyncIterator[Services]:
    settings = make_settings(tmp_path, sandbox.base_url, metrics_port=0, bot_budget_credits=5000)
    async with await Services.open(settings) as opened:
        yield opened


@pytest.fixture
async def still_services(tmp_path: Path, sandbox: Sandbox) -> AsyncIterator[Services]:
    """Services on a `FakeClock`: cached checks expire only when a test moves the clock."""
    settings = make_settings(tmp_path, sandbox.base_url, metrics_port=0, bot_budget_credits=5000)
    async with await Services.open(settings, clock=FakeClock()) as opened:
        yield opened


async def test_metrics_after_a_sandbox_job(services: Services, media_dir: Path, tmp_path: Path) -> None:
    """One job through the sandbox, then `/metrics` over HTTP shows its counters."""
    request = JobRequest(
        user_id=42,
        guild_id=GUILD,
        channel_id=7,
        video=InputSource(filename="face.mp4", path=media_dir / "face.mp4"),
        audio=InputSource(filename="voice.mp3", path=media_dir / "voice.mp3"),
    )
    async with services.serve_ops() as server, httpx.AsyncClient() as http:
        assert server is not None
        record = await services.engine.submit(request, JobHooks(sink=RecordingSink(), deliverer=KeepFile(tmp_path)))
        final = await services.engine.wait(record.id)
        assert final.charged_credits is not None
        response = await http.get(f"{server.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    scrape = samples(response.text)
    assert value(scrape, "lipsync_jobs_finished_total", outcome="done", reason="") == 1
    for state in ("received", "fetching", "uploading", "creating", "submitted", "downloading", "delivering", "done"):
        assert value(scrape, "lipsync_job_transitions_total", state=state) == 1, state
    assert value(scrape, "lipsync_credits_reserved_total", guild=str(GUILD)) == 45
    assert value(scrape, "lipsync_credits_charged_total", guild=str(GUILD)) == final.charged_credits
    assert value(scrape, "lipsync_magic_hour_requests_total", endpoint="POST /v1/lip-sync", status="200") == 1
    assert value(scrape, "lipsync_magic_hour_requests_total", endpoint="POST /v1/files/upload-urls", status="200") == 1
    assert value(scrape, "lipsync_magic_hour_requests_total", endpoint="PUT storage", status="200") == 2
    assert value(scrape, "lipsync_magic_hour_requests_total", endpoint="GET storage", status="200") == 1
    polls = value(scrape, "lipsync_magic_hour_requests_total", endpoint="GET /v1/video-projects/{id}", status="200")
    assert polls >= 1
    assert value(scrape, "lipsync_magic_hour_request_seconds_count", endpoint="POST /v1/lip-sync") == 1
    assert value(scrape, "lipsync_polls_per_job_count") == 1
    assert value(scrape, "lipsync_polls_per_job_sum") == polls
    assert value(scrape, "lipsync_queue_wait_seconds_count") == 1
    assert value(scrape, "lipsync_completion_to_delivery_seconds_count") == 1
    assert value(scrape, "lipsync_deliveries_total", kind="local") == 1
    assert value(scrape, "lipsync_render_seconds_count", mode="lite") == 1
    assert value(scrape, "lipsync_jobs_active", state="rendering") == 0
    assert value(scrape, "lipsync_queue_length") == 0
    assert value(scrape, "lipsync_slots") == services.settings.max_jobs_in_flight
    assert value(scrape, "lipsync_budget_credits") == 5000
    assert value(scrape, "lipsync_budget_used_credits") == final.charged_credits
    assert value(scrape, "lipsync_store_errors_total", where="job") == 0
    # No project ids, URLs or signatures in any label.
    assert "video-projects/{id}" in response.text and "http" not in response.text.replace("# HELP", "")


async def test_healthz_turns_unhealthy_when_the_database_is_read_only(still_services: Services) -> None:
    """200 while the database takes writes; 503 naming the database once it refuses them (at the
    next database check: one verdict stands for `DATABASE_CHECK_SECONDS`)."""
    services = still_services
    clock = services.clock
    assert isinstance(clock, FakeClock)
    async with services.serve_ops() as server, httpx.AsyncClient() as http:
        assert server is not None
        healthy = await http.get(f"{server.url}/healthz")
        assert healthy.status_code == 200
        assert healthy.json() == {"healthy": True, "checks": {"database": "ok", "poller": "ok"}}
        conn = services.store._db.conn  # type: ignore[attr-defined] # the test's way to make the file refuse writes
        await conn.execute("PRAGMA query_only = ON")
        assert (await http.get(f"{server.url}/healthz")).status_code == 200  # the last verdict still stands
        await clock.advance(DATABASE_CHECK_SECONDS)
        sick = await http.get(f"{server.url}/healthz")
        assert sick.status_code == 503
        body = sick.json()
        assert body["healthy"] is False and body["checks"]["poller"] == "ok"
        assert body["checks"]["database"].startswith("write refused")
        await conn.execute("PRAGMA query_only = OFF")
        await clock.advance(DATABASE_CHECK_SECONDS)
        assert (await http.get(f"{server.url}/healthz")).status_code == 200
        scrape = samples((await http.get(f"{server.url}/metrics")).text)
    assert value(scrape, "lipsync_store_errors_total", where="health") == 1


async def test_a_flood_of_requests_is_not_a_flood_of_database_work(
    still_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fifty `/healthz` and fifty `/metrics` requests at once: one heartbeat write and one budget
    read; the next of each only once the cached answers are old."""
    services = still_services
    clock = services.clock
    assert isinstance(clock, FakeClock)
    calls = {"beat": 0, "limits": 0}
    beat, limits = services.store.heartbeat.beat, services.store.quota.limits

    async def counted_beat() -> None:
        calls["beat"] += 1
        await beat()

    async def counted_limits(*args: object) -> object:
        calls["limits"] += 1
        return await limits(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(services.store.heartbeat, "beat", counted_beat)
    monkeypatch.setattr(services.store.quota, "limits", counted_limits)
    # Ten connections at a time: within the port's connection limit (that limit has its own tests).
    client = httpx.AsyncClient(limits=httpx.Limits(max_connections=10))
    async with services.serve_ops() as server, client as http:
        assert server is not None
        answers = await asyncio.gather(
            *(http.get(f"{server.url}/healthz") for _ in range(50)),
            *(http.get(f"{server.url}/metrics") for _ in range(50)),
        )
        assert {a.status_code for a in answers} == {200}
        assert calls == {"beat": 1, "limits": 1}
        await clock.advance(max(DATABASE_CHECK_SECONDS, METRICS_REFRESH_SECONDS))
        await http.get(f"{server.url}/healthz")
        await http.get(f"{server.url}/metrics")
        assert calls == {"beat": 2, "limits": 2}


async def test_healthz_reports_a_disconnected_gateway(services: Services) -> None:
    """Where a Discord gateway is watched, a dropped connection is unhealthy."""
    connected = [True]
    services.health.watch_gateway(lambda: connected[0])
    assert (await services.health.check()).healthy
    connected[0] = False
    report = await services.health.check()
    assert not report.healthy and report.checks["gateway"] == "disconnected"


async def test_no_metrics_port_serves_nothing(tmp_path: Path, sandbox: Sandbox) -> None:
    """Without METRICS_PORT the bot listens on nothing."""
    async with await Services.open(make_settings(tmp_path, sandbox.base_url)) as opened, opened.serve_ops() as server:
        assert server is None


def test_endpoint_labels_carry_no_ids_or_urls() -> None:
    """Requests are counted per endpoint, never per project or signed URL."""
    assert _endpoint("GET /v1/video-projects/abc123") == "GET /v1/video-projects/{id}"
    assert _endpoint("DELETE /v1/video-projects/abc123") == "DELETE /v1/video-projects/{id}"
    assert _endpoint("POST /v1/lip-sync") == "POST /v1/lip-sync"
    assert _endpoint("PUT https://storage.example/bucket/key?[REDACTED]") == "PUT storage"
    assert _endpoint("GET http://127.0.0.1:9/out.mp4") == "GET storage"


def test_delivery_fallbacks_count_through_the_bot() -> None:
    """The Discord layer's one-line counts reach the bot's metrics, and do nothing before they exist."""
    from bot.clock import FakeClock

    metrics = Metrics(FakeClock())

    class Bot:
        class services:
            pass

    Bot.services.metrics = metrics  # type: ignore[attr-defined]
    metrics_of(Bot()).delivery_fallback("compressed")
    metrics_of(Bot()).delivery_fallback("dm")
    metrics_of(object()).delivery_fallback("dm")  # no metrics: nothing happens
    scrape = samples(metrics.exposition().decode())
    assert value(scrape, "lipsync_delivery_fallbacks_total", fallback="compressed") == 1
    assert value(scrape, "lipsync_delivery_fallbacks_total", fallback="dm") == 1
    assert value(scrape, "lipsync_delivery_fallbacks_total", fallback="link") == 0


def test_json_logs_carry_the_job_and_no_secrets() -> None:
    """`LOG_FORMAT=json`: one object per line, the job's number from its task or its text, redacted."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("tests.ops.json")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        token = current_job.set(12)
        try:
            logger.info("downloading %s", "https://cdn.example/out.mp4?X-Amz-Signature=abcdef")
        finally:
            current_job.reset(token)
        logger.info("job %s: delivered as %s", 7, "file")
        logger.warning("no job here, Authorization: Bearer sk-secret-value")
        try:
            raise RuntimeError("token=hunter2")
        except RuntimeError:
            logger.exception("job 9: failed")
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 4
    assert lines[0]["job"] == 12 and "X-Amz-Signature" not in lines[0]["message"]
    assert (
        lines[0]["level"] == "INFO" and lines[0]["logger"] == "tests.ops.json" and lines[0]["time"].endswith("+00:00")
    )
    assert lines[1]["job"] == 7 and lines[1]["message"] == "job 7: delivered as file"
    assert "job" not in lines[2] and "sk-secret-value" not in lines[2]["message"]
    assert lines[3]["job"] == 9 and "hunter2" not in lines[3]["exception"] and "RuntimeError" in lines[3]["exception"]
