"""Engines of several processes on one database, in one test process: heartbeats, takeovers, queues, cancels.

Each `Services` here is what one process would have: its own store (own connections and random
instance id), engine and poller; they share a database (PostgreSQL, or one SQLite file where a
test says so) and the sandbox. Inputs are links on a local stand-in for Discord's CDN, as a
member's attachments are. Heartbeats run on an injected `FakeClock` where a test needs their
timing; waits are on database rows, never on sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from bot.clock import FakeClock
from bot.jobs.leases import Liveness
from bot.jobs.models import JobHooks
from bot.jobs.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from bot.sandbox import Sandbox
from bot.services import Services
from bot.store import JobRecord, JobState
from tests.conftest import LOOPBACK, KeepFile, RecordingSink, make_settings, url_request
from tests.store.pgserver import create_database, drop_database

WEBHOOK_SECRET = "whsec-test"
USER = 42
LEASE = 6.0  # the default: a heartbeat every 1.2 s


@pytest.fixture
def backend() -> str:
    """The shared database: PostgreSQL unless a test parametrizes `backend`."""
    return "postgresql"


@pytest.fixture
async def shared_database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[str | Path]:
    if backend == "sqlite":
        yield tmp_path / "shared.sqlite3"
        return
    server = request.getfixturevalue("postgres_server")
    url = await create_database(server)
    yield url
    await drop_database(server, url)


@pytest.fixture
async def processes(
    tmp_path: Path, sandbox: Sandbox, shared_database: str | Path
) -> AsyncIterator[Callable[..., Awaitable[Services]]]:
    """Opens one "process" (a `Services`) per call, each with its own work folder, on the shared database."""
    opened: list[Services] = []

    async def open_process(clock: FakeClock | None = None, **overrides: object) -> Services:
        name = f"p{len(opened)}"
        where: dict[str, object] = (
            {"database_path": shared_database}
            if isinstance(shared_database, Path)
            else {"database_url": SecretStr(shared_database)}
        )
        values: dict[str, object] = {"job_lease_seconds": LEASE, "instance_name": name, **where, **overrides}
        settings = make_settings(tmp_path / name, sandbox.base_url, **values)
        services = await Services.open(settings, clock=clock, fetch_policy=LOOPBACK)
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
    """Move fake time half a second at a time until `check()` holds; return how far it moved (at most `most`).

    A loop woken by `advance` does database work on real I/O and only then sleeps again; moving
    in small steps, and re-reading the state after each, lets every round run.
    """
    moved = 0.0
    while not await check():
        assert moved < most, "the state never came"
        asleep = clock.sleepers
        await clock.advance(0.5)
        moved += 0.5
        await _settled(clock, asleep)
    return moved


async def _settled(clock: FakeClock, asleep: int) -> None:
    """Wait until the loops a step woke are asleep again (their database round trips done), at most 5 s.

    On a loaded machine a heartbeat's write can take longer than any fixed pause: moving fake time
    on meanwhile would show the heartbeat a gap it never had.
    """
    deadline = time.monotonic() + 5.0
    await asyncio.sleep(0.02)
    while clock.sleepers < asleep and time.monotonic() < deadline:
        await asyncio.sleep(0.01)  # re-read the clock's sleepers; not synchronisation by time


async def job_state(services: Services, job_id: int) -> JobRecord:
    record = await services.store.jobs.get(job_id)
    assert record is not None
    return record


def hooks_into(keeper: KeepFile) -> Callable[[JobRecord], JobHooks]:
    return lambda record: JobHooks(sink=RecordingSink(), deliverer=keeper)


async def stop_heartbeat(services: Services) -> None:
    """The process stops beating (frozen, or cut off); its row and claims stay as they were."""
    leases = services.engine._leases
    for task in (leases._heartbeat, leases._takeovers):
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    leases._heartbeat = leases._takeovers = None


async def kill(services: Services) -> None:
    """What SIGKILL leaves: no heartbeat, no work, no notices; its row and claims stay."""
    await stop_heartbeat(services)
    for task in list(services.engine._tasks.values()):
        task.cancel()
    await until(lambda: _true(not services.engine._tasks))
    await services.store.close()


def test_liveness_needs_the_counter_to_stand_still_for_the_lease_while_this_process_beats():
    """Dead once the counter stood still for `dead_after` seconds of this process's heartbeats; any change resets."""
    liveness = Liveness(6.0)
    assert liveness.observe({"x": 1}, 0.0) == {}
    assert liveness.observe({"x": 1}, 1.2) == {}
    assert liveness.observe({"x": 2}, 2.4) == {}  # it beat: alive, watched afresh from 2.4 s
    assert liveness.moved("x")
    for at in (3.6, 4.8, 6.0, 7.2):
        assert liveness.observe({"x": 2}, at) == {}
    assert liveness.observe({"x": 2}, 8.4) == {"x": 2}  # 6 s still
    assert liveness.observe({}, 9.6) == {}  # its row went: forgotten here too
    assert not liveness.moved("x")


def test_an_outage_makes_nobody_dead():
    """During a database outage nobody beats, this process included; after it, the outage's time counts for nothing,
    even against a process that reaches the database again a few seconds after this one."""
    liveness = Liveness(6.0)
    assert liveness.observe({"x": 7, "y": 3}, 0.0) == {}
    assert liveness.observe({"x": 8, "y": 4}, 1.2) == {}
    # 20 s without a successful heartbeat of ours: `observe` is not called. Then we beat again, before y.
    assert liveness.observe({"x": 9, "y": 4}, 21.2) == {}
    assert liveness.observe({"x": 10, "y": 4}, 22.4) == {}
    assert liveness.observe({"x": 11, "y": 4}, 23.6) == {}  # 3 rounds, but y stood still only 2.4 s of ours
    assert liveness.observe({"x": 12, "y": 5}, 24.8) == {}  # y is back
    # A process that really stopped is still found: 6 s of our heartbeats later.
    for at in (26.0, 27.2, 28.4, 29.6):
        assert liveness.observe({"x": int(at * 10), "y": 5}, at) == {}
    assert liveness.observe({"x": 310, "y": 5}, 31.0) == {"y": 5}


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
async def test_a_dead_process_s_job_is_taken_over_once_its_heartbeat_stood_still(
    processes, media_url, tmp_path, sandbox, backend
):
    """A dies mid-render; B takes the job only once A's counter stood still for the lease, and finishes it."""
    clock = FakeClock()
    a, b = await processes(clock), await processes(clock)
    sandbox.config.render_seconds = 600
    keep_a, keep_b = KeepFile(tmp_path / "a"), KeepFile(tmp_path / "b")
    record = await a.engine.submit(
        url_request(media_url, user_id=USER), JobHooks(sink=RecordingSink(), deliverer=keep_a)
    )
    await until(lambda: _in(a, record.id, JobState.SUBMITTED))
    await kill(a)
    assert (await job_state(b, record.id)).claimed_by == a.store.owner

    assert await b.engine.start_leases(hooks_into(keep_b)) == []  # A is still registered: its claim holds
    await sandbox.clock.advance(601)  # meanwhile the render finished at Magic Hour

    async def taken_by_b() -> bool:
        return bool((await job_state(b, record.id)).claimed_by == b.store.owner)

    # B beats every 1.2 s; A is dead once its counter stood still for 6 s over 3 of B's beats.
    moved = await advance_until(clock, taken_by_b, most=30)
    assert LEASE <= moved <= LEASE + 3 * LEASE / 5
    await until(lambda: _in(b, record.id, JobState.DONE))
    final = await job_state(b, record.id)
    assert (len(keep_a.delivered), len(keep_b.delivered)) == (0, 1)
    assert final.charged_credits == sandbox.charged(str(final.project_id))
    assert sandbox.counters.jobs_created == 1
    assert [i.id for i in await b.store.instances.all()] == [b.store.owner]  # A's row is gone
    assert await b.store.check_invariants() == []


async def test_a_process_that_stopped_beating_but_kept_working_is_fenced_and_lets_go_when_it_wakes(
    processes, media_url, tmp_path, sandbox
):
    """A's heartbeat stalls (a starved loop) but its job goes on; B takes over; A, beating again, lets go."""
    clock = FakeClock()
    a, b = await processes(clock), await processes(clock)
    keep_a, keep_b = KeepFile(tmp_path / "a"), KeepFile(tmp_path / "b")
    sandbox.config.render_seconds = 600
    record = await a.engine.submit(
        url_request(media_url, user_id=USER), JobHooks(sink=RecordingSink(), deliverer=keep_a)
    )
    await until(lambda: _in(a, record.id, JobState.SUBMITTED))
    await stop_heartbeat(a)
    await b.engine.start_leases(hooks_into(keep_b))

    async def taken_by_b() -> bool:
        return bool((await job_state(b, record.id)).claimed_by == b.store.owner)

    await advance_until(clock, taken_by_b, most=30)
    assert record.id in a.engine._tasks  # A doesn't know yet
    await a.engine.heartbeat()  # A wakes: its first heartbeat re-registers it and finds the job gone
    await until(lambda: _true(record.id not in a.engine._tasks))
    await sandbox.clock.advance(601)
    await advance_until(clock, lambda: _in(b, record.id, JobState.DONE), most=60)
    assert len(keep_a.delivered) + len(keep_b.delivered) == 1
    entries = await b.store.quota.entries(record.id)
    assert [e.kind.value for e in entries] == ["reserve", "settle"]
    assert {i.id for i in await b.store.instances.all()} == {a.store.owner, b.store.owner}
    assert await b.store.check_invariants() == []


async def test_a_process_found_dead_while_downloading_a_result_never_posts_it(processes, media_url, tmp_path, sandbox):
    """A is downloading a rendered result when B finds it dead (before B takes the job): A posts nothing, B once."""
    clock = FakeClock()
    a, b = await processes(clock), await processes(clock)
    keep_a, keep_b = KeepFile(tmp_path / "a"), KeepFile(tmp_path / "b")
    sandbox.faults.hang("download")
    record = await a.engine.submit(
        url_request(media_url, user_id=USER), JobHooks(sink=RecordingSink(), deliverer=keep_a)
    )

    async def download_held() -> bool:
        return bool(sandbox.counters.held == 1)

    await advance_until(clock, download_held, most=60)
    assert (await job_state(a, record.id)).state is JobState.DOWNLOADING
    await stop_heartbeat(a)
    await b.engine.heartbeat()  # B beats (no takeovers yet) and judges A

    async def a_found_dead() -> bool:
        return not await b.store.instances.registered(a.store.owner)

    await advance_until(clock, a_found_dead, most=30)
    assert (await job_state(b, record.id)).claimed_by == a.store.owner  # nobody has taken it yet
    sandbox.faults.release()  # A's download finishes: it must not post what B may post too
    await until(lambda: _true(record.id not in a.engine._tasks))
    assert keep_a.delivered == []
    await b.engine.start_leases(hooks_into(keep_b))
    await advance_until(clock, lambda: _in(b, record.id, JobState.DONE), most=60)
    assert keep_a.delivered == [] and len(keep_b.delivered) == 1
    entries = await b.store.quota.entries(record.id)
    assert [e.kind.value for e in entries] == ["reserve", "settle"]
    assert await b.store.check_invariants() == []


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
async def test_a_cancel_reaches_the_process_that_runs_the_job(processes, media_url, tmp_path, sandbox, backend):
    """The member's Cancel lands on B; A runs the job, hears of it (NOTIFY, or its next heartbeat) and cancels it."""
    a, b = await processes(job_lease_seconds=3), await processes(job_lease_seconds=3)
    sandbox.config.render_seconds = 600
    keep = KeepFile(tmp_path / "a")
    await a.engine.start_leases(hooks_into(keep))
    await b.engine.start_leases(hooks_into(keep))
    record = await a.engine.submit(url_request(media_url, user_id=USER), JobHooks(sink=RecordingSink(), deliverer=keep))
    await until(lambda: _in(a, record.id, JobState.SUBMITTED))
    canceled = await b.engine.cancel(record.id, by_user_id=USER)
    assert canceled.state is JobState.CANCELED and canceled.claimed_by == a.store.owner
    assert canceled.cancel_requested_by == USER
    assert sandbox.projects[str(canceled.project_id)].status == "canceled"
    assert (await b.store.quota.limits(1, USER)).used == 0
    assert keep.delivered == []


async def test_a_cancel_passed_to_another_process_answers_within_a_minute_when_the_stop_is_unconfirmed(
    processes, media_url, tmp_path, sandbox
):
    """A's DELETE fails, so Magic Hour hasn't confirmed the stop: B's Cancel answers after its minute
    with the job still being stopped (not "not running"), and the render, finished anyway, is delivered."""
    clock = FakeClock()
    a, b = await processes(clock), await processes(clock)
    sandbox.config.render_seconds = 600
    keep = KeepFile(tmp_path / "k")
    await a.engine.start_leases(hooks_into(keep))
    await b.engine.start_leases(hooks_into(keep))
    record = await a.engine.submit(url_request(media_url, user_id=USER), JobHooks(sink=RecordingSink(), deliverer=keep))
    await advance_until(clock, lambda: _in(a, record.id, JobState.SUBMITTED), most=30)
    sandbox.faults.fail("delete_project", 500, times=10_000)
    cancel = asyncio.create_task(b.engine.cancel(record.id, by_user_id=USER))
    moved = await advance_until(clock, lambda: _true(cancel.done()), most=90)
    assert moved <= 63  # its minute, give or take the half-second steps of fake time
    answer = cancel.result()
    assert not answer.state.terminal and answer.claimed_by == a.store.owner
    assert record.id in a.engine._tasks  # A goes on following it
    sandbox.faults.clear()
    await sandbox.clock.advance(601)
    await advance_until(clock, lambda: _in(a, record.id, JobState.DONE), most=180)
    done = await job_state(a, record.id)
    assert done.charged_credits == sandbox.charged(str(done.project_id)) and len(keep.delivered) == 1
    assert await a.store.check_invariants() == []


async def test_a_cancel_for_a_dead_process_s_job_takes_it_over_as_soon_as_it_is_found_dead(
    processes, media_url, tmp_path, sandbox
):
    """A dies with the job claimed; a Cancel landing on B waits for A to be found dead, then cancels it in B."""
    clock = FakeClock()
    a, b = await processes(clock), await processes(clock)
    sandbox.config.render_seconds = 600
    keep = KeepFile(tmp_path / "k")
    await b.engine.start_leases(hooks_into(keep))
    record = await a.engine.submit(url_request(media_url, user_id=USER), JobHooks(sink=RecordingSink(), deliverer=keep))
    await until(lambda: _in(a, record.id, JobState.SUBMITTED))
    await kill(a)
    cancel = asyncio.create_task(b.engine.cancel(record.id, by_user_id=USER))
    moved = await advance_until(clock, lambda: _true(cancel.done()), most=30)
    assert moved <= LEASE + 3 * LEASE / 5  # as soon as B finds A dead, not after the cancel's minute
    canceled = cancel.result()
    assert canceled.state is JobState.CANCELED and canceled.claimed_by == b.store.owner
    assert sandbox.projects[str(canceled.project_id)].status == "canceled"
    assert canceled.charged_credits == sandbox.charged(str(canceled.project_id))
    assert keep.delivered == [] and await b.store.check_invariants() == []


async def test_queued_jobs_run_in_whichever_process_has_a_free_slot(processes, media_url, tmp_path, sandbox):
    """A has one slot and three jobs; idle B takes the ones waiting in A's queue. Each is delivered once."""
    a = await processes(max_jobs_in_flight=1)
    b = await processes(max_jobs_in_flight=1)
    sandbox.config.render_seconds = 600
    keep = KeepFile(tmp_path / "k")
    await b.engine.start_leases(hooks_into(keep))
    records = [
        await a.engine.submit(url_request(media_url, user_id=u), JobHooks(sink=RecordingSink(), deliverer=keep))
        for u in (1, 2, 3)
    ]
    first, second, third = (r.id for r in records)
    assert [r.claimed_by for r in records] == [a.store.owner, None, None]  # queued jobs wait unclaimed
    await until(lambda: _in(a, first, JobState.SUBMITTED))
    await until(lambda: _in(b, second, JobState.SUBMITTED))  # B had a free slot: it took the oldest waiting
    assert (await job_state(b, second)).claimed_by == b.store.owner
    await until(lambda: _true(second not in a.engine._tasks))  # A lets it go from its queue at its next heartbeat
    assert (await job_state(a, third)).state is JobState.RECEIVED  # no free slot anywhere yet
    await sandbox.clock.advance(601)
    sandbox.config.render_seconds = 0  # the third job, started in the first slot freed, renders at once

    async def all_done() -> bool:
        return [(await job_state(a, j)).state for j in (first, second, third)] == [JobState.DONE] * 3

    await until(all_done)
    assert len(keep.delivered) == 3 and sandbox.counters.jobs_created == 3
    assert await a.store.check_invariants() == []


async def test_a_dead_process_s_queued_jobs_run_elsewhere(processes, media_url, tmp_path, sandbox):
    """A dies with one job rendering and two queued: B runs all three (none ends interrupted)."""
    clock = FakeClock()
    a = await processes(clock, max_jobs_in_flight=1)
    b = await processes(clock)
    sandbox.config.render_seconds = 600
    keep = KeepFile(tmp_path / "k")
    records = [
        await a.engine.submit(url_request(media_url, user_id=u), JobHooks(sink=RecordingSink(), deliverer=keep))
        for u in (1, 2, 3)
    ]
    await until(lambda: _in(a, records[0].id, JobState.SUBMITTED))
    await kill(a)
    await sandbox.clock.advance(601)  # A's render is complete; the others render at once
    sandbox.config.render_seconds = 0
    await b.engine.start_leases(hooks_into(keep))  # the two queued jobs at once; A's running one once A is dead

    async def all_done() -> bool:
        return [(await job_state(b, r.id)).state for r in records] == [JobState.DONE] * 3

    await advance_until(clock, all_done, most=60)
    assert len(keep.delivered) == 3 and sandbox.counters.jobs_created == 3
    assert [(await job_state(b, r.id)).claimed_by for r in records] == [b.store.owner] * 3
    assert await b.store.check_invariants() == []


async def test_a_clean_stop_keeps_a_job_whose_create_is_in_flight(processes, media_url, tmp_path, sandbox):
    """A stops while its create waits for Magic Hour's answer: it keeps beating (B can't take the job)
    until the answer is recorded, then hands the submitted job over; B delivers it. Nothing is unknown."""
    clock = FakeClock()
    a, b = await processes(clock, stop_grace_seconds=20), await processes(clock)
    keep = KeepFile(tmp_path / "k")
    await b.engine.start_leases(hooks_into(keep))
    sandbox.faults.hang("create")  # Magic Hour makes the project but holds its answer
    record = await a.engine.submit(url_request(media_url, user_id=USER), JobHooks(sink=RecordingSink(), deliverer=keep))
    await until(lambda: _true(sandbox.counters.jobs_created == 1))
    stopping = asyncio.create_task(a.engine.aclose())
    stop_began = clock.monotonic()
    await advance_until(clock, lambda: _true(clock.monotonic() - stop_began >= 3 * LEASE), most=60)
    current = await job_state(b, record.id)
    assert (current.state, current.claimed_by) == (JobState.CREATING, a.store.owner)  # still A's, 18 s later
    sandbox.faults.release()
    await until(lambda: _true(stopping.done()))
    await advance_until(clock, lambda: _in(b, record.id, JobState.DONE), most=60)
    final = await job_state(b, record.id)
    assert final.claimed_by == b.store.owner and final.error_code is None
    assert len(keep.delivered) == 1 and sandbox.counters.jobs_created == 1
    assert final.charged_credits == sandbox.charged(str(final.project_id))
    assert await b.store.check_invariants() == []


async def test_a_webhook_received_by_another_process_reaches_the_job_s_owner(processes, media_url, tmp_path, sandbox):
    """B receives `video.completed` for A's project and relays it; A polls at once instead of in 1,000 s."""
    a = await processes(poll_initial_seconds=1000, poll_max_seconds=1000)
    b = await processes(webhook_secret=SecretStr(WEBHOOK_SECRET), webhook_port=0, webhook_host="127.0.0.1")
    sandbox.config.render_seconds = 600
    keep = KeepFile(tmp_path / "a")
    record = await a.engine.submit(url_request(media_url, user_id=USER), JobHooks(sink=RecordingSink(), deliverer=keep))
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
