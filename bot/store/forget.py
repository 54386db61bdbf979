"""Deleting a member's data without giving them back what they spent.

Rows of windows that have ended are anonymised at once; rows of the window still running (usage
and grants) move to a one-way token, an HMAC of (server, member) under a per-database secret,
mapped to a negative integer so it never collides with a Discord id, and still count against the
member, the pool and the budget. `sweep` anonymises token rows once their window has ended (run
by every reservation, every deletion, and `Store.sweep_forgotten` at start). Limits a manager set
stay. docs/design-notes.md, "Quota", gives the reasons.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

from bot.store import totals
from bot.store.db import Connection, fetch_all, fetch_one
from bot.store.errors import MemberHasActiveJobs, StoreError
from bot.store.models import TERMINAL_STATES, DeletionReport

_TERMINAL_SQL = "(" + ", ".join(f"'{state.value}'" for state in sorted(TERMINAL_STATES)) + ")"
_TOKEN_BYTES = 7  # 56 bits: the token lies in [-2**56, -1], well inside SQLite's 64-bit integers


async def load_secret(conn: Connection) -> bytes:
    """The database's token secret (written once by migration 0003)."""
    row = await fetch_one(conn, "SELECT value FROM store_secrets WHERE name = 'member_token'")
    if row is None:
        raise StoreError("the database has no member-token secret; was migration 0003 applied?")
    return bytes(row[0])


def member_token(secret: bytes, guild_id: int | None, user_id: int) -> int:
    """The negative one-way token under which a deleted member's current-window rows keep counting."""
    scope = "-" if guild_id is None else str(guild_id)
    digest = hmac.new(secret, f"{scope}:{user_id}".encode(), hashlib.sha256).digest()
    return -1 - int.from_bytes(digest[:_TOKEN_BYTES], "big")


async def sweep(conn: Connection, window_start: dt.datetime) -> int:
    """Anonymise token rows of windows that ended before `window_start`; return how many rows changed.

    Their usage rows lose the token (`user_id` NULL) and stay for server totals; their grants,
    which only ever raised that member's allowance in that window, are deleted.
    """
    cutoff = window_start
    before = await totals.ledger_rows(conn, "user_id < 0 AND period_at < ?", (cutoff,))
    if not before:
        return 0
    anonymised = await conn.execute(
        "UPDATE ledger SET user_id = NULL WHERE user_id < 0 AND period_at < ? AND kind <> 'grant'", (cutoff,)
    )
    grants = await conn.execute("DELETE FROM ledger WHERE user_id < 0 AND period_at < ? AND kind = 'grant'", (cutoff,))
    await totals.recount(conn, before)
    return anonymised + grants


async def delete_member(
    conn: Connection,
    secret: bytes,
    guild_id: int | None,
    user_id: int,
    window_start: dt.datetime,
    window_end: dt.datetime,
) -> DeletionReport:
    """`Store.delete_member_data`'s work, inside the caller's write transaction."""
    scope = "" if guild_id is None else " AND guild_id = ?"
    args: tuple[int, ...] = (user_id,) if guild_id is None else (user_id, guild_id)
    running = await fetch_all(
        conn,
        f"SELECT id FROM jobs WHERE user_id = ?{scope} AND state NOT IN {_TERMINAL_SQL} ORDER BY id",  # noqa: S608
        args,
    )
    if running:
        raise MemberHasActiveJobs(user_id, [int(r[0]) for r in running])
    await sweep(conn, window_start)
    cutoff = window_start
    before = await totals.ledger_rows(conn, f"user_id = ?{scope}", args)

    # Ended windows: anonymise usage, delete grants. Before deleting jobs: ledger.job_id is
    # ON DELETE RESTRICT, so a job with attributed usage cannot be deleted by mistake.
    anonymised = await conn.execute(
        f"UPDATE ledger SET user_id = NULL, job_id = NULL, note = NULL"  # noqa: S608
        f" WHERE user_id = ?{scope} AND kind <> 'grant' AND period_at < ?",
        (*args, cutoff),
    )
    grants = await conn.execute(
        f"DELETE FROM ledger WHERE kind = 'grant' AND user_id = ?{scope} AND period_at < ?",  # noqa: S608
        (*args, cutoff),
    )
    # The running window: the same rows keep counting, under the member's token in each server.
    kept = 0
    guilds = await fetch_all(
        conn,
        f"SELECT DISTINCT guild_id FROM ledger WHERE user_id = ?{scope} AND period_at >= ?",  # noqa: S608
        (*args, cutoff),
    )
    for row in guilds:
        guild = row[0]
        kept += await conn.execute(
            "UPDATE ledger SET user_id = ?, job_id = NULL, note = NULL"
            " WHERE user_id = ? AND guild_id IS NOT DISTINCT FROM ? AND period_at >= ?",
            (member_token(secret, guild, user_id), user_id, guild, cutoff),
        )

    await totals.recount(conn, before)
    await conn.execute(f"UPDATE ledger SET by_user_id = NULL WHERE by_user_id = ?{scope}", args)  # noqa: S608
    jobs = await conn.execute(f"DELETE FROM jobs WHERE user_id = ?{scope}", args)  # noqa: S608
    # Their own preferences go too (unlike a manager's limits on them, below).
    settings = await conn.execute(f"DELETE FROM member_settings WHERE user_id = ?{scope}", args)  # noqa: S608
    limits = await fetch_one(conn, f"SELECT COUNT(*) FROM member_limits WHERE user_id = ?{scope}", args)  # noqa: S608
    await conn.execute(f"UPDATE member_limits SET set_by = NULL WHERE set_by = ?{scope}", args)  # noqa: S608
    await conn.execute(f"UPDATE role_limits SET set_by = NULL WHERE set_by = ?{scope}", args)  # noqa: S608
    return DeletionReport(
        jobs_deleted=jobs,
        ledger_rows_anonymised=anonymised,
        ledger_rows_kept=kept,
        grants_deleted=grants,
        limits_kept=0 if limits is None else int(limits[0]),
        usage_kept_until=window_end if kept else None,
        settings_deleted=settings,
    )
