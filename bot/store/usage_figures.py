"""Read queries behind the balance and usage screens: one member's `Balance`, grants by member, days.

Reads only: every write stays in `QuotaLedger`. `balance` loads the member's limits with the same
loader reservations use (`LimitsReader`) and the window's grant rows in the same transaction, so the
split into granted and taken back adds up to what the limits counted. Reach this as `store.usage`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from bot.clock import Clock
from bot.store import forget
from bot.store.balance import Balance
from bot.store.daily import DailyUsage, UsageRow, chart_days, daily_usage, rows_since
from bot.store.db import Connection, Database, Row, fetch_all, parse_ts
from bot.store.effective import LimitsReader, Member
from bot.store.limits import load_guild_settings
from bot.store.models import LedgerEntry, LedgerKind, QuotaPolicy
from bot.store.windows import window_bounds


@dataclass(frozen=True, slots=True)
class GrantTotals:
    """One member's grants in a period: what managers added and what they took back (both >= 0)."""

    granted: int = 0
    taken_back: int = 0


def _grant_entry(row: Row, token: int) -> LedgerEntry:
    # A grant kept under the member's token (they deleted their data) is theirs, without its note.
    kept = row["user_id"] == token
    return LedgerEntry(
        id=int(row["id"]),
        kind=LedgerKind.GRANT,
        job_id=None,
        guild_id=row["guild_id"],
        user_id=None if kept else row["user_id"],
        mode=None,
        amount=int(row["amount"]),
        charged=None,
        period_at=parse_ts(row["period_at"]),
        at=parse_ts(row["at"]),
        by_user_id=row["by_user_id"],
        note=None if kept else row["note"],
    )


class UsageQueries:
    """Balances and usage figures, read from the ledger; no writes."""

    def __init__(self, db: Database, policy: QuotaPolicy, clock: Clock, secret: bytes) -> None:
        self._db = db
        self._policy = policy
        self._clock = clock
        self._secret = secret

    async def balance(self, guild_id: int | None, user_id: int, role_ids: Sequence[int] = ()) -> Balance:
        """The member's `Balance` in the current window, read in one snapshot.

        Grants kept under the member's token after they deleted their data still count (as in
        their limits) and are listed without their note.
        """
        policy = self._policy

        async def body(conn: Connection) -> Balance:
            now = self._clock.now()
            member = Member(guild_id, user_id, role_ids)
            limits = (await LimitsReader(policy, self._secret).load(conn, member, now)).limits
            token = forget.member_token(self._secret, guild_id, user_id)
            rows = await fetch_all(
                conn,
                "SELECT id, guild_id, user_id, amount, period_at, at, by_user_id, note FROM ledger"
                " WHERE kind = 'grant' AND guild_id IS NOT DISTINCT FROM ? AND user_id IN (?, ?)"
                " AND period_at >= ? AND period_at < ? ORDER BY id",
                (guild_id, user_id, token, limits.window_start, limits.resets_at),
            )
            return Balance.of(limits, [_grant_entry(row, token) for row in rows])

        return await self._db.read(body)

    async def grant_totals(
        self, guild_id: int | None, since: dt.datetime, until: dt.datetime
    ) -> dict[int | None, GrantTotals]:
        """Grants and take-backs by member in `[since, until)`; deleted members' under None."""
        rows = await self._db.read(
            lambda conn: fetch_all(
                conn,
                "SELECT user_id, amount FROM ledger WHERE kind = 'grant' AND guild_id IS NOT DISTINCT FROM ?"
                " AND period_at >= ? AND period_at < ?",
                (guild_id, since, until),
            )
        )
        totals: dict[int | None, GrantTotals] = {}
        for row in rows:
            member = row["user_id"] if row["user_id"] is not None and row["user_id"] >= 0 else None
            amount = int(row["amount"])
            was = totals.get(member, GrantTotals())
            if amount > 0:
                totals[member] = GrantTotals(was.granted + amount, was.taken_back)
            else:
                totals[member] = GrantTotals(was.granted, was.taken_back - amount)
        return totals

    async def pool_limit(self, guild_id: int) -> int | None:
        """The server's pool per window as it applies (its own, at most the operator's ceiling); None: none."""
        policy = self._policy
        settings = await self._db.read(lambda conn: load_guild_settings(conn, policy, guild_id))
        own = settings.pool_credits if settings is not None else None
        caps = [c for c in (own, policy.server_credits_ceiling) if c is not None]
        return min(caps) if caps else None

    async def daily(self, guild_id: int, now: dt.datetime | None = None) -> DailyUsage:
        """The server's credits per UTC day by member, and its pool's remainder, for the usage chart."""
        policy = self._policy
        now = now or self._clock.now()
        days = chart_days(now, policy.window, policy.reset_time)
        since = rows_since(days, policy.window, policy.reset_time)
        until = window_bounds(now, policy.window, policy.reset_time)[1]
        rows = await self._db.read(
            lambda conn: fetch_all(
                conn,
                "SELECT user_id, period_at, amount FROM ledger WHERE kind <> 'grant' AND guild_id = ?"
                " AND period_at >= ? AND period_at < ?",
                (guild_id, since, until),
            )
        )
        usage = [
            UsageRow(
                user_id=row["user_id"] if row["user_id"] is not None and row["user_id"] >= 0 else None,
                period_at=parse_ts(row["period_at"]),
                used=-int(row["amount"]),
            )
            for row in rows
        ]
        return daily_usage(
            usage,
            days,
            window=policy.window,
            reset_time=policy.reset_time,
            pool_limit=await self.pool_limit(guild_id),
            now=now,
        )
