"""Job records: create, move through states (checked), update, and the queries the bot needs.

`transition` is the one place credits close: at the charge it is given, in the same transaction as
the state change, reading the job `FOR UPDATE` so that of two racing processes exactly one wins.
It is fenced: a job another process claimed, or this one claimed in vain, raises `LeaseLost`
(`fence` is the same check as a write, right before posting a result). Claims (`claim`,
`release`, `claimed_by`) hold while their process's row in `instances` exists; a queued job stays
unclaimed with its `request`, so any process with a free slot may run it. docs/design-notes.md,
"Several processes", gives the reasons.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from enum import Enum

from bot.bounds import JOB_ID
from bot.store import ledger
from bot.store.db import (
    LEDGER_LOCK,
    Connection,
    Database,
    Row,
    fetch_all,
    fetch_int,
    fetch_one,
    guild_lock,
    parse_ts,
    row_dict,
)
from bot.store.errors import InvalidTransition, JobNotFound, LeaseLost, NoReservation
from bot.store.models import (
    TERMINAL_STATES,
    UNKNOWN_AT_MAGIC_HOUR,
    UPDATABLE_JOB_FIELDS,
    JobEvent,
    JobRecord,
    JobState,
    LimitKind,
    NewJob,
    Refusal,
    can_transition,
)

# "('canceled', 'done', 'failed')", for queries; built from the enum so the two cannot drift.
_TERMINAL_SQL = "(" + ", ".join(f"'{state.value}'" for state in sorted(TERMINAL_STATES)) + ")"
# The states whose entry closes a reservation (see `JobStore.transition`).
_CLOSING_STATES = frozenset({JobState.DOWNLOADING, *TERMINAL_STATES})


def _row_to_job(row: Row) -> JobRecord:
    return JobRecord.model_validate(row_dict(row))


def _column_value(value: object) -> object:
    # Datetimes pass through: each backend stores them its way (SQLite as fixed-width UTC text).
    return value.value if isinstance(value, Enum) else value


def error_data_text(value: object) -> str | None:
    """`error_data` as stored: a flat JSON object of scalars, or NULL."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError("error_data must be a dict of names to numbers, strings, booleans or None")
    for key, item in value.items():
        if not isinstance(key, str):
            raise TypeError("error_data keys must be strings")
        if item is not None and not isinstance(item, str | int | float | bool):
            raise TypeError(f"error_data[{key!r}] must be a number, a string, a boolean or None")
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"error_data[{key!r}] must be finite")
    return json.dumps(dict(value), sort_keys=True, separators=(",", ":"))


def _checked_fields(fields: Mapping[str, object]) -> dict[str, object]:
    unknown = set(fields) - UPDATABLE_JOB_FIELDS
    if unknown:
        raise TypeError(f"these job fields cannot be updated: {', '.join(sorted(unknown))}")
    checked = {name: _column_value(value) for name, value in fields.items()}
    if "error_data" in checked:
        checked["error_data"] = error_data_text(checked["error_data"])
    return checked


async def load_uncertain(
    conn: Connection, guild_id: int | None, since: dt.datetime, until: dt.datetime | None = None
) -> list[JobRecord]:
    """Jobs of one server (None: command line) whose create outcome is unknown, counted in `[since, until)`.

    A job the operator has reconciled with Magic Hour's charge is known again and left out.

    A job counts in the window of its reservation (its creation time if it never reserved), like
    its credits do. Oldest first.
    """
    before = "" if until is None else " AND COALESCE(r.period_at, j.created_at) < ?"
    rows = await fetch_all(
        conn,
        "SELECT j.* FROM jobs AS j LEFT JOIN ledger AS r ON r.job_id = j.id AND r.kind = 'reserve'"  # noqa: S608
        " WHERE j.state = ? AND j.error_code = ? AND j.guild_id IS NOT DISTINCT FROM ?"
        " AND NOT EXISTS (SELECT 1 FROM ledger AS c WHERE c.job_id = j.id AND c.kind = 'reconcile')"
        f" AND COALESCE(r.period_at, j.created_at) >= ?{before}"
        " ORDER BY j.id",
        (JobState.FAILED.value, UNKNOWN_AT_MAGIC_HOUR, guild_id, since, *([] if until is None else [until])),
    )
    return [_row_to_job(r) for r in rows]


async def load_job(conn: Connection, job_id: int, *, for_update: bool = False) -> JobRecord:
    """The job, or `JobNotFound`, inside the caller's transaction (`for_update`: locked until it ends)."""
    if not JOB_ID.contains(job_id):
        raise JobNotFound(job_id)  # no such id can be stored
    lock = conn.FOR_UPDATE if for_update else ""
    row = await fetch_one(conn, f"SELECT * FROM jobs WHERE id = ?{lock}", (job_id,))  # noqa: S608 - constant
    if row is None:
        raise JobNotFound(job_id)
    return _row_to_job(row)


async def write_fields(conn: Connection, job_id: int, fields: Mapping[str, object], now: dt.datetime) -> None:
    """Set columns (already checked against `UPDATABLE_JOB_FIELDS` or internal) and `updated_at`."""
    # Column names come from the fixed allowlist above, never from user input.
    assignments = ", ".join(f"{name} = ?" for name in fields)
    sep = ", " if assignments else ""
    await conn.execute(
        f"UPDATE jobs SET {assignments}{sep}updated_at = ? WHERE id = ?",  # noqa: S608
        (*fields.values(), now, job_id),
    )


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values)


async def _insert_job(conn: Connection, values: Mapping[str, object], now: dt.datetime) -> JobRecord:
    """Insert a new job row and its first event, inside the caller's transaction."""
    columns = ", ".join(values)
    rows = await fetch_all(
        conn,
        f"INSERT INTO jobs ({columns}) VALUES ({_marks(list(values))}) RETURNING *",  # noqa: S608 - model fields
        tuple(values.values()),
    )
    job_id = int(rows[0]["id"])
    await conn.execute(
        "INSERT INTO job_events (job_id, state, at, detail) VALUES (?, ?, ?, NULL)",
        (job_id, JobState.RECEIVED.value, now),
    )
    return _row_to_job(rows[0])


class JobStore:
    """Job records. Reach it as `store.jobs`; `owner` names this process in job claims."""

    def __init__(self, db: Database, owner: str) -> None:
        self._db = db
        self.owner = owner

    async def create(self, job: NewJob, *, claimed: bool = False, request: str | None = None) -> JobRecord:
        """Record a new job in `received`, with its first event; claimed by this process if `claimed`.

        `request` (JSON) is what the job needs to run, for whichever process runs it (kept until
        the job leaves `received`).
        """
        now = self._db.now()
        values = self._new_row(job, now, claimed=claimed, request=request)

        async def body(conn: Connection) -> JobRecord:
            # Shared: many jobs are created at once, but never while a member's data is being deleted.
            await conn.lock(shared=[LEDGER_LOCK])
            return await _insert_job(conn, values, now)

        return await self._db.write(body)

    async def create_within(
        self, job: NewJob, *, max_unfinished: int, claimed: bool = False, request: str | None = None
    ) -> JobRecord | Refusal:
        """`create`, unless the member already has `max_unfinished` unfinished jobs in this server.

        The count and the insert are one transaction under the server's lock (the one reservations
        take), so requests racing each other are counted one after another: of six sent in the same
        millisecond with a limit of one, one is recorded and five are refused.
        """
        now = self._db.now()
        values = self._new_row(job, now, claimed=claimed, request=request)
        sql = (
            "SELECT COUNT(*) FROM jobs WHERE guild_id IS NOT DISTINCT FROM ? AND user_id = ?"  # noqa: S608 - constants
            f" AND state NOT IN {_TERMINAL_SQL}"
        )

        async def body(conn: Connection) -> JobRecord | Refusal:
            await conn.lock(guild_lock(job.guild_id), shared=[LEDGER_LOCK])
            unfinished = await fetch_int(conn, sql, (job.guild_id, job.user_id))
            if unfinished >= max_unfinished:
                available = max(0, max_unfinished - unfinished)
                return Refusal(LimitKind.ACTIVE_JOBS, available, 1, None, max_active=max_unfinished)
            return await _insert_job(conn, values, now)

        return await self._db.write(body)

    def _new_row(self, job: NewJob, now: dt.datetime, *, claimed: bool, request: str | None) -> dict[str, object]:
        values: dict[str, object] = job.model_dump()
        values["mode"] = job.mode.value
        values["state"] = JobState.RECEIVED.value
        values["created_at"] = values["updated_at"] = now
        if claimed:
            values["claimed_by"] = self.owner
        if request is not None:
            values["request"] = request
        return values

    async def transition(
        self,
        job_id: int,
        to: JobState,
        *,
        charged: int | None = None,
        detail: str | None = None,
        **fields: object,
    ) -> JobRecord:
        """Move a job to `to`, checked against its current state, and close its credits, in one transaction.

        Returns the job as written. Raises `InvalidTransition` for a move the state machine does
        not allow (including staying in the same state, and leaving a terminal one), `JobNotFound`,
        and `LeaseLost` when another process has claimed the job (it took the job over) or this
        process's claim is void (others found it dead). `fields` are set at the same time (the
        names `update` accepts).

        Credits close here and nowhere else, at the charge the caller gives (`bot.jobs.endings`
        decides it):
        - `downloading` (the render completed) requires `charged` and settles the reservation to it;
        - `failed`/`canceled` settle a still-open reservation to `charged`, or refund it when
          `charged` is None (only a job that sent nothing to Magic Hour ends so); an ending unknown
          at Magic Hour needs its count (`ValueError` without: a refund would give back what
          Magic Hour may have billed);
        - `done` follows a settled `downloading` and closes nothing (`ValueError` if the
          reservation is somehow still open).
        A charge above what was held is recorded, never refused; a job already closed stays as it
        is (a rendered job whose delivery was given up stays charged). `charged_credits` is
        recorded whenever a settle happens. `charged` is refused (ValueError) for other states and
        when negative; `NoReservation` when it is given for a job that never reserved (a charge
        with nothing to settle against is a bug to surface).
        """
        checked = _checked_fields(fields)
        if charged is not None:
            if charged < 0:
                raise ValueError("charged credits cannot be negative")
            if to not in _CLOSING_STATES:
                raise ValueError(f"a charge is recorded only when a job moves to {', '.join(sorted(_CLOSING_STATES))}")
        elif to is JobState.DOWNLOADING:
            raise ValueError("a job enters downloading with what Magic Hour charged for its render")
        now = self._db.now()

        async def body(conn: Connection) -> JobRecord:
            job = await load_job(conn, job_id, for_update=True)
            await self._check_claim(conn, job, beat=False)
            if not can_transition(job.state, to):
                raise InvalidTransition(job_id, job.state.value, to.value)
            # A job leaving the queue no longer needs its stored request (attachment links): drop it.
            dropped = {"request": None} if job.state is JobState.RECEIVED else {}
            await write_fields(conn, job_id, {**checked, **dropped, "state": to.value}, now)
            await conn.execute(
                "INSERT INTO job_events (job_id, state, at, detail) VALUES (?, ?, ?, ?)",
                (job_id, to.value, now, detail),
            )
            if (
                to is JobState.FAILED
                and charged is None
                and checked.get("error_code", job.error_code) == UNKNOWN_AT_MAGIC_HOUR
                and await ledger.reservation_row(conn, job_id)
            ):
                raise ValueError(f"job {job_id}: an unknown ending counts what the job held; give it as the charge")
            if to is JobState.DONE and charged is None:
                if await ledger.reservation_row(conn, job_id) and not await ledger.closing_row(conn, job_id):
                    raise ValueError(f"job {job_id} can only be done once its render was settled")
            elif to in _CLOSING_STATES:
                outcome = await ledger.close_reservation(conn, job_id, charged=charged, now=now, note=to.value)
                if outcome is ledger.CloseOutcome.NO_RESERVATION and charged is not None:
                    raise NoReservation(job_id)
            return await load_job(conn, job_id)

        return await self._db.write(body)

    async def update(self, job_id: int, **fields: object) -> JobRecord:
        """Set non-state fields (project id, credits, error, delivery, status message, ...)."""
        checked = _checked_fields(fields)
        now = self._db.now()

        async def body(conn: Connection) -> JobRecord:
            await load_job(conn, job_id, for_update=True)
            await write_fields(conn, job_id, checked, now)
            return await load_job(conn, job_id)

        return await self._db.write(body)

    async def fence(self, job_id: int) -> JobRecord:
        """Check, with a write, that this process still holds the job, and beat for it; return the job.

        A process about to do something that must happen once (post a result) calls this right
        before: it raises `LeaseLost` if another process has claimed the job, the job has ended, or
        this process was taken for dead (its row in `instances` is gone, so its claims are void). In
        the same transaction it bumps its own heartbeat counter: a process that has just found it
        dead deletes its row only if the counter is still the one it saw, so either the fence fails
        or nobody may take the job over for another lease. Jobs nobody claimed (queued, tests,
        tools) pass while unfinished.
        """

        async def body(conn: Connection) -> JobRecord:
            job = await load_job(conn, job_id, for_update=True)
            if job.state.terminal:
                raise LeaseLost(job_id, job.claimed_by or "no process: it has ended")
            await self._check_claim(conn, job, beat=True)
            return job

        return await self._db.write(body)

    async def _check_claim(self, conn: Connection, job: JobRecord, *, beat: bool) -> None:
        """Raise `LeaseLost` unless this process may act on `job`: nobody's, or this process's while
        its row in `instances` exists (a claim is void once others found it dead and deleted it).
        `beat`: also bump this process's heartbeat counter, so that nobody finds it dead on a count
        read before now."""
        if job.claimed_by is None:
            return
        if job.claimed_by != self.owner:
            raise LeaseLost(job.id, job.claimed_by)
        if beat:
            registered = bool(
                await conn.execute(
                    "UPDATE instances SET beats = beats + 1, beat_at = ? WHERE id = ?", (self._db.now(), self.owner)
                )
            )
        else:
            registered = bool(await fetch_all(conn, "SELECT 1 FROM instances WHERE id = ?", (self.owner,)))
        if not registered:
            raise LeaseLost(job.id, "no process (this one was taken for dead)")

    async def get(self, job_id: int) -> JobRecord | None:
        """The job, or None if there is none with this id."""
        if not JOB_ID.contains(job_id):
            return None  # no such id can be stored
        row = await self._db.read(lambda conn: fetch_one(conn, "SELECT * FROM jobs WHERE id = ?", (job_id,)))
        return None if row is None else _row_to_job(row)

    async def recent_for_member(self, guild_id: int | None, user_id: int, limit: int = 10) -> list[JobRecord]:
        """A member's latest jobs in one server (or on the command line), newest first."""
        rows = await self._db.read(
            lambda conn: fetch_all(
                conn,
                "SELECT * FROM jobs WHERE guild_id IS NOT DISTINCT FROM ? AND user_id = ? ORDER BY id DESC LIMIT ?",
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
        after = "" if since is None else " AND created_at >= ?"
        rows = await self._db.read(
            lambda conn: fetch_all(
                conn,
                f"SELECT * FROM jobs WHERE guild_id IS NOT DISTINCT FROM ?{after} ORDER BY id DESC LIMIT ?",  # noqa: S608
                (guild_id, *([] if since is None else [since]), limit),
            )
        )
        return [_row_to_job(r) for r in rows]

    async def active_count(self, guild_id: int | None, user_id: int) -> int:
        """How many of a member's jobs in this server are not yet finished."""
        sql = (
            "SELECT COUNT(*) FROM jobs WHERE guild_id IS NOT DISTINCT FROM ? AND user_id = ?"  # noqa: S608 - constants
            f" AND state NOT IN {_TERMINAL_SQL}"
        )
        return await self._db.read(lambda conn: fetch_int(conn, sql, (guild_id, user_id)))

    async def unknown_at_magic_hour(self, guild_id: int | None, since: dt.datetime) -> list[JobRecord]:
        """A server's jobs (None: the command line's) since `since` whose create outcome is unknown.

        They ended `failed` with `error_code=UNKNOWN_AT_MAGIC_HOUR` and count as charged what they
        reserved; managers see them in their usage report. Oldest first.
        """
        return await self._db.read(lambda conn: load_uncertain(conn, guild_id, since))

    async def events(self, job_id: int) -> list[JobEvent]:
        """Every state the job entered, with when, in order."""
        rows = await self._db.read(
            lambda conn: fetch_all(
                conn, "SELECT job_id, state, at, detail FROM job_events WHERE job_id = ? ORDER BY id", (job_id,)
            )
        )
        return [JobEvent(int(r["job_id"]), JobState(r["state"]), parse_ts(r["at"]), r["detail"]) for r in rows]

    # ------------------------------------------------------------------ claims

    # Claimable: nobody's, this process's, or a void claim: its process has no row in `instances`
    # (found dead, or stopped), unless it is a previous version's claim whose lease still runs.
    _CLAIMABLE = (
        "(claimed_by IS NULL OR claimed_by = ? OR (NOT EXISTS (SELECT 1 FROM instances AS i"
        " WHERE i.id = jobs.claimed_by) AND (lease_until IS NULL OR lease_until < ?)))"
    )

    async def claimable(self) -> list[JobRecord]:
        """Unfinished jobs this process could claim now (unclaimed, its own, or claimed in vain), oldest first."""
        params = (self.owner, self._db.now())
        rows = await self._db.read(
            lambda conn: fetch_all(
                conn,
                f"SELECT * FROM jobs WHERE state NOT IN {_TERMINAL_SQL} AND {self._CLAIMABLE} ORDER BY id",  # noqa: S608
                params,
            )
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
        rows = await self._db.read(
            lambda conn: fetch_all(
                conn, "SELECT request FROM jobs WHERE id = ? AND state = ?", (job_id, JobState.RECEIVED.value)
            )
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
