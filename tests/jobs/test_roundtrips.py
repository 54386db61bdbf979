"""How many database round trips one job costs, from submit to delivery: pinned, so they cannot creep back.

Counted, not timed: `TripCounter` wraps the store's driver connection and counts every statement
that reaches it (BEGIN and COMMIT included), filed by call site. The process's own loops (its
heartbeat) are left out: they cost the same whatever the jobs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.jobs.models import InputSource, JobHooks, JobRequest
from bot.sandbox import Sandbox
from bot.services import Services
from bot.store import JobState
from bot.store.trips import TripCounter
from tests.conftest import KeepFile, RecordingSink, make_settings
from tests.store.pgserver import create_database, drop_database

# What one job may cost at most. SQLite: about 39 today (117 before jobs moved in one checked
# statement each); PostgreSQL pays BEGIN, a transaction id and COMMIT around every write: 73 (132).
LIMITS = {"sqlite": 40, "postgresql": 80}


@pytest.fixture(params=["sqlite", "postgresql"])
async def services(
    request: pytest.FixtureRequest, tmp_path: Path, sandbox: Sandbox
) -> AsyncIterator[tuple[str, Services]]:
    """The bot's services on one backend, against this test's sandbox."""
    backend: str = request.param
    url = None
    if backend == "postgresql":
        url = await create_database(request.getfixturevalue("postgres_server"))
    where = {} if url is None else {"database_url": SecretStr(url)}
    opened = await Services.open(make_settings(tmp_path, sandbox.base_url, **where))
    try:
        yield backend, opened
    finally:
        await opened.aclose()
        if url is not None:
            await drop_database(request.getfixturevalue("postgres_server"), url)


async def one_job(services: Services, media_dir: Path, tmp_path: Path) -> JobState:
    request = JobRequest(
        user_id=42,
        guild_id=1,
        channel_id=7,
        video=InputSource(filename="face.mp4", path=media_dir / "face.mp4"),
        audio=InputSource(filename="voice.mp3", path=media_dir / "voice.mp3"),
    )
    record = await services.engine.submit(request, JobHooks(sink=RecordingSink(), deliverer=KeepFile(tmp_path)))
    return (await services.engine.wait(record.id)).state


async def test_a_job_costs_few_round_trips_and_reads_its_row_little(
    services: tuple[str, Services], media_dir: Path, tmp_path: Path
) -> None:
    """Submit to delivery stays under the limit; the job's row is read at most four times, once locked."""
    backend, opened = services
    assert await one_job(opened, media_dir, tmp_path) is JobState.DONE  # warm: the forecast's history, caches
    counter = TripCounter().attach(opened.store)
    assert await one_job(opened, media_dir, tmp_path) is JobState.DONE
    assert 0 < counter.foreground < LIMITS[backend], dict(counter.sites)
    row_reads = {sql: n for sql, n in counter.statements.items() if sql.startswith("SELECT * FROM jobs WHERE id =")}
    assert sum(row_reads.values()) <= 4, row_reads
    # Locked to be read only where the reservation checks the job (the ledger's code), not by its moves.
    assert sum(n for sql, n in row_reads.items() if "FOR UPDATE" in sql) <= 1, row_reads
