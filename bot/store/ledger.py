"""Ledger SQL used inside other transactions: closing a reservation, and a window's sums.

Every function here runs on a connection the caller has already put in a transaction (see
`Database.write`/`read`); none of them begins or commits. Signs: see `bot.store.models`.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from enum import Enum

import aiosqlite

from bot.store.db import fetch_int, fetch_one, ts
from bot.store.models import TERMINAL_STATES, LedgerKind

_TERMINAL_SQL = "(" + ", ".join(f"'{state.value}'" for state in sorted(TERMINAL_STATES)) + ")"
_ACTIVE_JOBS_SQL = (
    f"SELECT COUNT(*) FROM jobs AS j WHERE j.state NOT IN {_TERMINAL_SQL}"  # noqa: S608 - constants only
    " AND j.guild_id IS ? AND j.user_id = ? AND j.id <> ?"
    " AND EXISTS (SELECT 1 FROM ledger AS r WHERE r.job_id = j.id AND r.kind = 'reserve')"
)


class CloseOutcome(Enum):
    """What `close_reservation` found."""

    CLOSED = "closed"  # this call wrote the settle or refund row
    ALREADY_CLOSED = "already_closed"  # an earlier call did; nothing changed
    NO_RESERVATION = "no_reservation"  # the job never reserved; nothing changed


async def reservation_row(conn: aiosqlite.Connection, job_id: int) -> sqlite3.Row | None:
    """The job's reserve row, if it has one."""
    return await fetch_one(conn, "SELECT * FROM ledger WHERE job_id = ? AND kind = 'reserve'", (job_id,))


async def closing_row(conn: aiosqlite.Connection, job_id: int) -> sqlite3.Row | None:
    """The job's settle or refund row, if it has one."""
    return await fetch_one(conn, "SELECT * FROM ledger WHERE job_id = ? AND kind IN ('settle', 'refund')", (job_id,))


async def close_reservation(
    conn: aiosqlite.Connection,
    job_id: int,
    *,
    charged: int | None,
    now: dt.datetime,
    settle_to_reserved: bool = False,
    note: str | None = None,
) -> CloseOutcome:
    """Settle (`charged` given, or `settle_to_reserved`) or refund (neither) a job's reservation, once.

    The check and the insert run in the caller's write transaction, so no other writer can slip a
    second close in between; the unique index `ledger_one_close` backs that up at the schema level.
    A settle also records `charged_credits` on the job.
    """
    reserve = await reservation_row(conn, job_id)
    if reserve is None:
        return CloseOutcome.NO_RESERVATION
    if await closing_row(conn, job_id) is not None:
        return CloseOutcome.ALREADY_CLOSED
    reserved = -int(reserve["amount"])
    if charged is None and not settle_to_reserved:
        kind, amount, charged_value = LedgerKind.REFUND, reserved, None
    else:
        charged_value = reserved if charged is None else charged
        if charged_value < 0:
            raise ValueError("charged credits cannot be negative")
        # Negative when Magic Hour charged more than was reserved: the member pays the difference.
        kind, amount = LedgerKind.SETTLE, reserved - charged_value
    await conn.execute(
        "INSERT INTO ledger (kind, job_id, guild_id, user_id, mode, amount, charged, period_at, at, note)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            kind.value,
            job_id,
            reserve["guild_id"],
            reserve["user_id"],
            reserve["mode"],
            amount,
            charged_value,
            reserve["period_at"],  # counts in the window where the reservation was made
            ts(now),
            note,
        ),
    )
    if charged_value is not None:
        await conn.execute(
            "UPDATE jobs SET charged_credits = ?, updated_at = ? WHERE id = ?", (charged_value, ts(now), job_id)
        )
    return CloseOutcome.CLOSED


async def member_sums(
    conn: aiosqlite.Connection, guild_id: int | None, user_id: int, since: dt.datetime
) -> tuple[int, int]:
    """(used, granted) for one member in one server since `since`."""
    row = await fetch_one(
        conn,
        "SELECT COALESCE(-SUM(CASE WHEN kind <> 'grant' THEN amount END), 0),"
        " COALESCE(SUM(CASE WHEN kind = 'grant' THEN amount END), 0)"
        " FROM ledger WHERE guild_id IS ? AND user_id = ? AND period_at >= ?",
        (guild_id, user_id, ts(since)),
    )
    assert row is not None  # an aggregate always returns a row
    return int(row[0]), int(row[1])


async def guild_used(conn: aiosqlite.Connection, guild_id: int, since: dt.datetime) -> int:
    """Credits used in one server since `since` (every member, deleted ones included)."""
    return await fetch_int(
        conn,
        "SELECT COALESCE(-SUM(amount), 0) FROM ledger WHERE guild_id = ? AND period_at >= ? AND kind <> 'grant'",
        (guild_id, ts(since)),
    )


async def bot_used(conn: aiosqlite.Connection, since: dt.datetime) -> int:
    """Credits used across every server and the command line since `since`."""
    return await fetch_int(
        conn,
        "SELECT COALESCE(-SUM(amount), 0) FROM ledger WHERE period_at >= ? AND kind <> 'grant'",
        (ts(since),),
    )


async def member_in_flight(conn: aiosqlite.Connection, guild_id: int | None, user_id: int, since: dt.datetime) -> int:
    """Credits held by a member's open reservations made since `since`."""
    return await fetch_int(
        conn,
        "SELECT COALESCE(-SUM(r.amount), 0) FROM ledger AS r"
        " WHERE r.guild_id IS ? AND r.user_id = ? AND r.period_at >= ? AND r.kind = 'reserve'"
        " AND NOT EXISTS (SELECT 1 FROM ledger AS c WHERE c.job_id = r.job_id AND c.kind IN ('settle', 'refund'))",
        (guild_id, user_id, ts(since)),
    )


async def active_jobs(conn: aiosqlite.Connection, guild_id: int | None, user_id: int, exclude_job_id: int) -> int:
    """A member's unfinished jobs in this server that have reserved credits, other than one.

    Jobs still being validated (no reservation yet) do not count, so two requests made at once do
    not refuse each other; the reservation itself is what takes an active-job slot.
    """
    return await fetch_int(conn, _ACTIVE_JOBS_SQL, (guild_id, user_id, exclude_job_id))
