"""Engines of several processes on one PostgreSQL database, in one test process.

Each `Services` here is what one process would have: its own store (own connection pool and name),
engine and poller; they share a PostgreSQL database and the sandbox. Leases run on an injected
`FakeClock` where a test needs their timing; waits are on database rows, never on sleeps.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from bot.clock import FakeClock
from bot.jobs.models import JobHooks
from bot.jobs.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from bot.sandbox import Sandbox
from bot.services import Services
from bot.store import JobRecord, JobState
from tests.conftest import KeepFile, RecordingSink, make_settings
from tests.jobs.test_engine import GUILD, USER, file_request
from tests.store.pgserver import TempPostgres, create_database, drop_database

WEBHOOK_SECRET = "whsec-test"


@pytest.fixture
async def pg_url(postgres_server: TempPostgres) -> AsyncIterator[str]:
    url = await create_database(postgres_server)
    yield url
    await drop_database(postgres_server, url)


@pytest.fixture
async def processes(tmp_path: Path, sandbox: Sandbox, pg_url: str) -> AsyncIterator[Callable[..., Awaitable[Services]]]:
    """Opens one "process" (a `Services`) per call, each with its own work folder, on the shared database."""
    opened: list[Services] = []

    async def open_process(clock: FakeClock | None = None, **overrides: object) -> Services:
        name = f"p{len(opened)}"
        settings = make_settings(
            tmp_path / name, sandbox.base_url, database_url=SecretStr(pg_url), job_lease_seconds=30, **overrides
        )
        services = await Services.open(settings, clock=clock)
        opened.append(services)
        return services

    yield open_process
    for services in opened:
        await services.aclose()


async def until(check: Callable[[], Awaitable[bool]], *, seconds: float = 30.0) -> None:
    """Wait until `check()` holds (a database row, usually), re-reading every 20 ms; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "the state never came"
        await asyncio.sleep(0.02)  # re-read the database; not synchronisation by time


async def advance_until(clock: FakeClock, check: Callable[[], Awaitable[bool]], *, most: float) -> float:
    """Move fake time a second at a time until `check()` holds; return how far it moved (at most `most`).

    A loop woken by `advance` does database work on real I/O and only then sleeps again; moving
    one second at a time, and re-reading the state after each, lets every round run.
    """
    moved = 0.0
    while not await check():
        assert moved < most, "the state never came"
        await clock.advance(1)
        moved += 1
        await asyncio.sleep(0.01)  # let woken loops finish their database round trips
    return moved


async def job_state(services: Services, job_id: int) -> JobRecord:
    record = await services.store.jobs.get(job_id)
    assert record is not None
    return record


def hooks_into(keeper: KeepFile) -> Callable[[JobRecord], JobHooks]:
    return lambda record: JobHooks(sink=RecordingSink(), deliverer=keeper)


async def test_a_frozen_process_s_job_is_taken_over_when_its_lease_expires(processes, media_dir, tmp_path, sandbox):
    """A stops (no renewals, no work); B takes the job only once the lease ran out, and finishes it."""
    clock = FakeClock()
    a, b = await processes(clock), await processes(clock)
    sandbox.config.render_seconds = 600
    keep_a, keep_b = KeepFile(tmp_path / "a"), KeepFile(tmp_path / "b")
    record = await a.engine.submit(file_request(media_dir), JobHooks(sink=RecordingSink(), deliverer=keep_a))
    await until(lambda: _in(a, record.id, JobState.SUBMITTED))
    # A freezes: its job's task stops without ending the job, and A never renews its lease.
    a.engine._tasks[record.id].cancel()
    await until(lambda: _true(record.id not in a.engine._tasks))
    assert (await job_state(a, record.id)).claimed_by == a.store.owner

    assert await b.engine.start_leases(hooks_into(keep_b)) == []  # A's lease still runs
    await sandbox.clock.advance(601)  # meanwhile the render finished at Magic Hour

    async def taken_by_b() -> bool:
        return bool((await job_state(b, record.id)).claimed_by == b.store.owner)

    # Until the lease (30 s) has run out, B's rounds (every 10 s) leave the job alone; the first
    # round after it takes the job over.
    moved = await advance_until(clock, taken_by_b, most=60)
    assert 30 < moved <= 41
    await until(lambda: _in(b, record.id, JobState.DONE))
    final = await job_state(b, record.id)
    assert final.claimed_by == b.store.owner
    assert (len(keep_a.delivered), len(keep_b.delivered)) == (0, 1)
    assert final.charged_credits == sandbox.charged(str(final.project_id))
    assert sandbox.counters.jobs_created == 1
    assert await b.store.check_invariants() == []


async def test_a_process_that_missed_its_renewals_is_fenced(processes, media_dir, tmp_path, sandbox):
    """A keeps working but never renews; B takes over. Whoever gets there, the job is delivered once."""
    clock = FakeClock()
    a, b = await processes(clock), await processes(clock)
    keep_a, keep_b = KeepFile(tmp_path / "a"), KeepFile(tmp_path / "b")
    sandbox.config.render_seconds = 600
    record = await a.engine.submit(file_request(media_dir), JobHooks(sink=RecordingSink(), deliverer=keep_a))
    assert a.engine._leases._renewals is not None
    a.engine._leases._renewals.cancel()  # A stalls renewing (a starved loop, a frozen VM) but keeps working
    await until(lambda: _in(a, record.id, JobState.SUBMITTED))
    await b.engine.start_leases(hooks_into(keep_b))
    await sandbox.clock.advance(601)
    await clock.advance(41)  # A's first poll, and B's rounds past A's lease, in one sweep
    await until(lambda: _in(b, record.id, JobState.DONE))
    await until(lambda: _true(record.id not in a.engine._tasks))
    assert len(keep_a.delivered) + len(keep_b.delivered) == 1
    entries = await b.store.quota.entries(record.id)
    assert [e.kind.value for e in entries] == ["reserve", "settle"]
    assert await b.store.check_invariants() == []


async def test_a_cancel_reaches_the_process_that_runs_the_job(processes, media_dir, tmp_path, sandbox):
    """The member's Cancel lands on B; A runs the job, hears it (NOTIFY) and cancels it at Magic Hour."""
    a, b = await processes(), await processes()
    sandbox.config.render_seconds = 600
    keep = KeepFile(tmp_path / "a")
    await a.engine.start_leases(hooks_into(keep))
    await b.engine.start_leases(hooks_into(keep))
    record = await a.engine.submit(file_request(media_dir), JobHooks(sink=RecordingSink(), deliverer=keep))
    await until(lambda: _in(a, record.id, JobState.SUBMITTED))
    canceled = await b.engine.cancel(record.id, by_user_id=USER)
    assert canceled.state is JobState.CANCELED and canceled.claimed_by == a.store.owner
    assert sandbox.projects[str(canceled.project_id)].status == "canceled"
    assert (await b.store.quota.limits(GUILD, USER)).used == 0
    assert keep.delivered == []


async def test_a_cancel_for_a_dead_process_s_job_takes_it_over_at_once(processes, media_dir, tmp_path, sandbox):
    """A dies with the job claimed; a Cancel landing on B takes the job over and cancels it now, not in a minute."""
    clock = FakeClock()
    a, b = await processes(clock), await processes(clock)
    sandbox.config.render_seconds = 600
    keep = KeepFile(tmp_path / "k")
    await b.engine.start_leases(hooks_into(keep))
    record = await a.engine.submit(file_request(media_dir), JobHooks(sink=RecordingSink(), deliverer=keep))
    await until(lambda: _in(a, record.id, JobState.SUBMITTED))
    # A dies as a killed process would: its work stops, its claim stays, it hears no notices.
    await a.engine._leases.aclose()
    a.engine._tasks[record.id].cancel()
    await until(lambda: _true(record.id not in a.engine._tasks))
    await a.store.close()
    assert (await job_state(b, record.id)).claimed_by == a.store.owner
    async with asyncio.timeout(20):  # fake time stands still: only a takeover can end it
        canceled = await b.engine.cancel(record.id, by_user_id=USER)
    assert canceled.state is JobState.CANCELED and canceled.claimed_by == b.store.owner
    assert sandbox.projects[str(canceled.project_id)].status == "canceled"
    assert canceled.charged_credits == sandbox.charged(str(canceled.project_id))
    assert keep.delivered == [] and await b.store.check_invariants() == []


async def test_a_cancel_for_a_frozen_process_s_job_takes_it_over_once_its_lease_ran_out(
    processes, media_dir, tmp_path, sandbox
):
    """A is alive but frozen (no work, no renewals); once its lease ran out, a Cancel landing on B takes over."""
    clock = FakeClock()
    a, b = await processes(clock), await processes(clock)
    sandbox.config.render_seconds = 600
    keep = KeepFile(tmp_path / "k")
    await b.engine.start_leases(hooks_into(keep))
    b_takeovers = b.engine._leases._takeovers
    assert b_takeovers is not None
    b_takeovers.cancel()  # only the cancel may take the job over in this test, not B's own rounds
    record = await a.engine.submit(file_request(media_dir), JobHooks(sink=RecordingSink(), deliverer=keep))
    await until(lambda: _in(a, record.id, JobState.SUBMITTED))
    await a.engine._leases.aclose()
    a.engine._tasks[record.id].cancel()
    await until(lambda: _true(record.id not in a.engine._tasks))
    await clock.advance(31)  # A's 30 s lease runs out; A's process is still here (not dead on this host)
    async with asyncio.timeout(20):
        canceled = await b.engine.cancel(record.id, by_user_id=USER)
    assert canceled.state is JobState.CANCELED and canceled.claimed_by == b.store.owner
    assert sandbox.projects[str(canceled.project_id)].status == "canceled"
    assert keep.delivered == [] and await b.store.check_invariants() == []


async def test_a_webhook_received_by_another_process_reaches_the_job_s_owner(processes, media_dir, tmp_path, sandbox):
    """B receives `video.completed` for A's project and relays it; A polls at once instead of in 1,000 s."""
    a = await processes(poll_initial_seconds=1000, poll_max_seconds=1000)
    b = await processes(webhook_secret=SecretStr(WEBHOOK_SECRET), webhook_port=0, webhook_host="127.0.0.1")
    sandbox.config.render_seconds = 600
    keep = KeepFile(tmp_path / "a")
    record = await a.engine.submit(file_request(media_dir), JobHooks(sink=RecordingSink(), deliverer=keep))
    await until(lambda: _in(a, record.id, JobState.SUBMITTED))
    project_id = str((await job_state(a, record.id)).project_id)
    await until(lambda: _true(a.engine.poller.polls_for(project_id) == 0))  # followed; first poll in ~1,000 s
    await sandbox.clock.advance(601)
    assert b.webhooks is not None
    body = json.dumps({"type": "video.completed", "payload": {"id": project_id}}).encode()
    stamp = str(int(time.time()))
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            b.webhooks.url,
            content=body,
            headers={TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(WEBHOOK_SECRET, stamp, body)},
        )
    assert answer.status_code == 200
    await until(lambda: _in(a, record.id, JobState.DONE))
    assert len(keep.delivered) == 1


async def _in(services: Services, job_id: int, state: JobState) -> bool:
    return (await job_state(services, job_id)).state is state


async def _true(value: bool) -> bool:
    return value
