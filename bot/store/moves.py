"""A job's row changed in one statement that also checks it: its state moves and field updates.

A state change is one `UPDATE … RETURNING *` whose WHERE holds every check that used to be a read
before the write: the job is in a state the move is allowed from, and this process may act on it
(nobody claimed it, or this process did and its row in `instances` still exists). The database
writes the move's event itself (a trigger, migration `job_event_triggers`). Check and write being
one statement, no other writer can come in between. When the statement changes nothing, `explain`
reads the row once to say why: no such job, not this process's job, or not a move its state allows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from bot.store.db import Dialect, Row, key_share
from bot.store.errors import InvalidTransition, JobNotFound, LeaseLost
from bot.store.models import JobRecord, JobState, can_transition

# Who may write a job: nobody claimed it, or this process did and is still registered. Two
# parameters: this process's id, twice.
_MAY_WRITE = "(claimed_by IS NULL OR (claimed_by = ? AND EXISTS (SELECT 1 FROM instances WHERE id = ?{share})))"
# A job may be done only once its reservation, if any, was closed (settled, when it rendered).
_SETTLED_IF_HELD = (
    " AND (NOT EXISTS (SELECT 1 FROM ledger AS r WHERE r.job_id = jobs.id AND r.kind = 'reserve')"
    " OR EXISTS (SELECT 1 FROM ledger AS c WHERE c.job_id = jobs.id AND c.kind IN ('settle', 'refund')))"
)


def may_write(dialect: Dialect) -> str:
    """The WHERE condition that this process may write a job (two parameters: its id, twice)."""
    return _MAY_WRITE.format(share=key_share(dialect))


def predecessors(to: JobState) -> list[str]:
    """The states a job may move to `to` from, as stored."""
    return sorted(state.value for state in JobState if can_transition(state, to))


def move_statement(
    dialect: Dialect,
    job_id: int,
    to: JobState,
    fields: Mapping[str, object],
    now: dt.datetime,
    owner: str,
    *,
    require_settled: bool = False,
) -> tuple[str, tuple[object, ...]]:
    """The checked UPDATE that moves a job to `to` with `fields`, and its parameters.

    The stored request is dropped with any move: only a job in `received` (which no move enters)
    keeps one. `require_settled`: only if the job's reservation, if any, was closed.
    """
    values = {**fields, "request": None, "state": to.value}
    assignments = ", ".join(f"{name} = ?" for name in values)
    allowed = predecessors(to)
    # No state leads to `received`: a move there matches no row (and is explained as refused).
    from_states = f"state IN ({', '.join('?' for _ in allowed)})" if allowed else "1 = 0"
    sql = (
        f"UPDATE jobs SET {assignments}, updated_at = ?"  # noqa: S608 - names from the allowlist
        f" WHERE id = ? AND {from_states} AND {may_write(dialect)}"
        f"{_SETTLED_IF_HELD if require_settled else ''} RETURNING *"
    )
    return sql, (*values.values(), now, job_id, *allowed, owner, owner)


def update_statement(
    dialect: Dialect, job_id: int, fields: Mapping[str, object], now: dt.datetime, owner: str
) -> tuple[str, tuple[object, ...]]:
    """The UPDATE that sets `fields` on a job this process may write, and its parameters."""
    assignments = "".join(f"{name} = ?, " for name in fields)
    sql = f"UPDATE jobs SET {assignments}updated_at = ? WHERE id = ? AND {may_write(dialect)} RETURNING *"  # noqa: S608
    return sql, (*fields.values(), now, job_id, owner, owner)


def explain(job_id: int, row: JobRecord | None, owner: str, registered: bool, to: JobState | None) -> Exception:
    """Why a checked write of job `job_id` changed nothing, from a fresh read of its row.

    `registered`: whether this process's row in `instances` exists. `to`: the state of a move
    (None for an update). Returns the error to raise: `JobNotFound`, `LeaseLost`,
    `InvalidTransition`, or, for a move its state allows by someone who may make it, a `ValueError`
    (only a `done` whose reservation is still open is refused so).
    """
    if row is None:
        return JobNotFound(job_id)
    if row.claimed_by is not None and row.claimed_by != owner:
        return LeaseLost(job_id, row.claimed_by)
    if row.claimed_by is not None and not registered:
        return LeaseLost(job_id, "no process (this one was taken for dead)")
    if to is not None and not can_transition(row.state, to):
        return InvalidTransition(job_id, row.state.value, to.value)
    if to is JobState.DONE:
        return ValueError(f"job {job_id} can only be done once its render was settled")
    # Changed between the write and this read (another writer got there first): say what it is now.
    return InvalidTransition(job_id, row.state.value, to.value if to is not None else row.state.value)


def first(rows: list[Row]) -> Row | None:
    """The first row, or None."""
    return rows[0] if rows else None
