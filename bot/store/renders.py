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


# How often (in renders recorded) the history is trimmed back to `keep` per mode.
_TRIM_EVERY = 50


class RenderHistory:
    """Finished renders' durations. Reach it as `store.renders`."""

    def __init__(self, db: Database, *, keep: int = 500) -> None:
        self._db = db
        self._keep = keep

    async def record(self, sample: RenderSample) -> None:
        """Add one finished render; every `_TRIM_EVERY`th one also drops each mode's oldest beyond the newest `keep`.

        One statement a render (the trim, seldom, a second): a mode may hold a few more than `keep`
        between trims, which `recent` never shows (it asks for the newest).
        """
        at = sample.finished_at or self._db.now()
        rows = await self._db.write_one(
            "INSERT INTO render_times (job_id, mode, frames, low_seconds, high_seconds, seconds, finished_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (sample.job_id, sample.mode.value, sample.frames, sample.low, sample.high, sample.seconds, at),
        )
        if int(rows[0][0]) % _TRIM_EVERY == 0:
            await self._db.write_one(
                "DELETE FROM render_times WHERE id NOT IN (SELECT r.id FROM render_times AS r"
                " WHERE r.mode = render_times.mode ORDER BY r.id DESC LIMIT ?)",
                (self._keep,),
            )

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
