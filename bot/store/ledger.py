"""Ledger SQL used inside other transactions: holding, closing, reconciling, and a window's sums.

Every function here runs on a connection the caller has already put in a transaction (see
`Database.write`/`read`); none of them begins or commits. Signs: see `bot.store.models`.

Member sums take the member's token too (`bot.store.forget`): a deleted member's usage in the
running window is kept under it and must keep counting against them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from enum import Enum

from bot.config import GenerationMode
from bot.store import totals
from bot.store.db import LEDGER_LOCK, Connection, Row, fetch_all, fetch_int, fetch_one, parse_ts
from bot.store.models import TERMINAL_STATES, LedgerEntry, LedgerKind
from bot.store.totals import TotalsRow

_TERMINAL_SQL = "(" + ", ".join(f"'{state.value}'" for state in sorted(TERMINAL_STATES)) + ")"
_ACTIVE_JOBS_SQL = (
    f"SELECT COUNT(*) FROM jobs AS j WHERE j.state NOT IN {_TERMINAL_SQL}"  # noqa: S608 - constants only
    " AND j.guild_id IS NOT DISTINCT FROM ? AND j.user_id = ? AND j.id <> ?"
    " AND EXISTS (SELECT 1 FROM ledger AS r WHERE r.job_id = j.id AND r.kind = 'reserve')"
)


def entry(row: Row) -> LedgerEntry:
    """A ledger row as a `LedgerEntry`."""
    return LedgerEntry(
        id=int(row["id"]),
        kind=LedgerKind(row["kind"]),
        job_id=row["job_id"],
        guild_id=row["guild_id"],
        user_id=row["user_id"],
        mode=GenerationMode(row["mode"]) if row["mode"] is not None else None,
        amount=int(row["amount"]),
        charged=row["charged"],
        period_at=parse_ts(row["period_at"]),
        at=parse_ts(row["at"]),
        by_user_id=row["by_user_id"],
        note=row["note"],
    )


class CloseOutcome(Enum):
    """What `close_reservation` found."""

    CLOSED = "closed"  # this call wrote the settle or refund row
    ALREADY_CLOSED = "already_closed"  # an earlier call did; nothing changed
    NO_RESERVATION = "no_reservation"  # the job never reserved; nothing changed


async def reservation_row(conn: Connection, job_id: int) -> Row | None:
    """The job's reserve row, if it has one."""
    return await fetch_one(conn, "SELECT * FROM ledger WHERE job_id = ? AND kind = 'reserve'", (job_id,))


async def closing_row(conn: Connection, job_id: int) -> Row | None:
    """The job's settle or refund row, if it has one."""
    return await fetch_one(conn, "SELECT * FROM ledger WHERE job_id = ? AND kind IN ('settle', 'refund')", (job_id,))


async def held(conn: Connection, job_id: int) -> int:
    """What the job holds in total: its reservation plus its top-ups (as a positive number)."""
    return await fetch_int(
        conn,
        "SELECT COALESCE(-SUM(amount), 0) FROM ledger WHERE job_id = ? AND kind IN ('reserve', 'topup')",
        (job_id,),
    )


@dataclass(frozen=True, slots=True)
class Hold:
    """Credits set aside for a job: its reservation, or a top-up counting in the reservation's window."""

    kind: LedgerKind  # RESERVE or TOPUP
    job_id: int
    guild_id: int | None
    user_id: int
    mode: str | None
    credits: int  # how many, as a positive number (the row records it as usage)
    period_at: dt.datetime  # decides the window it counts in


async def hold(conn: Connection, hold: Hold, *, now: dt.datetime, totals_key: str | None = None) -> None:
    """Write a `reserve` or `topup` row and add it to the running totals.

    The one place hold rows are written; the caller (`QuotaLedger.reserve`, `top_up`) has checked
    every limit in the same transaction, holding the ledger lock shared. `totals_key`: the totals'
    window rule if the caller has read it in this transaction.
    """
    if hold.kind not in (LedgerKind.RESERVE, LedgerKind.TOPUP):
        raise ValueError(f"a {hold.kind.value} row holds nothing")
    if hold.credits < 0:
        raise ValueError("a hold cannot be negative")
    row = TotalsRow(hold.kind, hold.guild_id, hold.user_id, -hold.credits, None, hold.period_at)
    await conn.execute(
        "INSERT INTO ledger (kind, job_id, guild_id, user_id, mode, amount, period_at, at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (hold.kind.value, hold.job_id, hold.guild_id, hold.user_id, hold.mode, row.amount, hold.period_at, now),
    )
    await totals.record(conn, [row], key=totals_key)


async def close_reservation(
    conn: Connection,
    job_id: int,
    *,
    charged: int | None,
    now: dt.datetime,
    note: str | None = None,
) -> CloseOutcome:
    """Settle a job's reservation to `charged`, or refund it (`charged` None), once (`transition`'s ledger part).

    The amount is computed against everything the job holds (reservation plus top-ups). The check
    and the insert run in the caller's write transaction, so no other writer can slip a second
    close in between; the unique index `ledger_one_close` backs that up at the schema level. A
    settle also records `charged_credits` on the job, and the row is added to the running totals.
    Returns `CLOSED` when this call wrote the row, `ALREADY_CLOSED` or `NO_RESERVATION` when
    nothing changed; raises `ValueError` for a negative `charged`. Only `JobStore.transition`
    calls this.
    """
    reserve = await reservation_row(conn, job_id)
    if reserve is None:
        return CloseOutcome.NO_RESERVATION
    await conn.lock(shared=[LEDGER_LOCK])  # the totals below must not interleave with their rebuild
    if await closing_row(conn, job_id) is not None:
        return CloseOutcome.ALREADY_CLOSED
    total = await held(conn, job_id)
    if charged is None:
        kind, amount = LedgerKind.REFUND, total
    else:
        if charged < 0:
            raise ValueError("charged credits cannot be negative")
        # Negative when Magic Hour charged more than was held: recorded, never refused.
        kind, amount = LedgerKind.SETTLE, total - charged
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
            charged,
            reserve["period_at"],  # counts in the window where the reservation was made
            now,
            note,
        ),
    )
    closing = TotalsRow(kind, reserve["guild_id"], reserve["user_id"], amount, charged, parse_ts(reserve["period_at"]))
    await totals.record(conn, [closing])
    if charged is not None:
        await conn.execute("UPDATE jobs SET charged_credits = ?, updated_at = ? WHERE id = ?", (charged, now, job_id))
    return CloseOutcome.CLOSED


async def reconcile_row(conn: Connection, job_id: int) -> Row | None:
    """The job's reconcile row, if it has one."""
    return await fetch_one(conn, "SELECT * FROM ledger WHERE job_id = ? AND kind = 'reconcile'", (job_id,))


async def net_charge(conn: Connection, job_id: int) -> int:
    """What the job's rows add up to as usage: held while open, its charge once closed (and reconciled)."""
    return await fetch_int(conn, "SELECT COALESCE(-SUM(amount), 0) FROM ledger WHERE job_id = ?", (job_id,))


_MEMBER_SUMS_SQL = (
    "SELECT COALESCE(-SUM(CASE WHEN l.kind <> 'grant' THEN l.amount END), 0) AS used,"
    " COALESCE(SUM(CASE WHEN l.kind = 'grant' THEN l.amount END), 0) AS granted,"
    " COALESCE(-SUM(CASE WHEN l.kind IN ('reserve', 'topup') AND l.job_id IS NOT NULL AND NOT EXISTS"
    "   (SELECT 1 FROM ledger AS c WHERE c.job_id = l.job_id AND c.kind IN ('settle', 'refund'))"
    "   THEN l.amount END), 0) AS reserved"
    " FROM ledger AS l WHERE l.guild_id IS NOT DISTINCT FROM ? AND l.user_id IN (?, ?)"
    " AND l.period_at >= ? AND l.period_at < ?"
)
_GUILD_USED_SQL = (
    "SELECT COALESCE(-SUM(amount), 0) FROM ledger"
    " WHERE guild_id = ? AND period_at >= ? AND period_at < ? AND kind <> 'grant'"
)
_BOT_USED_SQL = (
    "SELECT COALESCE(-SUM(amount), 0) FROM ledger WHERE period_at >= ? AND period_at < ? AND kind <> 'grant'"
)


@dataclass(frozen=True, slots=True)
class WindowSums:
    """What the ledger says about one member's window, read in one statement."""

    used: int  # the member's usage (their id and their token), grants aside
    granted: int  # the member's grants
    reserved: int  # what their open reservations and top-ups hold
    active: int  # their unfinished jobs holding a reservation (one job left out, see `totals_query`)
    guild_used: int | None  # the server's usage, every member; None when not asked for
    bot_used: int | None  # usage across every server and the command line; None when not asked for
    totals_key: str | None = None  # the totals' window rule when read from them; None when summed
    reserve_id: int | None = None  # the ledger id of `of_job`'s reservation, if it has one


_RESERVE_ID_SQL = "SELECT r.id FROM ledger AS r WHERE r.job_id = ? AND r.kind = 'reserve'"
_TOTALS_SQL = (
    f"SELECT w.window_key, m.used, m.granted, m.reserved, ({_ACTIVE_JOBS_SQL}) AS active,"  # noqa: S608 - constants
    f" ({_RESERVE_ID_SQL}) AS reserve_id,"
    " (SELECT COALESCE(SUM(g.used), 0) FROM ledger_totals AS g WHERE g.scope = ? AND g.window_start = ?) AS guild_used,"
    " (SELECT COALESCE(SUM(b.used), 0) FROM ledger_totals AS b WHERE b.scope = ? AND b.window_start = ?) AS bot_used"
    " FROM ledger_totals_window AS w, (SELECT COALESCE(SUM(t.used), 0) AS used,"
    " COALESCE(SUM(t.granted), 0) AS granted, COALESCE(SUM(t.reserved), 0) AS reserved"
    " FROM ledger_totals AS t WHERE t.scope IN (?, ?) AND t.window_start = ?) AS m"
)


def totals_query(
    guild_id: int | None, user_ids: tuple[int, int], start: dt.datetime, *, exclude_job_id: int, of_job: int
) -> tuple[str, tuple[object, ...]]:
    """The one statement (SQL, parameters) that reads a member's window from the running totals.

    Its row: the totals' `window_key`, the member's `used`, `granted` and `reserved` (their id and
    their token, `bot.store.forget`), `active` jobs (only jobs that reserved count, so two requests
    made at once do not refuse each other; `exclude_job_id` leaves one out), `reserve_id` (whether
    `of_job` reserved), and `guild_used` and `bot_used` for the pool and the budget. Read it with
    `sums_from_totals`; `bot.store.effective` joins it to the member's limits.
    """
    guild = totals.guild_scope(guild_id) if guild_id is not None else ""
    members = (totals.member_scope(guild_id, user_ids[0]), totals.member_scope(guild_id, user_ids[1]))
    params = (guild_id, user_ids[0], exclude_job_id, of_job, guild, start, totals.BOT_SCOPE, start, *members, start)
    return _TOTALS_SQL, params


def sums_from_totals(row: Row, totals_key: str) -> WindowSums | None:
    """A `totals_query` row as `WindowSums`; None when the totals are kept for another window rule."""
    if row["window_key"] != totals_key:
        return None
    return WindowSums(
        used=int(row["used"]),
        granted=int(row["granted"]),
        reserved=int(row["reserved"]),
        active=int(row["active"]),
        guild_used=int(row["guild_used"]),
        bot_used=int(row["bot_used"]),
        totals_key=totals_key,
        reserve_id=None if row["reserve_id"] is None else int(row["reserve_id"]),
    )


async def summed_sums(
    conn: Connection,
    guild_id: int | None,
    user_ids: tuple[int, int],
    window: tuple[dt.datetime, dt.datetime],
    *,
    exclude_job_id: int,
    of_job: int,
) -> WindowSums:
    """What `totals_query` reads, summed from the ledger's rows instead (totals kept for another rule)."""
    summed = await _summed(conn, guild_id, user_ids, window, exclude_job_id, pool_of=guild_id, bot=True)
    reserve = await reservation_row(conn, of_job)
    return dataclasses.replace(summed, reserve_id=None if reserve is None else int(reserve["id"]))


async def _summed(
    conn: Connection,
    guild_id: int | None,
    user_ids: tuple[int, int],
    window: tuple[dt.datetime, dt.datetime],
    exclude_job_id: int,
    *,
    pool_of: int | None,
    bot: bool,
) -> WindowSums:
    """`totals_query`'s figures summed from the ledger's rows, for when the totals are kept for another rule."""
    start, end = window
    columns = [f"({_ACTIVE_JOBS_SQL}) AS active"]
    params: list[object] = [guild_id, user_ids[0], exclude_job_id]
    if pool_of is not None:
        columns.append(f"({_GUILD_USED_SQL}) AS guild_used")
        params += [pool_of, start, end]
    if bot:
        columns.append(f"({_BOT_USED_SQL}) AS bot_used")
        params += [start, end]
    rows = await fetch_all(
        conn,
        f"SELECT m.used, m.granted, m.reserved, {', '.join(columns)} FROM ({_MEMBER_SUMS_SQL}) AS m",  # noqa: S608
        (*params, guild_id, *user_ids, start, end),
    )
    row = rows[0]  # an aggregate always returns a row
    return WindowSums(
        used=int(row["used"]),
        granted=int(row["granted"]),
        reserved=int(row["reserved"]),
        active=int(row["active"]),
        guild_used=None if pool_of is None else int(row["guild_used"]),
        bot_used=int(row["bot_used"]) if bot else None,
    )
