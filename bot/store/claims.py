"""Claims on jobs, and the queue: which unfinished jobs a process may take, taking them, giving them back.

What a claim is, and why, is described in `bot.store.jobs`; `JobStore` has these methods.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from bot.store.db import Connection, Database, Row, fetch_all, row_dict
from bot.store.models import TERMINAL_STATES, JobRecord, JobState

_TERMINAL_SQL = "(" + ", ".join(f"'{state.value}'" for state in sorted(TERMINAL_STATES)) + ")"


def _row_to_job(row: Row) -> JobRecord:
    return JobRecord.model_validate(row_dict(row))


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values)


class JobClaims:
    """The claim and queue half of `JobStore` (its `_db` and `owner`)."""

    _db: Database
    owner: str

    # Claimable: nobody's, this process's, or a void claim: its process has no row in `instances`
    # (found dead, or stopped), unless it is a previous version's claim whose lease still runs.
    _CLAIMABLE = (
        "(claimed_by IS NULL OR claimed_by = ? OR (NOT EXISTS (SELECT 1 FROM instances AS i"
        " WHERE i.id = jobs.claimed_by) AND (lease_until IS NULL OR lease_until < ?)))"
    )

    async def claimable(self) -> list[JobRecord]:
        """Unfinished jobs this process could claim now (unclaimed, its own, or claimed in vain), oldest first."""
        params = (self.owner, self._db.now())
        rows = await self._db.fetch(
            f"SELECT * FROM jobs WHERE state NOT IN {_TERMINAL_SQL} AND {self._CLAIMABLE} ORDER BY id",  # noqa: S608
            params,
        )
        return [_row_to_job(r) for r in rows]

    async def claim(self, job_ids: Sequence[int]) -> list[JobRecord]:
        """Claim those of `job_ids` that are still claimable; return them, oldest first.

        Two processes claiming at once never both get a job: each reads the rows `FOR UPDATE SKIP
        LOCKED` (PostgreSQL), so a row the other is claiming is skipped, and re-checks the claim.
        """
        if not job_ids:
            return []
        ids = list(job_ids)

        async def body(conn: Connection) -> list[JobRecord]:
            rows = await fetch_all(
                conn,
                f"SELECT id FROM jobs WHERE id IN ({_marks(ids)}) AND state NOT IN {_TERMINAL_SQL}"  # noqa: S608
                f" AND {self._CLAIMABLE} ORDER BY id{conn.FOR_UPDATE_SKIP_LOCKED}",
                (*ids, self.owner, self._db.now()),
            )
            won = [int(r[0]) for r in rows]
            if not won:
                return []
            claimed = await fetch_all(
                conn,
                f"UPDATE jobs SET claimed_by = ?, lease_until = NULL WHERE id IN ({_marks(won)}) RETURNING *",  # noqa: S608
                (self.owner, *won),
            )
            return sorted((_row_to_job(r) for r in claimed), key=lambda job: job.id)

        return await self._db.write(body)

    async def release(self, job_ids: Sequence[int]) -> int:
        """Give up this process's claims on `job_ids` (a clean shutdown): another process may take them at once."""
        if not job_ids:
            return 0
        ids = list(job_ids)
        return await self._db.write(
            lambda conn: conn.execute(
                f"UPDATE jobs SET claimed_by = NULL, lease_until = NULL"  # noqa: S608
                f" WHERE claimed_by = ? AND id IN ({_marks(ids)})",
                (self.owner, *ids),
            )
        )

    async def stored_request(self, job_id: int) -> str | None:
        """What a queued job needs to run (JSON, as `create` stored it); None once it has left the queue."""
        rows = await self._db.fetch(
            "SELECT request FROM jobs WHERE id = ? AND state = ?", (job_id, JobState.RECEIVED.value)
        )
        if not rows or rows[0][0] is None:
            return None
        value = rows[0][0]
        return value if isinstance(value, str) else json.dumps(value)

    async def request_cancel(self, job_id: int, by_user_id: int) -> bool:
        """Record that a member asked to cancel an unfinished job; the process running it acts on it."""
        return bool(
            await self._db.write(
                lambda conn: conn.execute(
                    f"UPDATE jobs SET cancel_requested_by = ? WHERE id = ? AND state NOT IN {_TERMINAL_SQL}",  # noqa: S608
                    (by_user_id, job_id),
                )
            )
        )
