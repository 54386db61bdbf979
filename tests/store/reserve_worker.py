"""One of the processes racing reservations in `test_processes.py`; run as a real subprocess.

Usage: `python -m tests.store.reserve_worker DATABASE`. Reads one JSON line (the jobs to reserve
for: `[job_id, guild_id, user_id, amount]`, and the policy), opens a store, prints `READY`, waits
for a `GO` line, then reserves for every job at once and prints one JSON line of outcomes:
`[job_id, "granted", amount]` or `[job_id, "refused", limit]`.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from bot.store import QuotaPolicy, Refusal, Store


async def main(target: Path | str) -> None:
    order = json.loads(sys.stdin.readline())
    policy = QuotaPolicy(**order["policy"])
    store = await Store.open(target, policy=policy, pool_size=20)
    try:
        print("READY", flush=True)
        assert sys.stdin.readline().strip() == "GO"

        async def reserve(job_id: int, guild_id: int | None, user_id: int, amount: int) -> list[object]:
            outcome = await store.quota.reserve(job_id, guild_id=guild_id, user_id=user_id, role_ids=[], amount=amount)
            if isinstance(outcome, Refusal):
                return [job_id, "refused", outcome.limit.value]
            return [job_id, "granted", outcome.amount]

        results = await asyncio.gather(*(reserve(*job) for job in order["jobs"]))
        print(json.dumps(results), flush=True)
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if sys.argv[1].startswith("postgresql://") else Path(sys.argv[1])))
