"""Limits server managers set: per member, per role, and a server's own settings.

Resolution of a member's allowance, most specific first:
member limit in this server > the highest limit among their roles > the server's default member
allowance > the bot's `default_member_credits`. A member limit wins even when it is lower than a
role's: it is the manager's explicit word about this member.

With an operator ceiling (`QuotaPolicy.server_credits_ceiling`), no member limit, role limit,
server default or pool may be set above it (`AboveCeiling`): managers spend the operator's credits.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.config import GenerationMode
from bot.store.db import Connection, Database, Row, fetch_all, fetch_one
from bot.store.errors import AboveCeiling
from bot.store.models import GuildSettings, LimitKind, QuotaPolicy

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


async def load_guild_settings(conn: Connection, guild_id: int | None) -> GuildSettings | None:
    """A server's settings inside the caller's transaction (None for command-line jobs)."""
    if guild_id is None:
        return None
    row = await fetch_one(conn, "SELECT * FROM guild_settings WHERE guild_id = ?", (guild_id,))
    return _settings_from_row(guild_id, row)


async def resolve_allowance(
    conn: Connection,
    policy: QuotaPolicy,
    guild_id: int | None,
    user_id: int,
    role_ids: Sequence[int],
    settings: GuildSettings | None,
) -> tuple[int, LimitKind]:
    """The member's allowance per window and which limit it came from."""
    if guild_id is not None:
        row = await fetch_one(
            conn, "SELECT credits FROM member_limits WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
        )
        if row is not None:
            return int(row[0]), LimitKind.MEMBER
        if role_ids:
            marks = ", ".join("?" for _ in role_ids)
            row = await fetch_one(
                conn,
                f"SELECT MAX(credits) FROM role_limits WHERE guild_id = ? AND role_id IN ({marks})",  # noqa: S608
                (guild_id, *role_ids),
            )
            if row is not None and row[0] is not None:
                return int(row[0]), LimitKind.ROLE
        if settings is not None and settings.default_member_credits is not None:
            return settings.default_member_credits, LimitKind.SERVER_DEFAULT
    return policy.default_member_credits, LimitKind.GLOBAL_DEFAULT


def _non_negative(value: int | None, what: str) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{what} cannot be negative")


def _within(policy: QuotaPolicy, credits: int | None) -> None:
    ceiling = policy.server_credits_ceiling
    if credits is not None and ceiling is not None and credits > ceiling:
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
        _non_negative(credits, "a limit")
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
        _non_negative(credits, "a limit")
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
            settings = await load_guild_settings(conn, guild_id)
            return await resolve_allowance(conn, self._policy, guild_id, user_id, role_ids, settings)

        return await self._db.read(body)

    # Servers

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        """The server's own settings (every field None when it has set nothing)."""

        async def body(conn: Connection) -> GuildSettings:
            settings = await load_guild_settings(conn, guild_id)
            assert settings is not None
            return settings

        return await self._db.read(body)

    async def set_server_default(self, guild_id: int, credits: int | None) -> GuildSettings:
        """Each member's allowance in this server unless a member or role limit applies; None clears."""
        _non_negative(credits, "a limit")
        _within(self._policy, credits)
        return await self._set(guild_id, "default_member_credits", credits)

    async def set_server_pool(self, guild_id: int, credits: int | None) -> GuildSettings:
        """The most this server may use per window, all members together; None removes the cap.

        The operator's ceiling, if any, caps the server whatever its pool.
        """
        _non_negative(credits, "a pool")
        _within(self._policy, credits)
        return await self._set(guild_id, "pool_credits", credits)

    async def set_allowed_modes(self, guild_id: int, modes: Sequence[GenerationMode] | None) -> GuildSettings:
        """The generation modes members may use in this server; None means the bot's list."""
        if modes is not None and not modes:
            raise ValueError("allow at least one mode, or pass None for the bot's default")
        text = None if modes is None else ",".join(dict.fromkeys(GenerationMode(m).value for m in modes))
        return await self._set(guild_id, "allowed_modes", text)

    async def set_max_clip_seconds(self, guild_id: int, seconds: float | None) -> GuildSettings:
        """The longest clip this server accepts; None means the bot's maximum."""
        if seconds is not None and seconds <= 0:
            raise ValueError("the longest clip must be more than 0 seconds")
        return await self._set(guild_id, "max_clip_seconds", seconds)

    async def set_max_active_jobs(self, guild_id: int, count: int | None) -> GuildSettings:
        """How many jobs one member may have running at once in this server; None: the bot's default."""
        if count is not None and count < 1:
            raise ValueError("allow at least one active job")
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
            settings = await load_guild_settings(conn, guild_id)
            assert settings is not None
            return settings

        return await self._db.write(body)
