"""Hammer a store with writes until killed; run by `test_crash.py` as a real subprocess.

Usage: `python -m tests.store.crash_worker DATABASE` (a SQLite file or a PostgreSQL URL). Prints one
line per committed write,
`<count> <job_id> <what>`, flushed, so the parent knows how far it got before it kills us.
"""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path

from bot.config import GenerationMode
from bot.store import JobState, NewJob, QuotaPolicy, Refusal, Store

GUILDS = (1111, 2222, None)
POLICY = QuotaPolicy(default_member_credits=10**9, bot_budget_credits=10**12, max_active_jobs_per_member=10_000)


async def main(target: Path | str, workers: int = 8) -> None:
    store = await Store.open(target, policy=POLICY)
    count = 0

    def done(job_id: int, what: str) -> None:
        nonlocal count
        count += 1
        print(f"{count} {job_id} {what}", flush=True)

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        while True:
            guild = rng.choice(GUILDS)
            user = rng.randint(1, 6)
            job = await store.jobs.create(NewJob(user_id=user, guild_id=guild, mode=rng.choice(list(GenerationMode))))
            done(job.id, "received")
            await store.jobs.transition(job.id, JobState.FETCHING)
            done(job.id, "fetching")
            result = await store.quota.reserve(
                job.id, guild_id=guild, user_id=user, role_ids=[], amount=rng.randint(1, 500)
            )
            if isinstance(result, Refusal):
                await store.jobs.transition(job.id, JobState.FAILED)
                done(job.id, "failed")
                continue
            done(job.id, "reserved")
            ending = rng.random()
            if ending < 0.3:
                await store.jobs.transition(job.id, JobState.FAILED)  # refunds by itself
                done(job.id, "failed")
            elif ending < 0.4:
                await store.jobs.transition(job.id, JobState.CANCELED)  # refunds by itself
                done(job.id, "canceled")
            else:
                for state in (JobState.UPLOADING, JobState.CREATING):
                    await store.jobs.transition(job.id, state)
                    done(job.id, state.value)
                await store.quota.top_up(job.id, rng.randint(1, 600))  # granted or refused, both fine
                for state in (JobState.SUBMITTED, JobState.RENDERING):
                    await store.jobs.transition(job.id, state, project_id=f"p-{job.id}")
                    done(job.id, state.value)
                await store.jobs.transition(job.id, JobState.DOWNLOADING, charged=rng.randint(0, 600))
                done(job.id, "downloading")
                await store.jobs.transition(job.id, JobState.DELIVERING)
                done(job.id, "delivering")
                await store.jobs.transition(job.id, JobState.DONE, delivery_kind="file", delivery_message_id=job.id)
                done(job.id, "done")
            if rng.random() < 0.1 and guild is not None:
                await store.quota.grant(guild, user, rng.randint(-50, 50) or 1, by_user_id=99)
                await store.quota.adjust(guild, user, rng.randint(-20, 20) or 1, by_user_id=99)
                done(job.id, "granted")

    await asyncio.gather(*(worker(seed) for seed in range(workers)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if sys.argv[1].startswith("postgresql://") else Path(sys.argv[1])))
