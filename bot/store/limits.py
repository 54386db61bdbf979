"""Limits server managers set: per member, per role, and a server's own settings.

A member's allowance, most specific first: their member limit here > the highest of their roles'
limits > the server's default > the bot's `default_member_credits` (a member limit wins even when
lower: it is the manager's word about this member). Managers narrow the operator's settings, never
widen them: nothing above the operator's ceiling (`AboveCeiling`), modes among the operator's,
clip and jobs at a time within theirs, every number within its `bot.bounds` bound (`OutOfBounds`);
what was stored before the operator narrowed is narrowed when read (`within_operator`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TypeVar

from bot import bounds
from bot.config import GenerationMode
from bot.errors import InvalidInput
from bot.store import queries
from bot.store.db import Connection, Database, Row, fetch_all, fetch_one
from bot.store.errors import AboveCeiling
from bot.store.models import GuildSettings, LimitKind, QuotaPolicy

_N = TypeVar("_N", int, float)

_GUILD_COLUMNS = ("default_member_credits", "pool_credits", "allowed_modes", "max_clip_seconds", "max_active_jobs")


def _settings_from_row(guild_id: int, row: Row | None) -> GuildSettings:
    if row is None:
        return GuildSettings(guild_id)
    modes = row["allowed_modes"]
    return GuildSettings(
        guild_id=guild_id,
        default_member_credits=row["default_member_credits"],
        pool_credits=row["pool_credits"],
        allowed_modes=tuple(GenerationMode(m) for m in modes.split(",") if m) if modes is not None else None,
        max_clip_seconds=row["max_clip_seconds"],
        max_active_jobs=row["max_active_jobs"],
    )


def _at_most(value: _N | None, bound: _N | None) -> _N | None:
    return bound if value is not None and bound is not None and value > bound else value


def within_operator(settings: GuildSettings, policy: QuotaPolicy) -> GuildSettings:
    """A server's settings as they apply under the operator's: narrowed, never wider.

    Modes are those of the server's that the operator offers, in the operator's order (none, if
    the operator has since dropped every one the server chose: the server's choice is never
    widened back); the longest clip, jobs at a time, default allowance and pool are at most the
    operator's.
    """
    modes = settings.allowed_modes
    ceiling = policy.server_credits_ceiling
    return dataclasses.replace(
        settings,
        allowed_modes=None if modes is None else tuple(m for m in policy.allowed_modes if m in modes),
        max_clip_seconds=_at_most(settings.max_clip_seconds, policy.max_clip_seconds),
        max_active_jobs=_at_most(settings.max_active_jobs, policy.max_active_jobs_per_member),
        default_member_credits=_at_most(settings.default_member_credits, ceiling),
        pool_credits=_at_most(settings.pool_credits, ceiling),
    )


async def load_guild_settings(conn: Connection, policy: QuotaPolicy, guild_id: int | None) -> GuildSettings | None:
    """A server's settings as they apply now, inside the caller's transaction (None for command-line jobs)."""
    if guild_id is None:
        return None
    row = await fetch_one(conn, "SELECT * FROM guild_settings WHERE guild_id = ?", (guild_id,))
    return within_operator(_settings_from_row(guild_id, row), policy)


def member_limits_query(guild_id: int, user_id: int, role_ids: Sequence[int]) -> tuple[str, tuple[object, ...]]:
    """The one statement (SQL, parameters) that reads a server's settings and a member's allowance."""
    marks = ", ".join("?" for _ in role_ids) or "NULL"
    return queries.MEMBER_LIMITS.format(roles=marks), (guild_id, user_id, guild_id, *role_ids, guild_id)


def member_limits_from_row(
    policy: QuotaPolicy, guild_id: int | None, row: Row | None
) -> tuple[GuildSettings | None, int, LimitKind]:
    """A `member_limits_query` row as (settings, allowance, where it came from); no row for the command line."""
    if guild_id is None or row is None:
        return None, policy.default_member_credits, LimitKind.GLOBAL_DEFAULT
    settings = within_operator(_settings_from_row(guild_id, row), policy)
    if row["member_credits"] is not None:
        return settings, _capped(policy, int(row["member_credits"])), LimitKind.MEMBER
    if row["role_credits"] is not None:
        return settings, _capped(policy, int(row["role_credits"])), LimitKind.ROLE
    if settings.default_member_credits is not None:
        return settings, settings.default_member_credits, LimitKind.SERVER_DEFAULT
    return settings, policy.default_member_credits, LimitKind.GLOBAL_DEFAULT


async def load_member_limits(
    conn: Connection, policy: QuotaPolicy, guild_id: int | None, user_id: int, role_ids: Sequence[int]
) -> tuple[GuildSettings | None, int, LimitKind]:
    """A server's settings and a member's allowance per window (and where it came from), in one round trip."""
    if guild_id is None:
        return member_limits_from_row(policy, None, None)
    sql, params = member_limits_query(guild_id, user_id, role_ids)
    return member_limits_from_row(policy, guild_id, await fetch_one(conn, sql, params))


def _capped(policy: QuotaPolicy, credits: int) -> int:
    """A member's or role's allowance as it applies: at most the operator's ceiling."""
    return _at_most(credits, policy.server_credits_ceiling) or 0


def _within(policy: QuotaPolicy, credits: int | None) -> None:
    """Refuse credits outside their bound, or above the operator's ceiling."""
    if credits is None:
        return
    bounds.CREDITS.check(credits)
    ceiling = policy.server_credits_ceiling
    if ceiling is not None and credits > ceiling:
        raise AboveCeiling(ceiling, credits)


class LimitStore:
    """Per-member, per-role and per-server limits and settings. Reach it as `store.limits`."""

    def __init__(self, db: Database, policy: QuotaPolicy) -> None:
        self._db = db
        self._policy = policy

    # Members and roles

    async def set_member_limit(
        self, guild_id: int, user_id: int, credits: int, *, by_user_id: int | None = None
    ) -> None:
        """Give one member their own allowance per window in this server (replaces any earlier one).

        It survives the member's request to delete their data; `clear_member_limit` removes it.
        """
        _within(self._policy, credits)
        now = self._db.now()

        async def body(conn: Connection) -> None:
            await conn.execute(
                "INSERT INTO member_limits (guild_id, user_id, credits, set_by, set_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (guild_id, user_id) DO UPDATE SET"
                " credits = excluded.credits, set_by = excluded.set_by, set_at = excluded.set_at",
                (guild_id, user_id, credits, by_user_id, now),
            )

        await self._db.write(body)

    async def clear_member_limit(self, guild_id: int, user_id: int) -> bool:
        """Remove a member's own allowance; returns whether there was one."""

        async def body(conn: Connection) -> bool:
            return (
                await conn.execute("DELETE FROM member_limits WHERE guild_id = ? AND user_id = ?", (guild_id, user_id))
                > 0
            )

        return await self._db.write(body)

    async def set_role_limit(self, guild_id: int, role_id: int, credits: int, *, by_user_id: int | None = None) -> None:
        """Give members with this role this allowance (the highest of a member's roles applies)."""
        _within(self._policy, credits)
        now = self._db.now()

        async def body(conn: Connection) -> None:
            await conn.execute(
                "INSERT INTO role_limits (guild_id, role_id, credits, set_by, set_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (guild_id, role_id) DO UPDATE SET"
                " credits = excluded.credits, set_by = excluded.set_by, set_at = excluded.set_at",
                (guild_id, role_id, credits, by_user_id, now),
            )

        await self._db.write(body)

    async def clear_role_limit(self, guild_id: int, role_id: int) -> bool:
        """Remove a role's allowance; returns whether there was one."""

        async def body(conn: Connection) -> bool:
            return (
                await conn.execute("DELETE FROM role_limits WHERE guild_id = ? AND role_id = ?", (guild_id, role_id))
                > 0
            )

        return await self._db.write(body)

    async def member_limits(self, guild_id: int) -> dict[int, int]:
        """Every member limit in this server, user id to credits."""
        rows = await self._db.read(
            lambda conn: fetch_all(conn, "SELECT user_id, credits FROM member_limits WHERE guild_id = ?", (guild_id,))
        )
        return {int(r[0]): int(r[1]) for r in rows}

    async def role_limits(self, guild_id: int) -> dict[int, int]:
        """Every role limit in this server, role id to credits."""
        rows = await self._db.read(
            lambda conn: fetch_all(conn, "SELECT role_id, credits FROM role_limits WHERE guild_id = ?", (guild_id,))
        )
        return {int(r[0]): int(r[1]) for r in rows}

    async def resolve_allowance(
        self, guild_id: int | None, user_id: int, role_ids: Sequence[int] = ()
    ) -> tuple[int, LimitKind]:
        """The member's allowance per window (before grants) and which limit set it."""

        async def body(conn: Connection) -> tuple[int, LimitKind]:
            _, allowance, source = await load_member_limits(conn, self._policy, guild_id, user_id, role_ids)
            return allowance, source

        return await self._db.read(body)

    # Servers

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        """The server's own settings (every field None when it has set nothing)."""

        async def body(conn: Connection) -> GuildSettings:
            settings = await load_guild_settings(conn, self._policy, guild_id)
            assert settings is not None
            return settings

        return await self._db.read(body)

    async def set_server_default(self, guild_id: int, credits: int | None) -> GuildSettings:
        """Each member's allowance in this server unless a member or role limit applies; None clears."""
        _within(self._policy, credits)
        return await self._set(guild_id, "default_member_credits", credits)

    async def set_server_pool(self, guild_id: int, credits: int | None) -> GuildSettings:
        """The most this server may use per window, all members together; None removes the cap.

        The operator's ceiling, if any, caps the server whatever its pool.
        """
        _within(self._policy, credits)
        return await self._set(guild_id, "pool_credits", credits)

    async def set_allowed_modes(self, guild_id: int, modes: Sequence[GenerationMode] | None) -> GuildSettings:
        """The generation modes members may use in this server; None means the bot's list.

        Only modes the operator offers (`modes_not_offered` otherwise), and at least one.
        """
        if modes is not None and not modes:
            raise ValueError("allow at least one mode, or pass None for the bot's default")
        chosen = None if modes is None else tuple(dict.fromkeys(GenerationMode(m) for m in modes))
        offered = self._policy.allowed_modes
        if chosen is not None and any(m not in offered for m in chosen):
            names = ", ".join(m.value for m in chosen if m not in offered)
            raise InvalidInput("modes_not_offered", modes=names, allowed=", ".join(m.value for m in offered))
        text = None if chosen is None else ",".join(m.value for m in chosen)
        return await self._set(guild_id, "allowed_modes", text)

    async def set_max_clip_seconds(self, guild_id: int, seconds: float | None) -> GuildSettings:
        """The longest clip this server accepts, at most the operator's (`clip_cap`); None: the operator's."""
        if seconds is not None:
            bounds.CLIP_SECONDS.check(seconds)
            if seconds > self._policy.max_clip_seconds:
                raise InvalidInput("clip_cap", limit=self._policy.max_clip_seconds)
        return await self._set(guild_id, "max_clip_seconds", seconds)

    async def set_max_active_jobs(self, guild_id: int, count: int | None) -> GuildSettings:
        """Jobs one member may run at once here, at most the operator's (`jobs_cap`); None: the operator's."""
        if count is not None:
            bounds.JOBS_AT_ONCE.check(count)
            if count > self._policy.max_active_jobs_per_member:
                raise InvalidInput("jobs_cap", limit=self._policy.max_active_jobs_per_member)
        return await self._set(guild_id, "max_active_jobs", count)

    async def clear_guild_settings(self, guild_id: int) -> bool:
        """Forget every server setting (limits for members and roles stay); returns whether any existed."""

        async def body(conn: Connection) -> bool:
            return await conn.execute("DELETE FROM guild_settings WHERE guild_id = ?", (guild_id,)) > 0

        return await self._db.write(body)

    async def _set(self, guild_id: int, column: str, value: object) -> GuildSettings:
        assert column in _GUILD_COLUMNS  # the column name is interpolated below
        now = self._db.now()

        async def body(conn: Connection) -> GuildSettings:
            await conn.execute(
                f"INSERT INTO guild_settings (guild_id, {column}, updated_at) VALUES (?, ?, ?)"  # noqa: S608
                f" ON CONFLICT (guild_id) DO UPDATE SET {column} = excluded.{column}, updated_at = excluded.updated_at",
                (guild_id, value, now),
            )
            settings = await load_guild_settings(conn, self._policy, guild_id)
            assert settings is not None
            return settings

        return await self._db.write(body)
