"""Three engine processes on one PostgreSQL through everything an operator meets: restarts, a kill, an
outage, a pause past the lease, a clean stop. Every job is done exactly once.

The processes (`engine_worker.py`) share a PostgreSQL server of this test's own (so it can restart
and stop it) and the sandbox; each has 3 slots and submits 8 jobs whose files are links on a local
stand-in for Discord's CDN, so most jobs wait in a queue, unclaimed, for whichever process has a
free slot. Renders wait on the sandbox's clock, so every fault lands while the processes' slots
hold rendering jobs and nothing is being created or posted (a kill during a create is honestly
"unknown", and a result posted but not recorded may be posted again: neither is what this test
is about). In order:

1. PostgreSQL is restarted twice while the jobs are fetched, uploaded and created.
2. A is killed (SIGKILL); A2 starts in its place. A's queued jobs run at once where there is a
   slot; A's rendering jobs are taken over once A's heartbeat is found stopped (the takeover
   time is checked against the lease).
3. PostgreSQL is stopped for longer than the lease, then started: nobody is taken for dead, no
   job changes hands.
4. B is paused (SIGSTOP) past the lease: C and A2 take its jobs; resumed (SIGCONT), B lets them
   go and carries on with new ones.
5. C is stopped cleanly (SIGTERM) while its jobs render: it exits 0 and its jobs are taken at once.
6. Every render completes. Each job is done, delivered once, created at Magic Hour once, charged
   what the sandbox charged; nothing is unknown; the store's invariants hold; every process left
   stops on SIGTERM with exit code 0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from bot.clock import FakeClock, SystemClock
from bot.sandbox import Sandbox
from bot.store import JobRecord, JobState, LedgerKind, QuotaPolicy, Store
from bot.store.db import patient
from tests.conftest import SANDBOX_KEY
from tests.store.pgserver import TempPostgres, create_database, running_postgres

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PER_PROCESS = 8
SLOTS = 3
LEASE = 4.0  # seconds; a heartbeat every 0.8 s


@pytest.fixture
def own_server() -> Iterator[TempPostgres]:
    """A PostgreSQL server this test may restart and stop (the session's is shared with other tests)."""
    with running_postgres() as server:
        yield server


class Processes:
    """The engine processes of the test, their logs and the folder they deliver into."""

    def __init__(self, tmp: Path, env: dict[str, str], media_url: str) -> None:
        self.tmp = tmp
        self.env = env
        self.media_url = media_url
        self.deliveries = tmp / "deliveries"
        self.deliveries.mkdir()
        self.running: dict[str, asyncio.subprocess.Process] = {}
        self._users = 1000

    async def start(self, name: str, jobs: int) -> asyncio.subprocess.Process:
        first_user, self._users = self._users, self._users + 1000
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.jobs.engine_worker",
            str(first_user),
            str(jobs),
            f"{self.media_url}/face.mp4",
            f"{self.media_url}/voice.mp3",
            str(self.deliveries),
            "-1",
            cwd=ROOT,
            env={**self.env, "WORK_DIR": str(self.tmp / f"work-{name}"), "INSTANCE_NAME": name},
            stdout=asyncio.subprocess.PIPE,
            stderr=open(self.tmp / f"{name}.log", "wb"),  # noqa: SIM115 - the process owns it
        )
        self.running[name] = proc
        return proc

    async def submitted(self, name: str) -> None:
        stdout = self.running[name].stdout
        assert stdout is not None
        line = await asyncio.wait_for(stdout.readline(), 120)
        assert line.strip() == b"SUBMITTED", self.logs()

    async def stop(self, name: str, *, within: float = 30.0) -> int:
        """SIGTERM, and the exit code (failing if it takes longer than `within`)."""
        proc = self.running.pop(name)
        proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(proc.wait(), within)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise AssertionError(f"{name} did not stop on SIGTERM within {within} s\n{self.logs()}") from None

    def logs(self) -> str:
        return "\n".join(f"--- {f.name}\n{f.read_text()[-3000:]}" for f in sorted(self.tmp.glob("*.log")))

    def delivered(self) -> Counter[int]:
        return Counter(int(f.name.split(".")[0]) for f in self.deliveries.iterdir())

    async def kill_all(self) -> None:
        for proc in self.running.values():
            if proc.returncode is None:
                with_signal(proc, signal.SIGCONT)
                proc.kill()
                await proc.wait()


def with_signal(proc: asyncio.subprocess.Process, sig: int) -> None:
    if proc.returncode is None:
        proc.send_signal(sig)


@pytest.fixture
async def processes(
    tmp_path: Path, sandbox: Sandbox, media_url: str, own_server: TempPostgres
) -> AsyncIterator[Processes]:
    url = await create_database(own_server)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "MAGIC_HOUR_API_KEY": SANDBOX_KEY,
        "MAGIC_HOUR_BASE_URL": sandbox.base_url,
        "POLL_INITIAL_SECONDS": "0.5",
        "POLL_MAX_SECONDS": "1",
        "DEFAULT_MEMBER_CREDITS": "10000",
        "MAX_JOBS_IN_FLIGHT": str(SLOTS),
        "JOB_LEASE_SECONDS": str(LEASE),
        "STOP_GRACE_SECONDS": "10",
        "DELIVERY_RETRY_MINUTES": "5",
    }
    running = Processes(tmp_path, env, media_url)
    try:
        yield running
    finally:
        await running.kill_all()


async def until(check: Callable[[], Awaitable[bool]], *, seconds: float, what: str) -> float:
    """Re-read the database (or the deliveries) every 100 ms until `check()`; the seconds it took."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < seconds, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)  # re-reading observable state, not synchronising by time
    return time.monotonic() - started


async def test_three_processes_through_restarts_a_kill_an_outage_a_pause_and_a_stop(
    processes: Processes, sandbox: Sandbox, own_server: TempPostgres
):
    """Every job done exactly once, delivered once, charged as Magic Hour charged; every process stops on SIGTERM."""
    sandbox.config.render_seconds = 3600
    assert isinstance(sandbox.clock, FakeClock)
    total = 3 * PER_PROCESS
    store = await Store.open(processes.env["DATABASE_URL"], clock=SystemClock(), policy=QuotaPolicy())
    try:
        with patient(30):  # this test's own reads ride out the restarts and the outage too
            await _run_scenario(processes, sandbox, own_server, store, total)
    finally:
        await store.close()


async def _run_scenario(processes: Processes, sandbox: Sandbox, server: TempPostgres, store: Store, total: int) -> None:
    async def jobs() -> list[JobRecord]:
        return sorted(await store.jobs.for_guild(1, limit=1000), key=lambda job: job.id)

    def owner_of(proc_name: str, records: list[JobRecord], instances: dict[str, str]) -> list[JobRecord]:
        return [j for j in records if instances.get(str(j.claimed_by)) == proc_name]

    async def names() -> dict[str, str]:
        return {i.id: i.name for i in await store.instances.all()}

    async def slots_full() -> bool:
        # Each process's 3 slots hold a rendering job, the rest wait in a queue: renders wait on the
        # sandbox's clock, so nothing is created or posted until the test lets them complete.
        records = await jobs()
        states = Counter(j.state for j in records)
        return (
            len(records) == total
            and states[JobState.RENDERING] == 3 * SLOTS
            and states[JobState.RECEIVED] == (total - 3 * SLOTS)
        )

    async def settled(name: str) -> bool:
        # No job is between the queue and rendering, and the named process has filled its slots.
        records = await jobs()
        moving = [j for j in records if j.state not in (JobState.RECEIVED, JobState.RENDERING)]
        held = [j for j in owner_of(name, records, await names()) if j.state is JobState.RENDERING]
        return not moving and len(held) >= SLOTS

    # 1. Three processes submit their jobs while PostgreSQL restarts under them, twice.
    for name in ("a", "b", "c"):
        await processes.start(name, PER_PROCESS)
    for name in ("a", "b", "c"):
        await processes.submitted(name)
    await asyncio.to_thread(server.restart)
    await asyncio.to_thread(server.restart)
    await until(slots_full, seconds=90, what="every slot rendering after the restarts")

    # 2. A is killed; A2 starts in its place. A's rendering jobs go once A is found dead.
    instances = await names()
    a_jobs = {j.id for j in owner_of("a", await jobs(), instances)}
    assert len(a_jobs) == SLOTS
    processes.running.pop("a").kill()
    killed_at = time.monotonic()
    await processes.start("a2", 0)
    await processes.submitted("a2")

    async def a_jobs_taken() -> bool:
        return all(j.claimed_by not in (None, *_ids(instances, "a")) for j in await jobs() if j.id in a_jobs)

    await until(a_jobs_taken, seconds=30, what="A's jobs taken over")
    takeover = time.monotonic() - killed_at
    assert takeover < LEASE + 3 * LEASE / 5 + 3, takeover  # the lease, a few heartbeats, and some slack
    await until(lambda: settled("a2"), seconds=60, what="A2 rendering in every slot")

    # 3. PostgreSQL stops for twice the lease: nobody is taken for dead, no claimed job changes hands.
    before = {j.id: j.claimed_by for j in await jobs() if j.claimed_by is not None}
    await asyncio.to_thread(server.stop_server)
    await asyncio.sleep(2 * LEASE)  # the outage itself: its length is the point, nothing waits on it
    await asyncio.to_thread(server.start_server)
    await asyncio.sleep(2 * LEASE)  # long enough for a wrong verdict to show; again not a synchronisation
    assert {j.id: j.claimed_by for j in await jobs() if j.id in before} == before
    assert set((await names()).values()) == {"a2", "b", "c"}

    # 4. B is paused past the lease: its jobs are taken; resumed, it lets them go.
    instances = await names()
    b_proc = processes.running["b"]
    b_jobs = {j.id for j in owner_of("b", await jobs(), instances)}
    with_signal(b_proc, signal.SIGSTOP)

    async def b_jobs_taken() -> bool:
        return all(j.claimed_by not in _ids(instances, "b") for j in await jobs() if j.id in b_jobs)

    await until(b_jobs_taken, seconds=30, what="B's jobs taken over while it is paused")
    with_signal(b_proc, signal.SIGCONT)

    async def b_back() -> bool:
        return "b" in (await names()).values()

    await until(b_back, seconds=30, what="B beating again")

    # 5. C stops cleanly while its jobs render: it exits 0 and hands them over at once.
    instances = await names()
    c_jobs = {j.id for j in owner_of("c", await jobs(), instances)}
    assert await processes.stop("c") == 0

    async def c_jobs_taken() -> bool:
        return all(j.claimed_by not in _ids(instances, "c") for j in await jobs() if j.id in c_jobs)

    await until(c_jobs_taken, seconds=LEASE, what="C's jobs taken at once after its clean stop")

    # 6. Every render completes; every job is done exactly once.
    sandbox.config.render_seconds = 0
    assert isinstance(sandbox.clock, FakeClock)
    await sandbox.clock.advance(3601)

    async def all_done() -> bool:
        return done_count(await jobs()) == total

    await until(all_done, seconds=120, what="every job done")
    records = await jobs()
    assert [j.state for j in records] == [JobState.DONE] * total, processes.logs()
    delivered = processes.delivered()
    assert sorted(delivered) == [j.id for j in records] and set(delivered.values()) == {1}, delivered
    assert sandbox.counters.jobs_created == total
    for job in records:
        assert job.error_code is None and job.project_id is not None
        settles = [e for e in await store.quota.entries(job.id) if e.kind is LedgerKind.SETTLE]
        assert len(settles) == 1 and settles[0].charged == sandbox.charged(job.project_id)
    assert sum(j.charged_credits or 0 for j in records) == sandbox.charged_total
    assert await store.check_invariants() == []
    for name in list(processes.running):
        assert await processes.stop(name) == 0, processes.logs()
    assert await store.instances.all() == []  # each unregistered on its way out


def done_count(records: list[JobRecord]) -> int:
    return sum(j.state is JobState.DONE for j in records)


def _ids(instances: dict[str, str], name: str) -> set[str]:
    return {instance_id for instance_id, instance_name in instances.items() if instance_name == name}
