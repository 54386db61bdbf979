"""One reading of everything that limits a member's spending in a window: `LimitsReader.load`.

It reads the server's settings and the member's allowance, then the window's running totals (or
the ledger's sums, see `bot.store.ledger.summed_sums`), and works out an `EffectiveLimits`, whose
`refusal_for` is the only credit rule. `QuotaLedger.limits` shows it; `reserve`, `top_up` and
`grant` load the same thing inside their write transaction, so what is shown is what is enforced.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from bot.store import forget, ledger, totals
from bot.store.db import BUDGET_LOCK, LEDGER_LOCK, Connection, Row, fetch_one, guild_lock
from bot.store.ledger import WindowSums
from bot.store.limits import member_limits_from_row, member_limits_query
from bot.store.models import EffectiveLimits, GuildSettings, LimitKind, QuotaPolicy
from bot.store.windows import window_bounds


@dataclass(frozen=True, slots=True)
class Member:
    """Who spends: a member of a server (`guild_id` None: the command line) and their roles."""

    guild_id: int | None
    user_id: int
    role_ids: Sequence[int] = ()


@dataclass(frozen=True, slots=True)
class LoadedLimits:
    """`LimitsReader.load`'s answer: the limits, and what a write in the same transaction needs."""

    limits: EffectiveLimits
    totals_key: str | None  # the totals' window rule, when they were read (saves reading it again)
    reserve_id: int | None  # the asked-about job's reservation row, if it has one


def _at_most(value: int, bound: int | None) -> int:
    return value if bound is None else min(value, bound)


class LimitsReader:
    """Loads `EffectiveLimits` under one policy, inside the caller's transaction."""

    def __init__(self, policy: QuotaPolicy, secret: bytes) -> None:
        self._policy = policy
        self._secret = secret
        self._totals_key = totals.window_key(policy.window, policy.reset_time)

    async def lock(self, conn: Connection, guild_id: int | None, *, budget: bool = True) -> None:
        """Lock every limit a member of `guild_id` spends against, until the transaction ends.

        The server's lock (its members, active jobs and pool) and, when there is a budget and
        `budget` is set, the bot budget's; the ledger lock shared (a recount of the totals takes it
        exclusively). On SQLite `BEGIN IMMEDIATE` already orders every writer.
        """
        names = [guild_lock(guild_id)]
        if budget and self._policy.bot_budget_credits is not None:
            names.append(BUDGET_LOCK)
        await conn.lock(*names, shared=[LEDGER_LOCK])

    async def load(
        self, conn: Connection, member: Member, at: dt.datetime, *, exclude_job_id: int = -1, of_job: int = -1
    ) -> LoadedLimits:
        """`member`'s limits in the window containing `at`; `exclude_job_id` leaves one job out of
        the active-job count, `of_job` asks whether that job has reserved."""
        start, end = window_bounds(at, self._policy.window, self._policy.reset_time)
        token = forget.member_token(self._secret, member.guild_id, member.user_id)
        user_ids = (member.user_id, token)
        sql, params = ledger.totals_query(
            member.guild_id, user_ids, start, exclude_job_id=exclude_job_id, of_job=of_job
        )
        if member.guild_id is not None:  # the member's limits in the same round trip
            limits_sql, limits_params = member_limits_query(member.guild_id, member.user_id, member.role_ids)
            sql, params = f"SELECT * FROM ({limits_sql}) AS l, ({sql}) AS t", (*limits_params, *params)  # noqa: S608
        row = await fetch_one(conn, sql, params)
        sums = None if row is None else ledger.sums_from_totals(row, self._totals_key)
        if row is None or sums is None:  # totals kept for another window rule: sum the ledger
            sums = await ledger.summed_sums(
                conn, member.guild_id, user_ids, (start, end), exclude_job_id=exclude_job_id, of_job=of_job
            )
            row = None if member.guild_id is None else await self._limits_row(conn, member)
        settings, allowance, source = member_limits_from_row(self._policy, member.guild_id, row)
        limits = self._effective(member, (allowance, source), settings, self._pool_limit(settings), sums, (start, end))
        return LoadedLimits(limits, sums.totals_key, sums.reserve_id)

    @staticmethod
    async def _limits_row(conn: Connection, member: Member) -> Row | None:
        assert member.guild_id is not None
        sql, params = member_limits_query(member.guild_id, member.user_id, member.role_ids)
        return await fetch_one(conn, sql, params)

    def _pool_limit(self, settings: GuildSettings | None) -> int | None:
        if settings is None:
            return None
        caps = [c for c in (settings.pool_credits, self._policy.server_credits_ceiling) if c is not None]
        return min(caps) if caps else None

    def _effective(
        self,
        member: Member,
        allowance: tuple[int, LimitKind],
        settings: GuildSettings | None,
        pool_limit: int | None,
        sums: WindowSums,
        window: tuple[dt.datetime, dt.datetime],
    ) -> EffectiveLimits:
        policy = self._policy
        pool_available = None if pool_limit is None or sums.guild_used is None else pool_limit - sums.guild_used
        budget = policy.bot_budget_credits
        budget_available = None if budget is None or sums.bot_used is None else budget - sums.bot_used
        # A member's allowance plus grants never passes the operator's ceiling, whatever managers set
        # and in whichever order (a grant, then a higher limit), or whenever the operator lowered it.
        ceiling = policy.server_credits_ceiling if member.guild_id is not None else None
        member_available = _at_most(allowance[0] + sums.granted, ceiling) - sums.used
        availables = [a for a in (member_available, pool_available, budget_available) if a is not None]
        return EffectiveLimits(
            allowance=allowance[0],
            limit_kind=allowance[1],
            granted=sums.granted,
            used=sums.used,
            reserved=sums.reserved,
            member_available=member_available,
            pool_limit=pool_limit,
            pool_available=pool_available,
            budget_limit=budget,
            budget_available=budget_available,
            remaining=max(0, min(availables)),
            window_start=window[0],
            resets_at=window[1],
            active_jobs=sums.active,
            max_active_jobs=(  # the server's own is at most the operator's (`within_operator`)
                settings.max_active_jobs
                if settings is not None and settings.max_active_jobs is not None
                else policy.max_active_jobs_per_member
            ),
            guild=settings,
        )
