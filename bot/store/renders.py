"""How long finished renders took (for the poll forecast), and the health check's heartbeat write.

Rows are plain facts about Magic Hour's speed: a mode, a frame count and an interval in which the
render ended. The forecast (`bot.jobs.forecast`) reads the most recent rows of each mode; nothing
else depends on them, so old rows may be pruned at any time (`RenderHistory.record` keeps the
newest `keep` per mode).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from bot.config import GenerationMode
from bot.store.db import Connection, Database, fetch_all, parse_ts


@dataclass(frozen=True, slots=True)
class RenderSample:
    """One finished render: it ended between `low` and `high` seconds after submission."""

    mode: GenerationMode
    frames: int
    low: float
    high: float
    job_id: int | None = None
    finished_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        if self.frames <= 0:
            raise ValueError("a render has at least one frame")
        if not 0 <= self.low <= self.high:
            raise ValueError(f"a render's end interval must be 0 <= low <= high, not [{self.low}, {self.high}]")

    @property
    def seconds(self) -> float:
        """The best single guess: the middle of the interval."""
        return (self.low + self.high) / 2

    @property
    def spread(self) -> float:
        """Half the interval's width: how far `seconds` may be from the truth."""
        return (self.high - self.low) / 2


class RenderHistory:
    """Finished renders' durations. Reach it as `store.renders`."""

    def __init__(self, db: Database, *, keep: int = 500) -> None:
        self._db = db
        self._keep = keep

    async def record(self, sample: RenderSample) -> None:
        """Add one finished render, and drop the oldest of its mode beyond the newest `keep`."""
        at = sample.finished_at or self._db.now()

        async def body(conn: Connection) -> None:
            await conn.execute(
                "INSERT INTO render_times (job_id, mode, frames, low_seconds, high_seconds, seconds, finished_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (sample.job_id, sample.mode.value, sample.frames, sample.low, sample.high, sample.seconds, at),
            )
            await conn.execute(
                "DELETE FROM render_times WHERE mode = ? AND id NOT IN"
                " (SELECT id FROM render_times WHERE mode = ? ORDER BY id DESC LIMIT ?)",
                (sample.mode.value, sample.mode.value, self._keep),
            )

        await self._db.write(body)

    async def recent(self, mode: GenerationMode, limit: int) -> list[RenderSample]:
        """The newest `limit` renders of one mode, oldest first."""

        async def body(conn: Connection) -> list[RenderSample]:
            rows = await fetch_all(
                conn,
                "SELECT job_id, frames, low_seconds, high_seconds, finished_at FROM render_times"
                " WHERE mode = ? ORDER BY id DESC LIMIT ?",
                (mode.value, limit),
            )
            return [
                RenderSample(
                    mode=mode,
                    frames=int(row["frames"]),
                    low=float(row["low_seconds"]),
                    high=float(row["high_seconds"]),
                    job_id=row["job_id"],
                    finished_at=parse_ts(row["finished_at"]),
                )
                for row in reversed(rows)
            ]

        return await self._db.read(body)


class Heartbeat:
    """A write that proves the database still takes writes (the health check). Reach it as `store.heartbeat`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def beat(self) -> dt.datetime:
        """Write the time into the one-row heartbeat table and commit; raise if the database refuses."""
        now = self._db.now()

        async def body(conn: Connection) -> None:
            await conn.execute(
                "INSERT INTO store_heartbeat (id, beat_at) VALUES (1, ?)"
                " ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at",
                (now,),
            )

        await self._db.write(body)
        return now
