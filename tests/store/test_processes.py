"""Several processes on one database: reservations from four real processes never overspend.

1,000 reservations of 7 credits, fired at once from 4 processes (250 each), for 20 members in two
servers. Every limit binds somewhere: each member may have 300 (42 reservations), server G1 has a
pool of 2,100 (300 reservations), and the bot budget is 4,000 (571 reservations). Without the
budget the members could take 300 (G1) + 420 (G2) = 720 reservations, so the budget must end
exactly full: 571 granted, 3,997 credits, whatever the interleaving. Runs on both backends:
SQLite orders the processes with `BEGIN IMMEDIATE`, PostgreSQL with its locks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from collections import Counter
from pathlib import Path

from bot.clock import SystemClock
from bot.store import LedgerKind, QuotaPolicy, Store

from .conftest import Target, new_job

ROOT = Path(__file__).resolve().parents[2]
G1, G2 = 1111, 2222
AMOUNT = 7
POLICY = QuotaPolicy(default_member_credits=300, bot_budget_credits=4000, max_active_jobs_per_member=10_000)
PROCESSES = 4
PER_MEMBER = 50
MEMBERS = [(guild, user) for guild in (G1, G2) for user in range(1, 11)]


async def _worker(target: Target, jobs: list[list[object]]) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.store.reserve_worker",
        str(target),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    policy = {f.name: getattr(POLICY, f.name) for f in dataclasses.fields(POLICY) if f.name != "reset_time"}
    proc.stdin.write((json.dumps({"jobs": jobs, "policy": policy}) + "\n").encode())
    await proc.stdin.drain()
    line = await proc.stdout.readline()
    if line.strip() != b"READY":
        raise AssertionError(f"worker did not start: {line!r} {(await proc.stderr.read()).decode()}")  # type: ignore[union-attr]
    return proc


async def test_1000_reservations_from_4_processes_never_overspend(database: Target):
    """Every limit holds, the budget ends exactly full, and the ledger agrees with what was granted."""
    async with await Store.open(database, clock=SystemClock(), policy=POLICY) as store:
        await store.limits.set_server_pool(G1, 2100)
        jobs: list[list[object]] = []
        for _ in range(PER_MEMBER):
            for guild, user in MEMBERS:
                job = await new_job(store, user_id=user, guild_id=guild)
                jobs.append([job.id, guild, user, AMOUNT])
        procs = [await _worker(database, jobs[i::PROCESSES]) for i in range(PROCESSES)]
        for proc in procs:  # every process is ready and waiting: now they all start at once
            assert proc.stdin is not None
            proc.stdin.write(b"GO\n")
            await proc.stdin.drain()
        outcomes: list[list[object]] = []
        async with asyncio.timeout(120):  # a guard against a hung worker, not a synchronisation
            for proc in procs:
                out, err = await proc.communicate()
                assert proc.returncode == 0, err.decode()
                outcomes.extend(json.loads(out))

        assert len(outcomes) == len(jobs) == 1000
        granted = {int(job_id) for job_id, verdict, _ in outcomes if verdict == "granted"}  # type: ignore[call-overload]
        assert len(granted) == 4000 // AMOUNT == 571
        by_job = {int(j[0]): (j[1], j[2]) for j in jobs}  # type: ignore[call-overload]
        per_member = Counter(by_job[j] for j in granted)
        per_guild = Counter(guild for guild, _ in (by_job[j] for j in granted))
        assert max(per_member.values()) <= 300 // AMOUNT
        assert per_guild[G1] <= 2100 // AMOUNT
        refused = Counter(verdict for _, kind, verdict in outcomes if kind == "refused")
        assert set(refused) <= {"global_default", "server_pool", "bot_budget"}

        # The ledger says the same, from any process's point of view.
        for guild, user in MEMBERS:
            limits = await store.quota.limits(guild, user)
            assert limits.used == AMOUNT * per_member[(guild, user)] <= 300
            assert limits.budget_available == 4000 - AMOUNT * 571 == 3
        entries = [e for j in granted for e in await store.quota.entries(j)]
        assert sorted(e.job_id or 0 for e in entries if e.kind is LedgerKind.RESERVE) == sorted(granted)
        assert await store.check_invariants() == []
