"""A process killed with SIGKILL in the middle of a burst of writes leaves a sound database."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
from pathlib import Path

from bot.store import JobState, QuotaPolicy, Store

from .conftest import Target

ROOT = Path(__file__).resolve().parents[2]
KILL_AFTER = 400  # committed writes reported before the kill


async def _run_and_kill(database: Target) -> dict[int, str]:
    """Start the worker, read its reports until enough writes are done, SIGKILL it."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.store.crash_worker",
        str(database),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    last_state: dict[int, str] = {}
    try:
        async with asyncio.timeout(20):  # a guard against a broken worker, not a synchronisation
            while True:
                line = await proc.stdout.readline()
                if not line:
                    raise AssertionError(f"worker exited early: {(await proc.stderr.read()).decode()}")
                count, job_id, what = line.decode().split()
                last_state[int(job_id)] = what
                if int(count) >= KILL_AFTER:
                    break
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return last_state


def _raw_integrity(db_path: Path) -> list[str]:
    conn = sqlite3.connect(db_path)
    try:
        return [row[0] for row in conn.execute("PRAGMA integrity_check")]
    finally:
        conn.close()


async def test_sigkill_mid_burst_leaves_every_invariant_intact(database: Target):
    """Two kill-and-reopen rounds; every reported write survives and every invariant holds."""
    policy = QuotaPolicy()
    reported: dict[int, str] = {}
    for _ in range(2):
        reported.update(await _run_and_kill(database))
        if isinstance(database, Path):
            # The kill came mid-burst: the write-ahead log was still in use.
            assert Path(f"{database}-wal").exists()
            assert _raw_integrity(database) == ["ok"]
        async with await Store.open(database, policy=policy) as store:
            assert await store.check_invariants() == []
            for job_id, what in reported.items():
                job = await store.jobs.get(job_id)
                assert job is not None, f"job {job_id} was reported but is gone"
                states = {e.state.value for e in await store.jobs.events(job_id)}
                if what in {s.value for s in JobState}:
                    assert what in states, f"job {job_id} reported {what} but the database lost it"
                elif what == "reserved":
                    assert await store.quota.entries(job_id), f"job {job_id} lost its reservation"
    assert len(reported) > 20
