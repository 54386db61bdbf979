"""Job records: create, move through states (checked), update, and the queries the bot needs."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Mapping
from enum import Enum

import aiosqlite

from bot.store import ledger
from bot.store.db import Database, fetch_all, fetch_int, fetch_one, parse_ts, ts
from bot.store.errors import InvalidTransition, JobNotFound
from bot.store.models import (
    TERMINAL_STATES,
    UPDATABLE_JOB_FIELDS,
    JobEvent,
    JobRecord,
    JobState,
    NewJob,
    can_transition,
)

# "('canceled', 'done', 'failed')", for queries; built from the enum so the two cannot drift.
_TERMINAL_SQL = "(" + ", ".join(f"'{state.value}'" for state in sorted(TERMINAL_STATES)) + ")"


def _row_to_job(row: sqlite3.Row) -> JobRecord:
    return JobRecord.model_validate(dict(row))


def _column_value(value: object) -> object:
    return value.value if isinstance(value, Enum) else value


def _checked_fields(fields: Mapping[str, object]) -> dict[str, object]:
    unknown = set(fields) - UPDATABLE_JOB_FIELDS
    if unknown:
        raise TypeError(f"these job fields cannot be updated: {', '.join(sorted(unknown))}")
    return {name: _column_value(value) for name, value in fields.items()}


async def load_job(conn: aiosqlite.Connection, job_id: int) -> JobRecord:
    """The job, or `JobNotFound`, inside the caller's transaction."""
    row = await fetch_one(conn, "SELECT * FROM jobs WHERE id = ?", (job_id,))
    if row is None:
        raise JobNotFound(job_id)
    return _row_to_job(row)


async def write_fields(conn: aiosqlite.Connection, job_id: int, fields: Mapping[str, object], now: dt.datetime) -> None:
    """Set columns (already checked against `UPDATABLE_JOB_FIELDS` or internal) and `updated_at`."""
    # Column names come from the fixed allowlist above, never from user input.
    assignments = ", ".join(f"{name} = ?" for name in fields)
    sep = ", " if assignments else ""
    await conn.execute(
        f"UPDATE jobs SET {assignments}{sep}updated_at = ? WHERE id = ?",  # noqa: S608
        (*fields.values(), ts(now), job_id),
    )


class JobStore:
    """Job records. Reach it as `store.jobs`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, job: NewJob) -> JobRecord:
        """Record a new job in `received`, with its first event."""
        now = self._db.now()
        values = job.model_dump()
        values["mode"] = job.mode.value
        values["state"] = JobState.RECEIVED.value
        values["created_at"] = values["updated_at"] = ts(now)
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)

        async def body(conn: aiosqlite.Connection) -> JobRecord:
            rows = await fetch_all(
                conn,
                f"INSERT INTO jobs ({columns}) VALUES ({marks}) RETURNING *",  # noqa: S608 - fixed model fields
                tuple(values.values()),
            )
            job_id = int(rows[0]["id"])
            await conn.execute(
                "INSERT INTO job_events (job_id, state, at, detail) VALUES (?, ?, ?, NULL)",
                (job_id, JobState.RECEIVED.value, ts(now)),
            )
            return _row_to_job(rows[0])

        return await self._db.write(body)

    async def transition(self, job_id: int, to: JobState, *, detail: str | None = None, **fields: object) -> JobRecord:
        """Move a job to `to`, checked against its current state in the same transaction.

        Raises `InvalidTransition` for a move the state machine does not allow (including staying
        in the same state, and leaving a terminal one) and `JobNotFound`. `fields` are set at the
        same time (the names `update` accepts).

        Ending a job closes its reservation in the same transaction, so that no finished job ever
        holds credits: `failed`/`canceled` refund a reservation that is still open; `done` settles
        one that is still open to `charged_credits` if given, else to the reserved amount. (The
        engine normally settles to the API's `credits_charged` before this; then nothing changes.)
        """
        checked = _checked_fields(fields)
        now = self._db.now()

        async def body(conn: aiosqlite.Connection) -> JobRecord:
            job = await load_job(conn, job_id)
            if not can_transition(job.state, to):
                raise InvalidTransition(job_id, job.state.value, to.value)
            await write_fields(conn, job_id, {**checked, "state": to.value}, now)
            await conn.execute(
                "INSERT INTO job_events (job_id, state, at, detail) VALUES (?, ?, ?, ?)",
                (job_id, to.value, ts(now), detail),
            )
            if to in (JobState.FAILED, JobState.CANCELED):
                await ledger.close_reservation(conn, job_id, charged=None, now=now, note=f"job {to.value}")
            elif to is JobState.DONE:
                charged = checked.get("charged_credits")
                await ledger.close_reservation(
                    conn,
                    job_id,
                    charged=charged if isinstance(charged, int) else None,
                    settle_to_reserved=True,
                    now=now,
                    note="settled when the job finished",
                )
            return await load_job(conn, job_id)

        return await self._db.write(body)

    async def update(self, job_id: int, **fields: object) -> JobRecord:
        """Set non-state fields (project id, credits, error, delivery, status message, ...)."""
        checked = _checked_fields(fields)
        now = self._db.now()

        async def body(conn: aiosqlite.Connection) -> JobRecord:
            await load_job(conn, job_id)
            await write_fields(conn, job_id, checked, now)
            return await load_job(conn, job_id)

        return await self._db.write(body)

    async def get(self, job_id: int) -> JobRecord | None:
        """The job, or None if there is none with this id."""
        row = await self._db.read(lambda conn: fetch_one(conn, "SELECT * FROM jobs WHERE id = ?", (job_id,)))
        return None if row is None else _row_to_job(row)

    async def recent_for_member(self, guild_id: int | None, user_id: int, limit: int = 10) -> list[JobRecord]:
        """A member's latest jobs in one server (or on the command line), newest first."""
        rows = await self._db.read(
            lambda conn: fetch_all(
                conn,
                "SELECT * FROM jobs WHERE guild_id IS ? AND user_id = ? ORDER BY id DESC LIMIT ?",
                (guild_id, user_id, limit),
            )
        )
        return [_row_to_job(r) for r in rows]

    async def unfinished(self) -> list[JobRecord]:
        """Every job not yet done, failed or canceled, oldest first: what a restart reloads."""
        rows = await self._db.read(
            lambda conn: fetch_all(
                conn,
                f"SELECT * FROM jobs WHERE state NOT IN {_TERMINAL_SQL} ORDER BY id",  # noqa: S608 - constant
            )
        )
        return [_row_to_job(r) for r in rows]

    async def for_guild(
        self, guild_id: int | None, since: dt.datetime | None = None, limit: int = 100
    ) -> list[JobRecord]:
        """A server's jobs created at or after `since`, newest first."""
        since_text = ts(since) if since is not None else ""
        rows = await self._db.read(
            lambda conn: fetch_all(
                conn,
                "SELECT * FROM jobs WHERE guild_id IS ? AND created_at >= ? ORDER BY id DESC LIMIT ?",
                (guild_id, since_text, limit),
            )
        )
        return [_row_to_job(r) for r in rows]

    async def active_count(self, guild_id: int | None, user_id: int) -> int:
        """How many of a member's jobs in this server are not yet finished."""
        sql = f"SELECT COUNT(*) FROM jobs WHERE guild_id IS ? AND user_id = ? AND state NOT IN {_TERMINAL_SQL}"  # noqa: S608
        return await self._db.read(lambda conn: fetch_int(conn, sql, (guild_id, user_id)))

    async def events(self, job_id: int) -> list[JobEvent]:
        """Every state the job entered, with when, in order."""
        rows = await self._db.read(
            lambda conn: fetch_all(
                conn, "SELECT job_id, state, at, detail FROM job_events WHERE job_id = ? ORDER BY id", (job_id,)
            )
        )
        return [JobEvent(int(r["job_id"]), JobState(r["state"]), parse_ts(r["at"]), r["detail"]) for r in rows]
