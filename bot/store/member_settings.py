"""Members' own settings, per server: their default mode and frame-rate cap, where their results
go, and whether a result pings them.

They are preferences, never limits: the server's rules and the member's credits still decide
what a job may be. Reach them as `store.member_settings`; `/forget-me` deletes them with the rest
of a member's data (`bot.store.forget`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from bot import bounds
from bot.config import GenerationMode
from bot.store.db import Connection, Database, fetch_one
from bot.store.models import ResultPlace


@dataclass(frozen=True, slots=True)
class MemberSettings:
    """One member's preferences in one server; the defaults are what a member who set none gets."""

    mode: GenerationMode | None = None  # the mode `/lipsync` uses when none is chosen; None: the bot's
    max_fps: float | None = None  # the frame-rate cap used when none is chosen; None: the bot's
    results: ResultPlace = ResultPlace.CHANNEL
    ping: bool = True  # whether the result mentions the member

    def __post_init__(self) -> None:
        if self.max_fps is not None:
            bounds.FPS.check(self.max_fps)

    def changed(
        self,
        *,
        mode: GenerationMode | None = None,
        max_fps: float | None = None,
        results: ResultPlace | None = None,
        ping: bool | None = None,
    ) -> MemberSettings:
        """These settings with every given value changed (None leaves a value as it is)."""
        return dataclasses.replace(
            self,
            mode=mode if mode is not None else self.mode,
            max_fps=max_fps if max_fps is not None else self.max_fps,
            results=results if results is not None else self.results,
            ping=ping if ping is not None else self.ping,
        )


DEFAULTS = MemberSettings()


class MemberSettingsStore:
    """Reads and writes members' settings. Reach it as `store.member_settings`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, guild_id: int, user_id: int) -> MemberSettings:
        """The member's settings in this server (the defaults if they set none)."""

        async def body(conn: Connection) -> MemberSettings:
            row = await fetch_one(
                conn,
                "SELECT mode, max_fps, results, ping FROM member_settings WHERE guild_id = ? AND user_id = ?",
                (guild_id, user_id),
            )
            if row is None:
                return DEFAULTS
            return MemberSettings(
                mode=GenerationMode(row["mode"]) if row["mode"] is not None else None,
                max_fps=float(row["max_fps"]) if row["max_fps"] is not None else None,
                results=ResultPlace(row["results"]),
                ping=bool(row["ping"]),
            )

        return await self._db.read(body)

    async def save(self, guild_id: int, user_id: int, settings: MemberSettings) -> MemberSettings:
        """Store the member's settings in this server, replacing what they had; returns them."""
        now = self._db.now()

        async def body(conn: Connection) -> None:
            await conn.execute(
                "INSERT INTO member_settings (guild_id, user_id, mode, max_fps, results, ping, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (guild_id, user_id) DO UPDATE SET"
                " mode = excluded.mode, max_fps = excluded.max_fps, results = excluded.results,"
                " ping = excluded.ping, updated_at = excluded.updated_at",
                (
                    guild_id,
                    user_id,
                    settings.mode.value if settings.mode is not None else None,
                    settings.max_fps,
                    settings.results.value,
                    settings.ping,
                    now,
                ),
            )

        await self._db.write(body)
        return settings

    async def clear(self, guild_id: int, user_id: int) -> bool:
        """Forget the member's settings in this server (back to the defaults); whether there were any."""

        async def body(conn: Connection) -> int:
            return await conn.execute(
                "DELETE FROM member_settings WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
            )

        return await self._db.write(body) > 0
