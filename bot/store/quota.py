"""The credit ledger: reserve against every limit at once, settle or refund once, grant, report.

Sign convention and window rules are in `bot.store.models`. Reach this as `store.quota`.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import aiosqlite

from bot.clock import Clock
from bot.config import GenerationMode, QuotaWindow
from bot.store import ledger
from bot.store.db import Database, fetch_all, parse_ts, ts
from bot.store.errors import JobNotActive, NoReservation
from bot.store.jobs import load_job
from bot.store.limits import load_guild_settings, resolve_allowance
from bot.store.models import (
    Balance,
    LedgerEntry,
    LedgerKind,
    LimitKind,
    QuotaPolicy,
    Refusal,
    Reservation,
    UsageLine,
    UsageReport,
)
from bot.store.windows import discord_timestamp, window_bounds, window_phrase


def _entry(row: sqlite3.Row) -> LedgerEntry:
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


def _credits(n: int) -> str:
    return f"{n} credit" if n == 1 else f"{n} credits"


def refusal_message(
    limit: LimitKind,
    available: int,
    requested: int,
    resets_at: dt.datetime | None,
    window: QuotaWindow,
    *,
    max_active: int = 1,
) -> str:
    """The plain-words explanation a member sees for a refusal."""
    when = window_phrase(window)
    reset = f" {discord_timestamp(resets_at)}" if resets_at is not None else ""
    if limit is LimitKind.ACTIVE_JOBS:
        jobs = "1 job" if max_active == 1 else f"{max_active} jobs"
        return (
            f"You already have {jobs} running, the most allowed at once. "
            "Wait for one to finish, or cancel it, then try again."
        )
    if limit is LimitKind.SERVER_POOL:
        return (
            f"This server has {_credits(available)} left {when}; this clip needs {requested}. "
            f"The server's allowance resets{reset}."
        )
    if limit is LimitKind.BOT_BUDGET:
        return (
            f"The bot has {_credits(available)} left in its budget {when}; this clip needs {requested}. "
            f"The budget resets{reset}."
        )
    return f"You have {_credits(available)} left {when}; this clip needs {requested}. Your allowance resets{reset}."


@dataclass(frozen=True, slots=True)
class _Check:
    limit: LimitKind
    available: int


class QuotaLedger:
    """Reservations, settlements, refunds, grants and adjustments, as ledger rows."""

    def __init__(self, db: Database, policy: QuotaPolicy, clock: Clock) -> None:
        self._db = db
        self._policy = policy
        self._clock = clock

    @property
    def policy(self) -> QuotaPolicy:
        """The bot-wide defaults this ledger applies."""
        return self._policy

    def window(self, now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
        """The current window `[start, end)`; `end` is the next reset, for display."""
        return window_bounds(now or self._clock.now(), self._policy.window, self._policy.reset_time)

    async def reserve(
        self, job_id: int, *, guild_id: int | None, user_id: int, role_ids: Sequence[int], amount: int
    ) -> Reservation | Refusal:
        """Set `amount` credits aside for a job if every limit allows it, in one `BEGIN IMMEDIATE`.

        Checks, in that transaction: the member's active-job limit (server override, else the
        bot's), the member's allowance (plus grants) for the window, the server pool and the
        bot-wide budget. If several credit limits refuse, the refusal names the tightest. A job
        that already reserved gets its existing reservation back (`already_reserved=True`); a
        finished job raises `JobNotActive`. `guild_id` and `user_id` must match the job's.
        """
        if amount < 0:
            raise ValueError("a reservation cannot be negative")
        policy = self._policy

        async def body(conn: aiosqlite.Connection) -> Reservation | Refusal:
            now = self._clock.now()
            start, end = window_bounds(now, policy.window, policy.reset_time)
            job = await load_job(conn, job_id)
            if (job.guild_id, job.user_id) != (guild_id, user_id):
                raise ValueError(f"job {job_id} belongs to member {job.user_id} in server {job.guild_id}")
            if job.terminal:
                raise JobNotActive(job_id, job.state.value)
            existing = await ledger.reservation_row(conn, job_id)
            settings = await load_guild_settings(conn, guild_id)
            allowance, source = await resolve_allowance(conn, policy, guild_id, user_id, role_ids, settings)
            used, granted = await ledger.member_sums(conn, guild_id, user_id, start)
            if existing is not None:
                return Reservation(
                    job_id=job_id,
                    amount=-int(existing["amount"]),
                    reserved_at=parse_ts(existing["at"]),
                    resets_at=window_bounds(parse_ts(existing["period_at"]), policy.window, policy.reset_time)[1],
                    remaining=max(0, allowance + granted - used),
                    already_reserved=True,
                )

            max_active = (
                settings.max_active_jobs
                if settings is not None and settings.max_active_jobs is not None
                else policy.max_active_jobs_per_member
            )
            active = await ledger.active_jobs(conn, guild_id, user_id, job_id)
            if active >= max_active:
                return Refusal(
                    limit=LimitKind.ACTIVE_JOBS,
                    available=0,
                    requested=1,
                    resets_at=None,
                    user_message=refusal_message(
                        LimitKind.ACTIVE_JOBS, 0, 1, None, policy.window, max_active=max_active
                    ),
                )

            checks = [_Check(source, allowance + granted - used)]
            if settings is not None and settings.pool_credits is not None:
                checks.append(
                    _Check(
                        LimitKind.SERVER_POOL,
                        settings.pool_credits - await ledger.guild_used(conn, settings.guild_id, start),
                    )
                )
            if policy.bot_budget_credits is not None:
                checks.append(
                    _Check(LimitKind.BOT_BUDGET, policy.bot_budget_credits - await ledger.bot_used(conn, start))
                )
            failing = [c for c in checks if amount > 0 and amount > c.available]
            if failing:
                # min() keeps the first of equals: the member's own limit, then pool, then budget.
                worst = min(failing, key=lambda c: c.available)
                available = max(0, worst.available)
                return Refusal(
                    limit=worst.limit,
                    available=available,
                    requested=amount,
                    resets_at=end,
                    user_message=refusal_message(worst.limit, available, amount, end, policy.window),
                )

            await conn.execute(
                "INSERT INTO ledger (kind, job_id, guild_id, user_id, mode, amount, period_at, at)"
                " VALUES ('reserve', ?, ?, ?, ?, ?, ?, ?)",
                (job_id, guild_id, user_id, job.mode.value, -amount, ts(now), ts(now)),
            )
            await conn.execute(
                "UPDATE jobs SET estimated_credits = ?, updated_at = ? WHERE id = ?", (amount, ts(now), job_id)
            )
            return Reservation(
                job_id=job_id,
                amount=amount,
                reserved_at=now,
                resets_at=end,
                remaining=max(0, checks[0].available - amount),
            )

        return await self._db.write(body)

    async def settle(self, job_id: int, charged: int) -> bool:
        """Close the job's reservation at what the render actually cost; True if this call did it.

        At most one settle or refund ever takes effect per job: a second call (or a settle after a
        refund) changes nothing and returns False. `charged` above the reserved amount is recorded
        and counts in full (the member's balance may go below zero). Raises `NoReservation` for a
        job that never reserved, since a charge with nothing to settle against is a bug to surface.
        """
        if charged < 0:
            raise ValueError("charged credits cannot be negative")

        async def body(conn: aiosqlite.Connection) -> bool:
            await load_job(conn, job_id)
            outcome = await ledger.close_reservation(conn, job_id, charged=charged, now=self._clock.now())
            if outcome is ledger.CloseOutcome.NO_RESERVATION:
                raise NoReservation(job_id)
            return outcome is ledger.CloseOutcome.CLOSED

        return await self._db.write(body)

    async def refund(self, job_id: int, *, note: str | None = None) -> bool:
        """Give the whole reservation back; True if this call did it.

        Idempotent like `settle`; a job that never reserved simply returns False.
        """

        async def body(conn: aiosqlite.Connection) -> bool:
            await load_job(conn, job_id)
            outcome = await ledger.close_reservation(conn, job_id, charged=None, now=self._clock.now(), note=note)
            return outcome is ledger.CloseOutcome.CLOSED

        return await self._db.write(body)

    async def grant(
        self, guild_id: int | None, user_id: int, amount: int, by_user_id: int | None = None, note: str | None = None
    ) -> LedgerEntry:
        """Add `amount` credits to a member's allowance for the current window only.

        A grant raises what the member may use; it does not raise the server pool or bot budget.
        A negative amount takes back an earlier grant.
        """
        if amount == 0:
            raise ValueError("a grant of 0 credits changes nothing")
        return await self._append(LedgerKind.GRANT, guild_id, user_id, amount, by_user_id, note, None)

    async def adjust(
        self,
        guild_id: int | None,
        user_id: int,
        amount: int,
        by_user_id: int | None = None,
        note: str | None = None,
        *,
        job_id: int | None = None,
    ) -> LedgerEntry:
        """Correct usage by hand: `+n` gives credits back, `-n` counts `n` more as used.

        Unlike a grant this counts against (or for) the server pool and bot budget too, e.g. to
        reconcile with Magic Hour's own account. Counts in the current window.
        """
        if amount == 0:
            raise ValueError("an adjustment of 0 credits changes nothing")
        return await self._append(LedgerKind.ADJUST, guild_id, user_id, amount, by_user_id, note, job_id)

    async def _append(
        self,
        kind: LedgerKind,
        guild_id: int | None,
        user_id: int,
        amount: int,
        by_user_id: int | None,
        note: str | None,
        job_id: int | None,
    ) -> LedgerEntry:
        async def body(conn: aiosqlite.Connection) -> LedgerEntry:
            now = ts(self._clock.now())
            mode = None
            if job_id is not None:
                mode = (await load_job(conn, job_id)).mode.value
            rows = await fetch_all(
                conn,
                "INSERT INTO ledger (kind, job_id, guild_id, user_id, mode, amount, period_at, at, by_user_id, note)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
                (kind.value, job_id, guild_id, user_id, mode, amount, now, now, by_user_id, note),
            )
            return _entry(rows[0])

        return await self._db.write(body)

    async def balance(self, guild_id: int | None, user_id: int, role_ids: Sequence[int] = ()) -> Balance:
        """The member's allowance, what they used and hold, and what remains, in the current window."""
        policy = self._policy

        async def body(conn: aiosqlite.Connection) -> Balance:
            now = self._clock.now()
            start, end = window_bounds(now, policy.window, policy.reset_time)
            settings = await load_guild_settings(conn, guild_id)
            allowance, source = await resolve_allowance(conn, policy, guild_id, user_id, role_ids, settings)
            used, granted = await ledger.member_sums(conn, guild_id, user_id, start)
            reserved = await ledger.member_in_flight(conn, guild_id, user_id, start)
            active = await ledger.active_jobs(conn, guild_id, user_id, -1)
            pool_left = None
            if settings is not None and settings.pool_credits is not None:
                pool_left = max(0, settings.pool_credits - await ledger.guild_used(conn, settings.guild_id, start))
            budget_left = None
            if policy.bot_budget_credits is not None:
                budget_left = max(0, policy.bot_budget_credits - await ledger.bot_used(conn, start))
            return Balance(
                allowance=allowance,
                limit_kind=source,
                granted=granted,
                used=used,
                reserved=reserved,
                remaining=max(0, allowance + granted - used),
                window_start=start,
                resets_at=end,
                active_jobs=active,
                max_active_jobs=(
                    settings.max_active_jobs
                    if settings is not None and settings.max_active_jobs is not None
                    else policy.max_active_jobs_per_member
                ),
                server_pool_remaining=pool_left,
                bot_budget_remaining=budget_left,
            )

        return await self._db.read(body)

    async def entries(self, job_id: int) -> list[LedgerEntry]:
        """Every ledger row of one job, oldest first."""
        rows = await self._db.read(
            lambda conn: fetch_all(conn, "SELECT * FROM ledger WHERE job_id = ? ORDER BY id", (job_id,))
        )
        return [_entry(r) for r in rows]

    async def member_entries(
        self, guild_id: int | None, user_id: int, since: dt.datetime | None = None
    ) -> list[LedgerEntry]:
        """A member's ledger rows in one server counted at or after `since`, oldest first."""
        since_text = ts(since) if since is not None else ""
        rows = await self._db.read(
            lambda conn: fetch_all(
                conn,
                "SELECT * FROM ledger WHERE guild_id IS ? AND user_id = ? AND period_at >= ? ORDER BY id",
                (guild_id, user_id, since_text),
            )
        )
        return [_entry(r) for r in rows]

    async def usage(
        self, guild_id: int | None, since: dt.datetime | None = None, until: dt.datetime | None = None
    ) -> UsageReport:
        """A server's usage over `[since, until)` (default: the current window), by member and by mode.

        Counted from the ledger, not from jobs, so it stays right after members' data is deleted
        (their usage shows under `by_member[None]`). `guild_id=None` reports command-line jobs.
        """
        if since is None or until is None:
            start, end = self.window()
            since = since or start
            until = until or end

        async def body(conn: aiosqlite.Connection) -> list[sqlite3.Row]:
            return await fetch_all(
                conn,
                "SELECT r.user_id, r.mode, r.kind, r.amount, r.charged,"
                " (r.kind = 'reserve' AND r.job_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ledger AS c"
                "   WHERE c.job_id = r.job_id AND c.kind IN ('settle', 'refund'))) AS open"
                " FROM ledger AS r"
                " WHERE r.guild_id IS ? AND r.period_at >= ? AND r.period_at < ? AND r.kind <> 'grant'",
                (guild_id, ts(since), ts(until)),
            )

        rows = await self._db.read(body)
        total = UsageLine()
        by_member: dict[int | None, UsageLine] = {}
        by_mode: dict[GenerationMode | None, UsageLine] = {}
        for row in rows:
            mode = GenerationMode(row["mode"]) if row["mode"] is not None else None
            member = row["user_id"]
            for line in (total, by_member.setdefault(member, UsageLine()), by_mode.setdefault(mode, UsageLine())):
                _add(line, row)
        return UsageReport(guild_id, since, until, total, by_member, by_mode)


def _add(line: UsageLine, row: sqlite3.Row) -> None:
    kind = LedgerKind(row["kind"])
    amount = int(row["amount"])
    line.used -= amount
    if kind is LedgerKind.RESERVE:
        line.jobs += 1
        if row["open"]:
            line.in_flight -= amount
    elif kind is LedgerKind.SETTLE:
        line.settled += 1
        line.charged += int(row["charged"])
    elif kind is LedgerKind.REFUND:
        line.refunded += 1
    elif kind is LedgerKind.ADJUST:
        line.adjusted -= amount
