"""The operator's signals from a real job through the sandbox: a database error counted where it hit a
job (`lipsync_store_errors_total{where="job"}`), and JSON log lines that carry the job's number.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.jobs.models import InputSource, JobHooks, JobRequest
from bot.logsafety import RedactingFilter
from bot.ops.logs import JsonFormatter
from bot.sandbox import Sandbox
from bot.services import Services
from bot.store import JobRecord, JobState
from tests.conftest import KeepFile, RecordingSink, make_settings


@pytest.fixture
async def services(tmp_path: Path, sandbox: Sandbox) -> AsyncIterator[Services]:
    settings = make_settings(tmp_path, sandbox.base_url, metrics_port=0)
    async with await Services.open(settings) as opened:
        yield opened


def request(media_dir: Path, user_id: int = 42) -> JobRequest:
    return JobRequest(
        user_id=user_id,
        guild_id=5,
        channel_id=7,
        video=InputSource(filename="face.mp4", path=media_dir / "face.mp4"),
        audio=InputSource(filename="voice.mp3", path=media_dir / "voice.mp3"),
    )


async def submit(services: Services, media_dir: Path, tmp_path: Path, user_id: int = 42) -> JobRecord:
    """Start one job (a member's face.mp4 and voice.mp3), delivered into a folder of its own."""
    hooks = JobHooks(sink=RecordingSink(), deliverer=KeepFile(tmp_path / f"out-{user_id}"))
    return await services.engine.submit(request(media_dir, user_id), hooks)


def store_errors(services: Services) -> dict[str, float]:
    registry = services.metrics.registry
    counts = {w: registry.get_sample_value("lipsync_store_errors_total", {"where": w}) for w in ("job", "health")}
    return {where: value or 0.0 for where, value in counts.items()}


async def test_a_job_step_the_database_refuses_counts_a_store_error(
    services: Services, media_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database refuses one of a job's writes (made read-only for it): the job fails, `where="job"` counts 1."""
    jobs = services.store.jobs
    original = jobs.update
    conn = services.store._db.conn  # type: ignore[attr-defined] # the test's way to make the file refuse writes
    refused: list[dict[str, object]] = []

    async def update(job_id: int, **fields: object) -> JobRecord:
        if refused:
            return await original(job_id, **fields)
        refused.append(fields)  # the job's first field write: what probing found, before credits are reserved
        await conn.execute("PRAGMA query_only = ON")
        try:
            return await original(job_id, **fields)
        finally:
            await conn.execute("PRAGMA query_only = OFF")

    monkeypatch.setattr(jobs, "update", update)
    assert store_errors(services) == {"job": 0.0, "health": 0.0}

    final = await services.engine.wait((await submit(services, media_dir, tmp_path)).id)

    assert refused, "the job never wrote a field"
    assert final.state is JobState.FAILED and final.error_code == "internal_error"
    assert store_errors(services) == {"job": 1.0, "health": 0.0}
    balance = await services.store.quota.limits(5, 42)
    assert balance.used == 0 and balance.reserved == 0  # it failed before anything was set aside


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Every `bot.*` record, DEBUG and up, formatted as `LOG_FORMAT=json` formats it (redacted first)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("bot")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


POLL_LINE = re.compile(r"^GET /v1/video-projects/(?P<project>[^ ]+) -> ")
CREATE_LINE = re.compile(r"^Magic Hour job (?P<project>[^ ]+) created")


async def test_a_real_jobs_log_lines_carry_its_number(
    services: Services, media_dir: Path, tmp_path: Path, json_lines: io.StringIO
) -> None:
    """Two sandbox jobs at once: every engine, poller and Magic Hour line is stamped with its own job's number.

    The lines that prove it are those whose text doesn't start "job N:": Magic Hour's create
    answer (in the job's task) and each status request (in a poll task the poller starts for the
    job). Only the job's task context (`current_job`, set by the engine) can number them.
    """
    started = [await submit(services, media_dir, tmp_path, user_id) for user_id in (42, 43)]
    first, second = [await services.engine.wait(job.id) for job in started]
    assert first.state is second.state is JobState.DONE
    job_of_project = {first.project_id: first.id, second.project_id: second.id}

    lines: list[dict[str, Any]] = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    about_jobs = [line for line in lines if line["logger"].startswith(("bot.jobs.", "bot.magichour."))]
    unnumbered = [line for line in about_jobs if "job" not in line]
    assert unnumbered == []
    polls = [(line, POLL_LINE.match(line["message"])) for line in about_jobs]
    creates = [(line, CREATE_LINE.match(line["message"])) for line in about_jobs]
    seen: dict[int, set[str]] = {}
    for line, match in [*polls, *creates]:
        if match is not None:
            assert line["job"] == job_of_project[match["project"]], line
            seen.setdefault(line["job"], set()).add("poll" if POLL_LINE.match(line["message"]) else "create")
    assert seen == {first.id: {"poll", "create"}, second.id: {"poll", "create"}}
    # The engine's own lines and the run's say which job they are about, too.
    for job_id in (first.id, second.id):
        loggers = {line["logger"] for line in about_jobs if line["job"] == job_id}
        assert {"bot.jobs.engine", "bot.jobs.run", "bot.magichour._client"} <= loggers, loggers
