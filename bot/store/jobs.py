"""Job records: create, move through states (checked), update, and the queries the bot needs.

`transition` is the one place credits close: at the charge it is given, in the same transaction as
the state change, in one statement that checks the job as it writes it (`bot.store.moves`), so of
two racing processes exactly one wins. It is fenced: a job another process claimed, or this one
claimed in vain, raises `LeaseLost` (`fence` is the same check as a write, right before posting a
result). Claims (`claim`, `release`, `claimed_by`) hold while their process's row in `instances`
exists; a queued job stays unclaimed with its `request`, so any process with a free slot may run
it. docs/design-notes.md, "Several processes", gives the reasons.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from enum import Enum

from bot.bounds import JOB_ID
from bot.store import ledger, moves
from bot.store.claims import JobClaims
from bot.store.db import (
    LEDGER_LOCK,
    Connection,
    Database,
    Row,
    fetch_all,
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
# A checked write that another writer overtook is tried again this many times at most.
_ATTEMPTS = 3


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


def _check_charge(job_id: int, to: JobState, charged: int | None) -> None:
    """Refuse a charge `transition` can't record, and a job id no row can have."""
    if charged is not None:
        if charged < 0:
            raise ValueError("charged credits cannot be negative")
        if to not in _CLOSING_STATES:
            raise ValueError(f"a charge is recorded only when a job moves to {', '.join(sorted(_CLOSING_STATES))}")
    elif to is JobState.DOWNLOADING:
        raise ValueError("a job enters downloading with what Magic Hour charged for its render")
    if not JOB_ID.contains(job_id):
        raise JobNotFound(job_id)  # no such id can be stored


class JobStore(JobClaims):
    """Job records. Reach it as `store.jobs`; `owner` names this process in job claims."""

    def __init__(self, db: Database, owner: str) -> None:
        self._db = db
        self.owner = owner

    async def create(self, job: NewJob, *, claimed: bool = False, request: str | None = None) -> JobRecord:
        """Record a new job in `received`, with its first event; claimed by this process if `claimed`.

        `request` (JSON) is what the job needs to run, for whichever process runs it (kept until
        the job leaves `received`).
        """
        values = self._new_row(job, self._db.now(), claimed=claimed, request=request)
        columns = ", ".join(values)
        # Shared: many jobs are created at once, but never while a member's data is being deleted.
        rows = await self._db.write_one(
            f"INSERT INTO jobs ({columns}) VALUES ({_marks(list(values))}) RETURNING *",  # noqa: S608 - model fields
            tuple(values.values()),
            shared=[LEDGER_LOCK],
        )
        return _row_to_job(rows[0])

    async def create_within(
        self, job: NewJob, *, max_unfinished: int, claimed: bool = False, request: str | None = None
    ) -> JobRecord | Refusal:
        """`create`, unless the member already has `max_unfinished` unfinished jobs in this server.

        The count and the insert are one statement, under the server's lock on PostgreSQL (the one
        reservations take), so requests racing each other are counted one after another: of six
        sent in the same millisecond with a limit of one, one is recorded and five are refused.
        """
        values = self._new_row(job, self._db.now(), claimed=claimed, request=request)
        columns = ", ".join(values)
        unfinished = (
            "SELECT COUNT(*) FROM jobs WHERE guild_id IS NOT DISTINCT FROM ? AND user_id = ?"  # noqa: S608 - constants
            f" AND state NOT IN {_TERMINAL_SQL}"
        )
        rows = await self._db.write_one(
            f"INSERT INTO jobs ({columns}) SELECT {_marks(list(values))} WHERE ({unfinished}) < ? RETURNING *",
            (*values.values(), job.guild_id, job.user_id, max_unfinished),
            locks=[guild_lock(job.guild_id)],
            shared=[LEDGER_LOCK],
        )
        if rows:
            return _row_to_job(rows[0])
        count = int((await self._db.fetch(unfinished, (job.guild_id, job.user_id)))[0][0])
        available = max(0, max_unfinished - count)
        return Refusal(LimitKind.ACTIVE_JOBS, available, 1, None, max_active=max_unfinished)

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

        Returns the job as written (the row the write returned: no read after it). The move is one
        checked statement (`bot.store.moves`); a move that closes credits is a transaction of it and
        the ledger's rows. Raises `InvalidTransition` for a move the state machine does
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
        _check_charge(job_id, to, charged)
        # `done` without a charge closes nothing: the statement itself checks the render was settled.
        closes = to in _CLOSING_STATES and not (to is JobState.DONE and charged is None)
        in_transaction = closes or (to is JobState.FAILED and charged is None) or detail is not None
        for _ in range(_ATTEMPTS):
            sql, params = moves.move_statement(
                self._db.dialect,
                job_id,
                to,
                checked,
                self._db.now(),
                self.owner,
                require_settled=to is JobState.DONE and charged is None,
            )
            if in_transaction:
                job = await self._db.write(self._closing_body(job_id, to, sql, params, charged=charged, detail=detail))
            else:
                row = moves.first(await self._db.write_one(sql, params))
                job = None if row is None else _row_to_job(row)
            if job is not None:
                return job
            problem = await self._explain(job_id, to)
            if problem is not None:
                raise problem
        raise InvalidTransition(job_id, "changing", to.value)

    def _closing_body(
        self, job_id: int, to: JobState, sql: str, params: Sequence[object], *, charged: int | None, detail: str | None
    ) -> Callable[[Connection], Awaitable[JobRecord | None]]:
        """The transaction of a move that closes credits (or checks them, or adds a detail to its event)."""

        async def body(conn: Connection) -> JobRecord | None:
            row = moves.first(await conn.fetch_all(sql, params))
            if row is None:
                return None
            job = _row_to_job(row)
            if detail is not None:
                await conn.execute(
                    "UPDATE job_events SET detail = ? WHERE id = (SELECT MAX(id) FROM job_events WHERE job_id = ?)",
                    (detail, job_id),
                )
            if (
                to is JobState.FAILED
                and charged is None
                and job.error_code == UNKNOWN_AT_MAGIC_HOUR
                and await ledger.reservation_row(conn, job_id)
            ):
                raise ValueError(f"job {job_id}: an unknown ending counts what the job held; give it as the charge")
            if to in _CLOSING_STATES and not (to is JobState.DONE and charged is None):
                outcome = await ledger.close_reservation(
                    conn, job_id, charged=charged, now=job.updated_at, note=to.value
                )
                if outcome is ledger.CloseOutcome.NO_RESERVATION and charged is not None:
                    raise NoReservation(job_id)
                if outcome is ledger.CloseOutcome.CLOSED and charged is not None:
                    job = job.model_copy(update={"charged_credits": charged})  # what the settle wrote
            return job

        return body

    async def update(self, job_id: int, **fields: object) -> JobRecord:
        """Set non-state fields (project id, credits, error, delivery, status message, ...); return the job as written.

        Fenced like `transition`: `LeaseLost` when another process has claimed the job or this
        process's claim is void, so a process that stalled past its heartbeat cannot write over
        the job of whoever took it over. `JobNotFound` if there is no such job.
        """
        checked = _checked_fields(fields)
        if not JOB_ID.contains(job_id):
            raise JobNotFound(job_id)
        for _ in range(_ATTEMPTS):
            sql, params = moves.update_statement(self._db.dialect, job_id, checked, self._db.now(), self.owner)
            row = moves.first(await self._db.write_one(sql, params))
            if row is not None:
                return _row_to_job(row)
            problem = await self._explain(job_id, None)
            if problem is not None:
                raise problem
        raise JobNotFound(job_id)

    async def _explain(self, job_id: int, to: JobState | None) -> Exception | None:
        """Why a checked write of the job changed nothing (see `moves.explain`); None if nothing stops it now."""

        async def body(conn: Connection) -> tuple[Row | None, bool]:
            row = await fetch_one(conn, "SELECT * FROM jobs WHERE id = ?", (job_id,))
            mine = await fetch_all(conn, "SELECT 1 FROM instances WHERE id = ?", (self.owner,))
            return row, bool(mine)

        row, registered = await self._db.read(body)
        job = None if row is None else _row_to_job(row)
        problem = moves.explain(job_id, job, self.owner, registered, to)
        if to is None and job is not None and isinstance(problem, InvalidTransition):
            return None  # an update someone else's write overtook: nothing forbids it, write it again
        if (
            isinstance(problem, InvalidTransition)
            and job is not None
            and to is not None
            and can_transition(job.state, to)
        ):
            return None  # a move another write overtook, allowed from the state it left: try it again
        return problem

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

        job = await self.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        if job.state.terminal:
            raise LeaseLost(job_id, job.claimed_by or "no process: it has ended")
        if job.claimed_by is None:
            return job
        if job.claimed_by != self.owner:
            raise LeaseLost(job_id, job.claimed_by)
        # One statement: the beat happens only if the job is still this process's and unfinished,
        # and this process's row still exists (a process that found it dead deletes the row only
        # at the count it saw, so after this beat it can't; before it, the beat finds no row).
        beaten = await self._db.write_one(
            "UPDATE instances SET beats = beats + 1, beat_at = ? WHERE id = ? AND EXISTS"  # noqa: S608 - constant
            f" (SELECT 1 FROM jobs WHERE id = ? AND claimed_by = ? AND state NOT IN {_TERMINAL_SQL}) RETURNING id",
            (self._db.now(), self.owner, job_id, self.owner),
        )
        if beaten:
            return job
        current = await self.get(job_id)
        if current is None:
            raise JobNotFound(job_id)
        if current.state.terminal:
            raise LeaseLost(job_id, current.claimed_by or "no process: it has ended")
        if current.claimed_by is not None and current.claimed_by != self.owner:
            raise LeaseLost(job_id, current.claimed_by)
        raise LeaseLost(job_id, "no process (this one was taken for dead)")

    async def get(self, job_id: int) -> JobRecord | None:
        """The job, or None if there is none with this id."""
        if not JOB_ID.contains(job_id):
            return None  # no such id can be stored
        row = moves.first(await self._db.fetch("SELECT * FROM jobs WHERE id = ?", (job_id,)))
        return None if row is None else _row_to_job(row)

    async def recent_for_member(self, guild_id: int | None, user_id: int, limit: int = 10) -> list[JobRecord]:
        """A member's latest jobs in one server (or on the command line), newest first."""
        rows = await self._db.fetch(
            "SELECT * FROM jobs WHERE guild_id IS NOT DISTINCT FROM ? AND user_id = ? ORDER BY id DESC LIMIT ?",
            (guild_id, user_id, limit),
        )
        return [_row_to_job(r) for r in rows]

    async def unfinished(self) -> list[JobRecord]:
        """Every job not yet done, failed or canceled, oldest first: what a restart reloads."""
        rows = await self._db.fetch(f"SELECT * FROM jobs WHERE state NOT IN {_TERMINAL_SQL} ORDER BY id")  # noqa: S608
        return [_row_to_job(r) for r in rows]

    async def for_guild(
        self, guild_id: int | None, since: dt.datetime | None = None, limit: int = 100
    ) -> list[JobRecord]:
        """A server's jobs created at or after `since`, newest first."""
        after = "" if since is None else " AND created_at >= ?"
        rows = await self._db.fetch(
            f"SELECT * FROM jobs WHERE guild_id IS NOT DISTINCT FROM ?{after} ORDER BY id DESC LIMIT ?",  # noqa: S608
            (guild_id, *([] if since is None else [since]), limit),
        )
        return [_row_to_job(r) for r in rows]

    async def active_count(self, guild_id: int | None, user_id: int) -> int:
        """How many of a member's jobs in this server are not yet finished."""
        sql = (
            "SELECT COUNT(*) FROM jobs WHERE guild_id IS NOT DISTINCT FROM ? AND user_id = ?"  # noqa: S608 - constants
            f" AND state NOT IN {_TERMINAL_SQL}"
        )
        rows = await self._db.fetch(sql, (guild_id, user_id))
        return int(rows[0][0])

    async def unknown_at_magic_hour(self, guild_id: int | None, since: dt.datetime) -> list[JobRecord]:
        """A server's jobs (None: the command line's) since `since` whose create outcome is unknown.

        They ended `failed` with `error_code=UNKNOWN_AT_MAGIC_HOUR` and count as charged what they
        reserved; managers see them in their usage report. Oldest first.
        """
        return await self._db.read(lambda conn: load_uncertain(conn, guild_id, since))

    async def events(self, job_id: int) -> list[JobEvent]:
        """Every state the job entered, with when, in order."""
        rows = await self._db.fetch(
            "SELECT job_id, state, at, detail FROM job_events WHERE job_id = ? ORDER BY id", (job_id,)
        )
        return [JobEvent(int(r["job_id"]), JobState(r["state"]), parse_ts(r["at"]), r["detail"]) for r in rows]
